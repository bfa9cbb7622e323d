//! The `portico` binary as a user runs it: the demo command, restarts after SIGTERM and
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
//! SIGKILL, and configuration errors at startup.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "process-test-admin-token";

struct Proc {
    child: Child,
    url: String,
    lines: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `portico serve` on a free port and waits for its "listening" line (bounded).
fn serve(data: &std::path::Path) -> Proc {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("PORTICO_ADMIN__TOKEN", TOKEN)
        .env("PORTICO_SECRETS__CREATE_KEY_FILE", "true")
        .env("PORTICO_LOG__FILTER", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("portico listening on ") {
            url = u.to_owned();
            break;
        }
    }
    assert!(!url.is_empty(), "portico serve did not start");
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in err.lines() {});
    Proc {
        child,
        url,
        lines: vec![],
    }
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never became ready");
}

fn sigterm(p: &mut Proc) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(code) = p.child.try_wait().unwrap() {
            assert!(code.success(), "graceful shutdown exits 0, got {code:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("portico did not stop on SIGTERM");
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let mut p = serve(dir.path());
    wait_ready(&http, &p.url).await;
    let r = http
        .post(format!("{}/admin/api/orgs", p.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"slug": "acme", "name": "Acme", "id": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut ids = vec![];
    for i in 0..20 {
        let r = http
            .post(format!("{}/admin/api/orgs/acme/customers", p.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"name": format!("Customer {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // SIGKILL right after the last acknowledgement.
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    let mut p = serve(dir.path());
    wait_ready(&http, &p.url).await;
    for id in &ids {
        let r = http
            .get(format!("{}/admin/api/orgs/acme/customers/{id}", p.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "customer {id} survived SIGKILL");
    }
    let r = http
        .patch(format!(
            "{}/admin/api/orgs/acme/customers/{}",
            p.url, ids[0]
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"note": "after restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&mut p);

    let p = serve(dir.path());
    wait_ready(&http, &p.url).await;
    let v: serde_json::Value = http
        .get(format!(
            "{}/admin/api/orgs/acme/customers/{}",
            p.url, ids[0]
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["note"], "after restart");
    drop(p);
}

#[test]
fn unknown_config_keys_stop_startup_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PORTICO_SERVER__LISTEN_PORT", "8080")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen_port"), "{err}");
    let file = dir.path().join("p.toml");
    std::fs::write(&file, "[store]\nkind = \"embedded\"\npath = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .args(["config", "print"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("path"));
}

#[test]
fn a_missing_key_file_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master.key"));
}

/// The README's first command, as a newcomer runs it.
#[tokio::test]
async fn the_demo_command_serves_the_example_app() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PORTICO_LOG__FILTER", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = vec![];
    for _ in 0..40 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let done = line.starts_with("Example app");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    let mut p = Proc {
        child,
        url: String::new(),
        lines,
    };
    let find = |prefix: &str| -> String {
        p.lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("no '{prefix}' in demo output: {:?}", p.lines))
    };
    p.url = find("Portico demo is running at");
    let hello = find("Example app (hello):");
    let (hello_url, rest) = hello.split_once("  (Authorization: Bearer ").unwrap();
    let token = rest.trim_end_matches(')');
    let carddav_url = find("server URL:");
    let username = find("username:");
    let password = find("password:");
    assert!(carddav_url.starts_with(&p.url) && carddav_url.contains("/api/apps/demo/"));
    assert_eq!(username, "demo");
    assert!(password.len() >= 16, "a generated password is printed");
    assert!(
        dir.path().join("master.key").exists(),
        "the demo generates its key file"
    );

    let http = reqwest::Client::new();
    wait_ready(&http, &p.url).await;
    let r = http
        .get(format!("{hello_url}ping"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["slug"], "ping");
    assert_eq!(v["organization"], "demo");
    let orgs: serde_json::Value = http
        .get(format!("{}/admin/api/orgs/demo/customers", p.url))
        .bearer_auth(
            find("admin API:")
                .split("Bearer ")
                .nth(1)
                .unwrap()
                .trim_end_matches(')'),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        orgs["customers"].as_array().unwrap().len(),
        12,
        "a dozen demo customers"
    );
    let page_url = find("admin page:")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let page = http.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{page_url}");
    assert!(page.text().await.unwrap().contains("<html"));
    sigterm(&mut p);
}

fn cli(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("PORTICO_SECRETS__CREATE_KEY_FILE", "true")
        .env("PORTICO_LOG__FILTER", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI manages organizations and installations through the same code paths as the admin
/// API, and a migrated installation keeps its id and password.
#[tokio::test]
async fn cli_manages_orgs_apps_and_customers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = cli(
        d,
        &[
            "org", "create", "--slug", "salon", "--name", "Salon", "--id", "salon",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"slug\": \"salon\""));
    let (ok, _, err) = cli(d, &["org", "create", "--slug", "Bad Slug", "--name", "x"]);
    assert!(!ok);
    assert!(err.contains("slug"), "{err}");
    let (ok, out, _) = cli(d, &["org", "list"]);
    assert!(ok && out.contains("salon"));

    let (ok, out, err) = cli(
        d,
        &[
            "app",
            "install",
            "--org",
            "salon",
            "--kind",
            "carddav",
            "--id",
            "legacy-1",
            "--secret",
            "password=kept-from-old-system",
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["installation"]["id"], "legacy-1");
    assert_eq!(v["reveal"]["password"], "kept-from-old-system");

    let file = d.join("customers.jsonl");
    std::fs::write(&file, "{\"name\": \"Ann\"}\n{\"name\": \"Bo\"}\n").unwrap();
    let (ok, out, err) = cli(
        d,
        &[
            "customers",
            "import",
            "--org",
            "salon",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"created\": 2"), "{out}");

    let (ok, out, _) = cli(d, &["app", "status", "--org", "salon", "--id", "legacy-1"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"]["details"]["contacts"], 2);

    // The server started on the same data answers CardDAV with the migrated password.
    let mut p = serve(d);
    let http = reqwest::Client::new();
    wait_ready(&http, &p.url).await;
    let r = http
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{}/api/apps/salon/legacy-1/", p.url),
        )
        .basic_auth("salon", Some("kept-from-old-system"))
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    sigterm(&mut p);

    let (ok, out, _) = cli(
        d,
        &[
            "app",
            "action",
            "--org",
            "salon",
            "--id",
            "legacy-1",
            "--name",
            "regenerate-password",
        ],
    );
    assert!(ok);
    assert!(!out.contains("kept-from-old-system"));
    let (ok, _, _) = cli(
        d,
        &["app", "uninstall", "--org", "salon", "--id", "legacy-1"],
    );
    assert!(ok);
    let (ok, out, _) = cli(d, &["app", "list", "--org", "salon"]);
    assert!(ok);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn config_print_redacts_secrets() {
    let out = Command::new(BIN)
        .args(["config", "print"])
        .env("PORTICO_ADMIN__TOKEN", "very-secret-admin-token")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[redacted]"));
    assert!(!text.contains("very-secret"));
}

/// Two `portico serve` processes on one MongoDB database (tests/mongo/run.sh provides it):
/// what one changes — a new customer, a regenerated password, an uninstall — the other serves
/// within 2 seconds.
#[cfg(feature = "mongo-tests")]
#[tokio::test]
async fn two_processes_share_one_mongodb() {
    let uri = std::env::var("PORTICO_TEST_MONGODB_URI")
        .expect("PORTICO_TEST_MONGODB_URI is set by tests/mongo/run.sh");
    let database = format!("proc_{}", std::process::id());
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let start = |dir: &std::path::Path| {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env("PORTICO_ADMIN__TOKEN", TOKEN)
            .env("PORTICO_SECRETS__KEY", key)
            .env("PORTICO_STORE__KIND", "mongodb")
            .env("PORTICO_STORE__URI", &uri)
            .env("PORTICO_STORE__DATABASE", &database)
            .env("PORTICO_LOG__FILTER", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut url = String::new();
        for _ in 0..50 {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(u) = line.trim().strip_prefix("portico listening on ") {
                url = u.to_owned();
                break;
            }
        }
        assert!(!url.is_empty(), "portico serve on MongoDB did not start");
        std::thread::spawn(move || for _ in err.lines() {});
        Proc {
            child,
            url,
            lines: vec![],
        }
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (start(da.path()), start(db.path()));
    let http = reqwest::Client::new();
    wait_ready(&http, &a.url).await;
    wait_ready(&http, &b.url).await;
    let r = http
        .post(format!("{}/admin/api/orgs", a.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"slug": "shared", "name": "Shared", "id": "shared"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inst: serde_json::Value = http
        .post(format!("{}/admin/api/orgs/shared/installations", a.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"kind": "carddav"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = inst["installation"]["id"].as_str().unwrap().to_owned();
    let old = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let propfind = |base: &str, pw: &str| {
        http.request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{base}/api/apps/shared/{id}/addressbook/customers/"),
        )
        .basic_auth("shared", Some(pw.to_owned()))
        .header("Depth", "1")
        .send()
    };
    assert_eq!(
        propfind(&b.url, &old).await.unwrap().status(),
        207,
        "B serves A's install"
    );
    let r = http
        .post(format!("{}/admin/api/orgs/shared/customers", a.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "Written on A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let listing = propfind(&b.url, &old).await.unwrap().text().await.unwrap();
    assert!(
        listing.contains(".vcf"),
        "B lists the customer written through A"
    );

    let regen: serde_json::Value = http
        .post(format!(
            "{}/admin/api/orgs/shared/installations/{id}/actions/regenerate-password",
            a.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = regen["result"]["password"].as_str().unwrap().to_owned();
    let changed = Instant::now();
    let mut old_refused = false;
    while changed.elapsed() < Duration::from_millis(2500) {
        if propfind(&b.url, &old).await.unwrap().status() == 401 {
            old_refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(old_refused, "B refuses the old password within 2 s");
    assert!(changed.elapsed() <= Duration::from_secs(2));
    assert_eq!(propfind(&b.url, &new).await.unwrap().status(), 207);

    let r = http
        .delete(format!(
            "{}/admin/api/orgs/shared/installations/{id}",
            a.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let gone = Instant::now();
    let mut not_found = false;
    while gone.elapsed() < Duration::from_millis(2500) {
        if propfind(&b.url, &new).await.unwrap().status() == 404 {
            not_found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        not_found && gone.elapsed() <= Duration::from_secs(2),
        "B stops serving within 2 s"
    );
    drop((a, b));
}

/// `sync-collection` from `token` on a CardDAV book: status, the hrefs reported, the new token.
async fn sync(url: &str, book: &str, password: &str, token: &str) -> (u16, Vec<String>, String) {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:sync-collection xmlns:D=\"DAV:\">\
         <D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>\
         <D:prop><D:getetag/></D:prop></D:sync-collection>"
    );
    let r = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(b"REPORT").unwrap(),
            format!("{url}{book}"),
        )
        .basic_auth("salon", Some(password))
        .header("Content-Type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let field = |tag: &str| -> Vec<String> {
        let (open, close) = (format!("<d:{tag}>"), format!("</d:{tag}>"));
        text.split(&open)
            .skip(1)
            .filter_map(|s| s.split(&close).next().map(str::to_owned))
            .collect()
    };
    let token = field("sync-token").pop().unwrap_or_default();
    (status, field("href"), token)
}

/// Data for the copy tests: an organization with a CardDAV installation (known password) and
/// three customers; returns a sync token taken from a running server, after which a fourth
/// customer is added (so the token has one change to report).
async fn copy_source(d: &std::path::Path) -> String {
    let (ok, _, err) = cli(
        d,
        &[
            "org", "create", "--slug", "salon", "--name", "S", "--id", "salon",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        d,
        &[
            "app",
            "install",
            "--org",
            "salon",
            "--kind",
            "carddav",
            "--id",
            "book",
            "--secret",
            "password=copy-password",
        ],
    );
    assert!(ok, "{err}");
    let file = d.join("c.jsonl");
    std::fs::write(
        &file,
        "{\"name\":\"Ann\"}\n{\"name\":\"Bo\"}\n{\"name\":\"Cy\"}\n",
    )
    .unwrap();
    let (ok, _, err) = cli(
        d,
        &[
            "customers",
            "import",
            "--org",
            "salon",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let mut p = serve(d);
    wait_ready(&reqwest::Client::new(), &p.url).await;
    let (status, hrefs, token) = sync(&p.url, BOOK, "copy-password", "").await;
    assert_eq!(status, 207);
    assert_eq!(hrefs.len(), 3, "three cards: {hrefs:?}");
    assert!(!token.is_empty());
    sigterm(&mut p);
    std::fs::write(&file, "{\"name\":\"Dee\",\"id\":\"dee\"}\n").unwrap();
    let (ok, _, err) = cli(
        d,
        &[
            "customers",
            "import",
            "--org",
            "salon",
            file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    token
}

const BOOK: &str = "/api/apps/salon/book/addressbook/customers/";

/// Serves `d` (with the source's master key) and checks the phone's token from before the
/// copy still syncs incrementally: exactly the one change made after it.
async fn check_copied(d: &std::path::Path, token: &str) {
    let mut p = serve(d);
    wait_ready(&reqwest::Client::new(), &p.url).await;
    let (status, hrefs, next) = sync(&p.url, BOOK, "copy-password", token).await;
    assert_eq!(status, 207, "the old token is valid on the copy");
    assert_eq!(
        hrefs,
        vec![format!("{BOOK}dee.vcf")],
        "only the change since the token"
    );
    let (_, hrefs, _) = sync(&p.url, BOOK, "copy-password", &next).await;
    assert!(hrefs.is_empty(), "{hrefs:?}");
    sigterm(&mut p);
}

fn store_copy(from: &str, to: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["store", "copy", "--from", from, "--to", to])
        .args(extra)
        .env("PORTICO_LOG__FILTER", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `portico store copy` between two embedded data directories: everything arrives (the
/// migrated password works with the same master key), a phone's sync token keeps working, and
/// a non-empty target or a missing source is refused.
#[tokio::test]
async fn store_copy_keeps_sync_tokens_and_refuses_a_full_target() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let token = copy_source(a.path()).await;
    let (pa, pb) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let (ok, out, err) = store_copy(pa, pb, &[]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["organizations"], 1);
    assert_eq!(report["installations"], 1);
    assert_eq!(report["customers"], 4);
    assert_eq!(report["change_log_entries"], 4);
    assert!(err.contains("same key"), "{err}");
    std::fs::copy(a.path().join("master.key"), b.path().join("master.key")).unwrap();
    check_copied(b.path(), &token).await;

    let (ok, _, err) = store_copy(pa, pb, &[]);
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");
    let missing = a.path().join("nope");
    let (ok, _, err) = store_copy(missing.to_str().unwrap(), pb, &[]);
    assert!(!ok);
    assert!(err.contains("not an embedded data directory"), "{err}");
    assert!(!missing.exists(), "a mistyped source is not created");
}

/// The same through MongoDB: embedded → MongoDB → embedded with the CLI, the MongoDB copy
/// served by `portico serve` in between.
#[cfg(feature = "mongo-tests")]
#[tokio::test]
async fn store_copy_through_mongodb() {
    let uri = std::env::var("PORTICO_TEST_MONGODB_URI")
        .expect("PORTICO_TEST_MONGODB_URI (run tests/mongo/run.sh)");
    let db = format!("pt_copy_{}", std::process::id());
    let (a, m, b) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let token = copy_source(a.path()).await;
    let (pa, pb) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let (ok, out, err) = store_copy(pa, &uri, &["--to-database", &db]);
    assert!(ok, "{err}");
    assert!(out.contains("\"customers\": 4"), "{out}");

    // A host on the MongoDB copy (key file from the source).
    std::fs::copy(a.path().join("master.key"), m.path().join("master.key")).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(m.path())
        .env("PORTICO_STORE__KIND", "mongodb")
        .env("PORTICO_STORE__URI", &uri)
        .env("PORTICO_STORE__DATABASE", &db)
        .env("PORTICO_STORE__TRANSACTIONS", "off")
        .env("PORTICO_LOG__FILTER", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    let mut line = String::new();
    while url.is_empty() && err.read_line(&mut line).unwrap() > 0 {
        if let Some(u) = line.trim().strip_prefix("portico listening on ") {
            url = u.to_owned();
        }
        line.clear();
    }
    std::thread::spawn(move || for _ in err.lines() {});
    let mut p = Proc {
        child,
        url,
        lines: vec![],
    };
    wait_ready(&reqwest::Client::new(), &p.url).await;
    let (status, hrefs, _) = sync(&p.url, BOOK, "copy-password", &token).await;
    assert_eq!(status, 207, "the old token is valid on MongoDB");
    assert_eq!(hrefs, vec![format!("{BOOK}dee.vcf")]);
    sigterm(&mut p);

    let (ok, _, err) = store_copy(&uri, pb, &["--from-database", &db]);
    assert!(ok, "{err}");
    std::fs::copy(a.path().join("master.key"), b.path().join("master.key")).unwrap();
    check_copied(b.path(), &token).await;
    let (ok, _, err) = store_copy(pa, &uri, &["--to-database", &db]);
    assert!(!ok);
    assert!(err.contains("not empty"), "{err}");
}
