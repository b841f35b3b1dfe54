// Drives dirgate's GraphiQL page in headless Chromium (Debian's `chromium`, through
// playwright-core): the page loads with every request outside dirgate's origin refused, the
// headers pane holds the demo's admin token, the docs explorer shows `Query` and the
// `Mutation` type's description, and a query
// typed into the editor returns data. Saves a screenshot with the docs explorer open.
// Usage: node .ci/web/graphiql-browser-test.mjs BASE_URL SCREENSHOT_PATH
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
const origin = new URL(base).origin;
const fail = (message) => {
  console.error(`GraphiQL browser test FAILED: ${message}`);
  process.exitCode = 1;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const outside = [];
  // No outside network: anything not addressed to dirgate is refused (and reported).
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:')) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  globalThis.problems = problems;
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });

  await page.goto(base, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-container', { timeout: 20000 });

  // The demo opens with its admin token in the headers pane.
  const headers = await page.locator('.graphiql-editor-tool .graphiql-editor').last().innerText();
  if (!/Bearer dg_/.test(headers)) fail(`the headers pane holds no admin token: ${headers}`);

  // The docs explorer shows the root type once the schema is introspected.
  await page.getByRole('button', { name: /documentation explorer/i }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Query', { exact: true }).first().waitFor({ timeout: 20000 });
  // A type's page shows its description (the Mutation root's says where errors go).
  await docs.getByText('Mutation', { exact: true }).first().click();
  await docs.getByText(/answers a nullable payload/).first().waitFor({ timeout: 20000 });

  // A query typed into the editor, run with the execute button.
  const editor = page.locator('.graphiql-query-editor .CodeMirror');
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type('{ devices(first: 2) { totalCount nodes { serialNumber } } }', { delay: 5 });
  await page.keyboard.press('Escape');
  await page.locator('.graphiql-execute-button').click();
  const result = page.locator('.graphiql-response .CodeMirror');
  await page.waitForFunction(
    () => /"totalCount"/.test(document.querySelector('.graphiql-response .CodeMirror')?.innerText ?? ''),
    null,
    { timeout: 20000 },
  );
  const text = await result.innerText();
  if (!/"data"/.test(text) || !/"serialNumber"/.test(text)) fail(`the query returned no data: ${text}`);
  if (/"errors"/.test(text)) fail(`the query returned errors: ${text}`);

  await page.screenshot({ path: screenshot, fullPage: false });
  if (outside.length) fail(`the page asked for outside resources: ${outside.join(', ')}`);
  if (problems.length) fail(problems.join('\n'));
  if (!process.exitCode) console.log(`GraphiQL browser test ok; screenshot in ${screenshot}`);
} catch (err) {
  fail(err.stack ?? String(err));
  if (globalThis.problems?.length) console.error(globalThis.problems.join('\n'));
  const pages = browser.contexts().flatMap((c) => c.pages());
  if (pages[0]) {
    await pages[0].screenshot({ path: screenshot.replace(/\.png$/, '-failed.png') }).catch(() => {});
    console.error(await pages[0].locator('body').innerText().catch(() => ''));
  }
} finally {
  await browser.close();
}
