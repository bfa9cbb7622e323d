//! HTTP Basic authentication (RFC 7617) against the installation's passwords: its own (sealed in
//! `password`) and the per-device app passwords of [`crate::devices`].
//!
//! Every password of an installation revision is indexed by SHA-256 digest once (the sealed
//! install password opened, the devices' stored digests parsed) and kept in memory; each
//! request then costs one SHA-256 and one map probe, whatever the number of devices. A
//! regenerated or revoked password bumps the revision, so it is refused from the next request
//! the host resolves with the new record.
//!
//! Last use is noted in memory on every request and written to the record at most once a
//! minute per credential (after the request's own work, reloading the record first so that
//! it never races the request's writes).
use crate::devices::{self, Access, CredentialIndex, Who, DEVICES_FIELD, INSTALL_LAST_USED_FIELD};
use base64::Engine;
use dashmap::DashMap;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppContext, AppError, AppRequest, AppResponse, InstallationId};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The field of the installation data holding the sealed password.
pub const PASSWORD_FIELD: &str = "password";

/// The realm shown by clients.
pub const REALM: &str = "Portico CardDAV";

/// How often a credential's last use is written back to the installation record.
const LAST_USED_WRITE_EVERY_MS: i64 = 60_000;

/// Most installations whose indexes and last uses are kept before the caches start afresh.
const MAX_CACHED: usize = 100_000;

/// A credential's last use as known in memory.
#[derive(Debug, Clone, Copy)]
struct Use {
    /// The latest successful authentication.
    at: i64,
    /// When it was last written (or the write attempted), or the stored value.
    written: i64,
}

/// The password indexes by installation (tagged with the revision they were built at) and the
/// last use of each credential.
#[derive(Default)]
pub struct Credentials {
    indexes: DashMap<InstallationId, Arc<(u64, CredentialIndex)>>,
    uses: DashMap<(InstallationId, String), Use>,
}

impl Credentials {
    fn index(&self, cx: &AppContext) -> Result<Arc<(u64, CredentialIndex)>, AppError> {
        let inst = &cx.installation;
        if let Some(e) = self.indexes.get(&inst.id) {
            if e.0 == inst.revision {
                return Ok(e.clone());
            }
        }
        let sealed = inst.data[PASSWORD_FIELD]
            .as_str()
            .ok_or_else(|| AppError::internal("the installation has no password"))?;
        let pw = cx.secrets.open(PASSWORD_FIELD, sealed)?;
        let index = CredentialIndex::build(
            Some(pw.expose()),
            inst.data[INSTALL_LAST_USED_FIELD].as_i64(),
            &devices::devices_of(&inst.data),
            devices::read_only_of(&inst.data),
        );
        if self.indexes.len() > MAX_CACHED {
            self.indexes.clear();
        }
        let entry = Arc::new((inst.revision, index));
        self.indexes.insert(inst.id.clone(), entry.clone());
        Ok(entry)
    }

    /// Forgets an installation (after uninstall).
    pub fn forget(&self, id: &InstallationId) {
        self.indexes.remove(id);
        self.uses.retain(|k, _| &k.0 != id);
    }

    /// Forgets one credential's in-memory last use (after it is revoked).
    pub fn forget_credential(&self, id: &InstallationId, credential: &str) {
        self.uses.remove(&(id.clone(), credential.to_owned()));
    }

    /// Checks the request's Basic credentials: the username is the organization slug, the
    /// password one of the installation's. `None`: answer with [`challenge`].
    pub fn authenticate(
        &self,
        cx: &AppContext,
        req: &AppRequest,
    ) -> Result<Option<Access>, AppError> {
        let Some((user, pass)) = basic_credentials(req) else {
            return Ok(None);
        };
        let index = self.index(cx)?;
        let user_ok = bool::from(user.as_bytes().ct_eq(cx.org.slug.as_bytes()));
        // The password is looked up whatever the username, so timing tells neither apart.
        let found = index.1.lookup(&pass);
        Ok(found.filter(|_| user_ok).cloned())
    }

    /// The latest use of a credential: in memory if newer, else `stored`.
    pub fn last_used(
        &self,
        id: &InstallationId,
        credential: &str,
        stored: Option<i64>,
    ) -> Option<i64> {
        let mem = self
            .uses
            .get(&(id.clone(), credential.to_owned()))
            .map(|u| u.at);
        match (mem, stored) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Notes a successful authentication; writes it to the record at most once a minute per
    /// credential. Losing a write race is harmless: the time is informational and the next
    /// write a minute later carries the newer value.
    pub async fn note_use(&self, cx: &AppContext, access: &Access) {
        let now = cx.clock.now().0;
        let key = (cx.installation.id.clone(), access.who.id().to_owned());
        let stored = access.stored_last_used.unwrap_or(0);
        {
            if self.uses.len() > MAX_CACHED {
                self.uses.clear();
            }
            let mut u = self.uses.entry(key).or_insert(Use {
                at: now,
                written: stored,
            });
            u.at = u.at.max(now);
            if now - u.written.max(stored) < LAST_USED_WRITE_EVERY_MS {
                return;
            }
            u.written = now;
        }
        let Ok(mut inst) = cx.installation_store.load().await else {
            return;
        };
        if !set_last_used(&mut inst.data, &access.who, now) {
            return;
        }
        let _ = cx.installation_store.save(&inst).await;
    }
}

/// Sets a credential's last use in installation data; false if the credential is gone.
fn set_last_used(data: &mut serde_json::Value, who: &Who, at: i64) -> bool {
    if !data.is_object() {
        return false;
    }
    match who {
        Who::Install => {
            data[INSTALL_LAST_USED_FIELD] = serde_json::json!(at);
            true
        }
        Who::Device(id) => {
            let Some(list) = data.get_mut(DEVICES_FIELD).and_then(|v| v.as_array_mut()) else {
                return false;
            };
            match list.iter_mut().find(|d| d["id"].as_str() == Some(id)) {
                Some(d) => {
                    d["last_used"] = serde_json::json!(at);
                    true
                }
                None => false,
            }
        }
    }
}

/// (username, password) from `Authorization: Basic …`, decoded as UTF-8 (RFC 7617 §2.1).
pub fn basic_credentials(req: &AppRequest) -> Option<(String, String)> {
    let v = req.header("authorization")?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// The 401 challenge (RFC 7617 §2, with the charset parameter of §2.1).
pub fn challenge() -> AppResponse {
    AppResponse::text(StatusCode::UNAUTHORIZED, "authentication required").with_header(
        "www-authenticate",
        &format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CardDavApp;
    use portico_sdk::http::Method;
    use portico_sdk::testing::TestContext;
    use portico_sdk::{ExternalApp, InstallInput};

    fn options(cx: &AppContext, password: &str) -> AppRequest {
        let raw = format!("{}:{password}", cx.org.slug);
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let base = format!("/api/apps/{}/{}/", cx.org.id, cx.installation.id);
        AppRequest::new(Method::OPTIONS, &base, "addressbook/customers/")
            .with_header("authorization", &header)
    }

    #[tokio::test]
    async fn last_use_is_written_at_most_once_a_minute_per_credential() {
        let app = CardDavApp::new();
        let mut t = TestContext::new("carddav");
        let out = app.install(&t.cx, InstallInput::default()).await.unwrap();
        t.set_installation(out.installation);
        let made = app
            .action(
                &t.cx,
                "create-device",
                serde_json::json!({ "label": "iPad" }),
            )
            .await
            .unwrap();
        let password = made.result["password"].as_str().unwrap().to_owned();
        t.set_installation(made.installation.unwrap());
        let start = t.cx.installation_store.load().await.unwrap().revision;

        // The test clock advances one second per reading: ten requests span ten seconds.
        for _ in 0..10 {
            let r = app.handle(&t.cx, options(&t.cx, &password)).await.unwrap();
            assert_eq!(r.status, StatusCode::OK);
        }
        let stored = t.cx.installation_store.load().await.unwrap();
        assert_eq!(stored.revision, start + 1, "one write for ten requests");
        let devices = devices::devices_of(&stored.data);
        assert!(
            devices[0].last_used.is_some(),
            "the first use is written at once"
        );
        // The listing shows the newest use, from memory.
        let listed = device_list(&app, &t.cx).await;
        assert!(listed > devices[0].last_used.unwrap_or(0));

        // A wrong password is refused and writes nothing.
        let r = app
            .handle(&t.cx, options(&t.cx, "wrong-password"))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            t.cx.installation_store.load().await.unwrap().revision,
            start + 1
        );
    }

    /// The device's last use as `list-devices` reports it, in whole seconds times 1000.
    async fn device_list(app: &CardDavApp, cx: &AppContext) -> i64 {
        let out = app
            .action(cx, "list-devices", serde_json::Value::Null)
            .await
            .unwrap();
        let shown = out.result["devices"][1]["last_used_at"]
            .as_str()
            .unwrap()
            .to_owned();
        let t = httpdate::parse_http_date(&shown).unwrap();
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        secs * 1000
    }
}
