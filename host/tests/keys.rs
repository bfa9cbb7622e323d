//! Key rotation with the `portico` binary as an operator runs it: secrets sealed under key A,
//! then key B active with A kept as a previous key, `portico keys rotate` (twice), then A
//! dropped; and keys that are missing or malformed refused at startup, naming the setting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");

fn key(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

/// `portico` on `data` with `active` as the key and `previous` as the previous keys.
fn portico(data: &Path, active: &str, previous: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .env_remove("PORTICO_CONFIG")
        .env("PORTICO_SECRETS__KEY", active)
        .env("PORTICO_SECRETS__PREVIOUS_KEYS", previous.join(","))
        .env("PORTICO_LOG__FILTER", "warn");
    c
}

fn run(data: &Path, active: &str, previous: &[&str], args: &[&str]) -> Output {
    portico(data, active, previous).args(args).output().unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "portico failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn password(data: &Path, active: &str, previous: &[&str], id: &str) -> Result<String, String> {
    let out = run(
        data,
        active,
        previous,
        &[
            "app",
            "action",
            "--org",
            "acme",
            "--id",
            id,
            "--name",
            "credentials",
        ],
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Ok(v["password"].as_str().unwrap().to_owned())
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `portico serve` on a free port, once it says where it listens (bounded).
fn serve(data: &Path, active: &str, previous: &[&str]) -> Server {
    let mut child = portico(data, active, previous)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
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
    std::thread::spawn(move || for _ in err.lines() {});
    let server = Server { child, url };
    assert!(!server.url.is_empty(), "portico serve did not start");
    server
}

/// Starts `portico serve` and expects it to exit with an error before serving; returns stderr.
fn refused_at_startup(data: &Path, active: &str, previous_env: &[(&str, String)]) -> String {
    let mut c = portico(data, active, &[]);
    for (k, v) in previous_env {
        c.env(k, v);
    }
    let mut child = c
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "a bad key must stop startup");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("portico started despite a bad key");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("listening"), "{err}");
    err
}

#[tokio::test]
async fn rotate_to_a_new_key_then_drop_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (key(0xA1), key(0xB2));

    // Secrets sealed under key A: the CardDAV password and the hello app's token.
    json_of(&run(
        d,
        &a,
        &[],
        &[
            "org", "create", "--slug", "acme", "--name", "Acme", "--id", "acme",
        ],
    ));
    let dav = json_of(&run(
        d,
        &a,
        &[],
        &["app", "install", "--org", "acme", "--kind", "carddav"],
    ));
    let dav_id = dav["installation"]["id"].as_str().unwrap().to_owned();
    let pw = password(d, &a, &[], &dav_id).unwrap();
    let hello = json_of(&run(
        d,
        &a,
        &[],
        &["app", "install", "--org", "acme", "--kind", "hello"],
    ));
    let hello_id = hello["installation"]["id"].as_str().unwrap().to_owned();
    let token = hello["reveal"]["token"].as_str().unwrap().to_owned();

    // Key ids are derived from the keys: B active, A previous.
    let ids_a = json_of(&run(d, &a, &[], &["keys", "id"]));
    let ids = json_of(&run(d, &b, &[&a], &["keys", "id"]));
    let (id_a, id_b) = (
        ids_a["active"].as_str().unwrap(),
        ids["active"].as_str().unwrap(),
    );
    assert_eq!(id_a.len(), 8);
    assert_ne!(id_a, id_b);
    assert_eq!(ids["previous"], serde_json::json!([id_a]));

    // B active, A previous: what A sealed still opens.
    assert_eq!(password(d, &b, &[&a], &dav_id).unwrap(), pw);

    // The embedded store is single-process: a rotation while the server runs is refused
    // clearly, and the server keeps serving with both keys.
    {
        let server = serve(d, &b, &[&a]);
        let out = run(d, &b, &[&a], &["keys", "rotate"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("stop the server"), "{err}");
        let http = reqwest::Client::new();
        let r = http
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                format!("{}/api/apps/acme/{dav_id}/", server.url),
            )
            .basic_auth("acme", Some(&pw))
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 207);
    }

    let report = json_of(&run(d, &b, &[&a], &["keys", "rotate"]));
    assert_eq!(report["active_key"], id_b);
    assert_eq!(report["installations_scanned"], 2, "{report}");
    assert_eq!(report["installations_changed"], 2, "{report}");
    assert_eq!(report["values_resealed"], 2, "{report}");
    assert_eq!(report["values_current"], 0, "{report}");
    assert_eq!(report["unreadable"], serde_json::json!([]));
    assert_eq!(report["complete"], true);

    // Again (as after an interruption): nothing is left to re-seal.
    let again = json_of(&run(d, &b, &[&a], &["keys", "rotate"]));
    assert_eq!(again["values_resealed"], 0, "{again}");
    assert_eq!(again["installations_changed"], 0, "{again}");
    assert_eq!(again["values_current"], 2, "{again}");
    assert_eq!(again["complete"], true);

    // A removed: everything opens with B alone, through the apps and over HTTP.
    assert_eq!(password(d, &b, &[], &dav_id).unwrap(), pw);
    {
        let server = serve(d, &b, &[]);
        let http = reqwest::Client::new();
        let r = http
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                format!("{}/api/apps/acme/{dav_id}/", server.url),
            )
            .basic_auth("acme", Some(&pw))
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 207);
        let r = http
            .get(format!("{}/api/apps/acme/{hello_id}/x", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // And the values really moved: A alone no longer opens them.
    let err = password(d, &a, &[], &dav_id).unwrap_err();
    assert!(!err.is_empty());
}

#[test]
fn missing_or_malformed_keys_are_refused_at_startup_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = key(1);

    let err = refused_at_startup(
        d,
        &a,
        &[(
            "PORTICO_SECRETS__PREVIOUS_KEYS",
            format!("{},not-a-key!", key(2)),
        )],
    );
    assert!(err.contains("secrets.previous_keys[1]"), "{err}");

    let short = STANDARD.encode([3u8; 16]);
    let err = refused_at_startup(d, &a, &[("PORTICO_SECRETS__PREVIOUS_KEYS", short)]);
    assert!(err.contains("secrets.previous_keys[0]"), "{err}");
    assert!(err.contains("32 bytes"), "{err}");

    let missing = d.join("retired.key");
    let err = refused_at_startup(
        d,
        &a,
        &[(
            "PORTICO_SECRETS__PREVIOUS_KEY_FILES",
            missing.display().to_string(),
        )],
    );
    assert!(err.contains("secrets.previous_key_files[0]"), "{err}");
    assert!(err.contains("retired.key"), "{err}");

    let err = refused_at_startup(d, "too-short", &[]);
    assert!(err.contains("secrets.key"), "{err}");

    // `keys id` checks the same way, without opening the store.
    let out = run(d, &a, &["bad"], &["keys", "id"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets.previous_keys[0]"));
}
