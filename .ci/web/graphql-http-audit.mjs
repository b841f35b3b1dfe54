// The GraphQL over HTTP audit of `graphql-http` (the GraphQL Foundation's reference
// implementation) against a running dirgate. Fails when any MUST or SHOULD check fails;
// prints every check, MAYs included.
// Usage: node .ci/web/graphql-http-audit.mjs URL TOKEN   (URL: http://host:port/graphql)
import { serverAudits } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: graphql-http-audit.mjs URL TOKEN');
  process.exit(2);
}

// Every request carries the token: dirgate answers 401 before reading an anonymous one.
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers ?? {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};

let failed = 0;
let passed = 0;
const mays = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const level = audit.name.split(' ')[0];
  if (result.status === 'ok') {
    passed += 1;
    console.log(`ok      ${audit.id} ${audit.name}`);
    continue;
  }
  const detail = result.reason ?? '';
  if (level === 'MAY') {
    mays.push(audit);
    console.log(`may-not ${audit.id} ${audit.name}: ${detail}`);
  } else {
    failed += 1;
    console.log(`FAILED  ${audit.id} ${audit.name}: ${detail}`);
    if (result.response) {
      console.log(`        status ${result.response.status}: ${await result.response.text().catch(() => '')}`);
    }
  }
}
console.log(`graphql-http audit: ${passed} ok, ${failed} MUST/SHOULD failed, ${mays.length} MAY not done`);
process.exit(failed === 0 ? 0 : 1);
