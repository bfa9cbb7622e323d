//! Nothing secret reaches the logs: the real binary runs at `debug` level through a session
//! that handles every kind of secret (admin token, organization token, page session cookie,
//! CardDAV passwords old and new, Basic credentials right and wrong, a webhook signing secret),
//! and its whole output is searched for each of them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "logs-test-admin-token-7f3a9c";

#[tokio::test]
async fn no_secret_is_ever_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("PORTICO_ADMIN__TOKEN", TOKEN)
        .env("PORTICO_SECRETS__CREATE_KEY_FILE", "true")
        .env("PORTICO_LOG__FILTER", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
    for stream in [
        Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stdout.take().unwrap()),
    ] {
        let lines = lines.clone();
        let tx = url_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(u) = line.trim().strip_prefix("portico listening on ") {
                    let _ = tx.send(u.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
    }
    let url = url_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("started");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{url}/readyz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = |m: reqwest::Method, p: &str| {
        http.request(m, format!("{url}/admin/api{p}"))
            .bearer_auth(TOKEN)
    };
    let mut secrets: Vec<String> = vec![TOKEN.into()];

    admin(reqwest::Method::POST, "/orgs")
        .json(&json!({"slug": "acme", "name": "Acme", "id": "acme"}))
        .send()
        .await
        .unwrap();
    let inst: Value = admin(reqwest::Method::POST, "/orgs/acme/installations")
        .json(&json!({"kind": "carddav"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = inst["installation"]["id"].as_str().unwrap().to_owned();
    let first_password = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let base = format!("{url}/api/apps/acme/{id}/");
    let basic = |pw: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("acme:{pw}"))
        )
    };
    let propfind = |auth: String| {
        http.request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("{base}addressbook/customers/"),
        )
        .header("Depth", "1")
        .header("authorization", auth)
        .send()
    };
    assert_eq!(
        propfind(basic(&first_password)).await.unwrap().status(),
        207
    );
    let wrong = "not-the-password-91ac";
    assert_eq!(propfind(basic(wrong)).await.unwrap().status(), 401);
    let regen: Value = admin(
        reqwest::Method::POST,
        &format!("/orgs/acme/installations/{id}/actions/regenerate-password"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second_password = regen["result"]["password"].as_str().unwrap().to_owned();
    assert_eq!(
        propfind(basic(&second_password)).await.unwrap().status(),
        207
    );
    let token: Value = admin(reqwest::Method::POST, "/orgs/acme/tokens")
        .json(&json!({"label": "owner"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_token = token["token"].as_str().unwrap().to_owned();
    let signin = http
        .post(format!("{url}/admin/session"))
        .json(&json!({"token": org_token}))
        .send()
        .await
        .unwrap();
    let cookie = signin.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let csrf = signin.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook: Value = admin(reqwest::Method::POST, "/orgs/acme/webhooks")
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hook_secret = hook["secret"].as_str().unwrap().to_owned();
    // A failing request that carries a token in its query string and body.
    let _ = http
        .post(format!("{base}?token={TOKEN}"))
        .header("authorization", basic(&second_password))
        .body(format!("password={second_password}"))
        .send()
        .await;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));

    secrets.extend([
        first_password.clone(),
        second_password.clone(),
        wrong.to_owned(),
        org_token,
        cookie,
        csrf,
        hook_secret,
        basic(&first_password),
        basic(&second_password),
        basic(wrong),
    ]);
    let log = lines.lock().unwrap().join("\n");
    assert!(
        log.len() > 1000,
        "debug logs were captured: {} bytes",
        log.len()
    );
    assert!(log.contains("request"), "request lines are logged");
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "a secret leaked into the logs: {s}"
        );
    }
}
