// Compares two versions of schema.graphql with graphql-inspector's diff and prints every
// change with its criticality. Exits 1 when a change is BREAKING.
// Usage: node .ci/web/schema-diff.mjs OLD.graphql NEW.graphql
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { diff, CriticalityLevel } from '@graphql-inspector/core';

const [oldPath, newPath] = process.argv.slice(2);
const load = (path) => buildSchema(readFileSync(path, 'utf8'));
const changes = await diff(load(oldPath), load(newPath));
let breaking = 0;
for (const change of changes) {
  const level = change.criticality.level;
  if (level === CriticalityLevel.Breaking) breaking += 1;
  console.log(`  ${level.padEnd(13)} ${change.message}`);
}
console.log(`  ${changes.length} changes, ${breaking} breaking`);
process.exit(breaking === 0 ? 0 : 1);
