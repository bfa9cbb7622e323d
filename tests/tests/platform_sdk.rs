//! What the host gives app authors and operators, over real sockets: install-time validation
//! and typed configuration, signed webhooks with retries and an outbox that survives restarts,
//! app events, per-installation request logs and rate limits, the operator's switch, metrics,
//! and data migrations at startup.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, Mac};
use portico_tests::carddav::Book;
use portico_tests::{TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    event: String,
    delivery: String,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

/// A webhook receiver on loopback that fails the first `fail_first` attempts of every delivery.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

async fn receiver(fail_first: usize) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let (g, s) = (got.clone(), seen.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let srv = HttpServer::new(move || {
        let (g, s) = (g.clone(), s.clone());
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let h = |n: &str| {
                        req.headers()
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let delivery = h("portico-delivery");
                    let n = {
                        let mut seen = s.lock().unwrap();
                        let n = seen.entry(delivery.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    let answered = if n <= fail_first { 500 } else { 200 };
                    g.lock().unwrap().push(Received {
                        event: h("portico-event"),
                        delivery,
                        signature: h("portico-signature"),
                        body: body.to_vec(),
                        answered,
                    });
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap())
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = srv.handle();
    tokio::spawn(srv);
    Receiver { url, got, handle }
}

impl Receiver {
    fn delivered(&self) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answered == 200)
            .cloned()
            .collect()
    }

    /// Waits (at most 15 s) until deliveries of all `types` succeeded.
    async fn wait_for(&self, types: &[&str]) -> Vec<Received> {
        for _ in 0..300 {
            let d = self.delivered();
            if types.iter().all(|t| d.iter().any(|r| r.event == *t)) {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "not all of {types:?} delivered; got {:?}",
            self.got
                .lock()
                .unwrap()
                .iter()
                .map(|r| (&r.event, r.answered))
                .collect::<Vec<_>>()
        );
    }
}

/// Checks `Portico-Signature: t=…,v1=…` against the secret independently of the host's code.
fn verify(secret: &str, r: &Received) {
    let mut t = None;
    let mut v1 = None;
    for part in r.signature.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => v1 = Some(v.to_owned()),
            _ => {}
        }
    }
    let (t, v1) = (t.expect("t="), v1.expect("v1="));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want, "signature of {}", r.event);
}

fn fast_webhooks(c: &mut portico_host::Config) {
    c.webhooks.poll_ms = 20;
    c.webhooks.retry_base_ms = 40;
    c.webhooks.retry_max_ms = 200;
}

async fn register(s: &TestServer, org: &str, url: &str, events: Value) -> String {
    let r = s
        .admin("POST", &format!("/orgs/{org}/webhooks"))
        .json(&json!({ "url": url, "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn webhooks_are_signed_retried_until_delivered_and_visible() {
    let s = TestServer::start_with(fast_webhooks).await;
    s.org("acme").await;
    s.org("other").await;
    let hook = receiver(2).await;
    let bystander = receiver(0).await;
    let secret = register(&s, "acme", &hook.url, json!([])).await;
    register(&s, "other", &bystander.url, json!([])).await;

    let installed = s.install("acme", "carddav").await;
    let book = Book::from_install(&s, "acme", &installed);
    let inst_id = book.installation.clone();
    let r = s
        .admin(
            "POST",
            &format!("/orgs/acme/installations/{inst_id}/actions/regenerate-password"),
        )
        .send()
        .await
        .unwrap();
    let new_password = r.json::<Value>().await.unwrap()["result"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let book = book.with_credentials("acme", &new_password);
    // A contact written by a phone.
    let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:phone-1\r\nFN:Dana Phone\r\nEND:VCARD\r\n";
    let put = book
        .req("PUT", &book.card("phone-1.vcf"))
        .header("content-type", "text/vcard")
        .body(card)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    // A change the platform itself made is not echoed back to it.
    s.admin("POST", "/orgs/acme/customers")
        .json(&json!({ "name": "Made By Platform" }))
        .send()
        .await
        .unwrap();

    let delivered = hook
        .wait_for(&[
            "installation.installed",
            "installation.action",
            "carddav.password_regenerated",
            "customer.changed",
        ])
        .await;
    for r in &delivered {
        verify(&secret, r);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["org_id"], "acme");
        assert_eq!(body["type"], r.event.as_str());
    }
    let changed: Vec<Value> = delivered
        .iter()
        .filter(|r| r.event == "customer.changed")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(changed.len(), 1, "only the phone's change: {changed:?}");
    assert_eq!(changed[0]["data"]["change"], "created");
    assert_eq!(changed[0]["data"]["kind"], "carddav");
    assert_eq!(changed[0]["installation_id"], inst_id.as_str());

    // Each delivery failed twice, then succeeded, under one delivery id.
    let all = hook.got.lock().unwrap().clone();
    let installed: Vec<&Received> = all
        .iter()
        .filter(|r| r.event == "installation.installed")
        .collect();
    assert_eq!(
        installed.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    assert!(installed
        .iter()
        .all(|r| r.delivery == installed[0].delivery));
    assert!(
        bystander.got.lock().unwrap().is_empty(),
        "another organization's endpoint hears nothing"
    );

    // The admin API shows the attempts.
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = s
            .admin("GET", "/orgs/acme/webhooks")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if listed[0]["pending"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed[0]["pending"], 0);
    assert!(listed[0].get("secret").is_none());
    let outcomes: Vec<&str> = listed[0]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"retry") && outcomes.contains(&"delivered"));
    let retry = listed[0]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["outcome"] == "retry")
        .unwrap();
    assert_eq!(retry["status"], 500);

    // Organization tokens manage their own organization's endpoints only.
    let token: Value = s
        .admin("POST", "/orgs/other/tokens")
        .json(&json!({ "label": "owner" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let as_other = s
        .req("GET", "/admin/api/orgs/acme/webhooks")
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(as_other.status(), 404);
    hook.handle.stop(true).await;
    bystander.handle.stop(true).await;
    s.stop().await;
}

#[tokio::test]
async fn the_outbox_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let hook = receiver(0).await;
    let p = path.clone();
    // First process: never gets round to delivering.
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        c.webhooks.poll_ms = 3_600_000;
    })
    .await;
    s.org("acme").await;
    register(&s, "acme", &hook.url, json!(["installation.installed"])).await;
    s.install("acme", "carddav").await;
    let metrics = s
        .req("GET", "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("portico_webhook_outbox_depth 1"),
        "{metrics}"
    );
    s.stop().await;
    assert!(hook.got.lock().unwrap().is_empty());

    let p = path.clone();
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        fast_webhooks(c);
    })
    .await;
    let got = hook.wait_for(&["installation.installed"]).await;
    assert_eq!(got.len(), 1);
    hook.handle.stop(true).await;
    s.stop().await;
}

#[tokio::test]
async fn install_input_is_checked_against_the_manifest_then_by_the_app() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let install = |config: Value| {
        s.admin("POST", "/orgs/acme/installations")
            .json(&json!({ "kind": "hello", "config": config }))
            .send()
    };
    for (config, says) in [
        (json!({ "greeting": 5 }), "must be text"),
        (json!({ "colour": "red" }), "unknown setting 'colour'"),
        (json!({ "greeting": "x".repeat(201) }), "longer than 200"),
        (
            json!({ "greeting": "   " }),
            "at least one visible character",
        ),
    ] {
        let r = install(config.clone()).await.unwrap();
        assert_eq!(r.status(), 422, "{config}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{config}: {v}"
        );
    }
    let none: Value = s
        .admin("GET", "/orgs/acme/installations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]), "refused installs store nothing");
    let r = s
        .admin("POST", "/orgs/acme/installations")
        .json(&json!({ "kind": "carddav", "config": { "x": 1 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "unknown settings are refused");

    let ok = install(json!({})).await.unwrap();
    assert_eq!(ok.status(), 201);
    let id = ok.json::<Value>().await.unwrap()["installation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status: Value = s
        .admin("GET", &format!("/orgs/acme/installations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["status"]["details"]["greeting"], "Hello",
        "the default"
    );

    let apps: Value = s
        .admin("GET", "/apps")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hello = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "hello")
        .unwrap();
    assert_eq!(hello["data_version"], 2);
    assert_eq!(hello["config"][0]["name"], "greeting");
    assert_eq!(hello["config"][0]["kind"]["type"], "text");
    s.stop().await;
}

#[tokio::test]
async fn request_logs_rate_limits_and_metrics() {
    let s = TestServer::start_with(|c| {
        c.apps.rate_limits.insert(
            "hello".into(),
            portico_host::operations::RateLimit {
                per_second: 0.2,
                burst: 3,
            },
        );
    })
    .await;
    let mut tokens = Vec::new();
    for org in ["a", "b"] {
        s.org(org).await;
        let inst = s.install(org, "hello").await;
        tokens.push((
            format!(
                "/api/apps/{org}/{}/",
                inst["installation"]["id"].as_str().unwrap()
            ),
            inst["reveal"]["token"].as_str().unwrap().to_owned(),
            inst["installation"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    let (a_base, a_token, a_id) = &tokens[0];
    let (b_base, b_token, _) = &tokens[1];
    let mut statuses = Vec::new();
    for i in 0..4 {
        let r = s
            .req("GET", &format!("{a_base}item/{i}?secret=do-not-log"))
            .bearer_auth(a_token)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1);
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let other = s
        .req("GET", b_base)
        .bearer_auth(b_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        200,
        "another installation has its own bucket"
    );

    let log: Value = s
        .admin("GET", &format!("/orgs/a/installations/{a_id}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0]["status"], 429, "newest first");
    assert_eq!(log[3]["path"], "/item/0");
    assert_eq!(log[3]["method"], "GET");
    let text = serde_json::to_string(log).unwrap();
    assert!(!text.contains("do-not-log") && !text.contains(a_token.as_str()));
    let foreign = s
        .admin("GET", &format!("/orgs/b/installations/{a_id}/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    let metrics = s
        .req("GET", "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "portico_app_requests_total{kind=\"hello\",status=\"200\"} 4",
        "portico_app_requests_total{kind=\"hello\",status=\"429\"} 1",
        "portico_rate_limited_requests_total{kind=\"hello\"} 1",
        "portico_app_request_duration_seconds_count{kind=\"hello\"} 5",
        "portico_store_operation_duration_seconds_count{op=\"get_installation\"}",
        "portico_installation_cache_lookups_total{outcome=\"hit\"}",
        "portico_webhook_outbox_depth 0",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
    s.stop().await;
}

#[tokio::test]
async fn an_app_kind_switched_off_answers_503_and_comes_back_intact() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let s = TestServer::start_with(move |c| c.store.data_dir = p).await;
    s.org("acme").await;
    let inst = s.install("acme", "hello").await;
    let base = format!(
        "/api/apps/acme/{}/",
        inst["installation"]["id"].as_str().unwrap()
    );
    let token = inst["reveal"]["token"].as_str().unwrap().to_owned();
    s.stop().await;

    let p = dir.path().to_path_buf();
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        c.apps.disabled = vec!["hello".into()];
    })
    .await;
    let r = s
        .req("GET", &base)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("switched off"));
    let carddav = s.install("acme", "carddav").await;
    assert_eq!(
        carddav["installation"]["kind"], "carddav",
        "other apps work"
    );
    s.stop().await;

    let p = dir.path().to_path_buf();
    let s = TestServer::start_with(move |c| c.store.data_dir = p).await;
    let r = s
        .req("GET", &base)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "nothing was uninstalled");
    s.stop().await;
}

#[tokio::test]
async fn unknown_kinds_in_the_operator_settings_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = portico_host::Config::default();
    cfg.store.data_dir = dir.path().to_path_buf();
    cfg.secrets.create_key_file = true;
    cfg.apps.disabled = vec!["nope".into()];
    let err = portico_host::server::build(&cfg, portico_host::registry::builtin().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("apps.disabled names 'nope'"),
        "{err}"
    );
}

#[tokio::test]
async fn data_migrations_run_once_at_startup_and_newer_data_is_refused() {
    use portico_sdk::{Installation, InstallationId, InstallationStatus, OrgId, Timestamp};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = portico_host::Config::default();
    cfg.store.data_dir = dir.path().to_path_buf();
    cfg.secrets.create_key_file = true;
    let build = || portico_host::server::build(&cfg, portico_host::registry::builtin().unwrap());
    let id = InstallationId::parse("old-hello").unwrap();
    let org = OrgId::parse("acme").unwrap();
    {
        let p = build().await.unwrap();
        p.create_org("acme", "Acme", Some(org.clone()))
            .await
            .unwrap();
        // A record as version 1 of the hello app wrote it.
        let v1 = Installation {
            id: id.clone(),
            org_id: org.clone(),
            kind: "hello".into(),
            status: InstallationStatus::Connected,
            status_text: None,
            account: None,
            data: json!({ "greeting": "Hej", "token": "x", "rotations": 0 }),
            revision: 1,
            created_at: Timestamp(1),
            updated_at: Timestamp(1),
            data_version: 1,
        };
        p.store.insert_installation(&v1).await.unwrap();
    }
    let rev_after_first;
    {
        let p = build().await.unwrap();
        let got = p.store.get_installation(&org, &id).await.unwrap().unwrap();
        assert_eq!(got.data_version, 2);
        assert_eq!(got.data["settings"]["greeting"], "Hej");
        assert!(got.data.get("greeting").is_none());
        rev_after_first = got.revision;
        assert_eq!(p.migrate_installations().await.unwrap(), 0, "once");
    }
    {
        let p = build().await.unwrap();
        let mut got = p.store.get_installation(&org, &id).await.unwrap().unwrap();
        assert_eq!(got.revision, rev_after_first, "not migrated again");
        got.data_version = 99;
        p.store.update_installation(&got).await.unwrap();
    }
    let err = build().await.err().expect("newer data is refused");
    assert!(err.to_string().contains("newer than this build"), "{err}");
    let _ = ADMIN_TOKEN;
}

#[tokio::test]
async fn online_key_rotation_covers_app_secrets_and_webhook_secrets() {
    use base64::Engine;
    use portico_sdk::Secret;
    let b64 = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let (key_a, key_b) = (b64(1), b64(2));
    let dir = tempfile::tempdir().unwrap();
    let hook = receiver(0).await;
    let p = dir.path().to_path_buf();
    let a = key_a.clone();
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        c.secrets.key = Some(Secret::new(a));
        c.webhooks.poll_ms = 3_600_000;
    })
    .await;
    s.org("acme").await;
    let secret = register(&s, "acme", &hook.url, json!(["customer.changed"])).await;
    let installed = s.install("acme", "carddav").await;
    s.stop().await;

    // B active, A still opens: rotate online through the running server.
    let p = dir.path().to_path_buf();
    let (a, b) = (key_a.clone(), key_b.clone());
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        c.secrets.key = Some(Secret::new(b));
        c.secrets.previous_keys = vec![Secret::new(a)];
        c.webhooks.poll_ms = 3_600_000;
    })
    .await;
    let rotate = || async {
        let r = s.admin("POST", "/keys/rotate").send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let first = rotate().await;
    assert_eq!(
        first["values_resealed"], 2,
        "the password and the webhook secret: {first}"
    );
    assert_eq!(first["complete"], true);
    let again = rotate().await;
    assert_eq!(again["values_resealed"], 0, "{again}");
    s.stop().await;

    // Only B now: both secrets still work.
    let p = dir.path().to_path_buf();
    let b = key_b.clone();
    let s = TestServer::start_with(move |c| {
        c.store.data_dir = p;
        c.secrets.key = Some(Secret::new(b));
        fast_webhooks(c);
    })
    .await;
    let book = Book::from_install(&s, "acme", &installed);
    let put = book
        .req("PUT", &book.card("k-1.vcf"))
        .header("content-type", "text/vcard")
        .body("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:k-1\r\nFN:Key Test\r\nEND:VCARD\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201, "the rotated CardDAV password opens");
    let got = hook.wait_for(&["customer.changed"]).await;
    verify(&secret, &got[0]);
    hook.handle.stop(true).await;
    s.stop().await;
}
