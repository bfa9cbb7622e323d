//! `webdav-scratch`: a small, real WebDAV class 1 server (RFC 4918), one scratch area per
//! installation, for interop tests (litmus) and demos.
//!
//! **A scratch area, not storage.** Everything lives in the installation record itself, capped
//! at [`MAX_RESOURCES`] resources and [`MAX_BYTES`] bytes (bodies plus dead properties; one dead
//! property value at most [`MAX_PROP_VALUE`]); past a limit a write gets 507 Insufficient
//! Storage. Every write rewrites the whole tree. Do not keep anything here you want to keep.
//!
//! - `install` generates a password (sealed in the installation data) and reveals
//!   `{url, username, password}` once; the username is the organization slug.
//! - Every request needs HTTP Basic credentials (RFC 7617); a missing or wrong one gets 401 with
//!   a `Basic` challenge.
//! - Methods: OPTIONS (`DAV: 1`), GET/HEAD, PUT (any bytes, any content type), DELETE
//!   (collections recursively), MKCOL, COPY/MOVE (Depth, Overwrite, dead properties carried),
//!   PROPFIND (Depth 0/1/infinity; `prop`, `allprop`, `propname`), PROPPATCH (dead properties,
//!   atomically). `If` (RFC 4918 §10.4), `If-Match` and `If-None-Match` are honoured. No locks:
//!   LOCK and UNLOCK get 405, and a condition on a lock token never holds (a PUT that submits
//!   one fails with 412 instead of writing).
//! - `status` reports the number of resources and the bytes used; the `clear` action empties the
//!   area, `regenerate-password` replaces the password.
//!
//! Using it (the interop suite does exactly this for litmus):
//!
//! ```text
//! POST /admin/api/orgs/{org}/installations   {"kind": "webdav-scratch"}
//!   → {"reveal": {"url": "https://…/api/apps/{org}/{installation}/", "username": "{org slug}",
//!                 "password": "…"}, …}
//! litmus https://…/api/apps/{org}/{installation}/ {org slug} {password}
//! ```
//!
//! The WebDAV XML (parsing request bodies, writing multistatus answers) is the CardDAV app's
//! [`portico_carddav::dav`] module; this crate adds only the plain-collection semantics.
#![deny(missing_docs)]

mod auth;
mod conditions;
mod methods;
mod ops;
mod props;
mod tree;

#[cfg(test)]
mod tests;

use auth::{PasswordCache, PASSWORD_FIELD};
use ops::Transfer;
use portico_sdk::{
    async_trait, Account, ActionOutcome, AppContext, AppError, AppManifest, AppRequest,
    AppResponse, AppStatus, ExternalApp, InstallInput, InstallOutcome, InstallationStatus,
};
use serde_json::{json, Value};
use tree::Tree;

pub use tree::{MAX_BYTES, MAX_PROP_VALUE, MAX_RESOURCES};

/// The app kind.
pub const KIND: &str = "webdav-scratch";

/// The app: a WebDAV scratch collection per installation. Holds only a cache of opened
/// passwords and per-installation write queues; the resources live in each installation's
/// record.
#[derive(Default)]
pub struct WebdavScratchApp {
    passwords: PasswordCache,
    locks: methods::WriteLocks,
}

impl WebdavScratchApp {
    /// A new app (register it once per host).
    pub fn new() -> Self {
        Self::default()
    }
}

/// A new password, and the same sealed for the installation data.
fn new_password(cx: &AppContext) -> Result<(String, String), AppError> {
    let password = cx.secrets.random_token(18).into_inner();
    let sealed = cx.secrets.seal(PASSWORD_FIELD, &password)?;
    Ok((password, sealed))
}

#[async_trait]
impl ExternalApp for WebdavScratchApp {
    fn manifest(&self) -> AppManifest {
        AppManifest::new(
            KIND,
            "WebDAV scratch",
            "A small plain WebDAV collection for tests and demos (capped; not for real data)",
        )
        .with_action(
            "regenerate-password",
            "Replace the password; the old one stops working",
        )
        .with_action("clear", "Delete every resource in the scratch area")
    }

    async fn install(
        &self,
        cx: &AppContext,
        input: InstallInput,
    ) -> Result<InstallOutcome, AppError> {
        match &input.config {
            Value::Null => {}
            Value::Object(m) if m.is_empty() => {}
            _ => {
                return Err(AppError::unprocessable(
                    "webdav-scratch takes no configuration",
                ))
            }
        }
        let (password, sealed) = new_password(cx)?;
        let mut inst = cx.installation.clone();
        inst.data = json!({ PASSWORD_FIELD: sealed });
        Tree::new(cx.clock.now()).write_into(&mut inst.data)?;
        inst.status = InstallationStatus::Connected;
        inst.account = Some(Account {
            username: cx.org.slug.clone(),
            server_url: cx.base_url(),
        });
        Ok(InstallOutcome {
            installation: inst,
            reveal: json!({
                "url": cx.base_url(),
                "username": cx.org.slug,
                "password": password,
            }),
        })
    }

    async fn status(&self, cx: &AppContext) -> Result<AppStatus, AppError> {
        let usage = Tree::from_data(&cx.installation.data)?.usage();
        let mut s = AppStatus::from_installation(&cx.installation);
        s.details = json!({
            "resources": usage.resources,
            "bytes_used": usage.bytes,
            "max_resources": MAX_RESOURCES,
            "max_bytes": MAX_BYTES,
        });
        Ok(s)
    }

    async fn action(
        &self,
        cx: &AppContext,
        name: &str,
        _input: Value,
    ) -> Result<ActionOutcome, AppError> {
        let mut inst = cx.installation.clone();
        match name {
            "regenerate-password" => {
                let (password, sealed) = new_password(cx)?;
                inst.data[PASSWORD_FIELD] = Value::String(sealed);
                Ok(ActionOutcome::changed(
                    inst,
                    json!({ "password": password }),
                ))
            }
            "clear" => {
                let removed = Tree::from_data(&inst.data)?.usage().resources;
                Tree::new(cx.clock.now()).write_into(&mut inst.data)?;
                Ok(ActionOutcome::changed(inst, json!({ "removed": removed })))
            }
            other => Err(AppError::not_found(format!("unknown action '{other}'"))),
        }
    }

    async fn uninstall(&self, cx: &AppContext) -> Result<(), AppError> {
        self.passwords.forget(&cx.installation.id);
        self.locks.forget(&cx.installation.id);
        Ok(())
    }

    async fn handle(&self, cx: &AppContext, req: AppRequest) -> Result<AppResponse, AppError> {
        if !self.passwords.check(cx, &req)? {
            return Ok(auth::challenge());
        }
        let path = match methods::target_path(&req) {
            Ok(p) => p,
            Err(r) => return Ok(methods::refusal(r)),
        };
        match req.method.as_str() {
            "OPTIONS" => Ok(methods::options()),
            "GET" | "HEAD" => methods::get(cx, &req, &path),
            "PUT" => methods::put(cx, &self.locks, &req, &path).await,
            "DELETE" => methods::delete(cx, &self.locks, &req, &path).await,
            "MKCOL" => methods::mkcol(cx, &self.locks, &req, &path).await,
            "COPY" => methods::transfer(cx, &self.locks, &req, &path, Transfer::Copy).await,
            "MOVE" => methods::transfer(cx, &self.locks, &req, &path, Transfer::Move).await,
            "PROPFIND" => methods::propfind(cx, &req, &path),
            "PROPPATCH" => methods::proppatch(cx, &self.locks, &req, &path).await,
            _ => Ok(methods::not_allowed()),
        }
    }
}
