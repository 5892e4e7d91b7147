// Browser tests of the /ui/ page: Playwright (playwright-core) driving Debian's Chromium, headless,
// against a running artifact-gateway. Started by tests/ui_browser.rs, which spawns the real binary
// with two mounts (`private`: tokens only; `public`: anonymous read) and passes:
//   AG_URL        http://127.0.0.1:PORT
//   AG_ADMIN      a token with every scope
//   AG_READER     a token that may only read `private`
//   AG_SHOTS      where screenshots go (under target/)
// Prints one line per case and a summary; exits 1 if any case failed.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.AG_URL;
const ADMIN = process.env.AG_ADMIN;
const READER = process.env.AG_READER;
const SHOTS = process.env.AG_SHOTS;
const CHROMIUM = process.env.AG_CHROMIUM || '/usr/bin/chromium';
if (!BASE || !ADMIN || !READER || !SHOTS) {
  console.error('e2e.mjs: AG_URL, AG_ADMIN, AG_READER and AG_SHOTS must be set (tests/ui_browser.rs sets them)');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });
console.log(`e2e: gateway at ${BASE}`);

const XSS = '<img src=x onerror=alert(1)>.jar';
const sha = (buf) => createHash('sha256').update(buf).digest('hex');
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => c); // test-side only
const url = (mount, path) => `${BASE}/artifacts/${mount}/${path.split('/').map(enc).join('/')}`;

function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
function eq(a, b, msg) { if (a !== b) throw new Error(`${msg}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`); }

async function api(method, mount, path, { token = ADMIN, body, headers = {} } = {}) {
  return fetch(url(mount, path), {
    method, body, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
  });
}
async function serverSha(mount, path) {
  const r = await api('HEAD', mount, path);
  if (r.status !== 200) return null;
  const m = /sha-256=:([^:]+):/.exec(r.headers.get('repr-digest') || '');
  return m ? Buffer.from(m[1], 'base64').toString('hex') : null;
}

// ---- fixtures: artifacts put through the HTTP API ------------------------------------------
const seed = randomBytes(4096);
for (const [mount, path, body] of [
  ['private', 'jobs/seed.jar', seed],
  ['private', `jobs/${XSS}`, Buffer.from('not really a jar')],
  ['public', 'pub/hello.jar', Buffer.from('hello, anonymous reader')],
  ...['a', 'b', 'c', 'd', 'e'].map((n) => ['private', `page/${n}.jar`, Buffer.from(n)]),
]) {
  const r = await api('PUT', mount, path, { body });
  if (r.status !== 201) { console.error(`fixture PUT ${mount}/${path}: ${r.status} ${await r.text()}`); process.exit(1); }
}

// ---- the browser ---------------------------------------------------------------------------
// Playwright gives every launch a fresh temporary --user-data-dir and removes it on close.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
const page = await context.newPage();
page.setDefaultTimeout(10000);
const dialogs = [];
const consoleProblems = [];
page.on('dialog', async (d) => { dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss(); });
page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleProblems.push(m.text()); });
page.on('pageerror', (e) => consoleProblems.push(`page error: ${e.message}`));

const results = [];
async function shot(name) { await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true }); }
async function tcase(name, fn) {
  if (process.env.AG_CASES && !process.env.AG_CASES.split(',').includes(name)) return;
  const started = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ui case ${name} ... ok (${Date.now() - started} ms)`);
  } catch (err) {
    results.push([name, false]);
    console.log(`ui case ${name} ... FAILED (${Date.now() - started} ms)\n    ${String(err.stack || err).split('\n').join('\n    ')}`);
    try { await shot(`FAILED-${name}`); } catch { /* the page may be gone */ }
  }
}
async function open(path = '/ui/') {
  await page.goto(BASE + path);
  await page.waitForSelector('body[data-ready="true"]');
}
const rowByData = (name) => page.locator(`#listing tr[data-name="${name.replace(/"/g, '\\"')}"]`);

await tcase('security_headers', async () => {
  const r = await fetch(`${BASE}/ui/`);
  eq(r.status, 200, `/ui/ status (${await r.clone().text()})`);
  const csp = r.headers.get('content-security-policy') || '';
  assert(/script-src 'self'/.test(csp) && /default-src 'none'/.test(csp), `CSP: ${csp}`);
  assert(!/unsafe-inline|unsafe-eval/.test(csp), `CSP allows inline: ${csp}`);
  assert(/frame-ancestors 'none'/.test(csp), `CSP framing: ${csp}`);
  eq(r.headers.get('x-content-type-options'), 'nosniff', '/ui/ nosniff');
  const js = await fetch(`${BASE}/ui/app.js`);
  assert(/^text\/javascript/.test(js.headers.get('content-type')), 'app.js content type');
  eq(js.headers.get('x-content-type-options'), 'nosniff', 'app.js nosniff');
  const redirect = await fetch(`${BASE}/ui`, { redirect: 'manual' });
  eq(redirect.status, 308, '/ui redirects');
  eq(redirect.headers.get('location'), '/ui/', '/ui redirect target');
  eq((await fetch(`${BASE}/ui/nope.js`)).status, 404, 'unknown asset');
  const art = await api('GET', 'private', 'jobs/seed.jar');
  eq(art.headers.get('content-security-policy'), 'sandbox', 'artifacts are sandboxed');
  eq(art.headers.get('x-content-type-options'), 'nosniff', 'artifact nosniff');
});

await tcase('anonymous_read_mount', async () => {
  await open();
  await page.waitForSelector('#mounts');
  eq(await page.locator('#principal').textContent(), 'Anonymous', 'principal');
  eq(await page.locator('#mounts tr[data-mount="public"]').count(), 1, 'public mount listed');
  eq(await page.locator('#mounts tr[data-mount="private"]').count(), 0, 'private mount hidden');
  await shot('01-anonymous-mounts');
  await page.click('#mounts a:text("public/")');
  await page.click('#listing a:text("pub/")');
  await rowByData('hello.jar').waitFor();
  eq(await rowByData('hello.jar').locator('code.sha256').getAttribute('data-sha256'),
    await serverSha('public', 'pub/hello.jar'), 'digest shown = server digest');
  assert((await page.locator('#file-input').isDisabled() && await page.locator('#upload-dir').isDisabled()), 'upload disabled when anonymous');
  assert(/Sign in/.test(await page.locator('#upload-why').textContent()), 'says why upload is disabled');
  assert(await rowByData('hello.jar').locator('button.delete').isDisabled(), 'delete disabled when anonymous');
  await shot('02-anonymous-directory');
});

await tcase('wrong_token_is_an_error', async () => {
  await open();
  await page.fill('#token', 'not-the-token');
  await page.click('#signin button[type=submit]');
  await page.locator('#error').waitFor({ state: 'visible' });
  const text = await page.locator('#error').textContent();
  assert(/Sign-in refused/.test(text) && /not valid/.test(text) && /401/.test(text), `error text: ${text}`);
  eq(await page.locator('#principal').textContent(), 'Anonymous', 'still anonymous');
  eq(await page.evaluate(() => sessionStorage.length + localStorage.length), 0, 'nothing stored');
  await shot('03-wrong-token');
});

await tcase('sign_in', async () => {
  await page.fill('#token', ADMIN);
  await page.click('#signin button[type=submit]');
  await page.locator('#principal strong').waitFor();
  eq(await page.locator('#principal strong').textContent(), 'admin', 'signed-in name');
  assert(await page.locator('#error').isHidden(), 'error cleared');
  eq(await page.evaluate(() => sessionStorage.getItem('artifact-gateway.token')), ADMIN, 'token in sessionStorage');
  eq(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
  await page.waitForSelector('#mounts tr[data-mount="private"]');
  eq(await page.locator('#mounts tr[data-mount="private"] .badge.on').count(), 3, 'read, write, delete on');
  await shot('04-signed-in-mounts');
});

await tcase('browse_into_directory', async () => {
  await page.click('#mounts a:text("private/")');
  await page.click('#listing a:text("jobs/")');
  await rowByData('seed.jar').waitFor();
  eq(await page.locator('#crumbs').textContent(), 'mounts/private/jobs', 'breadcrumbs');
  eq(await rowByData('seed.jar').locator('code.sha256').getAttribute('data-sha256'), sha(seed), 'seed digest');
  await rowByData('seed.jar').locator('td.url button').click();
  eq(await page.evaluate(() => navigator.clipboard.readText()), `${BASE}/artifacts/private/jobs/seed.jar`, 'copied URL');
  await shot('05-directory');
});

await tcase('hostile_name_is_text', async () => {
  const r = rowByData(XSS);
  await r.waitFor();
  eq(await r.locator('td.name').textContent(), XSS, 'name shown verbatim');
  eq(await page.locator('#listing img').count(), 0, 'no <img> element in the listing');
  await r.locator('td.url button').click();
  eq(await page.evaluate(() => navigator.clipboard.readText()),
    `${BASE}/artifacts/private/jobs/%3Cimg%20src=x%20onerror=alert(1)%3E.jar`, 'copied URL is percent-encoded');
  await r.locator('button:text("Details")').click();
  await page.locator('#details').waitFor();
  eq(await page.locator('#details h2').textContent(), XSS, 'details title is text');
  eq(await page.locator('#details img').count(), 0, 'no <img> in details');
  await shot('06-hostile-name');
  await page.click('#details button:text("Close")');
  await page.waitForTimeout(200);
  eq(dialogs.length, 0, `no JavaScript dialog fired (${dialogs.join('; ')})`);
});

const one = randomBytes(3 * 1024 * 1024 + 17);
const two = randomBytes(5 * 1024 * 1024 + 3);
await tcase('upload_two_files_with_progress', async () => {
  // Slow the upload down so the progress bars move visibly (loopback is too fast otherwise).
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: 4 * 1024 * 1024,
  });
  await page.evaluate(() => {
    window.__progress = {};
    new MutationObserver((records) => {
      for (const r of records) {
        const li = r.target.closest('li');
        if (!li || r.target.tagName !== 'PROGRESS' || li.className !== 'uploading') continue;
        (window.__progress[li.dataset.path] ||= []).push([r.target.value, r.target.max]);
      }
    }).observe(document.querySelector('#uploads'), { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
  await page.setInputFiles('#file-input', [
    { name: 'one.jar', mimeType: 'application/java-archive', buffer: one },
    { name: 'two.jar', mimeType: 'application/java-archive', buffer: two },
  ]);
  await page.locator('#uploads li.uploading').first().waitFor();
  await page.waitForTimeout(300);
  await shot('07-upload-in-progress');
  await page.locator('#uploads li[data-path="jobs/one.jar"].done').waitFor({ timeout: 60000 });
  await page.locator('#uploads li[data-path="jobs/two.jar"].done').waitFor({ timeout: 60000 });
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const progress = await page.evaluate(() => window.__progress);
  for (const p of ['jobs/one.jar', 'jobs/two.jar']) {
    const steps = (progress[p] || []).filter(([v, max]) => v > 0 && v < max);
    assert(steps.length >= 1, `${p}: progress bar moved through intermediate values (${JSON.stringify(progress[p])})`);
  }
  eq(await page.locator('#uploads li[data-path="jobs/one.jar"]').getAttribute('data-sha256'), sha(one), 'one.jar digest (browser)');
  eq(await page.locator('#uploads li[data-path="jobs/two.jar"]').getAttribute('data-sha256'), sha(two), 'two.jar digest (browser)');
  eq(await serverSha('private', 'jobs/one.jar'), sha(one), 'one.jar digest (server)');
  eq(await serverSha('private', 'jobs/two.jar'), sha(two), 'two.jar digest (server)');
  await rowByData('two.jar').waitFor();
  eq(await rowByData('two.jar').locator('code.sha256').getAttribute('data-sha256'), sha(two), 'listing digest');
  await shot('08-uploaded');
});

await tcase('overwrite_refused_until_confirmed', async () => {
  const newer = randomBytes(70000);
  await page.setInputFiles('#file-input', [{ name: 'one.jar', mimeType: 'application/java-archive', buffer: newer }]);
  const li = page.locator('#uploads li[data-path="jobs/one.jar"]').first();
  await page.waitForFunction(() => document.querySelector('#uploads li[data-path="jobs/one.jar"]').className === 'exists');
  assert(/already exists/.test(await li.locator('.status').textContent()), 'says it exists');
  eq(await serverSha('private', 'jobs/one.jar'), sha(one), 'not overwritten by the first attempt');
  await shot('09-overwrite-refused');
  await li.locator('button.overwrite').click();
  await page.locator('dialog.confirm').waitFor();
  assert((await page.locator('dialog.confirm').textContent()).includes('/private/jobs/one.jar'), 'confirmation names the artifact');
  await shot('10-overwrite-confirm');
  await page.click('dialog.confirm button:text("Cancel")');
  await page.waitForTimeout(300);
  eq(await serverSha('private', 'jobs/one.jar'), sha(one), 'cancel keeps the old content');
  await li.locator('button.overwrite').click();
  await page.click('dialog.confirm #confirm-ok');
  // The newest row is the first (rows are prepended); the first upload's row is already done.
  await page.waitForFunction(() => document.querySelector('#uploads li[data-path="jobs/one.jar"]').className === 'done');
  assert(/replaced/.test(await li.locator('.status').textContent()), 'says replaced');
  eq(await serverSha('private', 'jobs/one.jar'), sha(newer), 'overwritten after confirmation');
});

await tcase('details_view', async () => {
  await rowByData('two.jar').locator('button:text("Details")').click();
  const d = page.locator('#details');
  await d.waitFor();
  const head = await api('HEAD', 'private', 'jobs/two.jar');
  const u = `${BASE}/artifacts/private/jobs/two.jar`;
  eq(await d.locator('#details-sha256').textContent(), sha(two), 'details digest');
  eq(await d.locator('#details-etag').textContent(), head.headers.get('etag'), 'details ETag');
  eq(await d.locator('#details-url').textContent(), u, 'details URL');
  const text = await d.textContent();
  assert(text.includes(`${two.length} bytes`), 'size in bytes');
  assert(text.includes('application/java-archive'), 'content type');
  const snip = async (id) => d.locator(`[data-snippet="${id}"] pre`).textContent();
  assert((await snip('curl')).includes(`Authorization: Bearer $ARTIFACT_GATEWAY_TOKEN`) && (await snip('curl')).includes(u), 'curl snippet');
  assert((await snip('fetch')).includes(`--sha256 ${sha(two)}`) && (await snip('fetch')).includes(u), 'fetch snippet');
  assert((await snip('session-job')).includes(`jarURI: "${u}"`) && (await snip('session-job')).includes('kind: FlinkSessionJob'), 'FlinkSessionJob snippet');
  assert((await snip('manifest')).includes(`- source: "${u}"`) && (await snip('manifest')).includes(`sha256: ${sha(two)}`), 'manifest snippet');
  await shot('11-details');
  await page.click('#details button:text("Close")');
});

await tcase('delete_with_confirmation', async () => {
  await rowByData('two.jar').locator('button.delete').click();
  await page.locator('dialog.confirm').waitFor();
  assert((await page.locator('dialog.confirm').textContent()).includes('/private/jobs/two.jar'), 'confirmation names the artifact');
  await shot('12-delete-confirm');
  await page.click('dialog.confirm button:text("Cancel")');
  await page.waitForTimeout(300);
  eq((await api('HEAD', 'private', 'jobs/two.jar')).status, 200, 'cancel keeps it');
  await rowByData('two.jar').locator('button.delete').click();
  await page.click('dialog.confirm #confirm-ok');
  await rowByData('two.jar').waitFor({ state: 'detached' });
  eq((await api('HEAD', 'private', 'jobs/two.jar')).status, 404, 'deleted on the server');
  assert(await rowByData('one.jar').isVisible(), 'the other upload stays');
  await shot('13-deleted');
});

await tcase('pagination_and_filter', async () => {
  await open('/ui/?limit=2#/private/page/');
  await rowByData('b.jar').waitFor();
  eq(await page.locator('#listing tr.is-file').count(), 2, 'first page');
  await page.click('#more');
  await rowByData('d.jar').waitFor();
  eq(await page.locator('#listing tr.is-file').count(), 4, 'second page');
  await page.click('#more');
  await rowByData('e.jar').waitFor();
  assert(await page.locator('#more').isHidden(), 'no more pages');
  await page.fill('#filter', 'C.J');
  eq(await page.locator('#listing tr.is-file').count(), 1, 'filtered');
  eq(await page.locator('#listing tr.is-file').getAttribute('data-name'), 'c.jar', 'filter keeps c.jar');
  await shot('14-filter');
});

await tcase('reader_token_sees_writes_disabled', async () => {
  await page.click('#signout');
  await page.locator('#signin').waitFor();
  eq(await page.evaluate(() => sessionStorage.length), 0, 'sign-out clears the token');
  await page.fill('#token', READER);
  await page.click('#signin button[type=submit]');
  await page.locator('#principal strong').waitFor();
  await page.goto(`${BASE}/ui/#/private/jobs/`);
  await page.waitForSelector('body[data-ready="true"]');
  await rowByData('seed.jar').waitFor();
  eq(await page.locator('#principal strong').textContent(), 'reader', 'token survives a reload');
  assert((await page.locator('#file-input').isDisabled() && await page.locator('#upload-dir').isDisabled()), 'upload disabled for a read-only token');
  assert(/may not upload/.test(await page.locator('#upload-why').textContent()), 'says why');
  const del = rowByData('seed.jar').locator('button.delete');
  assert(await del.isDisabled(), 'delete disabled');
  assert(/may not delete/.test(await del.getAttribute('title')), 'delete says why');
  await shot('15-read-only-token');
});

await tcase('sha256_js_matches_web_crypto', async () => {
  const bad = await page.evaluate(async () => {
    const { Sha256, toHex, hashBlob } = await import('/ui/sha256.js');
    const out = [];
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, (1 << 20) + 3, (9 << 20) + 1]) {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i += 65536) crypto.getRandomValues(data.subarray(i, Math.min(n, i + 65536)));
      const want = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', data)));
      const h = new Sha256();
      for (let i = 0; i < n; i += 777) h.update(data.subarray(i, Math.min(n, i + 777)));
      if (toHex(h.digest()) !== want) out.push(`update ${n}`);
      if (toHex(await hashBlob(new Blob([data]))) !== want) out.push(`blob ${n}`);
    }
    return out;
  });
  eq(bad.join(','), '', 'lengths whose digest differs');
});

await tcase('without_javascript', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const p = await ctx.newPage();
  await p.goto(`${BASE}/ui/`);
  assert(await p.locator('noscript').count() === 1, 'noscript present');
  await p.click('a[href="../artifacts/"]');
  await p.waitForURL(`${BASE}/artifacts/`);
  await p.click('a:text("public/")');
  await p.click('a:text("pub/")');
  await p.locator('a:text("hello.jar")').waitFor();
  await p.screenshot({ path: join(SHOTS, '16-no-javascript.png'), fullPage: true });
  await ctx.close();
});

await tcase('no_console_errors_or_csp_violations', async () => {
  eq(consoleProblems.join('\n'), '', 'console errors');
  eq(dialogs.length, 0, 'JavaScript dialogs');
});

await browser.close();
const failed = results.filter(([, ok]) => !ok).length;
console.log(`ui cases: ${results.length - failed} passed, ${failed} failed (screenshots in ${SHOTS})`);
process.exit(failed ? 1 : 0);
