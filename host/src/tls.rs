//! Built-in HTTPS (`[http.tls]`): rustls on `server.listen`, the certificate re-read on SIGHUP,
//! and an optional plain-HTTP listener that redirects to the HTTPS origin.
//!
//! The served certificate sits behind a lock in [`CertStore`], which rustls asks for it on every
//! handshake: a reload changes what new handshakes get and leaves open connections alone.
use crate::config::{Config, TlsConfig};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Why the TLS settings cannot be used. Each names the setting and the file or address.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file is missing, unreadable or holds nothing usable.
    #[error("{setting} {}: {problem}", path.display())]
    File {
        /// `http.tls.cert_file` or `http.tls.key_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The key does not belong to the certificate.
    #[error(
        "http.tls.key_file {}: this key does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration.
    #[error("http.tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The redirect listener could not bind its address.
    #[error("http.tls.redirect_http_listen {addr}: cannot listen: {reason}")]
    Listen {
        /// The configured address.
        addr: String,
        /// Why.
        reason: std::io::Error,
    },
}

/// What is logged about a loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-256 of the server certificate (DER), as `AB:CD:…` (what
    /// `openssl x509 -noout -fingerprint -sha256` prints).
    pub sha256: String,
    /// The subject's common attributes, e.g. `CN=contacts.example.com, O=Example`.
    pub subject: Option<String>,
    /// The end of validity as written in the certificate, e.g. `2026-01-31 12:00:00 UTC`.
    pub not_after: Option<String>,
    /// Certificates in the chain, the server's included.
    pub chain_len: usize,
}

/// The certificate being served, re-read from its files on demand.
#[derive(Debug)]
pub struct CertStore {
    files: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<(Arc<CertifiedKey>, CertInfo)>,
}

impl CertStore {
    /// Reads and checks both files.
    pub fn load(files: &TlsConfig) -> Result<CertStore, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (key, info) = load_pair(files, &provider)?;
        Ok(CertStore {
            files: files.clone(),
            provider,
            current: RwLock::new((key, info)),
        })
    }

    /// What is served now.
    pub fn info(&self) -> CertInfo {
        match self.current.read() {
            Ok(g) => g.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Re-reads both files. A good pair replaces the served one for new handshakes; a bad one
    /// changes nothing and is returned (the caller logs it).
    pub fn reload(&self) -> Result<CertInfo, TlsError> {
        let (key, info) = load_pair(&self.files, &self.provider)?;
        let mut slot = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = (key, info.clone());
        Ok(info)
    }

    fn log_serving(&self, what: &str) {
        let info = self.info();
        tracing::info!(
            cert_file = %self.files.cert_file.display(),
            key_file = %self.files.key_file.display(),
            sha256 = %info.sha256,
            subject = info.subject.as_deref().unwrap_or("?"),
            not_after = info.not_after.as_deref().unwrap_or("?"),
            chain = info.chain_len,
            "{what}"
        );
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let key = match self.current.read() {
            Ok(g) => g.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        };
        Some(key)
    }
}

fn file_error(setting: &'static str, path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError::File {
        setting,
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Reads the chain and the key, and checks that they go together.
fn load_pair(
    files: &TlsConfig,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, CertInfo), TlsError> {
    const CERT: &str = "http.tls.cert_file";
    const KEY: &str = "http.tls.key_file";
    let (cert_path, key_path) = (&files.cert_file, &files.key_file);
    let cert_pem =
        std::fs::read(cert_path).map_err(|e| file_error(CERT, cert_path, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            file_error(
                CERT,
                cert_path,
                format!("not a PEM certificate chain: {}", pem_problem(&e)),
            )
        })?;
    let Some(leaf) = chain.first() else {
        return Err(file_error(
            CERT,
            cert_path,
            "no certificate in the file (expected PEM \"BEGIN CERTIFICATE\" blocks)",
        ));
    };
    let info = CertInfo {
        sha256: fingerprint(leaf),
        subject: der::subject(leaf),
        not_after: der::not_after(leaf),
        chain_len: chain.len(),
    };
    let key_pem = std::fs::read(key_path).map_err(|e| file_error(KEY, key_path, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let problem = match e {
            pem::Error::NoItemsFound => {
                "no private key in the file (expected PEM PKCS#8, RSA or EC)".to_owned()
            }
            e => format!("not a PEM private key: {}", pem_problem(&e)),
        };
        file_error(KEY, key_path, problem)
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| file_error(KEY, key_path, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
            })
        }
        Err(e) => {
            return Err(file_error(
                CERT,
                cert_path,
                format!("not a valid X.509 certificate: {e}"),
            ))
        }
    }
    Ok((Arc::new(certified), info))
}

/// A PEM syntax error in words (the library's own message shows markers as byte lists).
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!(
                "no \"-----END {}-----\" line",
                String::from_utf8_lossy(end_marker)
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed line \"{}\"", String::from_utf8_lossy(line))
        }
        e => e.to_string(),
    }
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Built-in TLS, loaded and checked at startup: the rustls configuration, the certificate store
/// and the bound redirect listener.
pub struct Tls {
    certs: Arc<CertStore>,
    server_config: rustls::ServerConfig,
    redirect: Option<TcpListener>,
}

impl Tls {
    /// `None` without `[http.tls]`. Reads the certificate and key (a missing, unreadable or
    /// invalid file fails here, naming it), logs what is served and binds the redirect
    /// listener.
    pub fn from_config(cfg: &Config) -> Result<Option<Tls>, TlsError> {
        let Some(files) = &cfg.http.tls else {
            return Ok(None);
        };
        let certs = Arc::new(CertStore::load(files)?);
        let server_config = rustls::ServerConfig::builder_with_provider(certs.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        // Blank means off (an environment variable or flag cannot remove a file's setting).
        let redirect_addr = files
            .redirect_http_listen
            .as_ref()
            .filter(|a| !a.trim().is_empty());
        let redirect = match redirect_addr {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|reason| TlsError::Listen {
                addr: addr.clone(),
                reason,
            })?),
            None => None,
        };
        certs.log_serving("serving TLS certificate");
        Ok(Some(Tls {
            certs,
            server_config,
            redirect,
        }))
    }

    /// The certificate store (what is served, reloading).
    pub fn certs(&self) -> &Arc<CertStore> {
        &self.certs
    }

    /// The rustls configuration for the HTTPS listener.
    pub fn server_config(&self) -> rustls::ServerConfig {
        self.server_config.clone()
    }

    /// The redirect listener's address, if there is one.
    pub fn redirect_addr(&self) -> Option<std::net::SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts what runs beside the HTTPS server: certificate reload on SIGHUP and the redirect
    /// listener (its own small server, stopping on SIGTERM like the main one). Call on the
    /// runtime that serves.
    pub fn start_side_tasks(&mut self, cfg: &Config) -> std::io::Result<()> {
        spawn_reload_on_sighup(self.certs.clone())?;
        if let Some(listener) = self.redirect.take() {
            let origin = https_origin(&cfg.public_url());
            tracing::info!(
                listen = %listener.local_addr()?,
                to = %origin,
                "redirecting plain HTTP to HTTPS"
            );
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(RedirectTo(origin.clone())))
                    .default_service(web::to(redirect))
            })
            .workers(1)
            .shutdown_timeout(cfg.server.shutdown_timeout_secs)
            .listen(listener)?
            .run();
            tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the HTTP redirect listener stopped");
                }
            });
        }
        Ok(())
    }
}

/// The public origin with its scheme made `https`.
fn https_origin(public_url: &str) -> String {
    match public_url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => public_url.to_owned(),
    }
}

struct RedirectTo(String);

/// 308 to the same path and query on the configured HTTPS origin (never the request's `Host`
/// header, which a client chooses).
async fn redirect(req: HttpRequest, to: web::Data<RedirectTo>) -> HttpResponse {
    let path = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, format!("{}{path}", to.0)))
        .finish()
}

#[cfg(unix)]
fn spawn_reload_on_sighup(certs: Arc<CertStore>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Registered now, before the server answers: from then on SIGHUP no longer ends the
    // process.
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        // One reload per signal, for the life of the process.
        while hangups.recv().await.is_some() {
            let store = certs.clone();
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(Ok(_)) => certs.log_serving("SIGHUP: reloaded the TLS certificate"),
                Ok(Err(e)) => tracing::error!(
                    error = %e,
                    "SIGHUP: TLS certificate not reloaded, still serving the previous one"
                ),
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate reload failed"),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn spawn_reload_on_sighup(_certs: Arc<CertStore>) -> std::io::Result<()> {
    Ok(())
}

/// Just enough DER reading to log a certificate's subject and end of validity.
mod der {
    use rustls::pki_types::CertificateDer;

    /// One element: (tag, contents, what follows).
    fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    /// The TBSCertificate fields from the validity on: (validity, subject).
    fn validity_and_subject(cert: &[u8]) -> Option<(&[u8], &[u8])> {
        let (_, certificate, _) = next(cert)?;
        let (_, tbs, _) = next(certificate)?;
        let mut fields = tbs;
        let (tag, _, rest) = next(fields)?;
        if tag == 0xa0 {
            fields = rest; // explicit version
        }
        // serial number, signature algorithm, issuer
        for _ in 0..3 {
            fields = next(fields)?.2;
        }
        let (_, validity, rest) = next(fields)?;
        let (_, subject, _) = next(rest)?;
        Some((validity, subject))
    }

    /// `notAfter`, as `YYYY-MM-DD HH:MM:SS UTC`.
    pub(super) fn not_after(cert: &CertificateDer<'_>) -> Option<String> {
        let (validity, _) = validity_and_subject(cert.as_ref())?;
        let (_, _, rest) = next(validity)?;
        let (tag, time, _) = next(rest)?;
        let time = std::str::from_utf8(time).ok()?;
        let full = match tag {
            // UTCTime: YYMMDDHHMMSSZ, years 1950–2049
            0x17 => {
                let yy: u32 = time.get(0..2)?.parse().ok()?;
                let century = if yy < 50 { "20" } else { "19" };
                format!("{century}{time}")
            }
            0x18 => time.to_owned(), // GeneralizedTime: YYYYMMDDHHMMSSZ
            _ => return None,
        };
        let d = |r: std::ops::Range<usize>| full.get(r);
        Some(format!(
            "{}-{}-{} {}:{}:{} UTC",
            d(0..4)?,
            d(4..6)?,
            d(6..8)?,
            d(8..10)?,
            d(10..12)?,
            d(12..14)?
        ))
    }

    /// The subject's common name, organization, unit and country, e.g. `CN=a, O=b`.
    pub(super) fn subject(cert: &CertificateDer<'_>) -> Option<String> {
        let (_, mut rdns) = validity_and_subject(cert.as_ref())?;
        let mut parts = vec![];
        // Bounded by the subject's length: each step consumes at least two bytes.
        while !rdns.is_empty() {
            let (_, set, rest) = next(rdns)?;
            rdns = rest;
            let (_, attribute, _) = next(set)?;
            let (_, oid, value) = next(attribute)?;
            let (_, value, _) = next(value)?;
            let name = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{name}={}", String::from_utf8_lossy(value)));
        }
        Some(parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write_pair(dir: &Path, name: &str, cn: &str) -> TlsConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Portico Tests");
        params.not_after = rcgen::date_time_ymd(2040, 6, 30);
        let cert = params.self_signed(&key).unwrap();
        let files = TlsConfig {
            cert_file: dir.join(format!("{name}.crt")),
            key_file: dir.join(format!("{name}.key")),
            redirect_http_listen: None,
        };
        std::fs::write(&files.cert_file, cert.pem()).unwrap();
        std::fs::write(&files.key_file, key.serialize_pem()).unwrap();
        files
    }

    #[test]
    fn loads_and_describes_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "a", "contacts.test");
        let store = CertStore::load(&files).unwrap();
        let info = store.info();
        assert_eq!(
            info.subject.as_deref(),
            Some("CN=contacts.test, O=Portico Tests")
        );
        assert_eq!(info.not_after.as_deref(), Some("2040-06-30 00:00:00 UTC"));
        assert_eq!(info.chain_len, 1);
        assert_eq!(info.sha256.len(), 32 * 3 - 1);
    }

    #[test]
    fn bad_files_are_named_and_a_failed_reload_keeps_the_old_pair() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_pair(dir.path(), "a", "one");
        let other = write_pair(dir.path(), "b", "two");
        let store = CertStore::load(&files).unwrap();
        let before = store.info();

        let missing = TlsConfig {
            cert_file: dir.path().join("nope.crt"),
            ..files.clone()
        };
        let err = CertStore::load(&missing).unwrap_err().to_string();
        assert!(
            err.contains("http.tls.cert_file") && err.contains("nope.crt"),
            "{err}"
        );

        std::fs::write(&files.key_file, "not a key").unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(
            err.contains("http.tls.key_file") && err.contains("a.key"),
            "{err}"
        );
        assert!(err.contains("no private key"), "{err}");
        assert_eq!(store.info(), before);

        // The other pair's key with this certificate.
        std::fs::copy(&other.key_file, &files.key_file).unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");

        std::fs::write(
            &files.cert_file,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains("http.tls.cert_file"), "{err}");
        assert_eq!(store.info(), before);

        std::fs::copy(&other.cert_file, &files.cert_file).unwrap();
        let after = store.reload().unwrap();
        assert_ne!(after.sha256, before.sha256);
        assert_eq!(
            store.info().subject.as_deref(),
            Some("CN=two, O=Portico Tests")
        );
    }

    #[test]
    fn redirects_go_to_the_https_origin() {
        assert_eq!(https_origin("http://h:8443"), "https://h:8443");
        assert_eq!(https_origin("https://c.example"), "https://c.example");
    }
}
