//! `portico demo`: a ready-to-use host with a demo organization, its customers and both shipped
//! apps installed. Credentials generated on the first run are kept in the data directory (mode
//! 0600) so every later run can print them again; this is for demos, not production.
use crate::core::Portico;
use crate::secrets::random_token;
use portico_sdk::{InstallInput, OrgId};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The demo customers (JSON lines), also used by tests.
pub const DEMO_CUSTOMERS: &str = include_str!("../../examples/demo-data/customers.jsonl");

/// The demo organization's id and slug.
pub const DEMO_ORG: &str = "demo";

/// What the demo prints.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct DemoCredentials {
    /// Admin API token.
    pub admin_token: String,
    /// CardDAV URL.
    pub carddav_url: String,
    /// CardDAV username.
    pub carddav_username: String,
    /// CardDAV password.
    pub carddav_password: String,
    /// Hello app URL.
    pub hello_url: String,
    /// Hello app token.
    pub hello_token: String,
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The admin token for the demo: the configured one, or one generated and kept in
/// `{data_dir}/admin.token`.
pub fn admin_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("admin.token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)?;
    let t = random_token(24);
    write_private(&path, &t)?;
    Ok(t)
}

/// Creates the demo organization, its customers and installations if missing, and returns the
/// credentials to print.
pub async fn seed(
    portico: &Arc<Portico>,
    data_dir: &Path,
    admin_token: &str,
) -> anyhow::Result<DemoCredentials> {
    let creds_path = data_dir.join("demo-credentials.json");
    let mut creds: DemoCredentials = std::fs::read_to_string(&creds_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let org_id = OrgId::parse(DEMO_ORG)?;
    if portico.store.get_org(&org_id).await?.is_none() {
        portico
            .create_org(DEMO_ORG, "Demo Salon", Some(org_id.clone()))
            .await?;
    }
    let carddav = portico
        .install(&org_id, "carddav", InstallInput::default(), None)
        .await?;
    if carddav.created {
        creds.carddav_password = carddav.reveal["password"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    if portico.store.count_customers(&org_id).await? == 0 {
        let report = portico.import_customers(&org_id, DEMO_CUSTOMERS).await?;
        anyhow::ensure!(
            report.errors.is_empty(),
            "demo data has errors: {:?}",
            report.errors
        );
    }
    let hello = portico
        .install(&org_id, "hello", InstallInput::default(), None)
        .await?;
    if hello.created {
        creds.hello_token = hello.reveal["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    creds.admin_token = admin_token.to_owned();
    creds.carddav_url = carddav.installation.url.clone();
    creds.carddav_username = carddav
        .installation
        .account
        .as_ref()
        .map(|a| a.username.clone())
        .unwrap_or_default();
    creds.hello_url = hello.installation.url.clone();
    write_private(&creds_path, &serde_json::to_string_pretty(&creds)?)?;
    Ok(creds)
}
