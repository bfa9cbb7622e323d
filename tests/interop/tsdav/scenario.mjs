// tsdav (npm, the JavaScript CalDAV/CardDAV client) against Portico.
//
// Prints one `PASS name` / `FAIL name: why` line per step. Reads the organization's CardDAV
// credentials and the admin token from the JSON file named by PORTICO_INTEROP_CONTEXT.
import { readFileSync } from 'node:fs';
import { createDAVClient } from 'tsdav';

const ctx = JSON.parse(readFileSync(process.env.PORTICO_INTEROP_CONTEXT, 'utf8'));
const N = Number(ctx.customers);
const credentials = { username: ctx.username, password: ctx.password };
const adminHeaders = { Authorization: `Bearer ${ctx.admin_token}`, 'Content-Type': 'application/json' };

function line(s) {
  return String(s).replace(/\s+/g, ' ').slice(0, 600);
}

async function check(name, fn) {
  try {
    await fn();
    console.log(`PASS ${name}`);
    return true;
  } catch (e) {
    console.log(`FAIL ${name}: ${line(e?.stack?.split('\n').slice(0, 2).join(' ') ?? e)}`);
    return false;
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function admin(method, path, body) {
  const r = await fetch(`${ctx.host_url}/admin/api${path}`, {
    method,
    headers: adminHeaders,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`admin ${method} ${path} -> ${r.status} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
}

async function allCustomers() {
  const out = new Map();
  let after = null;
  for (let i = 0; i < 100; i++) {
    const page = await admin('GET', `/orgs/${ctx.org}/customers?limit=1000${after ? `&after=${after}` : ''}`);
    for (const c of page.customers) out.set(c.id, c);
    after = page.next;
    if (!after) break;
  }
  return out;
}

// RFC 6350 §3.2: unfold, then read one property's values (unescaped).
function values(card, name) {
  const lines = card.replace(/\r\n/g, '\n').split('\n');
  const unfolded = [];
  for (const l of lines) {
    if ((l.startsWith(' ') || l.startsWith('\t')) && unfolded.length) unfolded[unfolded.length - 1] += l.slice(1);
    else if (l) unfolded.push(l);
  }
  const out = [];
  for (const l of unfolded) {
    const i = l.indexOf(':');
    if (i < 0) continue;
    const prop = l.slice(0, i).split(';')[0].split('.').pop().toUpperCase();
    if (prop === name) out.push(l.slice(i + 1).replace(/\\([nN,;\\])/g, (_, c) => (c === 'n' || c === 'N' ? '\n' : c)));
  }
  return out;
}

function hrefName(url) {
  return decodeURIComponent(new URL(url, ctx.host_url).pathname.split('/').pop());
}

const NEW_UID = 'tsdav-created-0001';
const newCard = (note) =>
  [
    'BEGIN:VCARD',
    'VERSION:3.0',
    `UID:${NEW_UID}`,
    'FN:Tsdav Created',
    'N:Created;Tsdav;;;',
    'EMAIL;TYPE=INTERNET:tsdav.created@example.com',
    'TEL;TYPE=CELL:+44 7700 900123',
    `NOTE:${note}`,
    'END:VCARD',
    '',
  ].join('\r\n');

async function main() {
  let client;
  let book;
  let cards = [];
  let created;

  await check('tsdav: createDAVClient (Basic, carddav) from the installation URL', async () => {
    client = await createDAVClient({
      serverUrl: ctx.url,
      credentials,
      authMethod: 'Basic',
      defaultAccountType: 'carddav',
    });
    // The client keeps its account to itself: ask for the same discovery again to look at it.
    const account = await client.createAccount({ account: { serverUrl: ctx.url, accountType: 'carddav' } });
    assert(account.rootUrl === ctx.url, `rootUrl ${account.rootUrl}, installation URL ${ctx.url}`);
    assert(account.principalUrl === `${ctx.url}principal/`, `principalUrl ${account.principalUrl}`);
    assert(account.homeUrl === `${ctx.url}addressbook/`, `homeUrl ${account.homeUrl}`);
  });
  if (!client) return;

  await check('tsdav: createDAVClient from the host root finds the book through /.well-known/carddav', async () => {
    const c2 = await createDAVClient({
      serverUrl: `${ctx.host_url}/`,
      credentials,
      authMethod: 'Basic',
      defaultAccountType: 'carddav',
    });
    const account = await c2.createAccount({ account: { serverUrl: `${ctx.host_url}/`, accountType: 'carddav' } });
    assert(account.rootUrl === ctx.url, `rootUrl ${account.rootUrl}, installation URL ${ctx.url}`);
    assert(account.homeUrl === `${ctx.url}addressbook/`, `homeUrl ${account.homeUrl}`);
    const books = await c2.fetchAddressBooks();
    assert(books.length === 1 && books[0].url === ctx.book_url, `books ${JSON.stringify(books.map((b) => b.url))}`);
  });

  // The book's own sync token (Depth 0 on the book), to tell a listing problem from a sync one.
  let bookToken;
  try {
    const [r] = await client.propfind({ url: ctx.book_url, props: { 'd:sync-token': {} }, depth: '0' });
    bookToken = r?.props?.syncToken;
  } catch (e) {
    console.log(`# propfind for the book's sync token failed: ${line(e)}`);
  }

  await check('tsdav: fetchAddressBooks lists the one book with ctag, sync token and reports', async () => {
    const books = await client.fetchAddressBooks();
    assert(books.length === 1, `${books.length} address books`);
    book = books[0];
    assert(book.url === ctx.book_url, `book url ${book.url}, expected ${ctx.book_url}`);
    assert(book.ctag, `no ctag: ${JSON.stringify(book)}`);
    assert(book.syncToken, `no sync token: ${JSON.stringify(book)}`);
    assert(book.reports.includes('syncCollection'), `reports ${book.reports}`);
    assert(book.reports.includes('addressbookMultiget'), `reports ${book.reports}`);
  });
  if (!book) return;
  const initialToken = book.syncToken;

  await check(`tsdav: fetchVCards returns all ${N} cards with ETags, contents match the customers`, async () => {
    cards = await client.fetchVCards({ addressBook: book });
    assert(cards.length === N, `${cards.length} cards, ${N} customers`);
    const customers = await allCustomers();
    const bad = [];
    for (const card of cards) {
      const id = hrefName(card.url).replace(/\.vcf$/, '');
      const c = customers.get(id);
      if (!c) { bad.push(`${card.url}: no customer ${id}`); continue; }
      if (!card.etag) bad.push(`${id}: no etag`);
      if (typeof card.data !== 'string') { bad.push(`${id}: no data`); continue; }
      if (values(card.data, 'FN')[0] !== c.name) bad.push(`${id}: FN ${values(card.data, 'FN')} vs ${c.name}`);
      if (values(card.data, 'UID')[0] !== id) bad.push(`${id}: UID ${values(card.data, 'UID')}`);
      const emails = [c.email, ...(c.known_emails ?? [])].filter(Boolean).sort();
      if (JSON.stringify(values(card.data, 'EMAIL').sort()) !== JSON.stringify(emails)) bad.push(`${id}: EMAIL`);
      if ((c.note ?? null) !== (values(card.data, 'NOTE')[0] ?? null)) bad.push(`${id}: NOTE ${JSON.stringify(values(card.data, 'NOTE'))} vs ${JSON.stringify(c.note)}`);
    }
    assert(bad.length === 0, `${bad.length} mismatches, e.g. ${bad.slice(0, 3).join('; ')}`);
  });

  await check('tsdav: isCollectionDirty is false while nothing changed', async () => {
    const r = await client.isCollectionDirty({ collection: book });
    assert(r.isDirty === false, `isDirty ${r.isDirty}, ctag ${book.ctag} -> ${r.newCtag}`);
  });

  await check('tsdav: createVCard creates a card (201) that reads back byte for byte', async () => {
    const r = await client.createVCard({ addressBook: book, filename: `${NEW_UID}.vcf`, vCardString: newCard('first') });
    assert(r.status === 201, `status ${r.status} ${await r.text()}`);
    const got = await client.fetchVCards({ addressBook: book, objectUrls: [new URL(`${NEW_UID}.vcf`, book.url).href] });
    assert(got.length === 1, `${got.length} cards fetched`);
    created = got[0];
    // tsdav parses with xml-js `trim: true`, which drops the card's final CRLF (Portico sends it,
    // as &#13; + LF): compare modulo that, and byte for byte over a plain GET.
    assert(created.data === newCard('first').trimEnd(), `read back differs: ${JSON.stringify(created.data)}`);
    const g = await fetch(created.url, { headers: { Authorization: `Basic ${Buffer.from(`${ctx.username}:${ctx.password}`).toString('base64')}` } });
    const body = await g.text();
    assert(body === newCard('first'), `GET differs from the PUT body: ${JSON.stringify(body)}`);
    assert(g.headers.get('etag') === created.etag, `GET etag ${g.headers.get('etag')} vs multiget ${created.etag}`);
    const c = await admin('GET', `/orgs/${ctx.org}/customers/${NEW_UID}`).catch(() => null);
    const list = c ? [c] : [...(await allCustomers()).values()].filter((x) => x.name === 'Tsdav Created');
    assert(list.length === 1 && list[0].email === 'tsdav.created@example.com', `customer: ${JSON.stringify(list)}`);
  });

  await check('tsdav: createVCard on an existing name is refused (If-None-Match: *, 412)', async () => {
    const r = await client.createVCard({ addressBook: book, filename: `${NEW_UID}.vcf`, vCardString: newCard('dup') });
    assert(r.status === 412, `status ${r.status}`);
  });

  await check('tsdav: isCollectionDirty is true after a change, with a new ctag', async () => {
    const r = await client.isCollectionDirty({ collection: book });
    assert(r.isDirty === true && r.newCtag && r.newCtag !== book.ctag, `isDirty ${r.isDirty}, ctag ${book.ctag} -> ${r.newCtag}`);
  });

  await check('tsdav: updateVCard with the current etag succeeds, a stale etag gets 412', async () => {
    assert(created, 'no created card');
    const r = await client.updateVCard({ vCard: { url: created.url, etag: created.etag, data: newCard('second') } });
    assert(r.ok, `update status ${r.status} ${await r.text()}`);
    const stale = await client.updateVCard({ vCard: { url: created.url, etag: created.etag, data: newCard('third') } });
    assert(stale.status === 412, `stale update status ${stale.status}`);
    const [now] = await client.fetchVCards({ addressBook: book, objectUrls: [created.url] });
    assert(values(now.data, 'NOTE')[0] === 'second', `note after update ${values(now.data, 'NOTE')}`);
    assert(now.etag !== created.etag, 'etag did not change');
    created = now;
  });

  await check('tsdav: deleteVCard with the etag removes the card', async () => {
    assert(created, 'no created card');
    const r = await client.deleteVCard({ vCard: { url: created.url, etag: created.etag } });
    assert(r.ok, `delete status ${r.status}`);
    const all = await client.fetchVCards({ addressBook: book });
    assert(!all.some((c) => hrefName(c.url) === `${NEW_UID}.vcf`), 'the card is still listed');
    assert(all.length === N, `${all.length} cards after delete`);
  });

  // Changes through the admin API too, then sync from the first token.
  const edited = 'cust-0010';
  const removed = 'cust-0011';
  // RFC 6578 §3.5: changed members with their props (tsdav gives them the 207 of the whole
  // response, since their status sits in the propstat), removed members 404; a member created and
  // removed since the token may be reported 404 or not at all; nothing else.
  const assertExactlyTheChanges = (res) => {
    const cardsIn = res.filter((r) => r.href && hrefName(r.href).endsWith('.vcf'));
    const by = new Map(cardsIn.map((r) => [hrefName(r.href), r]));
    const e = by.get(`${edited}.vcf`);
    const d = by.get(`${removed}.vcf`);
    const t = by.get(`${NEW_UID}.vcf`);
    const others = [...by.keys()].filter((n) => ![`${edited}.vcf`, `${removed}.vcf`, `${NEW_UID}.vcf`].includes(n));
    assert(others.length === 0, `${others.length} unchanged cards reported (${cardsIn.length} in all), e.g. ${others.slice(0, 3)}`);
    assert(e && e.status < 300 && e.props?.getetag, `edited card: ${e ? `${e.status} ${JSON.stringify(e.props)}` : 'missing'}`);
    assert(d && d.status === 404, `removed card: ${d ? d.status : 'missing'}`);
    assert(!t || t.status === 404, `created-then-deleted card: ${t.status}`);
  };
  let newToken;
  await check('tsdav: syncCollection from the initial token reports exactly the changes', async () => {
    await admin('PATCH', `/orgs/${ctx.org}/customers/${edited}`, { note: 'Edited by the back office for tsdav' });
    await admin('DELETE', `/orgs/${ctx.org}/customers/${removed}`);
    const res = await client.syncCollection({
      url: book.url,
      props: { 'd:getetag': {} },
      syncLevel: 1,
      syncToken: initialToken,
    });
    newToken = res[0]?.raw?.multistatus?.syncToken;
    assert(newToken && newToken !== initialToken, `sync token ${newToken}`);
    assertExactlyTheChanges(res);
  });

  await check('tsdav: syncCollection from the token read on the book itself reports exactly the changes', async () => {
    assert(bookToken, 'no sync token from a Depth 0 PROPFIND on the book');
    const res = await client.syncCollection({ url: book.url, props: { 'd:getetag': {} }, syncLevel: 1, syncToken: bookToken });
    assertExactlyTheChanges(res);
  });

  await check('tsdav: syncCollection from the new token reports nothing', async () => {
    assert(newToken, 'no token from the previous step');
    const res = await client.syncCollection({ url: book.url, props: { 'd:getetag': {} }, syncLevel: 1, syncToken: newToken });
    const changed = res.filter((r) => r.href && hrefName(r.href).endsWith('.vcf'));
    assert(changed.length === 0, `changes reported: ${changed.map((r) => `${r.href} ${r.status}`).slice(0, 5)}`);
    assert(res[0]?.raw?.multistatus?.syncToken === newToken, `token moved: ${res[0]?.raw?.multistatus?.syncToken}`);
  });
}

main().catch((e) => {
  console.log(`FAIL tsdav: scenario: ${line(e?.stack ?? e)}`);
  process.exitCode = 1;
});
