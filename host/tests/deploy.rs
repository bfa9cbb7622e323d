//! What can be validated of deploy/ without a container engine: the compose file and the
//! Kubernetes manifests parse as YAML, and every `PORTICO_*` variable they (and the Dockerfile,
//! and anything else in deploy/) set or mention is a real configuration key: loading it through
//! [`Config::load`], which refuses unknown keys, succeeds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

use portico_host::config::{Config, StoreKind, Transactions};
use serde::Deserialize;
use serde_norway::Value;
use std::path::{Path, PathBuf};

/// `PORTICO_` names in deploy/ that are not configuration keys, and why.
const NOT_CONFIG: &[&str] = &[
    // The configuration file's path (read by the command line, not a key).
    "PORTICO_CONFIG",
    // compose.yaml's own interpolation variable: the public host name.
    "PORTICO_HOST",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(rel: &str) -> String {
    let p = deploy().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every YAML document in `rel`, merge keys (`<<: *anchor`) applied.
fn yaml_docs(rel: &str) -> Vec<Value> {
    let text = read(rel);
    let mut out = Vec::new();
    for de in serde_norway::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(de).unwrap_or_else(|e| panic!("{rel}: not YAML: {e}"));
        v.apply_merge()
            .unwrap_or_else(|e| panic!("{rel}: bad merge key: {e}"));
        if !v.is_null() {
            out.push(v);
        }
    }
    assert!(!out.is_empty(), "{rel}: no YAML document");
    out
}

/// A compose value after interpolation as `docker compose` would do it with nothing set:
/// `${X:-default}` gives the default, `${X:?message}` (required) a placeholder, `${X}` "".
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("unclosed ${") + at;
        let inner = &rest[at + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else if inner.contains(":?") || inner.contains('?') {
            out.push_str("required-value");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// Loads `env` as the process environment; panics naming the variable a key is refused for.
fn check_env(source: &str, env: &[(String, String)]) -> Config {
    for (k, v) in env {
        if !k.contains("__") {
            assert!(
                NOT_CONFIG.contains(&k.as_str()),
                "{source}: {k} is neither a configuration key (PORTICO_SECTION__KEY) nor a known \
                 non-key variable"
            );
            continue;
        }
        if let Err(e) = Config::load(None, vec![(k.clone(), v.clone())], &[]) {
            panic!("{source}: {k}={v} is not a valid configuration setting: {e}");
        }
    }
    Config::load(None, env.to_vec(), &[])
        .unwrap_or_else(|e| panic!("{source}: the variables together do not load: {e}"))
}

#[test]
fn compose_environment_is_configuration() {
    let docs = yaml_docs("compose.yaml");
    let services = docs[0]["services"]
        .as_mapping()
        .expect("compose.yaml has services");
    let mut portico_services = 0;
    for (name, svc) in services {
        let name = scalar(name);
        let Some(env) = svc.get("environment") else {
            continue;
        };
        let pairs: Vec<(String, String)> = match env {
            Value::Mapping(m) => m
                .iter()
                .map(|(k, v)| (scalar(k), interpolate(&scalar(v))))
                .collect(),
            Value::Sequence(s) => s
                .iter()
                .map(|e| {
                    let e = scalar(e);
                    let (k, v) = e.split_once('=').unwrap_or((&e, ""));
                    (k.to_owned(), interpolate(v))
                })
                .collect(),
            other => panic!("compose.yaml: {name}: environment is {other:?}"),
        };
        if !pairs.iter().any(|(k, _)| k.starts_with("PORTICO_")) {
            continue;
        }
        portico_services += 1;
        let cfg = check_env(&format!("compose.yaml service {name}"), &pairs);
        assert_eq!(cfg.store.kind, StoreKind::Mongodb, "{name}: shares MongoDB");
        assert_eq!(
            cfg.store.transactions,
            Transactions::On,
            "{name}: the replica set has transactions (and \"on\" stays a string)"
        );
        assert!(cfg.store.uri.is_some(), "{name}: has a MongoDB URI");
        assert!(cfg.admin.token.is_some(), "{name}: has an admin token");
        assert!(
            cfg.secrets.key.is_some() || cfg.secrets.key_file.is_some(),
            "{name}: replicas share one master key, so it must be given"
        );
        assert!(
            cfg.public_url().starts_with("https://"),
            "{name}: CardDAV clients are behind the TLS proxy"
        );
    }
    assert_eq!(portico_services, 2, "two Portico replicas");
}

#[test]
fn kubernetes_environment_is_configuration() {
    let docs = yaml_docs("k8s/portico.yaml");
    let kinds: Vec<String> = docs.iter().map(|d| scalar(&d["kind"])).collect();
    assert!(kinds.contains(&"Deployment".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"Service".to_owned()), "{kinds:?}");
    let mut containers = 0;
    for d in docs.iter().filter(|d| d["kind"] == "Deployment") {
        for c in d["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .expect("containers")
        {
            containers += 1;
            let mut pairs = Vec::new();
            for e in c["env"].as_sequence().expect("env") {
                let name = scalar(&e["name"]);
                // A value from a Secret: any string stands in for it.
                let value = match e.get("value") {
                    Some(v) => scalar(v),
                    None => {
                        assert!(e.get("valueFrom").is_some(), "{name}: no value");
                        "from-a-secret".to_owned()
                    }
                };
                pairs.push((name, value));
            }
            let cfg = check_env("k8s/portico.yaml", &pairs);
            assert_eq!(cfg.store.kind, StoreKind::Mongodb);
            assert_eq!(cfg.store.transactions, Transactions::On);
            assert!(cfg.secrets.key.is_some(), "the key comes from the Secret");
            let listen = &cfg.server.listen;
            let port = listen.rsplit(':').next().unwrap();
            for probe in ["readinessProbe", "livenessProbe"] {
                assert_eq!(
                    scalar(&c[probe]["httpGet"]["port"]),
                    port,
                    "{probe} targets the port Portico listens on ({listen})"
                );
            }
            assert_eq!(scalar(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
            assert_eq!(scalar(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
        }
    }
    assert!(containers > 0);
}

/// `ENV` instructions of a Dockerfile (`KEY=VALUE` pairs, continuation lines joined).
fn dockerfile_env(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(l) => {
                logical.push_str(l);
                logical.push(' ');
                continue;
            }
            None => logical.push_str(line),
        }
        let l = std::mem::take(&mut logical);
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("ENV ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("ENV KEY=VALUE form");
                out.push((k.to_owned(), v.trim_matches('"').to_owned()));
            }
        }
    }
    out
}

#[test]
fn dockerfile_env_is_configuration() {
    let env = dockerfile_env(&read("Dockerfile"));
    assert!(
        env.iter().any(|(k, _)| k == "PORTICO_STORE__DATA_DIR"),
        "{env:?}"
    );
    let cfg = check_env("Dockerfile", &env);
    assert!(
        cfg.server.listen.starts_with("0.0.0.0:"),
        "reachable from outside the container"
    );
    assert_eq!(cfg.store.data_dir, Path::new("/var/lib/portico/data"));
}

/// Every `PORTICO_…` name written anywhere in deploy/ (comments, README, unit file) is a
/// configuration key or a known non-key variable, so documentation cannot drift either.
#[test]
fn every_variable_mentioned_in_deploy_is_real() {
    let mut files = Vec::new();
    let mut dirs = vec![deploy()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let mut seen = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("PORTICO_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            seen += 1;
            let name = name.trim_end_matches('_').to_owned();
            if name == "PORTICO_SECTION__KEY" || name == "PORTICO" {
                continue; // the naming rule or the bare prefix, as documentation writes them
            }
            let source = format!("{}", f.display());
            // An empty string is a valid value for every string key; typed keys get a sample.
            let value = match name.as_str() {
                "PORTICO_SECRETS__CREATE_KEY_FILE" => "true",
                "PORTICO_SERVER__BODY_LIMIT"
                | "PORTICO_SERVER__WORKERS"
                | "PORTICO_SERVER__SHUTDOWN_TIMEOUT_SECS" => "1",
                "PORTICO_STORE__KIND" => "mongodb",
                "PORTICO_STORE__TRANSACTIONS" => "auto",
                _ => "x",
            };
            check_env(&source, &[(name, value.to_owned())]);
        }
    }
    assert!(seen > 10, "found only {seen} PORTICO_ names in deploy/");
}

#[test]
fn the_checks_catch_a_wrong_key() {
    let r = std::panic::catch_unwind(|| {
        check_env(
            "test",
            &[("PORTICO_STORE__URL".into(), "mongodb://x".into())],
        )
    });
    assert!(r.is_err(), "PORTICO_STORE__URL is not a key");
    let r = std::panic::catch_unwind(|| check_env("test", &[("PORTICO_TOKEN".into(), "x".into())]));
    assert!(r.is_err(), "PORTICO_TOKEN is neither");
    assert_eq!(
        interpolate("https://${H:-localhost}/x"),
        "https://localhost/x"
    );
    assert_eq!(interpolate("${T:?set T}"), "required-value");
    let env = dockerfile_env("FROM x\nENV A=1 \\\n    B=2\n# ENV C=3\nENV D=\"4\"\n");
    assert_eq!(
        env,
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "2".into()),
            ("D".into(), "4".into())
        ]
    );
}
