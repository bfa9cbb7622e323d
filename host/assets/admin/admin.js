// Portico admin page.
//
// A plain ES module with no dependencies and no build step. It talks to the host over the
// same-origin JSON API under /admin: a cookie session (HttpOnly, so this script never sees it)
// plus a CSRF token that is kept in a variable only and sent as X-CSRF-Token on every
// request that is not a GET. Everything shown to the user is inserted with textContent or
// DOM nodes, never with innerHTML, so data from the API cannot inject markup.

const $ = (id) => document.getElementById(id);

/** Customers shown per page. */
const PAGE_SIZE = 25;
/** How long a Copy button says "Copied". */
const COPIED_MS = 1600;

// ---------------------------------------------------------------------------------------------
// State

let csrf = null; // from POST/GET /admin/session; memory only
let session = null; // {scope, org}
let apps = []; // registered kinds (GET /admin/api/apps)
let orgs = [];
let currentOrg = null; // {id, slug, name}
let installations = [];
let carddav = null; // the carddav installation of the current org, if any
const customerPaging = { q: '', after: null, previous: [], next: null };

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Builds an element; attributes set with setAttribute, children appended as nodes or text. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Announces a short message to screen readers (visually hidden region). */
function announce(message) {
  const region = $('announcer');
  region.textContent = '';
  // A separate tick so the same message twice in a row is announced twice.
  setTimeout(() => { region.textContent = message; }, 30);
}

/** A visible, polite status message at the top of the page. */
function notify(message) {
  $('error').textContent = '';
  $('notice').textContent = message;
}

/** A visible error, announced at once. */
function showError(message) {
  $('error').textContent = message;
}

function clearMessages() {
  $('notice').textContent = '';
  $('error').textContent = '';
}

/** Runs `work` with `button` disabled, reporting a thrown error on the page. */
async function busy(button, work) {
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) showError(messageOf(e));
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

function messageOf(e) {
  return e instanceof ApiError ? e.message : `Something went wrong: ${e && e.message ? e.message : e}`;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function formatDate(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

/** "needs_attention" → "Needs attention". */
function humanStatus(status) {
  if (!status) return 'Unknown';
  const s = String(status).replace(/[_-]+/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Base64 of a string's UTF-8 bytes (for data: URLs of SVG text). */
function base64Utf8(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// ---------------------------------------------------------------------------------------------
// API

class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/**
 * One request to the host. `json` is sent as a JSON body, `body` as is. Returns the parsed JSON
 * (null for 204), or the Response itself with `raw: true`. Throws ApiError on any non-2xx.
 */
async function api(method, path, { json, body, headers = {}, raw = false } = {}) {
  const h = { ...headers };
  if (method !== 'GET' && method !== 'HEAD' && csrf) h['X-CSRF-Token'] = csrf;
  let payload = body;
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(json);
  }
  let res;
  try {
    res = await fetch(path, { method, headers: h, body: payload, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  if (res.ok && raw) return res;
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(res.status, err.code || `http_${res.status}`,
      err.message || `The request failed (HTTP ${res.status}).`, data);
    e.retryAfter = res.headers.get('Retry-After');
    if (res.status === 401 && session && !path.startsWith('/admin/session')) sessionLost();
    throw e;
  }
  return data;
}

const orgPath = () => `/admin/api/orgs/${encodeURIComponent(currentOrg.id)}`;
const instPath = (inst) => `${orgPath()}/installations/${encodeURIComponent(inst.id)}`;
const actionPath = (inst, name) => `${instPath(inst)}/actions/${encodeURIComponent(name)}`;

// ---------------------------------------------------------------------------------------------
// Session

async function start() {
  wireEvents();
  try {
    const s = await api('GET', '/admin/session');
    await enterApp(s);
  } catch {
    showSignIn();
  }
}

function showSignIn(message = '') {
  session = null;
  csrf = null;
  currentOrg = null;
  carddav = null;
  $('org-detail').hidden = true;
  $('app').hidden = true;
  $('session-bar').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

function sessionLost() {
  showSignIn('Your session ended. Sign in again.');
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token');
  const token = input.value.trim();
  $('signin-error').textContent = '';
  if (!token) {
    $('signin-error').textContent = 'Enter a token.';
    input.focus();
    return;
  }
  const button = $('signin-submit');
  button.disabled = true;
  try {
    const s = await api('POST', '/admin/session', { json: { token } });
    input.value = ''; // do not keep the token in the page
    clearMessages();
    await enterApp(s);
  } catch (e) {
    let msg = messageOf(e);
    if (e.status === 401) msg = 'That token was not accepted. Check it and try again.';
    if (e.status === 429) {
      msg = e.retryAfter
        ? `Too many attempts. Try again in ${e.retryAfter} seconds.`
        : 'Too many attempts. Wait a moment and try again.';
    }
    $('signin-error').textContent = msg;
    input.focus();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  try {
    await api('DELETE', '/admin/session');
  } catch (e) {
    // Whatever happened, forget the session on this side.
    if (e.status !== 401) showError(messageOf(e));
  }
  history.replaceState(null, '', location.pathname);
  clearMessages();
  showSignIn();
  notify('Signed out.');
}

async function enterApp(s) {
  session = { scope: s.scope, org: s.org };
  csrf = s.csrf;
  $('signin').hidden = true;
  $('app').hidden = false;
  $('session-bar').hidden = false;
  $('session-who').textContent = s.scope === 'admin' ? 'Signed in as administrator' : 'Signed in for one organization';
  $('org-create-form').hidden = s.scope !== 'admin';
  apps = await api('GET', '/admin/api/apps');
  await loadOrgs();
  // Reopen the organization named in the address (#org=...), or the only one there is.
  const wanted = new URLSearchParams(location.hash.slice(1)).get('org') || (s.scope === 'org' ? s.org : null);
  const org = orgs.find((o) => o.id === wanted) || (orgs.length === 1 && s.scope === 'org' ? orgs[0] : null);
  if (org) await openOrg(org, false);
  $('page-title').focus();
}

// ---------------------------------------------------------------------------------------------
// Organizations

async function loadOrgs() {
  orgs = await api('GET', '/admin/api/orgs');
  const list = $('org-list');
  list.replaceChildren();
  for (const org of orgs) {
    const button = el('button', {
      type: 'button', class: 'org-button', 'data-testid': `org-${org.slug}`,
      'aria-current': currentOrg && currentOrg.id === org.id ? 'true' : null,
    }, el('span', { class: 'org-name', text: org.name || org.slug }), el('span', { class: 'muted mono', text: org.slug }));
    button.addEventListener('click', () => openOrg(org, true));
    list.append(el('li', {}, button));
  }
  $('org-empty').hidden = orgs.length > 0;
  $('org-none').hidden = Boolean(currentOrg);
  $('org-none-text').textContent = orgs.length
    ? 'Choose an organization to install apps, connect phones and manage its customers.'
    : 'Create an organization to get started.';
}

let slugCheckSeq = 0;
const checkSlug = debounce(async () => {
  const slug = $('org-slug').value;
  const msg = $('org-slug-msg');
  const seq = ++slugCheckSeq;
  if (!slug) {
    msg.textContent = '';
    msg.dataset.state = '';
    $('org-slug').removeAttribute('aria-invalid');
    return;
  }
  try {
    const r = await api('GET', `/admin/api/orgs/check-slug?slug=${encodeURIComponent(slug)}`);
    if (seq !== slugCheckSeq) return; // an answer to an older keystroke
    msg.textContent = r.message || (r.ok ? 'Available.' : 'Not allowed.');
    msg.dataset.state = r.ok ? 'ok' : 'bad';
    $('org-slug').setAttribute('aria-invalid', r.ok ? 'false' : 'true');
  } catch (e) {
    if (seq === slugCheckSeq) {
      msg.textContent = messageOf(e);
      msg.dataset.state = 'bad';
    }
  }
}, 250);

async function createOrg(event) {
  event.preventDefault();
  const slug = $('org-slug').value.trim();
  const name = $('org-name').value.trim();
  if (!slug) { $('org-slug').focus(); $('org-slug-msg').textContent = 'Choose a short name.'; return; }
  if (!name) { $('org-name').focus(); showError('Give the organization a display name.'); return; }
  await busy($('org-create'), async () => {
    try {
      const org = await api('POST', '/admin/api/orgs', { json: { slug, name } });
      $('org-create-form').reset();
      $('org-slug-msg').textContent = '';
      $('org-slug-msg').dataset.state = '';
      $('org-slug').removeAttribute('aria-invalid');
      await loadOrgs();
      notify(`Organization “${org.name || org.slug}” created.`);
      await openOrg(orgs.find((o) => o.id === org.id) || org, true);
    } catch (e) {
      if (e.status === 409 || e.status === 422) {
        $('org-slug-msg').textContent = e.message;
        $('org-slug-msg').dataset.state = 'bad';
        $('org-slug').focus();
      } else {
        throw e;
      }
    }
  });
}

async function openOrg(org, focus) {
  currentOrg = org;
  history.replaceState(null, '', `#org=${encodeURIComponent(org.id)}`);
  for (const b of document.querySelectorAll('.org-button')) {
    if (b.dataset.testid === `org-${org.slug}`) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
  $('org-detail').hidden = false;
  $('org-none').hidden = true;
  $('org-title').textContent = org.name || org.slug;
  $('org-subtitle').textContent = `Short name: ${org.slug}`;
  $('export-vcf').href = `${orgPath()}/customers/export.vcf`;
  $('export-vcf').setAttribute('download', `${org.slug}.vcf`);
  resetImport();
  $('token-new').hidden = true;
  $('token-new-value').value = '';
  $('tokens').hidden = !session || session.scope !== 'admin';
  customerPaging.q = '';
  $('customer-q').value = '';
  await Promise.all([
    loadInstallations(),
    firstCustomerPage(),
    session.scope === 'admin' ? loadTokens() : null,
  ].map((p) => Promise.resolve(p).catch((e) => showError(messageOf(e)))));
  if (focus) $('org-title').focus();
}

// ---------------------------------------------------------------------------------------------
// Apps and installations

/** What stops working when an app is uninstalled, in the owner's words. */
function uninstallConsequence(app) {
  if (app.kind === 'carddav') {
    return 'Phones and computers syncing this address book will stop syncing, and the URL and password stop working. '
      + 'The customers themselves are kept.';
  }
  return `Everything connected to “${app.name}” for this organization stops working, and its settings are removed.`;
}

async function loadInstallations() {
  installations = await api('GET', `${orgPath()}/installations`);
  renderApps();
  const next = installations.find((i) => i.kind === 'carddav') || null;
  const changed = !carddav || !next || carddav.id !== next.id;
  carddav = next;
  if (!carddav) {
    $('carddav').hidden = true;
  } else if (changed || $('carddav').hidden) {
    await loadCarddav();
  }
}

function renderApps() {
  const list = $('app-list');
  list.replaceChildren();
  for (const app of apps) {
    const inst = installations.find((i) => i.kind === app.kind);
    const status = inst
      ? el('p', { class: `status status-${inst.status || 'unknown'}`, 'data-testid': `app-status-${app.kind}` },
        el('span', { class: 'badge', text: humanStatus(inst.status) }),
        inst.status_text ? ` ${inst.status_text}` : null)
      : el('p', { class: 'status status-none', 'data-testid': `app-status-${app.kind}` },
        el('span', { class: 'badge', text: 'Not installed' }));
    const button = inst
      ? el('button', { type: 'button', class: 'danger', 'data-testid': `uninstall-${app.kind}`, 'aria-label': `Uninstall ${app.name}` }, 'Uninstall…')
      : el('button', { type: 'button', 'data-testid': `install-${app.kind}`, 'aria-label': `Install ${app.name}` }, 'Install');
    button.addEventListener('click', () => (inst ? uninstall(app, inst, button) : install(app, button)));
    list.append(el('li', { class: 'card app', 'data-testid': `app-${app.kind}` },
      el('h4', { text: app.name }),
      el('p', { class: 'muted', text: app.description }),
      status,
      el('div', { class: 'actions' }, button)));
  }
}

async function install(app, button) {
  if (app.config && app.config.length) {
    // The app describes its settings: ask for them first (the host checks them again).
    const installed = await configDialog(app);
    if (installed) {
      await loadInstallations();
      notify(`${app.name} installed.`);
    }
    return;
  }
  await busy(button, async () => {
    clearMessages();
    await api('POST', `${orgPath()}/installations`, { json: { kind: app.kind } });
    await loadInstallations();
    notify(`${app.name} installed.`);
    if (app.kind === 'carddav') $('carddav-title').focus();
  });
}

/** One form control for a manifest setting (`ConfigField`), labelled, with its help text. */
function configControl(field) {
  const id = `config-${field.name}`;
  const kind = field.kind || {};
  const dflt = field.default;
  let input;
  if (kind.type === 'boolean') {
    input = el('input', { type: 'checkbox', id, name: field.name });
    input.checked = dflt === true;
  } else if (kind.type === 'choice') {
    input = el('select', { id, name: field.name },
      ...(kind.options || []).map((o) => el('option', { value: o, text: o })));
    if (typeof dflt === 'string') input.value = dflt;
  } else if (kind.type === 'integer') {
    input = el('input', { type: 'number', id, name: field.name, step: '1', min: String(kind.min), max: String(kind.max) });
    if (typeof dflt === 'number') input.value = String(dflt);
  } else {
    input = el('input', { type: 'text', id, name: field.name, maxlength: String(kind.max_len || 1000) });
    if (typeof dflt === 'string') input.value = dflt;
  }
  if (field.required) input.required = true;
  const helpId = `${id}-help`;
  if (field.help) input.setAttribute('aria-describedby', helpId);
  return el('div', { class: 'field' },
    el('label', { for: id, text: field.label + (field.required ? ' (required)' : '') }),
    input,
    field.help ? el('p', { class: 'hint', id: helpId, text: field.help }) : null);
}

/** The config object from the dialog's controls (empty text and numbers are left out). */
function configValues(app) {
  const config = {};
  for (const field of app.config) {
    const input = $(`config-${field.name}`);
    const type = (field.kind || {}).type;
    if (type === 'boolean') config[field.name] = input.checked;
    else if (type === 'integer') {
      if (input.value !== '') config[field.name] = Number(input.value);
    } else if (input.value !== '') config[field.name] = input.value;
  }
  return config;
}

/**
 * Shows the app's settings form and installs with what the owner enters. The host's answer to
 * bad input (422, with the app's own message from its validate hook) is shown in the dialog,
 * which stays open. Resolves true once installed, false when cancelled.
 */
function configDialog(app) {
  const dialog = $('config-dialog');
  $('config-title').textContent = `Install ${app.name}`;
  $('config-error').textContent = '';
  $('config-fields').replaceChildren(...app.config.map(configControl));
  return new Promise((resolve) => {
    const form = $('config-form');
    const cancel = $('config-cancel');
    let done = false;
    const finish = (ok) => {
      if (done) return;
      done = true;
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.close();
      resolve(ok);
    };
    const onCancel = () => finish(false);
    const onSubmit = async (e) => {
      e.preventDefault();
      $('config-error').textContent = '';
      $('config-ok').disabled = true;
      try {
        await api('POST', `${orgPath()}/installations`, { json: { kind: app.kind, config: configValues(app) } });
        finish(true);
      } catch (err) {
        $('config-error').textContent = messageOf(err);
      } finally {
        $('config-ok').disabled = false;
      }
    };
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', () => finish(false), { once: true });
    dialog.showModal();
    const first = $('config-fields').querySelector('input, select');
    if (first) first.focus();
  });
}

async function uninstall(app, inst, button) {
  const ok = await confirmDialog({
    title: `Uninstall ${app.name}?`,
    message: uninstallConsequence(app),
    confirm: 'Uninstall',
  });
  if (!ok) return;
  await busy(button, async () => {
    clearMessages();
    await api('DELETE', instPath(inst));
    await loadInstallations();
    notify(`${app.name} uninstalled.`);
    $('apps-title').scrollIntoView({ block: 'nearest' });
  });
}

// ---------------------------------------------------------------------------------------------
// CardDAV panel

async function loadCarddav() {
  const panel = $('carddav');
  panel.hidden = false;
  setPasswordVisible(false);
  $('qr-area').hidden = true;
  $('profile-qr').removeAttribute('src');
  const [detail, creds] = await Promise.all([
    api('GET', instPath(carddav)),
    api('POST', actionPath(carddav, 'credentials'), { json: {} }),
  ]);
  fillCredentials(creds.result);
  fillStatus(detail.status);
  $('device-new').hidden = true;
  $('device-new-password').value = '';
  await loadDevices();
}

function fillCredentials(c) {
  $('dav-url').value = c.url || '';
  $('dav-username').value = c.username || '';
  $('dav-password').value = c.password || '';
  // The DAVx5 QR code: just the account URL, drawn by the host.
  if (c.url) $('davx5-qr').src = `/admin/api/qr.svg?text=${encodeURIComponent(c.url)}`;
}

function fillStatus(status) {
  const s = status || {};
  const details = s.details || {};
  $('dav-status').textContent = humanStatus(s.status) + (s.text ? ` — ${s.text}` : '');
  const n = details.contacts;
  $('dav-contacts').textContent = typeof n === 'number' ? `${n} ${n === 1 ? 'contact' : 'contacts'}` : 'Unknown';
  $('dav-last-sync').textContent = formatDate(details.last_sync) || 'No device has synced yet';
  const d = details.devices;
  $('dav-devices').textContent = typeof d === 'number' ? `${d} ${d === 1 ? 'device' : 'devices'}` : 'Unknown';
}

/** The passwords of the address book (never the secrets): the install password, then devices. */
async function loadDevices() {
  const r = await api('POST', actionPath(carddav, 'list-devices'), { json: {} });
  const listing = r.result || {};
  $('book-read-only').checked = listing.read_only === true;
  const rows = $('device-rows');
  rows.replaceChildren();
  for (const d of listing.devices || []) {
    let action = null;
    if (d.kind === 'device') {
      action = el('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke the password of ${d.label}` }, 'Revoke…');
      action.addEventListener('click', () => revokeDevice(d, action));
    }
    rows.append(el('tr', { 'data-testid': 'device-row', 'data-id': d.id },
      el('td', {}, el('strong', { text: d.label }),
        d.kind === 'install' ? el('span', { class: 'muted', text: ' (shown above)' }) : null),
      el('td', { text: d.read_only ? 'View only' : 'Read and write' }),
      el('td', { text: formatDate(d.created_at) || '' }),
      el('td', { text: formatDate(d.last_used_at) || 'Never' }),
      el('td', {}, action)));
  }
}

async function createDevice(event) {
  event.preventDefault();
  const label = $('device-label').value.trim();
  if (!label) {
    showError('Give the device a name, for example “Front desk iPad”.');
    $('device-label').focus();
    return;
  }
  await busy($('device-create'), async () => {
    clearMessages();
    const r = await api('POST', actionPath(carddav, 'create-device'), {
      json: { label, read_only: $('device-read-only').checked },
    });
    const d = r.result;
    $('device-label').value = '';
    $('device-read-only').checked = false;
    $('device-new-label').textContent = d.label;
    $('device-new-password').value = d.password;
    $('device-new').hidden = false;
    await loadDevices();
    await refreshCarddavStatus();
    notify(`Password for “${d.label}” created. Enter it on the device now: it is not shown again.`);
    $('device-new-password').focus();
    $('device-new-password').select();
  });
}

async function revokeDevice(d, button) {
  const ok = await confirmDialog({
    title: `Revoke the password of “${d.label}”?`,
    message: 'That device stops syncing at once and asks for a password. Other devices keep working.',
    confirm: 'Revoke',
  });
  if (!ok) return;
  await busy(button, async () => {
    clearMessages();
    await api('POST', actionPath(carddav, 'revoke-device'), { json: { id: d.id } });
    $('device-new').hidden = true;
    $('device-new-password').value = '';
    await loadDevices();
    await refreshCarddavStatus();
    notify(`The password of “${d.label}” is revoked.`);
  });
}

async function setReadOnly() {
  const box = $('book-read-only');
  const want = box.checked;
  await busy(box, async () => {
    clearMessages();
    try {
      await api('POST', actionPath(carddav, 'set-read-only'), { json: { read_only: want } });
    } catch (e) {
      box.checked = !want;
      throw e;
    }
    await loadDevices();
    notify(want ? 'The address book is now read-only on every device.' : 'Devices can change contacts again.');
  });
}

async function refreshCarddavStatus() {
  if (!carddav || $('carddav').hidden) return;
  try {
    const detail = await api('GET', instPath(carddav));
    fillStatus(detail.status);
  } catch { /* the panel keeps the previous figures */ }
}

function setPasswordVisible(visible) {
  $('dav-password').type = visible ? 'text' : 'password';
  const t = $('toggle-password');
  t.textContent = visible ? 'Hide' : 'Show';
  t.setAttribute('aria-pressed', visible ? 'true' : 'false');
  t.setAttribute('aria-label', visible ? 'Hide password' : 'Show password');
}

async function regenerate() {
  const ok = await confirmDialog({
    title: 'Regenerate the password?',
    message: 'The current password stops working at once. Phones and computers using it will ask for the new password '
      + 'until it is entered on each of them (or a new profile is installed). Device passwords keep working.',
    confirm: 'Regenerate',
  });
  if (!ok) return;
  await busy($('regenerate'), async () => {
    clearMessages();
    const r = await api('POST', actionPath(carddav, 'regenerate-password'), { json: {} });
    fillCredentials(r.result);
    $('qr-area').hidden = true; // an old profile link would carry the old password
    notify('New password generated. Enter it on every connected device.');
  });
}

/** Filename from a Content-Disposition header (filename* preferred). */
function dispositionFilename(header) {
  if (!header) return null;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star) {
    try { return decodeURIComponent(star[2].trim()); } catch { /* fall through */ }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(header);
  if (!plain) return null;
  return (plain[2] !== undefined ? plain[2] : plain[1]).trim();
}

/** Hands a Blob to the browser as a download. */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function downloadProfile() {
  await busy($('download-profile'), async () => {
    clearMessages();
    const res = await api('POST', actionPath(carddav, 'apple-profile'), {
      json: { include_password: $('include-password').checked }, raw: true,
    });
    const blob = await res.blob();
    const name = dispositionFilename(res.headers.get('Content-Disposition'))
      || `${currentOrg.slug}-contacts.mobileconfig`;
    saveBlob(blob, name);
    notify(`Profile “${name}” downloaded. Open it on the iPhone, iPad or Mac to install it.`);
  });
}

async function showQr() {
  await busy($('show-qr'), async () => {
    clearMessages();
    const r = await api('POST', `${actionPath(carddav, 'apple-profile')}/link`, {
      json: { include_password: $('include-password').checked },
    });
    $('profile-qr').src = `data:image/svg+xml;base64,${base64Utf8(r.qr_svg)}`;
    const link = $('profile-link');
    link.href = r.url;
    link.textContent = r.url;
    $('profile-expiry').textContent = ` It works once, until ${formatDate(r.expires_at)}.`;
    $('qr-area').hidden = false;
    announce('QR code ready. It works once, for ten minutes.');
  });
}

// ---------------------------------------------------------------------------------------------
// Copy buttons

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain HTTP on a LAN address is not a secure context: fall back to a temporary text area.
  const area = el('textarea', { readonly: true, 'aria-hidden': 'true', class: 'offscreen' });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('the browser refused to copy');
}

async function onCopy(button) {
  const source = $(button.dataset.copy);
  const what = button.dataset.what || 'Text';
  if (!source || !source.value) return;
  try {
    await copyText(source.value);
  } catch (e) {
    showError(`Could not copy: ${e.message || e}. Select the text and copy it by hand.`);
    return;
  }
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = 'Copied';
  button.classList.add('copied');
  announce(`${what} copied to the clipboard.`);
  clearTimeout(button._copyTimer);
  button._copyTimer = setTimeout(() => {
    button.textContent = original;
    button.classList.remove('copied');
  }, COPIED_MS);
}

// ---------------------------------------------------------------------------------------------
// Customers

async function firstCustomerPage() {
  customerPaging.after = null;
  customerPaging.previous = [];
  await loadCustomers();
}

async function loadCustomers() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (customerPaging.q) params.set('q', customerPaging.q);
  if (customerPaging.after) params.set('after', customerPaging.after);
  const data = await api('GET', `${orgPath()}/customers?${params}`);
  const rows = $('customer-rows');
  rows.replaceChildren();
  for (const c of data.customers || []) {
    const email = c.email || (c.known_emails || [])[0] || '';
    const phone = c.phone || (c.known_phones || [])[0] || '';
    const name = c.name || [c.given_name, c.family_name].filter(Boolean).join(' ');
    rows.append(el('tr', { 'data-testid': 'customer-row', 'data-id': c.id },
      el('td', { text: name }), el('td', { text: email }), el('td', { text: phone }),
      el('td', { text: (c.tags || []).join(', ') })));
  }
  customerPaging.next = data.next || null;
  const count = rows.children.length;
  $('customer-empty').hidden = count > 0;
  $('customer-empty').textContent = customerPaging.q ? `No customers match “${customerPaging.q}”.` : 'No customers yet.';
  $('customers-prev').disabled = customerPaging.previous.length === 0;
  $('customers-next').disabled = !customerPaging.next;
  const page = customerPaging.previous.length + 1;
  $('customers-page').textContent = count ? `Page ${page}` : '';
}

async function pageCustomers(forward) {
  if (forward) {
    if (!customerPaging.next) return;
    customerPaging.previous.push(customerPaging.after);
    customerPaging.after = customerPaging.next;
  } else {
    if (customerPaging.previous.length === 0) return;
    customerPaging.after = customerPaging.previous.pop();
  }
  await busy(null, loadCustomers);
}

const searchCustomers = debounce(() => {
  customerPaging.q = $('customer-q').value.trim();
  busy(null, firstCustomerPage);
}, 300);

/** jsonl / csv / vcf from a file name, or null. */
function formatFromName(name) {
  const ext = (/\.([a-z0-9]+)$/i.exec(name || '') || [])[1];
  switch ((ext || '').toLowerCase()) {
    case 'jsonl': case 'ndjson': case 'json': return 'jsonl';
    case 'csv': return 'csv';
    case 'vcf': case 'vcard': return 'vcf';
    default: return null;
  }
}

function resetImport() {
  $('import-form').reset();
  $('import-summary').textContent = '';
  $('import-summary').className = '';
  $('import-errors').replaceChildren();
}

async function importCustomers(event) {
  event.preventDefault();
  const summary = $('import-summary');
  const errors = $('import-errors');
  summary.className = '';
  errors.replaceChildren();
  const file = $('import-file').files[0];
  if (!file) {
    summary.textContent = 'Choose a file to import first.';
    summary.className = 'bad';
    $('import-file').focus();
    return;
  }
  let format = $('import-format').value;
  if (format === 'auto') format = formatFromName(file.name);
  if (!format) {
    summary.textContent = 'The format cannot be told from the file name. Pick it in the Format list.';
    summary.className = 'bad';
    $('import-format').focus();
    return;
  }
  const button = $('import-submit');
  button.disabled = true;
  summary.textContent = `Importing ${file.name}…`;
  try {
    const bytes = await file.arrayBuffer();
    const r = await api('POST', `${orgPath()}/customers/import?format=${format}`, {
      body: bytes, headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
    summary.textContent = `Imported ${file.name}: ${r.created} new, ${r.updated} updated.`;
    summary.className = 'good';
    $('import-file').value = '';
    await firstCustomerPage();
    await refreshCarddavStatus();
  } catch (e) {
    summary.className = 'bad';
    const rows = e.body && Array.isArray(e.body.errors) ? e.body.errors : [];
    if (e.status === 422 && rows.length) {
      const n = rows.length;
      summary.textContent = `Nothing was imported: ${n} ${n === 1 ? 'row has a problem' : 'rows have problems'}. `
        + 'Fix the file and import it again.';
      for (const [line, reason] of rows) {
        errors.append(el('li', { 'data-testid': 'import-error' }, el('strong', { text: `Line ${line}:` }), ` ${reason}`));
      }
    } else if (e.status !== 401) {
      summary.textContent = `Nothing was imported: ${messageOf(e)}`;
    }
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Organization tokens (global administrator only)

async function loadTokens() {
  const tokens = await api('GET', `${orgPath()}/tokens`);
  const list = $('token-list');
  list.replaceChildren();
  for (const t of tokens) {
    const revoke = el('button', { type: 'button', class: 'danger small', 'aria-label': `Revoke token ${t.label}` }, 'Revoke…');
    revoke.addEventListener('click', () => revokeToken(t, revoke));
    list.append(el('li', { class: 'token', 'data-testid': 'token-row' },
      el('span', {}, el('strong', { text: t.label }), el('span', { class: 'muted', text: ` created ${formatDate(t.created_at) || ''}` })),
      revoke));
  }
  $('token-empty').hidden = tokens.length > 0;
}

async function createToken(event) {
  event.preventDefault();
  const label = $('token-label').value.trim();
  if (!label) {
    showError('Give the token a label, for example who will use it.');
    $('token-label').focus();
    return;
  }
  await busy($('token-create'), async () => {
    clearMessages();
    const t = await api('POST', `${orgPath()}/tokens`, { json: { label } });
    $('token-label').value = '';
    $('token-new-value').value = t.token;
    $('token-new').hidden = false;
    await loadTokens();
    notify(`Token “${t.label}” created. Copy it now: it is not shown again.`);
    $('token-new-value').focus();
    $('token-new-value').select();
  });
}

async function revokeToken(t, button) {
  const ok = await confirmDialog({
    title: `Revoke “${t.label}”?`,
    message: 'Anyone signed in with this token is signed out, and the token stops working for good.',
    confirm: 'Revoke',
  });
  if (!ok) return;
  await busy(button, async () => {
    await api('DELETE', `${orgPath()}/tokens/${encodeURIComponent(t.id)}`);
    $('token-new').hidden = true;
    $('token-new-value').value = '';
    await loadTokens();
    notify(`Token “${t.label}” revoked.`);
  });
}

// ---------------------------------------------------------------------------------------------
// Confirmation dialog (a native <dialog>: focus is trapped inside, Escape cancels)

function confirmDialog({ title, message, confirm }) {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  $('confirm-ok').textContent = confirm;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    $('confirm-cancel').focus(); // the safe choice has the focus
  });
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wireEvents() {
  $('signin-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', signOut);
  $('org-slug').addEventListener('input', checkSlug);
  $('org-create-form').addEventListener('submit', createOrg);
  $('toggle-password').addEventListener('click', () => setPasswordVisible($('dav-password').type === 'password'));
  $('regenerate').addEventListener('click', regenerate);
  $('download-profile').addEventListener('click', downloadProfile);
  $('show-qr').addEventListener('click', showQr);
  for (const b of document.querySelectorAll('button.copy')) b.addEventListener('click', () => onCopy(b));
  $('customer-search').addEventListener('submit', (e) => {
    e.preventDefault();
    searchCustomers();
  });
  $('customer-q').addEventListener('input', searchCustomers);
  $('customers-next').addEventListener('click', () => pageCustomers(true));
  $('customers-prev').addEventListener('click', () => pageCustomers(false));
  $('import-form').addEventListener('submit', importCustomers);
  $('token-form').addEventListener('submit', createToken);
  $('device-form').addEventListener('submit', createDevice);
  $('book-read-only').addEventListener('change', setReadOnly);
  // Read-only fields select their whole value on focus, to make copying by hand easy.
  for (const id of ['dav-url', 'dav-username', 'dav-password', 'token-new-value', 'device-new-password']) {
    $(id).addEventListener('focus', () => $(id).select());
  }
}

start();
