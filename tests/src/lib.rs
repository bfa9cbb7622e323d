//! Test support: a real Portico on a loopback socket with an embedded store in a temporary
//! directory, and a small HTTP client around it.
//!
//! With `PORTICO_TEST_STORE=mongodb` every [`TestServer`] uses the MongoDB store instead: the
//! server at `PORTICO_TEST_MONGODB_URI`, a database of its own, and `store.transactions` from
//! `PORTICO_TEST_STORE_TRANSACTIONS` (`auto` unless set; `tests/mongo/run.sh` runs the suite
//! this way against nx-27017 with `off`, see there why).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod carddav;

use portico_host::config::Config;
use portico_host::{registry, server, Portico};
use portico_sdk::Secret;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::Arc;

/// The admin token every test server uses.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running host.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The host, for direct store checks.
    pub portico: Arc<Portico>,
    /// An HTTP client.
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

/// Which store the test servers use: `PORTICO_TEST_STORE` = `embedded` (default) or `mongodb`.
pub const STORE_VAR: &str = "PORTICO_TEST_STORE";
/// The MongoDB server for `PORTICO_TEST_STORE=mongodb`.
pub const MONGODB_URI_VAR: &str = "PORTICO_TEST_MONGODB_URI";
/// `store.transactions` for `PORTICO_TEST_STORE=mongodb`: `auto` (default), `on` or `off`.
pub const TRANSACTIONS_VAR: &str = "PORTICO_TEST_STORE_TRANSACTIONS";

/// Points `cfg` at the store `PORTICO_TEST_STORE` asks for. An unknown value or a missing URI
/// fails the test: a suite meant for MongoDB never quietly runs on the embedded store.
fn test_store(cfg: &mut Config) {
    let kind = std::env::var(STORE_VAR).unwrap_or_default();
    match kind.as_str() {
        "" | "embedded" => {}
        "mongodb" => {
            let uri = std::env::var(MONGODB_URI_VAR).unwrap_or_else(|_| {
                panic!("{STORE_VAR}=mongodb needs {MONGODB_URI_VAR} (see tests/mongo/run.sh)")
            });
            // One database per data directory: a test that restarts a server on the same
            // directory (to check what survives a restart) gets the same database back, and
            // every other server a fresh one.
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            cfg.store.data_dir.hash(&mut h);
            let database = format!("pt_e2e_{}_{:016x}", std::process::id(), h.finish());
            let mut env = vec![
                ("PORTICO_STORE__KIND".to_string(), "mongodb".to_string()),
                ("PORTICO_STORE__URI".to_string(), uri),
                ("PORTICO_STORE__DATABASE".to_string(), database),
            ];
            if let Ok(t) = std::env::var(TRANSACTIONS_VAR) {
                env.push(("PORTICO_STORE__TRANSACTIONS".to_string(), t));
            }
            let store = Config::load(None, env, &[])
                .unwrap_or_else(|e| panic!("{STORE_VAR}/{TRANSACTIONS_VAR}: {e}"))
                .store;
            // The key file stays in the temporary data directory.
            cfg.store.kind = store.kind;
            cfg.store.uri = store.uri;
            cfg.store.database = store.database;
            cfg.store.transactions = store.transactions;
        }
        other => panic!("{STORE_VAR}={other}: expected 'embedded' or 'mongodb'"),
    }
}

impl TestServer {
    /// Starts a host with the default test configuration.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a host after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cfg = Config::default();
        cfg.store.data_dir = dir.path().to_path_buf();
        cfg.secrets.create_key_file = true;
        cfg.server.public_url = Some(format!("http://{addr}"));
        cfg.server.workers = 2;
        cfg.server.shutdown_timeout_secs = 1;
        cfg.admin.token = Some(Secret::new(ADMIN_TOKEN.into()));
        tweak(&mut cfg);
        test_store(&mut cfg);
        let portico = server::build(&cfg, registry::builtin().unwrap())
            .await
            .unwrap();
        let srv = server::start(portico.clone(), &cfg, listener).unwrap();
        let handle = srv.handle();
        tokio::spawn(srv);
        TestServer {
            url: format!("http://{addr}"),
            portico,
            http: reqwest::Client::new(),
            handle,
            _dir: dir,
        }
    }

    /// A request to a path on this server.
    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        self.http.request(m, format!("{}{}", self.url, path))
    }

    /// An admin API request with the admin token.
    pub fn admin(&self, method: &str, path: &str) -> RequestBuilder {
        self.req(method, &format!("/admin/api{path}"))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// Creates an organization with `id` = `slug` and returns its JSON.
    pub async fn org(&self, slug: &str) -> Value {
        let r = self
            .admin("POST", "/orgs")
            .json(&json!({ "slug": slug, "name": slug.to_uppercase(), "id": slug }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create org {slug}");
        r.json().await.unwrap()
    }

    /// Installs `kind` for `org` and returns the install response JSON.
    pub async fn install(&self, org: &str, kind: &str) -> Value {
        let r = self
            .admin("POST", &format!("/orgs/{org}/installations"))
            .json(&json!({ "kind": kind }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "install {kind} for {org}");
        r.json().await.unwrap()
    }

    /// Stops the server gracefully.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        // Background tasks (webhook delivery) hold the host only for a round at a time; wait
        // for them to let go so the store is closed when this returns and a test can reopen
        // the same data directory.
        for _ in 0..200 {
            if Arc::strong_count(&self.portico) == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// Status and body text of a response.
pub async fn text(r: Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

/// The gateway path of an install response (`/api/apps/{org}/{id}/`).
pub fn base_path(installed: &Value) -> String {
    let url = installed["installation"]["url"].as_str().unwrap();
    let at = url.find("/api/apps/").unwrap();
    url[at..].to_owned()
}

impl TestServer {
    /// Sends a request with a path exactly as given (no client-side normalization, which URL
    /// libraries apply to `%2e%2e`) and returns the status code.
    pub async fn raw_status(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("http://");
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        sock.read_to_end(&mut out).await.unwrap();
        let head = String::from_utf8_lossy(&out);
        head.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}
