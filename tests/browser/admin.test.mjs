// Browser test of the admin page (issue 8): a real `portico serve` on a loopback port, driven
// through headless Debian Chromium with playwright-core. Every step saves a screenshot in
// tests/browser/artifacts/NN-step.png.
//
//   PORTICO_BIN  the portico binary (default: target/debug/portico under the repository root)
//   CHROMIUM     the Chromium executable (default: /usr/bin/chromium)
//
// Run through tests/browser/run.sh, which installs what is missing first.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const ARTIFACTS = join(HERE, 'artifacts');
const AXE = join(HERE, 'node_modules', 'axe-core', 'axe.min.js');
const BIN = resolve(ROOT, process.env.PORTICO_BIN || 'target/debug/portico');
const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';
const SLUG = 'salon-rosa';
const ORG_NAME = 'Salon Rosa';
const STEP_TIMEOUT = 60_000;

let server; // {child, url, log: string[], dataDir}
let browser;
let context;
let page;
let failed = null; // the first failed step: later steps are skipped
const pageProblems = []; // uncaught page errors and CSP refusals

// Values carried from step to step.
const s = { url: null, username: null, password: null, oldPassword: null, baseUrl: null };

// ---------------------------------------------------------------------------------------------
// The host

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts `portico serve` on a free port (listen port 0) with a fresh data directory. */
async function startServer() {
  const dataDir = await mkdtemp(join(tmpdir(), 'portico-browser-'));
  // The configuration comes only from here: drop PORTICO_* settings of the calling shell.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTICO_')));
  Object.assign(env, {
    PORTICO_SERVER__LISTEN: '127.0.0.1:0',
    PORTICO_STORE__KIND: 'embedded',
    PORTICO_STORE__DATA_DIR: dataDir,
    PORTICO_ADMIN__TOKEN: ADMIN_TOKEN,
    PORTICO_SECRETS__CREATE_KEY_FILE: 'true',
    PORTICO_LOG__FILTER: 'warn',
  });
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  let url = null;
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  child.on('error', (e) => { exited = { error: e.message }; });
  let partial = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop();
    for (const line of lines) {
      log.push(line);
      const m = /portico listening on (\S+)/.exec(line);
      if (m && !url) url = m[1].replace(/\/$/, '');
    }
  });
  // Wait for the "listening" line, then for /readyz: both bounded, 30 s in all.
  const deadline = Date.now() + 30_000;
  while (!url && !exited && Date.now() < deadline) await sleep(50);
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`portico serve did not start (${JSON.stringify(exited)}); binary ${BIN}\n${log.join('\n')}`);
  }
  let ready = false;
  while (!ready && !exited && Date.now() < deadline) {
    try {
      ready = (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch { /* not yet */ }
    if (!ready) await sleep(100);
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`portico never became ready at ${url}/readyz\n${log.join('\n')}`);
  }
  return { child, url, log, dataDir, exited: () => exited };
}

async function stopServer() {
  if (!server) return;
  const { child } = server;
  if (!server.exited()) {
    child.kill('SIGTERM'); // by PID: this process only
    for (let i = 0; i < 100 && !server.exited(); i++) await sleep(50);
    if (!server.exited()) child.kill('SIGKILL');
  }
  await writeFile(join(ARTIFACTS, 'portico.log'), server.log.join('\n') + '\n').catch(() => {});
  await rm(server.dataDir, { recursive: true, force: true }).catch(() => {});
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** One numbered step: skipped after an earlier failure, screenshot afterwards either way. */
let stepCount = 0;
let current = '00'; // the number of the step running now, for extra screenshots
function step(name, fn) {
  const n = String(++stepCount).padStart(2, '0');
  test(`${n} ${name}`, { timeout: STEP_TIMEOUT }, async (t) => {
    current = n;
    if (failed) {
      t.skip(`skipped: step "${failed}" failed`);
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      failed = `${n} ${name}`;
      await shot(`${n}-${name}-FAILED`).catch(() => {});
      throw e;
    }
    await shot(`${n}-${name}`);
  });
}

async function shot(name, p = page) {
  if (p) await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

function basic(user, password) {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** PROPFIND Depth 0 on the CardDAV URL; the status code. */
async function propfind(url, user, password) {
  const res = await fetch(url, {
    method: 'PROPFIND',
    headers: {
      Depth: '0',
      Authorization: basic(user, password),
      'Content-Type': 'application/xml; charset=utf-8',
    },
    body: '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>',
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Waits until the element's text contains `text`. */
async function waitForText(selector, text, p = page) {
  await p.waitForFunction(([sel, want]) => {
    const node = document.querySelector(sel);
    return node && node.textContent.includes(want);
  }, [selector, text]);
}

async function waitForValueChange(selector, old) {
  await page.waitForFunction(([sel, before]) => {
    const node = document.querySelector(sel);
    return node && node.value && node.value !== before;
  }, [selector, old]);
}

/** The value following <key>name</key> in a plist: a <string>, <integer>, <true/> or <false/>. */
function plistValue(xml, key) {
  const re = new RegExp(`<key>${key}</key>\\s*(?:<string>([^<]*)</string>|<integer>([^<]*)</integer>|<(true|false)\\s*/>)`);
  const m = re.exec(xml);
  if (!m) return undefined;
  if (m[1] !== undefined) return m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  if (m[2] !== undefined) return Number(m[2]);
  return m[3] === 'true';
}

/** Clicks `trigger`, then the OK button of the confirmation dialog; returns the dialog text. */
async function confirmVia(trigger) {
  await page.click(trigger);
  await page.waitForSelector('#confirm-dialog[open]');
  const text = await page.textContent('#confirm-dialog');
  await shot(`${current}-dialog`);
  await page.click('#confirm-ok');
  await page.waitForSelector('#confirm-dialog', { state: 'hidden' });
  return text;
}

async function download(trigger) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(trigger)]);
  const path = await dl.path();
  return { name: dl.suggestedFilename(), text: await readFile(path, 'utf8') };
}

let axeSource = null;

/** axe-core on the page as it is; fails on serious or critical violations. */
async function axeCheck(label, p = page) {
  // addScriptTag would insert an inline <script>, which the page's CSP (script-src 'self')
  // refuses; evaluating the source through the DevTools protocol is not subject to the CSP.
  if (!(await p.evaluate(() => typeof window.axe === 'object'))) {
    axeSource ??= await readFile(AXE, 'utf8');
    await p.evaluate(axeSource);
  }
  const result = await p.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    }));
  });
  await writeFile(join(ARTIFACTS, `axe-${label}.json`), JSON.stringify(result, null, 2));
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `axe found serious/critical problems on "${label}":\n${JSON.stringify(bad, null, 2)}`);
}

function watchPage(p) {
  p.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  p.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) {
      pageProblems.push(`CSP: ${m.text()}`);
    }
  });
  // The page uses a <dialog>; a native confirm() would be accepted too.
  p.on('dialog', (d) => d.accept());
}

async function newContext(options = {}) {
  const ctx = await browser.newContext({ acceptDownloads: true, ...options });
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  ctx.setDefaultTimeout(15_000);
  return ctx;
}

async function signIn(p, token) {
  await p.goto(`${server.url}/admin/`);
  await p.waitForSelector('#signin-form', { state: 'visible' });
  await p.fill('#token', token);
  await p.click('#signin-submit');
  await p.waitForSelector('#app', { state: 'visible' });
}

// ---------------------------------------------------------------------------------------------
// Setup and teardown

before(async () => {
  await rm(ARTIFACTS, { recursive: true, force: true });
  await mkdir(ARTIFACTS, { recursive: true });
  server = await startServer();
  s.baseUrl = server.url;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  context = await newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  watchPage(page);
}, { timeout: 90_000 });

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopServer();
  const files = await readdir(ARTIFACTS).catch(() => []);
  console.log(`artifacts: ${ARTIFACTS} (${files.length} files)`);
}, { timeout: 30_000 });

// ---------------------------------------------------------------------------------------------
// The steps

step('signin', async () => {
  const res = await page.goto(`${server.url}/admin/`);
  assert.equal(res.status(), 200);
  await page.waitForSelector('#signin-form', { state: 'visible' });
  assert.equal(await page.getAttribute('#token', 'type'), 'password');
  assert.ok(!(await page.content()).includes(ADMIN_TOKEN), 'the token is not in the page');
  await axeCheck('signin');
  await shot(`${current}-signin-form`);

  // A wrong token is refused with a message, and the form stays.
  await page.fill('#token', 'not-the-token');
  await page.click('#signin-submit');
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.trim() !== '');
  assert.ok(await page.isVisible('#signin-form'));

  // Keyboard only: the token field has the focus after a failed attempt; Enter submits.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
  await page.fill('#token', '');
  await page.keyboard.type(ADMIN_TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#app', { state: 'visible' });
  await waitForText('#session-who', 'administrator');
  assert.equal(await page.inputValue('#token'), '', 'the token is cleared from the form');
  assert.ok(!page.url().includes(ADMIN_TOKEN), 'the token is not in the URL');
});

step('create-org', async () => {
  // Live slug validation: an invalid slug gets a message next to the field.
  await page.fill('#org-slug', 'Bad Slug');
  await page.waitForSelector('#org-slug-msg[data-state="bad"]');
  const badMsg = (await page.textContent('#org-slug-msg')).trim();
  assert.ok(badMsg.length > 0, 'a message explains the invalid slug');
  await shot(`${current}-slug-invalid`);

  await page.fill('#org-slug', SLUG);
  await page.waitForSelector('#org-slug-msg[data-state="ok"]');
  await page.fill('#org-name', ORG_NAME);
  await page.click('#org-create');
  await waitForText('#org-title', ORG_NAME);
  await page.waitForSelector(`[data-testid="org-${SLUG}"][aria-current="true"]`);

  // The same slug again is now refused live.
  await page.fill('#org-slug', SLUG);
  await page.waitForSelector('#org-slug-msg[data-state="bad"]');
  await page.fill('#org-slug', '');
});

step('install-carddav', async () => {
  await page.waitForSelector('[data-testid="app-carddav"]');
  const desc = await page.textContent('[data-testid="app-carddav"]');
  assert.match(desc, /CardDAV/i, 'the manifest name is shown');
  await page.click('[data-testid="install-carddav"]');
  // The manifest's one setting: a read-only book, off by default (it can be changed later).
  await page.waitForSelector('#config-dialog[open]');
  assert.equal(await page.isChecked('#config-read_only'), false, 'writable by default');
  await page.click('[data-testid="config-ok"]');
  await page.waitForSelector('#carddav', { state: 'visible' });
  await page.waitForFunction(() => document.querySelector('#dav-password').value.length > 0);
  await page.waitForSelector('[data-testid="uninstall-carddav"]');
  s.url = await page.inputValue('#dav-url');
  s.username = await page.inputValue('#dav-username');
  s.password = await page.inputValue('#dav-password');
  assert.ok(s.url.startsWith(server.url), `the URL ${s.url} is on this server`);
  assert.equal(s.username, SLUG);
  assert.equal(await page.getAttribute('#dav-password', 'type'), 'password', 'the password is masked');
  assert.equal(await page.getAttribute('#dav-password', 'readonly'), '');
  await waitForText('#dav-contacts', '0 contacts');
  const howto = await page.textContent('[data-testid="howto"]');
  for (const client of ['iPhone', 'Mac', 'DAVx5', 'Thunderbird']) {
    assert.ok(howto.includes(client), `instructions for ${client}`);
  }
  await axeCheck('carddav-panel');

  // An app that describes its settings (hello: a greeting) gets a form built from its
  // manifest; the app's own validation answer shows in the dialog, which stays open.
  await page.click('[data-testid="install-hello"]');
  await page.waitForSelector('#config-dialog[open]');
  assert.equal(await page.inputValue('#config-greeting'), 'Hello', 'the default is filled in');
  assert.equal(await page.getAttribute('#config-greeting', 'maxlength'), '200');
  await page.fill('#config-greeting', '   ');
  await page.click('[data-testid="config-ok"]');
  await waitForText('#config-error', 'visible character');
  await shot('03-config-refused');
  await page.fill('#config-greeting', 'Hej');
  await page.click('[data-testid="config-ok"]');
  await page.waitForSelector('#config-dialog', { state: 'hidden' });
  await page.waitForSelector('[data-testid="uninstall-hello"]');
  assert.notEqual((await page.textContent('[data-testid="app-status-hello"]')).trim(), 'Not installed');
  const text = await confirmVia('[data-testid="uninstall-hello"]');
  assert.match(text, /stops working/);
  await page.waitForSelector('[data-testid="install-hello"]');
});

step('copy-password', async (t) => {
  await page.click('#copy-password');
  await waitForText('#copy-password', 'Copied');
  await waitForText('#announcer', 'copied');
  let copied = null;
  try {
    copied = await page.evaluate(() => navigator.clipboard.readText());
  } catch (e) {
    console.log(`clipboard not readable (${e.message}); comparing the revealed field instead`);
  }
  // Show reveals the password; Hide masks it again.
  await page.click('#toggle-password');
  assert.equal(await page.getAttribute('#dav-password', 'type'), 'text');
  assert.equal(await page.getAttribute('#toggle-password', 'aria-pressed'), 'true');
  const shown = await page.inputValue('#dav-password');
  await shot(`${current}-password-shown`);
  await page.click('#toggle-password');
  assert.equal(await page.getAttribute('#dav-password', 'type'), 'password');
  t.diagnostic(copied === null ? 'compared the revealed field (clipboard unreadable)' : 'read the clipboard back');
  assert.equal(copied ?? shown, s.password);
  assert.equal(shown, s.password);
  // The button goes back to "Copy".
  await waitForText('#copy-password', 'Copy');
});

step('propfind', async () => {
  assert.equal(await propfind(s.url, s.username, s.password), 207);
  assert.equal(await propfind(s.url, s.username, 'wrong-password-123'), 401);
});

step('regenerate', async () => {
  s.oldPassword = s.password;
  const text = await confirmVia('#regenerate');
  assert.match(text, /new password/i, 'the dialog says phones will ask for the new password');
  await waitForValueChange('#dav-password', s.oldPassword);
  s.password = await page.inputValue('#dav-password');
  assert.notEqual(s.password, s.oldPassword);
  assert.equal(await propfind(s.url, s.username, s.oldPassword), 401, 'the old password is refused');
  assert.equal(await propfind(s.url, s.username, s.password), 207, 'the new password works');
});

step('devices', async () => {
  // Add a labelled device password: shown once, it works beside the install password.
  await page.fill('#device-label', 'Front desk iPad');
  await page.click('#device-create');
  await page.waitForSelector('#device-new:not([hidden])');
  await waitForText('#device-new-label', 'Front desk iPad');
  const devicePassword = await page.inputValue('#device-new-password');
  assert.ok(devicePassword.length >= 22, 'a long random password');
  await page.waitForSelector('[data-testid="device-row"]:nth-child(2)');
  assert.equal(await page.locator('[data-testid="device-row"]').count(), 2, 'install password + the device');
  assert.equal(await propfind(s.url, s.username, devicePassword), 207, 'the device password works');
  assert.equal(await propfind(s.url, s.username, s.password), 207, 'the install password still works');
  assert.ok(!(await page.textContent('#device-table')).includes(devicePassword), 'the table never shows it');
  // Revoke it, with confirmation: it stops, the install password keeps working.
  const text = await confirmVia('[data-testid="device-row"]:nth-child(2) button');
  assert.match(text, /other devices keep working/i);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="device-row"]').length === 1);
  assert.equal(await propfind(s.url, s.username, devicePassword), 401, 'the revoked password is refused');
  assert.equal(await propfind(s.url, s.username, s.password), 207);
});

step('profile', async () => {
  const port = Number(new URL(server.url).port);
  const path = new URL(s.url).pathname;
  const check = (text) => {
    assert.match(text, /^<\?xml/);
    assert.match(text, /<plist[\s>]/);
    assert.ok(text.includes('com.apple.carddav.account'), 'the CardDAV payload type');
    assert.equal(plistValue(text, 'CardDAVHostName'), '127.0.0.1');
    assert.equal(plistValue(text, 'CardDAVUsername'), SLUG);
    assert.equal(plistValue(text, 'CardDAVUseSSL'), false, 'plain HTTP here');
    const principal = plistValue(text, 'CardDAVPrincipalURL');
    assert.ok(principal !== undefined, 'CardDAVPrincipalURL is present');
    assert.ok(principal.includes(path) || path.includes(principal) || principal.startsWith('/'),
      `principal ${principal} relates to ${path}`);
    const p = plistValue(text, 'CardDAVPort');
    if (p !== undefined) assert.equal(Number(p), port);
  };

  await page.setChecked('#include-password', false);
  const without = await download('#download-profile');
  assert.equal(without.name, `${SLUG}-contacts.mobileconfig`);
  check(without.text);
  assert.ok(!without.text.includes('CardDAVPassword'), 'no password key when the box is unticked');
  assert.ok(!without.text.includes(s.password), 'no password when the box is unticked');
  await writeFile(join(ARTIFACTS, 'without-password.mobileconfig'), without.text);

  await page.setChecked('#include-password', true);
  const withPw = await download('#download-profile');
  check(withPw.text);
  assert.equal(plistValue(withPw.text, 'CardDAVPassword'), s.password, 'the password when the box is ticked');
  await page.setChecked('#include-password', false);
});

step('qr', async () => {
  await page.click('#show-qr');
  await page.waitForSelector('#qr-area', { state: 'visible' });
  const src = await page.getAttribute('#profile-qr', 'src');
  assert.ok(src.startsWith('data:image/svg+xml'), 'the QR code is an image data URL');
  await page.waitForFunction(() => {
    const img = document.querySelector('#profile-qr');
    return img.complete && img.naturalWidth > 0;
  });
  // The DAVx5 QR code is served by the host.
  await page.waitForFunction(() => {
    const img = document.querySelector('#davx5-qr');
    return img.complete && img.naturalWidth > 0;
  });
  const link = await page.getAttribute('#profile-link', 'href');
  assert.ok(link.includes('/setup/'), `the one-time link ${link}`);
  assert.ok((await page.textContent('#profile-expiry')).trim().length > 0, 'the expiry is shown');

  const first = await fetch(link, { signal: AbortSignal.timeout(10_000) });
  assert.equal(first.status, 200);
  const body = await first.text();
  assert.ok(body.includes('com.apple.carddav.account'));
  assert.ok(!body.includes(s.password), 'no password: the box was unticked');
  const second = await fetch(link, { signal: AbortSignal.timeout(10_000) });
  await second.arrayBuffer();
  assert.equal(second.status, 404, 'the link works once');
});

const BAD_CSV = 'name,email,phone\nAnna Bell,anna@example.com,+1 555 0100\n,nobody@example.com,\nCarl Dunn,carl@example.com,\n';
const GOOD_CSV = 'name,given_name,family_name,email,phone,tags\n'
  + 'Anna Bell,Anna,Bell,anna@example.com,+1 555 0100,vip\n'
  + 'Carl Dunn,Carl,Dunn,carl@example.com,+1 555 0101,\n'
  + 'Erin Fox,Erin,Fox,erin@example.com,,regular;weekly\n';

step('import-bad', async () => {
  await page.setInputFiles('#import-file', { name: 'customers-bad.csv', mimeType: 'text/csv', buffer: Buffer.from(BAD_CSV) });
  await page.click('#import-submit');
  await waitForText('#import-summary', 'Nothing was imported');
  const errors = await page.$$eval('[data-testid="import-error"]', (els) => els.map((e) => e.textContent));
  assert.equal(errors.length, 1, `one row error: ${JSON.stringify(errors)}`);
  assert.match(errors[0], /Line 3/, 'the bad row is the third line (the header is line 1)');
  await page.click('#customer-search-submit');
  await sleep(500);
  assert.equal(await page.locator('[data-testid="customer-row"]').count(), 0, 'nothing was imported');
  await axeCheck('import-errors');
});

step('import-good', async () => {
  await page.setInputFiles('#import-file', { name: 'customers.csv', mimeType: 'text/csv', buffer: Buffer.from(GOOD_CSV) });
  await page.click('#import-submit');
  await waitForText('#import-summary', '3 new');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="customer-row"]').length === 3);
  await waitForText('#dav-contacts', '3 contacts');
  await shot(`${current}-imported`);

  await page.fill('#customer-q', 'carl');
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('[data-testid="customer-row"]');
    return rows.length === 1 && rows[0].textContent.includes('Carl Dunn');
  });
  await page.fill('#customer-q', '');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="customer-row"]').length === 3);
});

step('export', async () => {
  const vcf = await download('#export-vcf');
  assert.match(vcf.name, /\.vcf$/);
  assert.equal((vcf.text.match(/BEGIN:VCARD/g) || []).length, 3);
  assert.ok(vcf.text.includes('Erin Fox'));
  await writeFile(join(ARTIFACTS, 'export.vcf'), vcf.text);
});

step('paging', async () => {
  let csv = 'name,email\n';
  for (let i = 1; i <= 30; i++) csv += `Walk-in ${String(i).padStart(2, '0')},walkin${i}@example.com\n`;
  await page.setInputFiles('#import-file', { name: 'walk-ins.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.click('#import-submit');
  await waitForText('#import-summary', '30 new');
  const rows = () => page.locator('[data-testid="customer-row"]').count();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="customer-row"]').length === 25);
  assert.ok(await page.isEnabled('#customers-next'));
  assert.ok(await page.isDisabled('#customers-prev'));
  const firstPage = await page.textContent('#customer-rows');
  await page.click('#customers-next');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="customer-row"]').length === 8);
  assert.ok(await page.isDisabled('#customers-next'));
  const secondPage = await page.textContent('#customer-rows');
  await shot(`${current}-page-2`);
  await page.click('#customers-prev');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="customer-row"]').length === 25);
  assert.equal(await page.textContent('#customer-rows'), firstPage);
  assert.equal(await rows(), 25);
  // The two pages do not overlap.
  for (const name of ['Anna Bell', 'Carl Dunn', 'Erin Fox']) {
    assert.ok(firstPage.includes(name) !== secondPage.includes(name), `${name} is on exactly one page`);
  }
  await waitForText('#dav-contacts', '33 contacts');
});

step('tokens', async () => {
  await page.waitForSelector('#tokens', { state: 'visible' });
  await page.fill('#token-label', 'Front desk');
  await page.click('#token-create');
  await page.waitForSelector('#token-new', { state: 'visible' });
  const token = await page.inputValue('#token-new-value');
  assert.match(token, /^pto_/);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-row"]').length === 1);
  await shot(`${current}-token-created`);

  // The organization token signs in to this organization only: no org creation, no tokens.
  const ctx = await newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await ctx.newPage();
    watchPage(p);
    await signIn(p, token);
    await waitForText('#org-title', ORG_NAME, p);
    assert.ok(await p.isHidden('#org-create-form'));
    assert.ok(await p.isHidden('#tokens'));
    assert.equal(await p.locator('.org-button').count(), 1);
    await shot(`${current}-org-scoped-session`, p);
  } finally {
    await ctx.close();
  }

  await confirmVia('[data-testid="token-row"] button');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="token-row"]').length === 0);
});

step('phone', async () => {
  const ctx = await newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  try {
    const p = await ctx.newPage();
    watchPage(p);
    await signIn(p, ADMIN_TOKEN);
    await p.click(`[data-testid="org-${SLUG}"]`);
    await p.waitForFunction(() => document.querySelector('#dav-password').value.length > 0);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await p.locator('#carddav').screenshot({ path: join(ARTIFACTS, `${current}-phone-carddav.png`) });
    await axeCheck('phone', p);
    await shot(`${current}-phone-page`, p);
  } finally {
    await ctx.close();
  }
});

step('uninstall', async () => {
  // Escape cancels the confirmation: nothing is uninstalled.
  await page.click('[data-testid="uninstall-carddav"]');
  await page.waitForSelector('#confirm-dialog[open]');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#confirm-dialog', { state: 'hidden' });
  assert.equal(await propfind(s.url, s.username, s.password), 207, 'still installed after Cancel');

  const text = await confirmVia('[data-testid="uninstall-carddav"]');
  assert.match(text, /stop syncing/i, 'the dialog names what stops working');
  await page.waitForSelector('[data-testid="install-carddav"]');
  await page.waitForSelector('#carddav', { state: 'hidden' });
  assert.equal(await propfind(s.url, s.username, s.password), 404, 'the installation URL is gone');
});

step('logout', async () => {
  // Without the CSRF header, a state-changing request is refused even with the cookie.
  const noCsrf = await page.evaluate(async () => (await fetch('/admin/api/orgs', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ slug: 'csrf-probe', name: 'CSRF probe' }),
  })).status);
  assert.equal(noCsrf, 403);
  await page.click('#logout');
  await page.waitForSelector('#signin-form', { state: 'visible' });
  const status = await page.evaluate(async () => (await fetch('/admin/session')).status);
  assert.equal(status, 401, 'the session is over');
  await page.reload();
  await page.waitForSelector('#signin-form', { state: 'visible' });
});

step('no-page-errors', async () => {
  assert.deepEqual(pageProblems, [], 'no script errors or CSP refusals in the page');
});
