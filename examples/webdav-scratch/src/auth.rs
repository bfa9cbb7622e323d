//! HTTP Basic authentication (RFC 7617) against the installation's password.
//!
//! The same pattern as the CardDAV app's: the sealed password is opened once per installation
//! revision and kept in memory, so a request costs one constant-time comparison. Every write to
//! the scratch tree bumps the revision too, so the password is opened again after a write; that
//! is one decryption, cheap next to the write itself.
use base64::Engine;
use dashmap::DashMap;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppContext, AppError, AppRequest, AppResponse, InstallationId, Secret};
use subtle::ConstantTimeEq;

/// The field of the installation data holding the sealed password.
pub const PASSWORD_FIELD: &str = "password";

/// The realm shown by clients.
pub const REALM: &str = "Portico WebDAV scratch";

/// Opened passwords by installation, tagged with the revision they were opened at.
#[derive(Default)]
pub struct PasswordCache {
    entries: DashMap<InstallationId, (u64, Secret<String>)>,
}

impl PasswordCache {
    fn password(&self, cx: &AppContext) -> Result<Secret<String>, AppError> {
        let inst = &cx.installation;
        if let Some(e) = self.entries.get(&inst.id) {
            if e.0 == inst.revision {
                return Ok(e.1.clone());
            }
        }
        let sealed = inst.data[PASSWORD_FIELD]
            .as_str()
            .ok_or_else(|| AppError::internal("the installation has no password"))?;
        let pw = cx.secrets.open(PASSWORD_FIELD, sealed)?;
        if self.entries.len() > 100_000 {
            self.entries.clear();
        }
        self.entries
            .insert(inst.id.clone(), (inst.revision, pw.clone()));
        Ok(pw)
    }

    /// Forgets an installation (after uninstall).
    pub fn forget(&self, id: &InstallationId) {
        self.entries.remove(id);
    }

    /// Checks the request's Basic credentials: the username is the organization slug. Both
    /// parts are compared in constant time, and both always are.
    pub fn check(&self, cx: &AppContext, req: &AppRequest) -> Result<bool, AppError> {
        let Some((user, pass)) = basic_credentials(req) else {
            return Ok(false);
        };
        let expected = self.password(cx)?;
        let user_ok = user.as_bytes().ct_eq(cx.org.slug.as_bytes());
        let pass_ok = pass.as_bytes().ct_eq(expected.expose().as_bytes());
        Ok(bool::from(user_ok & pass_ok))
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

/// The 401 challenge (RFC 7617 §2, with the `charset` parameter of §2.1).
pub fn challenge() -> AppResponse {
    AppResponse::text(StatusCode::UNAUTHORIZED, "authentication required").with_header(
        "www-authenticate",
        &format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
    )
}
