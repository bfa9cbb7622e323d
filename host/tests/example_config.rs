//! The example configuration in deploy/ is valid.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure

#[test]
fn deploy_example_config_loads() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/portico.example.toml");
    let cfg = portico_host::Config::load(Some(&path), Vec::new(), &[]).unwrap();
    assert_eq!(cfg.public_url(), "https://contacts.example.com");
}
