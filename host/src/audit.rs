//! The audit log: who did what to which organization and installation, when, from where.
//!
//! Recorded: organization creation, installs, uninstalls, actions that change an installation
//! (e.g. a regenerated password), organization tokens minted and revoked, webhook endpoints
//! registered and deleted, key rotations, and lockouts after failed authentications. Entries
//! are host records (so every process sharing the store writes to one log), keyed by time, and
//! also logged as `tracing` events with target `audit`. The newest [`KEEP`] are kept. Nothing
//! secret is ever written: no passwords, tokens or request bodies.
use crate::core::Portico;
use portico_sdk::{InstallationId, OrgId};
use serde::{Deserialize, Serialize};

/// Host-record namespace of the audit log.
pub const AUDIT: &str = "audit_log";
/// Entries kept.
pub const KEEP: usize = 10_000;

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Entry {
    /// When (ms since the epoch).
    pub at: i64,
    /// What happened, e.g. `installation.installed`, `auth.locked_out`.
    pub action: String,
    /// Who: `admin`, `org-token:{id}`, `cli`, `client` (an app's client, for lockouts).
    pub actor: String,
    /// The client address, when there was one.
    pub address: Option<String>,
    /// Organization concerned.
    #[schema(value_type = Option<String>)]
    pub org: Option<OrgId>,
    /// Installation concerned.
    #[schema(value_type = Option<String>)]
    pub installation: Option<InstallationId>,
    /// Details (never secrets).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Builds and writes an entry.
pub struct Record<'a> {
    /// What happened.
    pub action: &'a str,
    /// Who.
    pub actor: &'a str,
    /// From where.
    pub address: Option<&'a str>,
    /// Organization.
    pub org: Option<&'a OrgId>,
    /// Installation.
    pub installation: Option<&'a InstallationId>,
    /// Details.
    pub details: serde_json::Value,
}

/// Writes an entry. Failures are logged, never returned: the audited operation has happened.
pub async fn record(portico: &Portico, r: Record<'_>) {
    let entry = Entry {
        at: portico.clock.now().0,
        action: r.action.to_owned(),
        actor: r.actor.to_owned(),
        address: r.address.map(str::to_owned),
        org: r.org.cloned(),
        installation: r.installation.cloned(),
        details: r.details,
    };
    tracing::info!(
        target: "audit",
        action = %entry.action,
        actor = %entry.actor,
        address = ?entry.address,
        org = ?entry.org.as_ref().map(|o| o.to_string()),
        installation = ?entry.installation.as_ref().map(|i| i.to_string()),
        details = %entry.details,
        "audit"
    );
    // Time, then a per-process sequence (entries of one process within one millisecond keep
    // their order), then a random part (processes sharing the store never collide).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = format!(
        "{:020}-{seq:012}-{}",
        entry.at.max(0),
        crate::secrets::random_token(6)
    );
    let value = match serde_json::to_value(&entry) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "audit entry not encoded");
            return;
        }
    };
    if let Err(e) = portico.store.put_record(AUDIT, &key, &value).await {
        tracing::error!(error = %e, action = %entry.action, "audit entry not stored");
        return;
    }
    // Trim now and then (about one write in a hundred) rather than on every write.
    if key.ends_with(['A', 'Q']) {
        trim(portico).await;
    }
}

async fn trim(portico: &Portico) {
    let Ok(all) = portico.store.list_records(AUDIT).await else {
        return;
    };
    if all.len() > KEEP {
        for (k, _) in &all[..all.len() - KEEP] {
            if portico.store.take_record(AUDIT, k).await.is_err() {
                return;
            }
        }
    }
}

/// The newest entries (at most `limit`), newest first, optionally of one organization.
pub async fn recent(
    portico: &Portico,
    org: Option<&OrgId>,
    limit: usize,
) -> Result<Vec<Entry>, crate::error::HostError> {
    let all = portico.store.list_records(AUDIT).await?;
    Ok(all
        .into_iter()
        .rev()
        .filter_map(|(_, v)| serde_json::from_value::<Entry>(v).ok())
        .filter(|e| org.is_none() || e.org.as_ref() == org)
        .take(limit)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::secrets::Sealer;
    use crate::store::embedded::EmbeddedStore;
    use std::sync::Arc;

    #[tokio::test]
    async fn entries_are_kept_newest_first_and_filtered_by_org() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [3u8; 32]);
        let p = Portico::new(
            store,
            Registry::default(),
            Sealer::from_base64(&key).unwrap(),
            Default::default(),
        );
        let a = OrgId::parse("a").unwrap();
        let b = OrgId::parse("b").unwrap();
        for (n, org) in [(1, &a), (2, &b), (3, &a)] {
            record(
                &p,
                Record {
                    action: "test.done",
                    actor: "admin",
                    address: Some("127.0.0.1"),
                    org: Some(org),
                    installation: None,
                    details: serde_json::json!({ "n": n }),
                },
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let all = recent(&p, None, 10).await.unwrap();
        let ns: Vec<i64> = all
            .iter()
            .map(|e| e.details["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, vec![3, 2, 1]);
        let only_a = recent(&p, Some(&a), 10).await.unwrap();
        assert_eq!(only_a.len(), 2);
        assert_eq!(recent(&p, None, 1).await.unwrap().len(), 1);
    }
}
