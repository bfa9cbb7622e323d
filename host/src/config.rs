//! One configuration tree, layered: defaults < TOML file < `PORTICO_SECTION__KEY` environment
//! variables < command-line flags. Unknown keys anywhere are refused with their name.
use portico_sdk::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A configuration problem, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file, a variable or a flag does not fit the configuration (unknown key, wrong type).
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// HTTP protocol settings: built-in TLS.
    pub http: HttpConfig,
    /// Storage.
    pub store: StoreConfig,
    /// Master key for sealed secrets.
    pub secrets: SecretsConfig,
    /// Admin API.
    pub admin: AdminConfig,
    /// Logging.
    pub log: LogConfig,
    /// Operating the registered apps: disabling, rate limits, request logs.
    pub apps: crate::operations::AppsConfig,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::WebhooksConfig,
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Public origin clients use (no trailing slash); defaults to `http://{listen}`.
    pub public_url: Option<String>,
    /// Largest accepted request body in bytes (larger: 413 before any app runs).
    pub body_limit: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Seconds in-flight requests get to finish on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// A client must send the whole request head (line and headers) within this many
    /// milliseconds of connecting or of its previous request (slow clients are cut off: 408).
    pub request_head_timeout_ms: u64,
    /// The whole request body must arrive within this many seconds (else 408).
    pub body_timeout_secs: u64,
    /// How long an idle keep-alive connection stays open, in seconds (0: no keep-alive).
    pub keep_alive_secs: u64,
    /// Most open connections per worker; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            body_limit: 16 * 1024 * 1024,
            workers: 0,
            shutdown_timeout_secs: 30,
            request_head_timeout_ms: 5_000,
            body_timeout_secs: 60,
            keep_alive_secs: 30,
            max_connections: 10_000,
        }
    }
}

/// HTTP protocol settings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve HTTPS on `server.listen` with these files (none: plain HTTP, e.g. behind a proxy).
    pub tls: Option<TlsConfig>,
}

/// `[http.tls]`: Portico terminates TLS itself (rustls; TLS 1.2 and 1.3, HTTP/1.1). Both files
/// are read at startup, and again on SIGHUP (a bad new pair keeps the old one serving).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, RSA or EC).
    pub key_file: PathBuf,
    /// Also listen for plain HTTP here (e.g. `0.0.0.0:80`) and answer every request with a
    /// 308 redirect to the same path and query on the public HTTPS origin. Blank: off.
    #[serde(default)]
    pub redirect_http_listen: Option<String>,
}

/// Which store backend.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded redb file store in `data_dir`.
    #[default]
    Embedded,
    /// MongoDB at `uri`, database `database` (several processes may share it).
    Mongodb,
}

/// Whether the MongoDB store writes a customer and its change-log entry in a transaction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transactions {
    /// Use transactions where the deployment supports them (replica set, sharded cluster;
    /// probed at startup), else the log-first ordering.
    #[default]
    Auto,
    /// Require transactions: startup fails where the deployment has none.
    On,
    /// Never use them: log-first ordering (as on a standalone `mongod`). For servers that
    /// accept transactions but cannot run several at once, such as the nx-27017 test server.
    Off,
}

/// Storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Backend.
    pub kind: StoreKind,
    /// Data directory (embedded store, default key file).
    pub data_dir: PathBuf,
    /// MongoDB connection string (`mongodb://user:pass@host1,host2/?replicaSet=rs0`), for
    /// `kind = "mongodb"`. Connect and server-selection timeouts default to 5 s.
    pub uri: Option<Secret<String>>,
    /// MongoDB database name.
    pub database: String,
    /// MongoDB: `auto` (default), `on` or `off`; see [`Transactions`].
    pub transactions: Transactions,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            data_dir: PathBuf::from("./data"),
            uri: None,
            database: "portico".into(),
            transactions: Transactions::Auto,
        }
    }
}

/// Master key settings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The key itself (32 bytes, base64). Takes precedence over `key_file`.
    pub key: Option<Secret<String>>,
    /// A file holding the key; default `{data_dir}/master.key`.
    pub key_file: Option<PathBuf>,
    /// Create the key file with a new random key if it is missing (the demo does).
    pub create_key_file: bool,
    /// Older keys (32 bytes, base64), for opening values sealed before a rotation; never used
    /// to seal. A list in TOML; in `PORTICO_SECRETS__PREVIOUS_KEYS` or `--set`, comma-separated.
    #[serde(deserialize_with = "list_or_csv")]
    pub previous_keys: Vec<Secret<String>>,
    /// Files holding older keys, like `previous_keys` (a list, or comma-separated).
    #[serde(deserialize_with = "list_or_csv")]
    pub previous_key_files: Vec<PathBuf>,
}

/// A list given as a TOML array or as one comma-separated string (environment variables and
/// `--set` flags are strings). Blank entries are skipped.
fn list_or_csv<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: From<String>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(T::from)
        .collect())
}

/// Admin API settings.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/admin/api` (none: the admin API is closed).
    pub token: Option<Secret<String>>,
    /// The token's SHA-256 as 64 hex digits, instead of `token`, so the configuration holds
    /// nothing that signs in (`printf %s "$TOKEN" | sha256sum`).
    pub token_sha256: Option<String>,
    /// Link template to a customer in the platform admin (`{org}`, `{customer}`).
    pub customer_url: Option<String>,
}

impl AdminConfig {
    /// The SHA-256 of the admin token, from `token` or `token_sha256` (not both).
    pub fn token_digest(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        match (&self.token, &self.token_sha256) {
            (Some(_), Some(_)) => Err(ConfigError::Invalid(
                "admin.token and admin.token_sha256 are both set; keep one".into(),
            )),
            (Some(t), None) => Ok(Some(crate::admin::token_hash(t.expose()))),
            (None, Some(hex)) => {
                let hex = hex.trim();
                let bytes: Option<Vec<u8>> = (hex.len() == 64)
                    .then(|| {
                        (0..32)
                            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                            .collect()
                    })
                    .flatten();
                match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                    Some(d) => Ok(Some(d)),
                    None => Err(ConfigError::Invalid(
                        "admin.token_sha256 must be 64 hex digits (the SHA-256 of the token)"
                            .into(),
                    )),
                }
            }
            (None, None) => Ok(None),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `portico_host=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
        }
    }
}

impl Config {
    /// The public origin.
    pub fn public_url(&self) -> String {
        match &self.server.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("{}://{}", self.scheme(), self.server.listen),
        }
    }

    /// `https` when Portico serves TLS itself (`[http.tls]`), else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.http.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The key file path.
    pub fn key_file(&self) -> PathBuf {
        self.secrets
            .key_file
            .clone()
            .unwrap_or_else(|| self.store.data_dir.join("master.key"))
    }

    /// Builds the layered configuration. `overrides` are `section.key=value` pairs from flags.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let value: toml::Value = toml::from_str(&text)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
            merge(&mut tree, value);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("PORTICO_") else {
                continue;
            };
            if !rest.contains("__") {
                continue; // not a config key (e.g. PORTICO_CONFIG)
            }
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut tree, &path, scalar(&value));
        }
        for (key, value) in overrides {
            let path: Vec<String> = key.split('.').map(str::to_owned).collect();
            set_path(&mut tree, &path, scalar(value));
        }
        tree.try_into::<Config>()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The effective configuration as TOML, secrets shown as `[redacted]`.
    pub fn print_redacted(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}"))
    }
}

/// A value from the environment or a flag: booleans and integers typed, the rest strings.
fn scalar(s: &str) -> toml::Value {
    if let Ok(b) = s.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    toml::Value::String(s.to_owned())
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(tree: &mut toml::Value, path: &[String], value: toml::Value) {
    let mut over = value;
    for key in path.iter().rev() {
        let mut t = toml::map::Map::new();
        t.insert(key.clone(), over);
        over = toml::Value::Table(t);
    }
    merge(tree, over);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "[server]\nlisten = \"0.0.0.0:1\"\nbody_limit = 10\n").unwrap();
        let env = vec![
            ("PORTICO_SERVER__BODY_LIMIT".to_string(), "20".to_string()),
            ("PORTICO_CONFIG".to_string(), "ignored".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let flags = vec![("server.listen".to_string(), "127.0.0.1:9".to_string())];
        let c = Config::load(Some(&file), env, &flags).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:9");
        assert_eq!(c.server.body_limit, 20);
        assert_eq!(c.server.shutdown_timeout_secs, 30);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "[server]\nlisten_on = \"x\"\n").unwrap();
        let err = Config::load(Some(&file), vec![], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_on"), "{err}");
        let env = vec![("PORTICO_STORE__COLOUR".to_string(), "red".to_string())];
        let err = Config::load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let err = Config::load(None, vec![], &[("nope.x".into(), "1".into())]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn admin_token_as_a_hash() {
        let digest = crate::admin::token_hash("s3cret");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let c = Config::load(
            None,
            vec![("PORTICO_ADMIN__TOKEN_SHA256".into(), hex.clone())],
            &[],
        )
        .unwrap();
        assert_eq!(c.admin.token_digest().unwrap(), Some(digest));
        let both = Config::load(
            None,
            vec![
                ("PORTICO_ADMIN__TOKEN_SHA256".into(), hex),
                ("PORTICO_ADMIN__TOKEN".into(), "s3cret".into()),
            ],
            &[],
        )
        .unwrap();
        assert!(both.admin.token_digest().is_err());
        let bad = Config::load(
            None,
            vec![("PORTICO_ADMIN__TOKEN_SHA256".into(), "abc".into())],
            &[],
        )
        .unwrap();
        assert!(bad.admin.token_digest().is_err());
    }

    #[test]
    fn mongodb_from_env() {
        let env = vec![
            ("PORTICO_STORE__KIND".to_string(), "mongodb".to_string()),
            (
                "PORTICO_STORE__URI".to_string(),
                "mongodb://u:pw-123@db1:27017".to_string(),
            ),
            ("PORTICO_STORE__DATABASE".to_string(), "crm".to_string()),
        ];
        let c = Config::load(None, env, &[]).unwrap();
        assert_eq!(c.store.kind, StoreKind::Mongodb);
        assert_eq!(
            c.store.uri.as_ref().unwrap().expose(),
            "mongodb://u:pw-123@db1:27017"
        );
        assert_eq!(c.store.database, "crm");
        assert_eq!(c.store.transactions, Transactions::Auto);
        for (v, t) in [
            ("auto", Transactions::Auto),
            ("on", Transactions::On),
            ("off", Transactions::Off),
        ] {
            let env = vec![("PORTICO_STORE__TRANSACTIONS".to_string(), v.to_string())];
            assert_eq!(Config::load(None, env, &[]).unwrap().store.transactions, t);
        }
        let env = vec![(
            "PORTICO_STORE__TRANSACTIONS".to_string(),
            "maybe".to_string(),
        )];
        let err = Config::load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("maybe"), "{err}");
        assert!(
            !c.print_redacted().contains("pw-123"),
            "the URI may hold a password"
        );
        let d = Config::load(None, vec![], &[]).unwrap();
        assert_eq!(d.store.database, "portico");
        assert!(d.store.uri.is_none());
    }

    #[test]
    fn previous_keys_from_toml_env_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "[secrets]\nkey = \"k-active\"\nprevious_keys = [\"k-old-1\", \"k-old-2\"]\n\
             previous_key_files = [\"/etc/portico/old.key\"]\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), vec![], &[]).unwrap();
        let keys: Vec<&str> = c
            .secrets
            .previous_keys
            .iter()
            .map(|k| k.expose().as_str())
            .collect();
        assert_eq!(keys, ["k-old-1", "k-old-2"]);
        assert_eq!(
            c.secrets.previous_key_files,
            [PathBuf::from("/etc/portico/old.key")]
        );
        let printed = c.print_redacted();
        assert!(!printed.contains("k-old-1"), "{printed}");

        let env = vec![(
            "PORTICO_SECRETS__PREVIOUS_KEYS".to_string(),
            "k-a, k-b,".to_string(),
        )];
        let flags = vec![(
            "secrets.previous_key_files".to_string(),
            "/a.key,/b.key".to_string(),
        )];
        let c = Config::load(None, env, &flags).unwrap();
        assert_eq!(c.secrets.previous_keys.len(), 2);
        assert_eq!(c.secrets.previous_keys[1].expose(), "k-b");
        assert_eq!(
            c.secrets.previous_key_files,
            [PathBuf::from("/a.key"), PathBuf::from("/b.key")]
        );
        let d = Config::load(None, vec![], &[]).unwrap();
        assert!(d.secrets.previous_keys.is_empty() && d.secrets.previous_key_files.is_empty());
    }

    #[test]
    fn http_tls_from_toml_env_and_flags() {
        let d = Config::load(None, vec![], &[]).unwrap();
        assert!(d.http.tls.is_none());
        assert_eq!(d.public_url(), "http://127.0.0.1:8080");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(
            &file,
            "[http.tls]\ncert_file = \"/toml/cert.pem\"\nkey_file = \"/toml/key.pem\"\n",
        )
        .unwrap();
        let env = vec![(
            "PORTICO_HTTP__TLS__CERT_FILE".to_string(),
            "/env/cert.pem".to_string(),
        )];
        let flags = vec![(
            "http.tls.redirect_http_listen".to_string(),
            "0.0.0.0:80".to_string(),
        )];
        let c = Config::load(Some(&file), env, &flags).unwrap();
        let tls = c.http.tls.as_ref().unwrap();
        assert_eq!(tls.cert_file, PathBuf::from("/env/cert.pem"));
        assert_eq!(tls.key_file, PathBuf::from("/toml/key.pem"));
        assert_eq!(tls.redirect_http_listen.as_deref(), Some("0.0.0.0:80"));
        assert_eq!(c.public_url(), "https://127.0.0.1:8080");
        // A half-given table names what is missing; an unknown key is refused by name.
        let env = vec![("PORTICO_HTTP__TLS__CERT_FILE".to_string(), "/c".to_string())];
        let err = Config::load(None, env, &[]).unwrap_err().to_string();
        assert!(err.contains("key_file"), "{err}");
        let flags = vec![("http.tls.chain".to_string(), "/c".to_string())];
        let err = Config::load(Some(&file), vec![], &flags)
            .unwrap_err()
            .to_string();
        assert!(err.contains("chain"), "{err}");
    }

    #[test]
    fn print_redacts_secrets() {
        let env = vec![(
            "PORTICO_ADMIN__TOKEN".to_string(),
            "s3cr3t-token".to_string(),
        )];
        let c = Config::load(None, env, &[]).unwrap();
        assert_eq!(c.admin.token.as_ref().unwrap().expose(), "s3cr3t-token");
        let printed = c.print_redacted();
        assert!(!printed.contains("s3cr3t"));
        assert!(printed.contains("[redacted]"));
    }
}
