// Browser test of GET /docs (CONTRACT §3 "Health and docs": "Swagger UI for the whole API, served
// by the service itself, working with no internet access"). Debian's headless Chromium, driven
// by playwright-core, opens /docs, checks that every operation of /openapi.json is listed, signs
// up through "Try it out", sees the 201, and saves a screenshot.
//
// Usage: BASE_URL=http://127.0.0.1:PORT API_KEY=... SCREENSHOT=out.png node docs.spec.mjs
// Exit 0 when every check passed, 1 otherwise. Started by run.sh, which starts the server.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE_URL = (process.env.BASE_URL ?? '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY ?? '';
const SCREENSHOT = process.env.SCREENSHOT ?? 'swagger-ui.png';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DEADLINE_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS ?? 150_000);
const STEP_MS = 30_000;

// Flags for a headless run that talks to nothing but the page's own origin.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

// The customer that "Try it out" signs up (fresh database per run, so fixed values are fine).
const SIGN_UP = { name: 'Ada Lovelace', email: 'ada.lovelace@example.com', password: 'analytical-engine-1843' };

if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(BASE_URL)) {
  console.error(`docs.spec: BASE_URL must be http://127.0.0.1:<port>, got '${BASE_URL}'`);
  process.exit(1);
}
// Whatever happens below, the run is bounded.
const watchdog = setTimeout(() => {
  console.error(`FAIL: the browser test did not finish within ${DEADLINE_MS} ms`);
  process.exit(1);
}, DEADLINE_MS);

const log = (msg) => console.log(`docs.spec: ${msg}`);

// Every (METHOD, path) of the OpenAPI document, e.g. "POST /auth/sign-up".
async function documentedOperations() {
  const res = await fetch(`${BASE_URL}/openapi.json`);
  assert.equal(res.status, 200, 'GET /openapi.json');
  const doc = await res.json();
  const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
  const ops = [];
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    for (const m of Object.keys(item)) if (methods.has(m)) ops.push(`${m.toUpperCase()} ${p}`);
  }
  assert.ok(ops.length > 0, 'the OpenAPI document lists no operation');
  return ops.sort();
}

async function main() {
  const expected = await documentedOperations();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'fav-chromium-'));
  // A persistent context is how a fresh --user-data-dir of our own is handed to Chromium.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
    timeout: STEP_MS,
  });
  const offOrigin = [];
  const pageErrors = [];
  const failedRequests = [];
  try {
    // No internet: any request that leaves the service's origin is recorded and refused.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${BASE_URL}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      offOrigin.push(url);
      return route.abort('blockedbyclient');
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(`${BASE_URL}/`)) failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    });

    const res = await page.goto(`${BASE_URL}/docs`, { waitUntil: 'load' });
    assert.equal(res?.status(), 200, 'GET /docs');
    await page.locator('.swagger-ui .info .title').first().waitFor();
    assert.match(await page.locator('.swagger-ui .info .title').first().innerText(), /Favorites API/);

    // Every operation is listed (tags are expanded by default: each shows its .opblock rows).
    await page.locator('.opblock').first().waitFor();
    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => {
        const method = b.querySelector('.opblock-summary-method')?.textContent?.trim().toUpperCase();
        const p = b.querySelector('.opblock-summary-path')?.getAttribute('data-path');
        return `${method} ${p}`;
      }),
    );
    const missing = expected.filter((op) => !listed.includes(op));
    assert.deepEqual(missing, [], `operations of /openapi.json not shown on /docs: ${missing.join(', ')}`);
    const extra = listed.filter((op) => !expected.includes(op));
    assert.deepEqual(extra, [], `operations on /docs that /openapi.json does not hold: ${extra.join(', ')}`);
    assert.equal(new Set(listed).size, listed.length, `an operation is listed twice: ${listed.join(', ')}`);
    log(`all ${expected.length} operations listed`);

    // "Try it out" on POST /auth/sign-up.
    const signUp = page.locator('.opblock.opblock-post', {
      has: page.locator('.opblock-summary-path[data-path="/auth/sign-up"]'),
    });
    assert.equal(await signUp.count(), 1, 'POST /auth/sign-up block');
    await signUp.locator('.opblock-summary').first().click();
    await signUp.locator('button.try-out__btn').click();
    const body = signUp.locator('textarea.body-param__text');
    await body.fill(JSON.stringify(SIGN_UP, null, 2));
    await signUp.locator('button.execute').click();

    const live = signUp.locator('.live-responses-table .response');
    await live.first().waitFor();
    const status = (await live.first().locator('.response-col_status').innerText()).trim();
    assert.equal(status, '201', `"Try it out" sign-up answered ${status}`);
    const shownBody = await live.first().locator('.response-col_description').innerText();
    const id = /"id":\s*"([0-9a-f-]{36})"/.exec(shownBody)?.[1];
    assert.ok(id, `no customer id in the response shown: ${shownBody.slice(0, 300)}`);
    log(`"Try it out" signed up ${SIGN_UP.email}: 201, id ${id}`);

    // The request really reached the service: the customer is there.
    if (API_KEY) {
      const r = await fetch(`${BASE_URL}/customers?email=${encodeURIComponent(SIGN_UP.email)}`, {
        headers: { 'x-aiqfome-api-key': API_KEY },
      });
      assert.equal(r.status, 200, 'GET /customers');
      const ids = (await r.json()).data.map((c) => c.id);
      assert.deepEqual(ids, [id], 'the customer created through /docs');
    }

    // The screenshot for the README: the whole page — every operation, and the sign-up exchange —
    // with the long API description cut to its first paragraph, the request editor to its
    // content, and the sign-up's reference material (documented responses, the answer's
    // headers, the schemas section) folded away, so that it stays a modest image.
    // (Through the CSSOM: the page's Content-Security-Policy rightly refuses an injected <style>.)
    await page.evaluate(() => {
      const hide = (sel) => document.querySelectorAll(sel).forEach((el) => el.style.setProperty('display', 'none'));
      hide('.swagger-ui .info .description .renderedMarkdown > :not(:first-child)');
      hide('.swagger-ui .opblock-body table.responses-table:not(.live-responses-table)');
      hide('.swagger-ui .opblock-body .responses-inner > div > h4');
      hide('.swagger-ui .live-responses-table .response-col_description > div:not(:first-child)');
      hide('.swagger-ui section.models');
      for (const el of document.querySelectorAll('.swagger-ui textarea.body-param__text')) {
        el.style.setProperty('min-height', '0', 'important');
        el.style.setProperty('height', '6.5em', 'important');
      }
    });
    fs.mkdirSync(path.dirname(path.resolve(SCREENSHOT)), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, animations: 'disabled' });
    log(`screenshot saved to ${SCREENSHOT}`);

    assert.deepEqual(offOrigin, [], `the page tried to leave ${BASE_URL}: ${offOrigin.join(', ')}`);
    assert.deepEqual(pageErrors, [], `JavaScript errors on /docs: ${pageErrors.join(' | ')}`);
    assert.deepEqual(failedRequests, [], `failed requests: ${failedRequests.join(' | ')}`);
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

try {
  await main();
  console.log('PASS: /docs lists every operation and "Try it out" signs up (201)');
  clearTimeout(watchdog);
  process.exit(0);
} catch (e) {
  console.error(`FAIL: ${e?.stack ?? e}`);
  process.exit(1);
}
