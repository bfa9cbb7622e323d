//! Faults, with the real `portico` binary (issue 9): SIGKILL during concurrent writes, a full
//! disk, and SIGTERM under load. Each test starts `portico serve` as a child process and kills,
//! unmounts and cleans up through guards, also when an assertion fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "faults-test-admin-token";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

// ---------------------------------------------------------------------------------------------
// The server process

/// A running `portico serve`; dropping it kills it (SIGKILL) and reaps it.
struct Server {
    child: Child,
    url: String,
    /// Everything it wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `portico serve` on `data` with the extra environment `env`, waits (bounded) for its
/// "listening" line and for `/readyz`.
async fn start(data: &Path, env: &[(&str, String)]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("PORTICO_ADMIN__TOKEN", TOKEN)
        .env("PORTICO_SECRETS__KEY", KEY)
        .env("PORTICO_LOG__FILTER", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut url = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        log.lock().unwrap().push(line.trim_end().to_owned());
        if let Some(u) = line.trim().strip_prefix("portico listening on ") {
            url = u.to_owned();
            break;
        }
    }
    let mut server = Server {
        child,
        url,
        log: log.clone(),
    };
    assert!(
        !server.url.is_empty(),
        "portico serve did not start: {:?}",
        server.log.lock().unwrap()
    );
    // Keep draining stderr (the child never blocks on a full pipe) into the shared log.
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            log.lock().unwrap().push(line);
        }
    });
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", server.url)).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never became ready",
            server.url
        );
        if let Some(status) = server.child.try_wait().unwrap() {
            panic!("portico exited during startup: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}

/// SIGTERM; waits (bounded) for the exit and returns its status and how long it took.
fn sigterm(s: &mut Server, within: Duration) -> (std::process::ExitStatus, Duration) {
    let sent = Instant::now();
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    while sent.elapsed() < within {
        if let Some(status) = s.child.try_wait().unwrap() {
            return (status, sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("portico did not exit within {within:?} of SIGTERM");
}

// ---------------------------------------------------------------------------------------------
// CardDAV and admin requests

fn method(m: &str) -> reqwest::Method {
    reqwest::Method::from_bytes(m.as_bytes()).unwrap()
}

/// An organization's CardDAV book on a server.
#[derive(Clone)]
struct Book {
    http: reqwest::Client,
    url: String,
    org: String,
    /// `/api/apps/{org}/{installation}/addressbook/customers/`
    path: String,
    password: String,
}

/// Creates organization `org` and installs CardDAV.
async fn install(url: &str, org: &str) -> Book {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let r = http
        .post(format!("{url}/admin/api/orgs"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"slug": org, "name": org, "id": org}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inst: serde_json::Value = http
        .post(format!("{url}/admin/api/orgs/{org}/installations"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"kind": "carddav"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let installation = inst["installation"]["id"].as_str().unwrap().to_owned();
    Book {
        http,
        url: url.to_owned(),
        org: org.to_owned(),
        path: format!("/api/apps/{org}/{installation}/addressbook/customers/"),
        password: inst["reveal"]["password"].as_str().unwrap().to_owned(),
    }
}

impl Book {
    /// The same book on a restarted server.
    fn at(&self, url: &str) -> Book {
        Book {
            url: url.to_owned(),
            ..self.clone()
        }
    }

    fn req(&self, m: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method(m), format!("{}{path}", self.url))
            .basic_auth(&self.org, Some(&self.password))
    }

    fn href(&self, name: &str) -> String {
        format!("{}{name}.vcf", self.path)
    }

    /// `sync-collection` from `token` ("" for the initial one).
    async fn sync(&self, token: &str) -> Multistatus {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:sync-collection xmlns:d=\"DAV:\">\
             <d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>\
             <d:prop><d:getetag/></d:prop></d:sync-collection>"
        );
        let r = self
            .req("REPORT", &self.path)
            .header("Content-Type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 207, "sync-collection from '{token}'");
        Multistatus::parse(&r.text().await.unwrap()).expect("a complete multistatus")
    }

    /// PROPFIND Depth 1 for `getetag`: the cards' hrefs and ETags.
    async fn listing(&self) -> BTreeMap<String, String> {
        let r = self
            .req("PROPFIND", &self.path)
            .header("Depth", "1")
            .header("Content-Type", "application/xml")
            .body(
                "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/>\
                 </d:prop></d:propfind>",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 207);
        let ms = Multistatus::parse(&r.text().await.unwrap()).expect("a complete multistatus");
        ms.responses
            .into_iter()
            .filter(|r| r.href != self.path)
            .map(|r| (r.href, r.etag.expect("a card has a getetag")))
            .collect()
    }
}

/// One `DAV:response` of a multistatus.
#[derive(Debug, Clone)]
struct Resp {
    href: String,
    /// The response-level status (a removed member in a sync report: 404).
    status: Option<u16>,
    etag: Option<String>,
}

/// A parsed multistatus (this server writes the `d:` prefix for `DAV:`).
#[derive(Debug)]
struct Multistatus {
    responses: Vec<Resp>,
    sync_token: Option<String>,
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl Multistatus {
    /// `None` unless the document is complete (ends with the multistatus end tag).
    fn parse(text: &str) -> Option<Multistatus> {
        if !text.trim_end().ends_with("</d:multistatus>") {
            return None;
        }
        let mut responses = vec![];
        for part in text.split("<d:response>").skip(1) {
            let part = part.split("</d:response>").next()?;
            let href = unescape(between(part, "<d:href>", "</d:href>")?);
            // A status outside any propstat is the response's own.
            let outside: String = part
                .split("<d:propstat>")
                .enumerate()
                .map(|(i, p)| {
                    if i == 0 {
                        p
                    } else {
                        p.split("</d:propstat>").nth(1).unwrap_or("")
                    }
                })
                .collect();
            let status = between(&outside, "<d:status>", "</d:status>")
                .and_then(|s| s.split_whitespace().nth(1)?.parse().ok());
            let etag = between(part, "<d:getetag>", "</d:getetag>").map(unescape);
            responses.push(Resp { href, status, etag });
        }
        let sync_token = between(text, "<d:sync-token>", "</d:sync-token>").map(str::to_owned);
        Some(Multistatus {
            responses,
            sync_token,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Crash safety

/// The content a write gives a card: its NOTE marker (unique per write).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Absent,
    Present(String),
}

/// What the test knows about one card (each is written by one writer task only, so its writes
/// are ordered).
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    uid: String,
    /// The state of the last acknowledged write (or the one verified after a restart).
    acked: State,
    /// Its ETag, if present.
    etag: Option<String>,
    /// A write sent without an answer before the kill: either it happened entirely or not at
    /// all.
    pending: Option<State>,
    /// The last round a write was attempted in.
    touched: Option<usize>,
}

fn card_text(uid: &str, marker: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Card {uid}\r\nN:{uid};Card;;;\r\n\
         EMAIL:{uid}@example.com\r\nNOTE:{marker}\r\nEND:VCARD\r\n"
    )
}

/// The NOTE of a card text (after unfolding), if the text is a whole card.
fn marker_of(text: &str, uid: &str) -> Option<String> {
    let t = text.replace("\r\n ", "").replace("\n ", "");
    let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
    if lines.first() != Some(&"BEGIN:VCARD") || lines.last() != Some(&"END:VCARD") {
        return None;
    }
    if !lines.contains(&format!("UID:{uid}").as_str()) {
        return None;
    }
    lines
        .iter()
        .find_map(|l| l.strip_prefix("NOTE:"))
        .map(str::to_owned)
}

type Ledger = Arc<Mutex<BTreeMap<String, Slot>>>;

/// How a writer task's request went.
enum Sent {
    /// Answered with this status (and ETag header / response body).
    Answered(u16, Option<String>, String),
    /// No answer: the server went away.
    Lost,
}

async fn send(rb: reqwest::RequestBuilder) -> Sent {
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let etag = r
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match r.text().await {
                Ok(body) => Sent::Answered(status, etag, body),
                Err(_) => Sent::Lost,
            }
        }
        Err(_) => Sent::Lost,
    }
}

/// A CardDAV writer: creates cards (PUT with If-None-Match: *), updates them (PUT with If-Match)
/// and deletes them (DELETE with If-Match), one request at a time, until the server goes away.
/// `admin`: instead, edits its cards' notes through the admin API (PATCH). Returns the
/// unexpected answers.
async fn writer(
    book: Book,
    ledger: Ledger,
    task: usize,
    round: usize,
    seed: u64,
    admin: bool,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed ^ ((task as u64) << 32) ^ round as u64);
    let mut problems = vec![];
    let prefix = if admin {
        "adm".to_owned()
    } else {
        format!("w{task}")
    };
    for n in 0..10_000usize {
        let owned: Vec<Slot> = ledger
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.name.starts_with(&format!("{prefix}-")))
            .cloned()
            .collect();
        let present: Vec<&Slot> = owned.iter().filter(|s| s.acked != State::Absent).collect();
        let marker = format!("r{round}-t{task}-n{n}");
        let roll = rng.gen_range(0..10);
        // (slot, new state, request)
        let (slot, next, rb) = if admin {
            let Some(s) = present.get(rng.gen_range(0..present.len().max(1))) else {
                return problems;
            };
            let customer = customer_id(&book, &s.name).await;
            let Some(customer) = customer else {
                return problems;
            };
            let rb = book
                .http
                .patch(format!(
                    "{}/admin/api/orgs/{}/customers/{customer}",
                    book.url, book.org
                ))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({ "note": marker }));
            ((*s).clone(), State::Present(marker), rb)
        } else if present.is_empty() || roll < 4 {
            let name = format!("{prefix}-r{round}-{n}");
            let slot = Slot {
                uid: format!("uid-{name}"),
                name,
                acked: State::Absent,
                etag: None,
                pending: None,
                touched: None,
            };
            let rb = book
                .req("PUT", &book.href(&slot.name))
                .header("If-None-Match", "*")
                .header("Content-Type", "text/vcard; charset=utf-8")
                .body(card_text(&slot.uid, &marker));
            (slot, State::Present(marker), rb)
        } else {
            let s = present[rng.gen_range(0..present.len())];
            let etag = s.etag.clone().unwrap();
            if roll < 8 {
                let rb = book
                    .req("PUT", &book.href(&s.name))
                    .header("If-Match", etag)
                    .header("Content-Type", "text/vcard; charset=utf-8")
                    .body(card_text(&s.uid, &marker));
                (s.clone(), State::Present(marker), rb)
            } else {
                let rb = book
                    .req("DELETE", &book.href(&s.name))
                    .header("If-Match", etag);
                (s.clone(), State::Absent, rb)
            }
        };
        {
            let mut l = ledger.lock().unwrap();
            let e = l.entry(slot.name.clone()).or_insert(slot.clone());
            e.pending = Some(next.clone());
            e.touched = Some(round);
        }
        let answer = send(rb).await;
        let mut l = ledger.lock().unwrap();
        let e = l.get_mut(&slot.name).unwrap();
        match answer {
            Sent::Lost => return problems,
            Sent::Answered(status, etag, body) => {
                let ok = match (&next, admin) {
                    (State::Absent, _) => status == 204,
                    (_, true) => status == 200,
                    (_, false) => status == 201 || status == 204,
                };
                if !ok {
                    problems.push(format!(
                        "{} {}: {status} {body}",
                        slot.name,
                        marker_dbg(&next)
                    ));
                    e.pending = None;
                    continue;
                }
                let etag = if admin {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                    v["card"]["etag"].as_str().map(str::to_owned)
                } else {
                    etag
                };
                if next != State::Absent && etag.is_none() {
                    problems.push(format!("{}: acknowledged without an ETag", slot.name));
                }
                e.acked = next;
                e.etag = etag;
                e.pending = None;
            }
        }
    }
    problems
}

fn marker_dbg(s: &State) -> String {
    match s {
        State::Absent => "delete".into(),
        State::Present(m) => m.clone(),
    }
}

/// The customer id behind card `name` (the admin API addresses customers by id).
async fn customer_id(book: &Book, name: &str) -> Option<String> {
    static IDS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    let key = format!("{}/{name}", book.org);
    let cached = IDS.lock().unwrap().get(&key).cloned();
    if cached.is_some() {
        return cached;
    }
    let all = admin_cards(book).await?;
    let id = all.get(name)?.0.clone();
    IDS.lock().unwrap().insert(key, id.clone());
    Some(id)
}

/// Every customer with a stored card, through the admin API (all pages): name -> (id, ETag).
async fn admin_cards(book: &Book) -> Option<BTreeMap<String, (String, String)>> {
    let mut out = BTreeMap::new();
    let mut after: Option<String> = None;
    for _ in 0..100 {
        let mut url = format!(
            "{}/admin/api/orgs/{}/customers?limit=1000",
            book.url, book.org
        );
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let r = book.http.get(url).bearer_auth(TOKEN).send().await.ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        for c in v["customers"].as_array()? {
            out.insert(
                c["card"]["name"].as_str()?.to_owned(),
                (
                    c["id"].as_str()?.to_owned(),
                    c["card"]["etag"].as_str()?.to_owned(),
                ),
            );
        }
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return Some(out),
        }
    }
    None
}

/// A sync token taken between kills, with the cards' ETags at that moment.
struct Taken {
    token: String,
    round: usize,
    etags: BTreeMap<String, Option<String>>,
}

/// After a restart: every card is as its last acknowledged write left it or as the write in
/// flight at the kill would leave it, whole; GET, PROPFIND and the admin API agree; every token
/// taken so far syncs to exactly the changes since. Settles the ledger to what was found.
async fn verify(book: &Book, ledger: &Ledger, tokens: &[Taken], what: &str) {
    let listing = book.listing().await;
    let mut slots = ledger.lock().unwrap().clone();
    for s in slots.values_mut() {
        let r = book.req("GET", &book.href(&s.name)).send().await.unwrap();
        let found = match r.status().as_u16() {
            404 => (State::Absent, None),
            200 => {
                let etag = r.headers()["etag"].to_str().unwrap().to_owned();
                let text = r.text().await.unwrap();
                let marker = marker_of(&text, &s.uid)
                    .unwrap_or_else(|| panic!("{what}: {} is not a whole card: {text:?}", s.name));
                (State::Present(marker), Some(etag))
            }
            other => panic!("{what}: GET {} answered {other}", s.name),
        };
        let allowed = found.0 == s.acked || Some(&found.0) == s.pending.as_ref();
        assert!(
            allowed,
            "{what}: {} is {:?}; acknowledged {:?}, in flight {:?}",
            s.name, found.0, s.acked, s.pending
        );
        if found.0 == s.acked && s.acked != State::Absent && s.pending.as_ref() != Some(&found.0) {
            assert_eq!(
                found.1, s.etag,
                "{what}: {} keeps its acknowledged ETag",
                s.name
            );
        }
        assert_eq!(
            listing.get(&book.href(&s.name)),
            found.1.as_ref(),
            "{what}: PROPFIND getetag of {} equals the GET ETag",
            s.name
        );
        s.acked = found.0;
        s.etag = found.1;
        s.pending = None;
    }
    let known: BTreeSet<String> = slots.values().map(|s| book.href(&s.name)).collect();
    for href in listing.keys() {
        assert!(known.contains(href), "{what}: unknown card {href} listed");
    }
    // The admin API sees the same book.
    let admin: BTreeMap<String, String> = admin_cards(book)
        .await
        .expect("the admin API lists the customers")
        .into_iter()
        .map(|(name, (_, etag))| (book.href(&name), etag))
        .collect();
    assert_eq!(admin, listing, "{what}: admin API and CardDAV agree");

    // Every token: exactly what changed since, each with its current state, no duplicates.
    let current: BTreeMap<String, Option<String>> = slots
        .values()
        .map(|s| (book.href(&s.name), s.etag.clone()))
        .collect();
    for t in tokens {
        let ms = book.sync(&t.token).await;
        let mut seen = BTreeSet::new();
        for r in &ms.responses {
            assert!(seen.insert(r.href.clone()), "{what}: {} twice", r.href);
            let now = current.get(&r.href).unwrap_or_else(|| {
                panic!("{what}: sync reports {} which was never written", r.href)
            });
            match now {
                None => assert_eq!(r.status, Some(404), "{what}: {} is deleted", r.href),
                Some(etag) => assert_eq!(r.etag.as_ref(), Some(etag), "{what}: {}", r.href),
            }
        }
        for s in slots.values() {
            let href = book.href(&s.name);
            let before = t.etags.get(&href).cloned().flatten();
            if before != s.etag {
                assert!(
                    seen.contains(&href),
                    "{what}: {href} changed since the token of round {} but is not reported",
                    t.round
                );
            }
            if seen.contains(&href) {
                assert!(
                    s.touched.is_some_and(|r| r >= t.round),
                    "{what}: {href} reported but not written since round {}",
                    t.round
                );
            }
        }
        let next = ms.sync_token.expect("a new sync token");
        let again = book.sync(&next).await;
        assert!(
            again.responses.is_empty(),
            "{what}: nothing changed since the new token: {:?}",
            again.responses
        );
    }
    *ledger.lock().unwrap() = slots;
}

/// The crash scenario on `env`'s store: writers, SIGKILL at a random moment, restart, check;
/// `kills` times.
/// `settle`: how long after a kill the store may take to report the writes that followed a
/// crashed one (MongoDB without transactions: `SETTLE_MS`, see host/src/store/mongo.rs).
async fn crash_scenario(env: Vec<(&'static str, String)>, kills: usize, settle: Duration) {
    let seed: u64 = std::env::var("PORTICO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("crash scenario seed {seed} (set PORTICO_CRASH_SEED to repeat)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let org = format!("crash{}", rng.gen_range(0..1_000_000u32));
    let mut server = start(dir.path(), &env).await;
    let mut book = install(&server.url, &org).await;
    let ledger: Ledger = Arc::default();
    // The admin writer's cards, and a first token over them.
    for i in 0..8 {
        let name = format!("adm-{i}");
        let uid = format!("uid-{name}");
        let r = book
            .req("PUT", &book.href(&name))
            .header("Content-Type", "text/vcard")
            .body(card_text(&uid, "initial"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        ledger.lock().unwrap().insert(
            name.clone(),
            Slot {
                name,
                uid,
                acked: State::Present("initial".into()),
                etag: Some(etag),
                pending: None,
                touched: Some(0),
            },
        );
    }
    let mut tokens: Vec<Taken> = vec![];
    for round in 1..=kills {
        let first = book.sync("").await;
        tokens.push(Taken {
            token: first.sync_token.unwrap(),
            round,
            etags: ledger
                .lock()
                .unwrap()
                .values()
                .map(|s| (book.href(&s.name), s.etag.clone()))
                .collect(),
        });
        let mut tasks = vec![];
        for task in 0..4 {
            tasks.push(tokio::spawn(writer(
                book.clone(),
                ledger.clone(),
                task,
                round,
                seed,
                task == 3,
            )));
        }
        let wait = Duration::from_millis(rng.gen_range(300..1500));
        tokio::time::sleep(wait).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let killed = Instant::now();
        let mut problems = vec![];
        for t in tasks {
            problems.extend(
                tokio::time::timeout(Duration::from_secs(60), t)
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(problems.is_empty(), "unexpected answers: {problems:?}");
        let (acked, pending) = {
            let l = ledger.lock().unwrap();
            (l.len(), l.values().filter(|s| s.pending.is_some()).count())
        };
        eprintln!(
            "round {round}: SIGKILL after {wait:?}; {acked} cards, {pending} writes in flight"
        );
        server = start(dir.path(), &env).await;
        book = book.at(&server.url);
        tokio::time::sleep(settle.saturating_sub(killed.elapsed())).await;
        verify(&book, &ledger, &tokens, &format!("after kill {round}")).await;
    }
    let (status, _) = sigterm(&mut server, Duration::from_secs(30));
    assert!(status.success());
}

/// Concurrent CardDAV writes and admin edits, SIGKILL at a random moment, four times, on the
/// embedded store: acknowledged writes survive, writes in flight are all or nothing, and every
/// old sync token still answers exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_sigkill_embedded() {
    crash_scenario(vec![], 4, Duration::ZERO).await;
}

/// The same on MongoDB (tests/mongo/run.sh provides the server; log-first writes, which is how
/// nx-27017 runs concurrent writers). Without transactions a write cut by the kill leaves an
/// unsettled change-log position, and readers report the writes after it only once it is
/// `SETTLE_MS` (30 s) old: so one kill, and the checks after that wait.
#[cfg(feature = "mongo-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_sigkill_mongodb() {
    let uri = std::env::var("PORTICO_TEST_MONGODB_URI")
        .expect("PORTICO_TEST_MONGODB_URI is set by tests/mongo/run.sh");
    let transactions =
        std::env::var("PORTICO_TEST_STORE_TRANSACTIONS").unwrap_or_else(|_| "off".into());
    let settle = if transactions == "on" {
        Duration::ZERO
    } else {
        Duration::from_millis(portico_host::store::mongo::SETTLE_MS as u64 + 1000)
    };
    let kills = if settle.is_zero() { 3 } else { 1 };
    crash_scenario(
        vec![
            ("PORTICO_STORE__KIND", "mongodb".into()),
            ("PORTICO_STORE__URI", uri),
            (
                "PORTICO_STORE__DATABASE",
                format!("crash_{}", std::process::id()),
            ),
            ("PORTICO_STORE__TRANSACTIONS", transactions),
        ],
        kills,
        settle,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Disk full

/// A tmpfs mounted for the test; unmounted when dropped (lazily if something still holds it).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it and needs root (or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Fills the file system holding `dir` with a file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    for chunk in [1 << 20, 4096, 512] {
        let buf = vec![0u8; chunk];
        for _ in 0..10_000 {
            match f.write_all(&buf).and_then(|()| f.sync_data()) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
                    break;
                }
            }
        }
    }
    path
}

/// A card with some bulk (about 2 KB), so a few of them need new pages.
fn bulky_card(uid: &str, marker: &str) -> String {
    let mut t = format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:Bulky {uid}\r\n");
    for i in 0..24 {
        t.push_str(&format!("X-PAD-{i}:{}\r\n", "x".repeat(70)));
    }
    t.push_str(&format!("NOTE:{marker}\r\nEND:VCARD\r\n"));
    t
}

/// Disk full on the embedded store: the data directory is on a small tmpfs (mounted by the
/// test, which runs as root), filled up with a file. Writes then fail with 503 and Retry-After
/// (CardDAV PUT and the admin API) and a log line, apply nothing, while GET, PROPFIND,
/// sync-collection and `/readyz` keep answering; once the file is deleted writes succeed again,
/// and after a restart the store opens and a sync from an old token matches every acknowledged
/// write.
#[tokio::test]
async fn disk_full_refuses_writes_and_keeps_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _fs = Tmpfs::mount(&data, "12m");
    let mut server = start(&data, &[]).await;
    let book = install(&server.url, "full").await;
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..5 {
        let name = format!("before-{i}");
        let r = book
            .req("PUT", &book.href(&name))
            .body(bulky_card(&name, "before"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        acked.insert(name, r.headers()["etag"].to_str().unwrap().to_owned());
    }
    let old_token = book.sync("").await.sync_token.unwrap();

    let filler = fill(&data);
    // Writes that reuse space redb already holds may still succeed; new pages cannot be had.
    let mut refused = None;
    for i in 0..500 {
        let name = format!("during-{i}");
        let r = book
            .req("PUT", &book.href(&name))
            .body(bulky_card(&name, "during"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            201 => {
                acked.insert(name, r.headers()["etag"].to_str().unwrap().to_owned());
            }
            503 => {
                assert!(
                    r.headers().contains_key("retry-after"),
                    "503 comes with Retry-After"
                );
                refused = Some(name);
                break;
            }
            other => panic!(
                "PUT on a full disk answered {other}: {}",
                r.text().await.unwrap()
            ),
        }
    }
    let refused = refused.expect("a write fails once the disk is full");
    eprintln!(
        "disk full: {} cards written, then {refused} refused",
        acked.len()
    );
    let logged = || {
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("store refused a write") || l.contains("store write failed"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logged() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged(),
        "the refusal is logged: {:?}",
        server.log.lock().unwrap()
    );
    for line in server.log.lock().unwrap().iter() {
        eprintln!("server: {line}");
    }

    // The admin API refuses writes the same way.
    let r = book
        .http
        .post(format!("{}/admin/api/orgs/full/customers", server.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "During".repeat(400)}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: serde_json::Value = r.json().await.unwrap();
    // If it fit in space redb already had, it is a real write: keep it in the expectations.
    let admin_made = (status == 201).then(|| book.href(v["id"].as_str().unwrap()));
    if admin_made.is_none() {
        assert_eq!(status, 503, "{v}");
        assert_eq!(v["error"]["code"], "unavailable");
    }

    // Reads keep working, and the refused card is not there.
    for _ in 0..3 {
        let r = book
            .http
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "ready while the disk is full");
        for (name, etag) in &acked {
            let r = book.req("GET", &book.href(name)).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        }
        let r = book.req("GET", &book.href(&refused)).send().await.unwrap();
        assert_eq!(r.status(), 404, "a refused write applies nothing");
        let listing = book.listing().await;
        for (name, etag) in &acked {
            assert_eq!(listing.get(&book.href(name)), Some(etag));
        }
        assert!(!listing.contains_key(&book.href(&refused)));
        let ms = book.sync(&old_token).await;
        assert!(ms.responses.len() >= acked.len() - 5);
    }

    // Space returns: writes work again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let r = book
        .req("PUT", &book.href(&refused))
        .body(bulky_card(&refused, "after"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "writes work once there is space");
    acked.insert(refused, r.headers()["etag"].to_str().unwrap().to_owned());

    // Nothing is corrupt: the store reopens after a restart and agrees with every answer.
    let (status, _) = sigterm(&mut server, Duration::from_secs(30));
    assert!(status.success());
    drop(server);
    let server = start(&data, &[]).await;
    let book = book.at(&server.url);
    let listing = book.listing().await;
    let cards: BTreeMap<String, String> = listing
        .into_iter()
        .filter(|(h, _)| h.contains("/before-") || h.contains("/during-"))
        .collect();
    let expected: BTreeMap<String, String> = acked
        .iter()
        .map(|(n, e)| (book.href(n), e.clone()))
        .collect();
    assert_eq!(cards, expected);
    let ms = book.sync(&old_token).await;
    let reported: BTreeSet<String> = ms.responses.iter().map(|r| r.href.clone()).collect();
    let written: BTreeSet<String> = expected
        .keys()
        .filter(|h| !h.contains("/before-"))
        .cloned()
        .chain(admin_made)
        .collect();
    assert_eq!(reported, written, "exactly the writes after the token");
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown under load

/// One request of a syncing client.
#[derive(Debug)]
struct Done {
    sent: Instant,
    finished: Instant,
    /// `Ok` for a 207 whose multistatus is complete and lists what it should; else what went
    /// wrong (a refused or closed connection for a request sent after the signal is fine).
    result: Result<(), String>,
}

/// How a client reports a connection it could not open.
const REFUSED: &str = "connect";

/// A phone syncing over one keep-alive connection: every fifth client lists the whole book
/// (PROPFIND Depth 1), the others ask for the changes since `token` (sync-collection).
async fn syncing_client(
    book: Book,
    i: usize,
    token: String,
    expect_full: usize,
    expect_changes: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<Done> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let book = Book { http, ..book };
    let mut out = vec![];
    for _ in 0..10_000 {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let sent = Instant::now();
        let (rb, expect) = if i.is_multiple_of(5) {
            let rb = book
                .req("PROPFIND", &book.path)
                .header("Depth", "1")
                .header("Content-Type", "application/xml")
                .body(
                    "<?xml version=\"1.0\"?><d:propfind xmlns:d=\"DAV:\"><d:prop><d:getetag/>\
                     </d:prop></d:propfind>",
                );
            (rb, expect_full)
        } else {
            let rb = book
                .req("REPORT", &book.path)
                .header("Content-Type", "application/xml")
                .body(format!(
                    "<?xml version=\"1.0\"?><d:sync-collection xmlns:d=\"DAV:\">\
                     <d:sync-token>{token}</d:sync-token><d:sync-level>1</d:sync-level>\
                     <d:prop><d:getetag/></d:prop></d:sync-collection>"
                ));
            (rb, expect_changes)
        };
        let result = match rb.send().await {
            // Never reached the server: a new connection after the listener closed.
            Err(e) if e.is_connect() => Err(format!("{REFUSED}: {e:?}")),
            Err(e) => Err(format!("send: {e:?}")),
            Ok(r) if r.status() != 207 => Err(format!("status {}", r.status())),
            Ok(r) => match r.text().await {
                Err(e) => Err(format!("body: {e}")),
                // Cheap checks (the clients share the CPU with the server): complete, and as
                // many responses as there should be.
                Ok(text) if !text.trim_end().ends_with("</d:multistatus>") => {
                    Err(format!("incomplete multistatus ({} bytes)", text.len()))
                }
                Ok(text) => match text.matches("<d:response>").count() {
                    n if n == expect => Ok(()),
                    n => Err(format!("{n} responses, expected {expect}")),
                },
            },
        };
        let failed = result.is_err();
        out.push(Done {
            sent,
            finished: Instant::now(),
            result,
        });
        if failed {
            break;
        }
    }
    out
}

/// SIGTERM while 100 clients sync a book of 2,000 cards: every request sent before the signal
/// gets its whole answer, the listener closes at once (new connections are refused while the
/// process still finishes requests), and the process exits with status 0 within
/// `server.shutdown_timeout_secs` (5) plus a margin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_in_flight_requests() {
    use std::sync::atomic::{AtomicBool, Ordering};
    const GRACE: u64 = 5;
    const CARDS: usize = 2000;
    const EDITS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(
        dir.path(),
        &[("PORTICO_SERVER__SHUTDOWN_TIMEOUT_SECS", GRACE.to_string())],
    )
    .await;
    let book = install(&server.url, "busy").await;
    let jsonl: String = (0..CARDS)
        .map(|i| format!("{{\"name\":\"Customer {i}\",\"email\":\"c{i}@example.com\"}}\n"))
        .collect();
    let r = book
        .http
        .post(format!(
            "{}/admin/api/orgs/busy/customers/import",
            server.url
        ))
        .bearer_auth(TOKEN)
        .body(jsonl)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let token = book.sync("").await.sync_token.unwrap();
    for i in 0..EDITS {
        let name = format!("edit-{i}");
        let r = book
            .req("PUT", &book.href(&name))
            .body(card_text(&name, "edit"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..100)
        .map(|i| {
            tokio::spawn(syncing_client(
                book.clone(),
                i,
                token.clone(),
                CARDS + EDITS + 1,
                EDITS,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2000)).await;

    let signal = Instant::now();
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    // New connections: refused once the listener is closed, while requests still finish.
    let mut refused_while_running = None;
    while signal.elapsed() < Duration::from_secs(3) {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                refused_while_running = Some(server.child.try_wait().unwrap().is_none());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let refused_after = signal.elapsed();
    let mut exit = None;
    while signal.elapsed() < Duration::from_secs(GRACE + 30) {
        if let Some(status) = server.child.try_wait().unwrap() {
            exit = Some((status, signal.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut done = vec![];
    for c in clients {
        done.extend(
            tokio::time::timeout(Duration::from_secs(60), c)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let (status, took) = exit.expect("portico exits after SIGTERM");
    let before: Vec<&Done> = done.iter().filter(|d| d.sent < signal).collect();
    let in_flight = before.iter().filter(|d| d.finished > signal).count();
    let after = done.len() - before.len();
    let last_answer = before
        .iter()
        .map(|d| d.finished.saturating_duration_since(signal))
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} requests before SIGTERM ({in_flight} in flight at the signal, the last answered \
         {last_answer:?} after it), {after} after; connection refused after {refused_after:?}; \
         exit {status} after {took:?}",
        before.len()
    );
    // A request that could not even connect was never in flight (the client opened a new
    // connection as the listener closed); every other one must have its whole answer.
    let failed: Vec<String> = before
        .iter()
        .filter_map(|d| {
            let e = d.result.as_ref().err()?;
            let ahead = signal.duration_since(d.sent);
            (!e.starts_with(REFUSED)).then(|| format!("sent {ahead:?} before the signal: {e}"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "requests sent before SIGTERM failed: {failed:?}"
    );
    assert!(
        in_flight >= 20,
        "the signal came with requests in flight ({in_flight})"
    );
    for d in &done {
        if let Err(e) = &d.result {
            assert!(
                !e.starts_with("incomplete") && !e.contains("responses, expected"),
                "never a truncated answer: {e}"
            );
        }
    }
    assert_eq!(
        refused_while_running,
        Some(true),
        "new connections are refused while in-flight requests finish"
    );
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    assert!(
        took <= Duration::from_secs(GRACE + 5),
        "exit within the grace period plus a margin: {took:?}"
    );
}
