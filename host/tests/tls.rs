//! Built-in HTTPS (`[http.tls]`) on the real `portico` binary, with self-signed certificates
//! made here: HTTPS and CardDAV over it, plain HTTP refused on the TLS port, the HTTP→HTTPS
//! redirect listener, certificate reload on SIGHUP (a bad pair keeps the old one serving), and a
//! bad certificate stopping startup with the file's name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const TOKEN: &str = "tls-test-admin-token";

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key, as PEM.
struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Pair {
    fn new(name: &str, serial: u64) -> Pair {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        let cert = params.self_signed(&key).unwrap();
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn write(&self, files: &Files) {
        std::fs::write(&files.cert, &self.cert_pem).unwrap();
        std::fs::write(&files.key, &self.key_pem).unwrap();
    }

    /// As `openssl x509 -fingerprint -sha256` prints it, and Portico logs it.
    fn fingerprint(&self) -> String {
        let d = Sha256::digest(&self.der);
        d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

struct Files {
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }

    /// A config file with `[http.tls]` naming these files.
    fn config(&self, dir: &Path, redirect: bool) -> PathBuf {
        let mut text = format!(
            "[http.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            self.cert.display().to_string(),
            self.key.display().to_string()
        );
        if redirect {
            text.push_str("redirect_http_listen = \"127.0.0.1:0\"\n");
        }
        let path = dir.join("portico.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

struct Proc {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log lines without terminal colours.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn portico(config: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("PORTICO_ADMIN__TOKEN", TOKEN)
        .env("PORTICO_SECRETS__CREATE_KEY_FILE", "true")
        .env("PORTICO_LOG__FILTER", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `portico serve` and waits (bounded) for its "listening" line; stderr is kept.
fn serve(config: &Path, data: &Path) -> Proc {
    let mut child = portico(config, data).spawn().unwrap();
    let err = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    // Drains stderr until the child exits, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(plain(&line));
        }
    });
    let mut p = Proc {
        child,
        url: String::new(),
        log,
    };
    let line = wait_for_line(&p, "portico listening on ");
    p.url = line
        .split("portico listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    p
}

/// The first log line containing `needle` (waits up to 20 s).
fn wait_for_line(p: &Proc, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(l) = p.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "no log line with {needle:?}; log:\n{}",
        p.log.lock().unwrap().join("\n")
    );
}

fn count_lines(p: &Proc, needle: &str) -> usize {
    p.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

/// A client trusting only `roots`, reporting the server's certificate, opening a new connection
/// for every request and following no redirect.
fn client(roots: &[&Pair]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10));
    for pair in roots {
        b = b.add_root_certificate(
            reqwest::Certificate::from_pem(pair.cert_pem.as_bytes()).unwrap(),
        );
    }
    b.build().unwrap()
}

/// The DER of the certificate the server presented.
fn presented(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info with the peer certificate")
        .to_vec()
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

fn hangup(p: &Proc) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serves_https_carddav_and_redirects_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let pair = Pair::new("portico-test-1", 1);
    pair.write(&files);
    let config = files.config(dir.path(), true);
    let p = serve(&config, &dir.path().join("data"));
    assert!(p.url.starts_with("https://127.0.0.1:"), "{}", p.url);
    let http = client(&[&pair]);
    wait_ready(&http, &p.url).await;

    let r = http.get(format!("{}/healthz", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(presented(&r), pair.der);
    // The served certificate is logged with its files and fingerprint.
    let line = wait_for_line(&p, "serving TLS certificate");
    assert!(line.contains(&pair.fingerprint()), "{line}");
    assert!(
        line.contains("server.crt") && line.contains("server.key"),
        "{line}"
    );
    assert!(line.contains("CN=portico-test-1"), "{line}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain_url = p.url.replacen("https://", "http://", 1);
    let r = reqwest::Client::new()
        .get(format!("{plain_url}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP answered on the TLS port: {r:?}");

    // The CardDAV flow over HTTPS; the URL given out is the HTTPS one.
    let r = http
        .post(format!("{}/admin/api/orgs", p.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"slug": "acme", "name": "Acme", "id": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(format!("{}/admin/api/orgs/acme/installations", p.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"kind": "carddav"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let inst: serde_json::Value = r.json().await.unwrap();
    let url = inst["reveal"]["url"].as_str().unwrap().to_owned();
    let password = inst["reveal"]["password"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/api/apps/acme/", p.url)),
        "{url}"
    );
    let r = http
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), &url)
        .basic_auth("acme", Some(&password))
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    assert!(r.text().await.unwrap().contains("multistatus"));

    // The redirect listener: 308 to the same path and query on the HTTPS origin.
    let line = wait_for_line(&p, "redirecting plain HTTP to HTTPS");
    let addr = line
        .split("listen=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    let plain_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = plain_client
        .get(format!(
            "http://{addr}/.well-known/carddav/x?a=1&b=two%20words"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}/.well-known/carddav/x?a=1&b=two%20words", p.url)
    );
    let r = plain_client
        .request(
            reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
            format!("http://{addr}/"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}/", p.url)
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let first = Pair::new("portico-test-first", 11);
    let second = Pair::new("portico-test-second", 22);
    first.write(&files);
    let config = files.config(dir.path(), false);
    let p = serve(&config, &dir.path().join("data"));
    let only_first = client(&[&first]);
    wait_ready(&only_first, &p.url).await;
    // A kept-alive connection opened before the reload.
    let kept = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(first.cert_pem.as_bytes()).unwrap())
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = kept.get(format!("{}/healthz", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(presented(&r), first.der);

    second.write(&files);
    hangup(&p);
    wait_for_line(&p, "reloaded the TLS certificate");
    let either = client(&[&first, &second]);
    let r = either
        .get(format!("{}/healthz", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        presented(&r),
        second.der,
        "a new connection gets the new certificate"
    );
    // A new client (no TLS session to resume) trusting only the old certificate is refused.
    assert!(
        client(&[&first])
            .get(format!("{}/healthz", p.url))
            .send()
            .await
            .is_err(),
        "a client trusting only the old certificate is refused"
    );
    let only_second = client(&[&second]);
    let r = only_second
        .get(format!("{}/healthz", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(wait_for_line(&p, "reloaded the TLS certificate").contains(&second.fingerprint()));
    // The connection opened before the reload was not dropped.
    let r = kept.get(format!("{}/healthz", p.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A bad new certificate: logged with the file's name, the previous one keeps serving.
    std::fs::write(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    hangup(&p);
    let line = wait_for_line(&p, "TLS certificate not reloaded");
    assert!(line.contains(&files.cert.display().to_string()), "{line}");
    assert!(line.contains("ERROR"), "{line}");
    // A key that does not match: refused as well, naming the key file.
    Pair::new("portico-test-third", 33).write(&files);
    std::fs::write(&files.key, &first.key_pem).unwrap();
    hangup(&p);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count_lines(&p, "TLS certificate not reloaded") < 2 {
        assert!(Instant::now() < deadline, "second failed reload not logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = p.log.lock().unwrap().join("\n");
    assert!(log.contains("does not belong"), "{log}");
    let r = only_second
        .get(format!("{}/healthz", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(presented(&r), second.der);
    let mut p = p;
    assert!(p.child.try_wait().unwrap().is_none(), "still running");
}

/// Runs `cmd` to its end (at most 30 s) and returns its status and stderr.
fn run_bounded(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("portico did not stop on a bad certificate");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, plain(&reader.join().unwrap()))
}

#[test]
fn a_bad_certificate_or_key_stops_startup_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let config = files.config(dir.path(), false);
    let data = dir.path().join("data");
    let cert = files.cert.display().to_string();
    let key = files.key.display().to_string();
    let pair = Pair::new("portico-test", 7);

    // Missing certificate file.
    let (status, err) = run_bounded(portico(&config, &data));
    assert!(!status.success());
    assert!(err.contains(&format!("http.tls.cert_file {cert}")), "{err}");
    assert!(!err.contains("portico listening"), "{err}");

    // Not a certificate.
    std::fs::write(&files.cert, "hello\n").unwrap();
    std::fs::write(&files.key, &pair.key_pem).unwrap();
    let (status, err) = run_bounded(portico(&config, &data));
    assert!(!status.success());
    assert!(
        err.contains(&cert) && err.contains("no certificate"),
        "{err}"
    );

    // A key file without a key.
    std::fs::write(&files.cert, &pair.cert_pem).unwrap();
    std::fs::write(&files.key, &pair.cert_pem).unwrap();
    let (status, err) = run_bounded(portico(&config, &data));
    assert!(!status.success());
    assert!(
        err.contains(&format!("http.tls.key_file {key}")) && err.contains("no private key"),
        "{err}"
    );

    // The key of another certificate.
    std::fs::write(&files.key, Pair::new("other", 8).key_pem).unwrap();
    let (status, err) = run_bounded(portico(&config, &data));
    assert!(!status.success());
    assert!(
        err.contains(&key) && err.contains("does not belong"),
        "{err}"
    );
}
