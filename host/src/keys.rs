//! Key rotation: re-sealing every sealed value in the installations' data under the active key.
//!
//! The rotation runs while the host serves. Each installation is read, every sealed string found
//! anywhere in its `data` that is not under the active key is opened and sealed again, and the
//! installation is written back with the store's revision check; a write that loses a race
//! against the app (a regenerated password, say) re-reads the installation and starts over on
//! the fresh copy, so no concurrent change is overwritten. Values are only ever replaced by
//! values that open with the active key, and the previous keys stay configured until the
//! rotation reports nothing left, so no secret is unreadable at any moment. A value that does not
//! open is reported and left exactly as it is. Running it again resumes: values already under the
//! active key are counted as current and not written.
use crate::core::Portico;
use crate::secrets::{inspect, Resealed, Sealer};
use crate::store::{Outcome, StoreError};
use portico_sdk::{Installation, InstallationId, OrgId};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// How many times one installation is re-read after losing a race before it is left for the
/// next run.
pub const MAX_ATTEMPTS: u32 = 8;

/// Nesting deeper than this is not searched (stored JSON is parsed with a lower limit anyway).
const MAX_DEPTH: usize = 256;

/// What a rotation did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RotationReport {
    /// The id of the active key, under which every value is sealed afterwards.
    pub active_key: String,
    /// Organizations walked.
    pub organizations: u64,
    /// Installations read.
    pub installations_scanned: u64,
    /// Installations written (they held at least one value under an older key).
    pub installations_changed: u64,
    /// Values sealed anew under the active key.
    pub values_resealed: u64,
    /// Values that were already under the active key.
    pub values_current: u64,
    /// Writes that lost a race with another writer and were redone on a fresh read.
    pub retries: u64,
    /// Values that open with no configured key (or are damaged): reported, left unchanged.
    pub unreadable: Vec<Unreadable>,
    /// Installations left for a later run: still contended after [`MAX_ATTEMPTS`] reads.
    pub skipped: Vec<Skipped>,
    /// True when every readable value is now under the active key (nothing unreadable, nothing
    /// skipped): the previous keys can then be removed.
    pub complete: bool,
}

/// A sealed value the rotation could not open.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Unreadable {
    /// Organization.
    pub org: String,
    /// Installation.
    pub installation: String,
    /// The field the value was sealed for (for an old-format value: the JSON key holding it).
    pub field: String,
    /// Where it is in the installation's data (a JSON pointer).
    pub path: String,
    /// The key id it names, if any.
    pub key_id: Option<String>,
    /// Why it does not open.
    pub reason: String,
}

/// An installation the rotation gave up on for this run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Skipped {
    /// Organization.
    pub org: String,
    /// Installation.
    pub installation: String,
    /// Why.
    pub reason: String,
}

/// The counts of re-sealing one installation's data.
#[derive(Debug, Default)]
struct Pass {
    resealed: u64,
    current: u64,
    unreadable: Vec<Unreadable>,
}

/// Re-seals, in place, every sealed string in `value` that is not under the active key.
fn reseal_value(
    sealer: &Sealer,
    inst: &Installation,
    value: &mut Value,
    key: &str,
    path: &mut String,
    depth: usize,
    pass: &mut Pass,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(s) => {
            let Some(info) = inspect(s) else { return };
            match sealer.reseal(&inst.id, key, s) {
                Ok(Resealed::Current) => pass.current += 1,
                Ok(Resealed::Changed(next)) => {
                    *s = next;
                    pass.resealed += 1;
                }
                Err(e) => pass.unreadable.push(Unreadable {
                    org: inst.org_id.to_string(),
                    installation: inst.id.to_string(),
                    field: info.field.unwrap_or_else(|| key.to_owned()),
                    path: path.clone(),
                    key_id: info.key_id,
                    reason: e.to_string(),
                }),
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                reseal_value(sealer, inst, item, key, path, depth + 1, pass);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                path.push('/');
                path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                reseal_value(sealer, inst, item, k, path, depth + 1, pass);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A hook run just before each write (tests use it to race the rotation).
type BeforeWrite<'a> =
    dyn FnMut(&Installation) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> + Send + 'a;

/// Re-seals every sealed value of every installation of every organization under the active
/// key. Safe to run while the host serves (on MongoDB from any process; on the embedded store
/// from inside the serving process), and to run again after an interruption: only what is left
/// is re-sealed. Fails only if the store does; values that do not open are reported in
/// [`RotationReport::unreadable`] and left unchanged.
pub async fn rotate(portico: &Portico) -> Result<RotationReport, StoreError> {
    let mut nothing =
        |_: &Installation| -> Pin<Box<dyn Future<Output = ()> + Send>> { Box::pin(async {}) };
    rotate_with(portico, &mut nothing).await
}

async fn rotate_with(
    portico: &Portico,
    before_write: &mut BeforeWrite<'_>,
) -> Result<RotationReport, StoreError> {
    let sealer = &portico.sealer;
    let mut report = RotationReport {
        active_key: sealer.active_id().to_owned(),
        ..Default::default()
    };
    tracing::info!(
        active = sealer.active_id(),
        previous = ?sealer.previous_ids(),
        "key rotation started"
    );
    let orgs = portico.store.list_orgs().await?;
    for org in &orgs {
        report.organizations += 1;
        let installations = portico.store.list_installations(&org.id).await?;
        for inst in installations {
            report.installations_scanned += 1;
            rotate_installation(portico, &org.id, inst, before_write, &mut report).await?;
        }
        tracing::info!(
            org = %org.id,
            done = report.organizations,
            of = orgs.len(),
            resealed = report.values_resealed,
            "key rotation: organization done"
        );
    }
    rotate_webhook_secrets(portico, &mut report).await?;
    report.complete = report.unreadable.is_empty() && report.skipped.is_empty();
    tracing::info!(
        installations = report.installations_scanned,
        changed = report.installations_changed,
        resealed = report.values_resealed,
        current = report.values_current,
        unreadable = report.unreadable.len(),
        skipped = report.skipped.len(),
        retries = report.retries,
        "key rotation finished"
    );
    for u in &report.unreadable {
        tracing::warn!(
            org = %u.org,
            installation = %u.installation,
            field = %u.field,
            path = %u.path,
            reason = %u.reason,
            "key rotation: value does not open; left unchanged"
        );
    }
    Ok(report)
}

/// Webhook signing secrets (host records) are sealed too: re-seal them the same way. An
/// endpoint re-registered meanwhile simply gets its new record; the put replaces the record.
async fn rotate_webhook_secrets(
    portico: &Portico,
    report: &mut RotationReport,
) -> Result<(), StoreError> {
    use crate::webhooks::{sealing_id, Endpoint, ENDPOINTS};
    for (key, value) in portico.store.list_records(ENDPOINTS).await? {
        let Ok(mut ep) = serde_json::from_value::<Endpoint>(value) else {
            continue;
        };
        match portico.sealer.reseal(&sealing_id(), &ep.id, &ep.secret) {
            Ok(crate::secrets::Resealed::Current) => report.values_current += 1,
            Ok(crate::secrets::Resealed::Changed(sealed)) => {
                ep.secret = sealed;
                let v = serde_json::to_value(&ep)
                    .map_err(|e| StoreError::Backend(format!("webhook endpoint: {e}")))?;
                portico.store.put_record(ENDPOINTS, &key, &v).await?;
                report.values_resealed += 1;
            }
            Err(e) => report.unreadable.push(Unreadable {
                org: ep
                    .org_id
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "(platform)".into()),
                installation: "(webhook endpoint)".into(),
                field: ep.id.clone(),
                path: format!("webhook_endpoints/{key}"),
                key_id: crate::secrets::inspect(&ep.secret).and_then(|i| i.key_id),
                reason: e.to_string(),
            }),
        }
    }
    Ok(())
}

async fn rotate_installation(
    portico: &Portico,
    org: &OrgId,
    mut inst: Installation,
    before_write: &mut BeforeWrite<'_>,
    report: &mut RotationReport,
) -> Result<(), StoreError> {
    let id: InstallationId = inst.id.clone();
    for attempt in 1..=MAX_ATTEMPTS {
        let mut pass = Pass::default();
        let mut data = inst.data.clone();
        reseal_value(
            &portico.sealer,
            &inst,
            &mut data,
            "",
            &mut String::new(),
            0,
            &mut pass,
        );
        if pass.resealed == 0 {
            report.values_current += pass.current;
            report.unreadable.extend(pass.unreadable);
            return Ok(());
        }
        let mut next = inst.clone();
        next.data = data;
        before_write(&next).await;
        match portico.store.update_installation(&next).await? {
            Outcome::Done(_) => {
                portico.invalidate(org, &id);
                report.installations_changed += 1;
                report.values_resealed += pass.resealed;
                report.values_current += pass.current;
                report.unreadable.extend(pass.unreadable);
                tracing::debug!(org = %org, installation = %id, resealed = pass.resealed, "re-sealed");
                return Ok(());
            }
            Outcome::NotFound => {
                tracing::debug!(org = %org, installation = %id, "uninstalled meanwhile");
                return Ok(());
            }
            Outcome::PreconditionFailed | Outcome::Conflict(_) => {
                report.retries += 1;
                tracing::debug!(org = %org, installation = %id, attempt, "changed meanwhile; re-reading");
                match portico.store.get_installation(org, &id).await? {
                    Some(fresh) => inst = fresh,
                    None => return Ok(()),
                }
            }
        }
    }
    tracing::warn!(org = %org, installation = %id, "key rotation: installation kept changing; run the rotation again");
    report.skipped.push(Skipped {
        org: org.to_string(),
        installation: id.to_string(),
        reason: format!("changed by another writer {MAX_ATTEMPTS} times during the rotation"),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use crate::store::embedded::EmbeddedStore;
    use crate::store::Store;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use portico_sdk::{HostLinks, InstallInput};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    fn key(b: u8) -> Sealer {
        Sealer::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    fn host(store: Arc<dyn Store>, sealer: Sealer) -> Arc<Portico> {
        let links = HostLinks {
            public_url: "http://127.0.0.1:1".into(),
            admin_customer_url: None,
        };
        Arc::new(Portico::new(
            store,
            registry::builtin().unwrap(),
            sealer,
            links,
        ))
    }

    async fn password(p: &Arc<Portico>, org: &OrgId, id: &InstallationId) -> String {
        let done = p
            .action(org, id, "credentials", serde_json::json!({}))
            .await
            .unwrap();
        done.result["password"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn rotation_reseals_resumes_and_reports_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let old = host(store.clone(), key(1));
        let org = old.create_org("acme", "Acme", None).await.unwrap().id;
        let dav = old
            .install(&org, "carddav", InstallInput::default(), None)
            .await
            .unwrap();
        let dav_id = dav.installation.id.clone();
        let pw = password(&old, &org, &dav_id).await;
        let hello = old
            .install(
                &org,
                "hello",
                InstallInput {
                    config: serde_json::json!({"greeting": "hi"}),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap();
        // A value nobody can open any more, nested in the hello installation's data.
        let mut h = store
            .get_installation(&org, &hello.installation.id)
            .await
            .unwrap()
            .unwrap();
        let lost = key(9).seal(&h.id, "extra", "gone");
        h.data["nested"] = serde_json::json!({ "list": [lost.clone()] });
        store.update_installation(&h).await.unwrap().done().unwrap();

        let new = host(store.clone(), key(2).with_previous(&[key(1)]));
        assert_eq!(
            password(&new, &org, &dav_id).await,
            pw,
            "previous key opens"
        );
        let r = rotate(&new).await.unwrap();
        assert_eq!(r.active_key, key(2).active_id());
        assert_eq!(r.installations_scanned, 2);
        assert_eq!(r.installations_changed, 2);
        assert_eq!(r.values_resealed, 2, "{r:?}");
        assert_eq!(r.values_current, 0);
        assert_eq!(r.unreadable.len(), 1, "{r:?}");
        assert_eq!(r.unreadable[0].path, "/nested/list/0");
        assert_eq!(r.unreadable[0].field, "extra");
        assert_eq!(r.unreadable[0].installation, h.id.to_string());
        assert!(!r.complete);

        let again = rotate(&new).await.unwrap();
        assert_eq!(again.values_resealed, 0);
        assert_eq!(again.installations_changed, 0);
        assert_eq!(again.values_current, 2);
        assert_eq!(again.unreadable.len(), 1);

        // The unreadable value is untouched; everything else opens with the new key alone.
        let h = store.get_installation(&org, &h.id).await.unwrap().unwrap();
        assert_eq!(h.data["nested"]["list"][0], serde_json::json!(lost));
        let only_new = host(store.clone(), key(2));
        assert_eq!(password(&only_new, &org, &dav_id).await, pw);
        let dav = store
            .get_installation(&org, &dav_id)
            .await
            .unwrap()
            .unwrap();
        let sealed = dav.data["password"].as_str().unwrap();
        assert_eq!(
            inspect(sealed).unwrap().key_id.as_deref(),
            Some(key(2).active_id())
        );
        let only_old = host(store, key(1));
        assert!(only_old
            .action(&org, &dav_id, "credentials", serde_json::json!({}))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_change_racing_the_rotation_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let old = host(store.clone(), key(1));
        let org = old.create_org("acme", "Acme", None).await.unwrap().id;
        let dav_id = old
            .install(&org, "carddav", InstallInput::default(), None)
            .await
            .unwrap()
            .installation
            .id;
        let new = host(store.clone(), key(2).with_previous(&[key(1)]));
        // Between the rotation's read and its write, the owner regenerates the password: the
        // app's write lands first, so the rotation's write must lose and start over.
        let calls = Arc::new(AtomicU32::new(0));
        let fresh = Arc::new(std::sync::Mutex::new(String::new()));
        let (p, c, f, o, i) = (
            new.clone(),
            calls.clone(),
            fresh.clone(),
            org.clone(),
            dav_id.clone(),
        );
        let mut hook = move |_: &Installation| -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let (p, f, o, i) = (p.clone(), f.clone(), o.clone(), i.clone());
            let first = c.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                if first {
                    // Regenerate under the *old* key, as a process not yet given the new key
                    // would: the retried rotation must pick it up too.
                    let o_host = host(p.store.clone(), key(1));
                    let done = o_host
                        .action(&o, &i, "regenerate-password", serde_json::json!({}))
                        .await
                        .unwrap();
                    *f.lock().unwrap() = done.result["password"].as_str().unwrap().to_owned();
                }
            })
        };
        let r = rotate_with(&new, &mut hook).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "written on the second try");
        assert_eq!(r.retries, 1);
        assert_eq!(r.values_resealed, 1);
        assert!(r.complete);
        let regenerated = fresh.lock().unwrap().clone();
        assert!(!regenerated.is_empty());
        let only_new = host(store, key(2));
        assert_eq!(
            password(&only_new, &org, &dav_id).await,
            regenerated,
            "the racing change survives, re-sealed"
        );
    }

    #[tokio::test]
    async fn contended_installations_are_skipped_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let old = host(store.clone(), key(1));
        let org = old.create_org("acme", "Acme", None).await.unwrap().id;
        let dav_id = old
            .install(&org, "carddav", InstallInput::default(), None)
            .await
            .unwrap()
            .installation
            .id;
        let new = host(store.clone(), key(2).with_previous(&[key(1)]));
        let s = store.clone();
        let (o, i) = (org.clone(), dav_id.clone());
        // Someone else writes the installation before every one of the rotation's writes.
        let mut hook = move |_: &Installation| -> Pin<Box<dyn Future<Output = ()> + Send>> {
            let (s, o, i) = (s.clone(), o.clone(), i.clone());
            Box::pin(async move {
                let mut cur = s.get_installation(&o, &i).await.unwrap().unwrap();
                cur.data["touched"] = serde_json::json!(cur.revision);
                s.update_installation(&cur).await.unwrap().done().unwrap();
            })
        };
        let r = rotate_with(&new, &mut hook).await.unwrap();
        assert_eq!(r.retries, u64::from(MAX_ATTEMPTS));
        assert_eq!(r.skipped.len(), 1);
        assert!(!r.complete);
        assert_eq!(r.values_resealed, 0);
        // Nothing was damaged; a later run finishes the job.
        let r = rotate(&new).await.unwrap();
        assert!(r.complete);
        assert_eq!(r.values_resealed, 1);
    }
}
