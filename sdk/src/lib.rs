//! # Portico SDK: the contract for connected apps
//!
//! Portico is a host for *connected apps*. An organization installs an app; the host then routes
//! every request under `/api/apps/{organizationId}/{installationId}/{...slug}` to it. This crate
//! is everything an app author needs: it has no web framework and no database types in it.
//!
//! ## Writing an app
//!
//! 1. Implement [`ExternalApp`] for a struct of yours. [`ExternalApp::manifest`] names the app
//!    kind (a short lowercase string such as `"hello"`), its version and the actions it accepts.
//! 2. Keep per-installation configuration in [`Installation::data`] (JSON). Keep secrets there
//!    too, but sealed through [`AppContext::secrets`]: the host encrypts them bound to the
//!    installation and field name, so a sealed value cannot be moved to another record.
//! 3. Answer requests in [`ExternalApp::handle`]: you get an [`AppRequest`] whose slug is already
//!    percent-decoded and confined to your installation, and you return an [`AppResponse`].
//! 4. Register the app with one line at host startup (`registry.register(Arc::new(MyApp))`).
//!
//! ```
//! use portico_sdk::{async_trait, AppContext, AppError, AppManifest, AppRequest, AppResponse,
//!     AppStatus, ExternalApp, InstallInput, InstallOutcome};
//!
//! struct Ping;
//!
//! #[async_trait]
//! impl ExternalApp for Ping {
//!     fn manifest(&self) -> AppManifest {
//!         AppManifest::new("ping", "Ping", "Answers pong")
//!     }
//!     async fn install(&self, cx: &AppContext, _input: InstallInput) -> Result<InstallOutcome, AppError> {
//!         Ok(InstallOutcome::connected(cx.installation.clone()))
//!     }
//!     async fn status(&self, cx: &AppContext) -> Result<AppStatus, AppError> {
//!         Ok(AppStatus::from_installation(&cx.installation))
//!     }
//!     async fn handle(&self, _cx: &AppContext, _req: AppRequest) -> Result<AppResponse, AppError> {
//!         Ok(AppResponse::text(http::StatusCode::OK, "pong"))
//!     }
//! }
//! ```
//!
//! ## What the host does for you
//!
//! - **Configuration**: describe your settings in the manifest
//!   ([`AppManifest::with_config_field`], [`ConfigField`]). The host refuses install input that
//!   does not fit (unknown keys, wrong types, out of range, missing required) with 422 before
//!   your code runs, fills in defaults, and the admin page renders a form from it.
//! - **Validation**: [`ExternalApp::validate`] runs before anything is stored; return
//!   [`AppError::unprocessable`] with a message for the user (e.g. remote credentials that do
//!   not work) and nothing is written.
//! - **Data versions**: when a release changes what [`Installation::data`] holds, raise
//!   [`AppManifest::data_version`] and implement [`ExternalApp::migrate`]. At startup the host
//!   migrates older records once each, logging progress, and refuses to start when a record is
//!   newer than the code (a rollback needs the matching backup).
//! - **Events**: [`AppContext::events`] queues an event for the organization's webhooks
//!   (`{kind}.{name}`, signed with HMAC-SHA256, retried, kept in an outbox). The host itself
//!   reports installs, uninstalls, actions that change an installation, and customer changes
//!   your app makes through [`AppContext::customers`] (`customer.changed`).
//! - **Files**: an action declared with [`AppManifest::with_file_action`] answers with an
//!   [`ActionFile`] ([`ActionOutcome::file`]); the admin page offers it as a download and as a
//!   one-time QR link (the CardDAV app's Apple configuration profile is one).
//! - **Secrets** survive key rotation: values sealed through [`AppContext::secrets`] carry the
//!   key's id, and the operator's `portico keys rotate` re-seals them without your code knowing.
//! - **Operations**: the host rate-limits each installation (per app kind), keeps its recent
//!   requests for the admin API, exports Prometheus metrics, and lets the operator switch an app
//!   kind off (503) without uninstalling anything.
//!
//! With the `testing` feature, [`testing`] provides in-memory ports and a ready [`AppContext`],
//! so an app's unit tests run without the host. `examples/hello-app` in the Portico repository
//! is a complete app to copy.
#![deny(missing_docs)]

mod app;
mod error;
mod ids;
mod model;
mod ports;
mod request;
mod secret;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{
    ActionFile, ActionOutcome, ActionSpec, AppContext, AppManifest, AppStatus, ConfigField,
    ConfigKind, CustomerChange, CustomerWritten, ExternalApp, HostLinks, InstallInput,
    InstallOutcome,
};
pub use async_trait::async_trait;
pub use error::{AppError, ErrorKind};
pub use ids::{CustomerId, IdError, InstallationId, OrgId};
pub use model::{
    normalize_birthday, plan_card_media, Account, BirthdayError, CardMedia, CardRecord, Change,
    ChangeBatch, Customer, CustomerDraft, Installation, InstallationStatus, MediaPlan,
    Organization, StoredCard, StoredCardRecord, Timestamp, APPLE_OMIT_YEAR,
};
pub use ports::{Clock, CustomerDirectory, EventSink, InstallationPort, SecretBox, SystemClock};
pub use request::{AppRequest, AppResponse, BodyStream};
pub use secret::Secret;

/// Re-export of the `bytes` crate used for bodies.
pub use bytes;
/// Re-export of the `http` crate the request and response types are built on.
pub use http;
/// Re-export of `serde_json`, used for installation data and action payloads.
pub use serde_json;
