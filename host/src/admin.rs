//! The admin API under `/admin/api` and the admin page's session endpoints under
//! `/admin/session`: JSON in and out, errors from the one mapping in [`crate::error`], callers
//! identified by [`crate::admin_auth`]. Every handler carries its OpenAPI description
//! (`#[utoipa::path]`); [`openapi`] collects them from the same registration the server uses,
//! so the document cannot miss a route.
use crate::admin_auth::{self, OrgToken, Principal, SessionView};
use crate::core::{CustomerPatch, ImportReport, InstallationView, Portico};
use crate::error::HostError;
use crate::imports::Format;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use portico_sdk::{CustomerDraft, CustomerId, ErrorKind, InstallInput, InstallationId, OrgId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Admin API state.
pub struct AdminState {
    /// The host.
    pub portico: Arc<Portico>,
    /// SHA-256 of the admin token; `None` leaves only organization tokens.
    pub token_hash: Option<[u8; 32]>,
    /// The OpenAPI document, rendered once.
    pub openapi: String,
}

impl AdminState {
    async fn caller(&self, req: &HttpRequest) -> Result<Principal, HostError> {
        admin_auth::authorize(req, &self.portico, self.token_hash.as_ref()).await
    }

    /// Writes an audit entry for an admin operation.
    async fn audit(
        &self,
        req: &HttpRequest,
        who: &Principal,
        action: &str,
        org: Option<&OrgId>,
        installation: Option<&InstallationId>,
        details: serde_json::Value,
    ) {
        let addr = admin_auth::client_addr(req);
        crate::audit::record(
            &self.portico,
            crate::audit::Record {
                action,
                actor: &who.actor(),
                address: Some(&addr),
                org,
                installation,
                details,
            },
        )
        .await;
    }

    /// The caller, who must be allowed to act on `org` (the id is parsed first).
    async fn caller_for(
        &self,
        req: &HttpRequest,
        org: &str,
    ) -> Result<(Principal, OrgId), HostError> {
        let who = self.caller(req).await?;
        let org = org_id(org)?;
        who.check_org(&org)?;
        Ok((who, org))
    }
}

type R = Result<HttpResponse, HostError>;
type S = web::Data<AdminState>;

fn bad(msg: impl Into<String>) -> HostError {
    HostError::kind(ErrorKind::BadRequest, msg)
}

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, HostError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| bad(format!("invalid JSON body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, HostError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| bad(format!("invalid query: {e}")))
}

fn org_id(s: &str) -> Result<OrgId, HostError> {
    OrgId::parse(s).map_err(|e| bad(format!("invalid organization id: {e}")))
}

fn inst_id(s: &str) -> Result<InstallationId, HostError> {
    InstallationId::parse(s).map_err(|e| bad(format!("invalid installation id: {e}")))
}

fn cust_id(s: &str) -> Result<CustomerId, HostError> {
    CustomerId::parse(s).map_err(|e| bad(format!("invalid customer id: {e}")))
}

/// Whether cookies must be `Secure`: the page was reached over HTTPS (directly or, as the
/// public URL says, behind a TLS-terminating proxy).
fn secure(req: &HttpRequest, s: &AdminState) -> bool {
    req.connection_info().scheme() == "https" || s.portico.links.public_url.starts_with("https://")
}

// ----- session -----

/// Sign-in input.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// The global admin token or an organization token (`pto_…`).
    token: String,
}

/// Opens a session of the admin page (sets the `portico_session` cookie).
#[utoipa::path(
    tag = "session",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the body carries the CSRF token", body = SessionView),
        (status = 401, description = "Wrong token"),
        (status = 415, description = "The body is not application/json"),
        (status = 429, description = "Too many failures from this address"),
    )
)]
#[post("/session")]
async fn sign_in(req: HttpRequest, body: web::Bytes, s: S) -> R {
    // A cross-site form cannot send application/json without a CORS preflight, which this
    // endpoint never grants: this stops login CSRF.
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.trim_start().starts_with("application/json") {
        return Ok(
            HttpResponse::UnsupportedMediaType().json(crate::error::error_body(
                ErrorKind::BadRequest,
                "sign-in takes a JSON body (Content-Type: application/json)",
            )),
        );
    }
    let input: SignIn = json(&body)?;
    let addr = admin_auth::client_addr(&req);
    let (who, token_key) =
        admin_auth::check_token(&s.portico, s.token_hash.as_ref(), &addr, &input.token).await?;
    let (cookie, view) = admin_auth::open_session(&s.portico, &who, token_key).await?;
    let org = who.org().cloned();
    s.audit(
        &req,
        &who,
        "admin.signed_in",
        org.as_ref(),
        None,
        serde_json::Value::Null,
    )
    .await;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Set-Cookie",
            admin_auth::session_cookie(Some(&cookie), secure(&req, &s)),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// The current session (what the page needs: scope, organization, CSRF token).
#[utoipa::path(
    tag = "session",
    responses(
        (status = 200, description = "Signed in", body = SessionView),
        (status = 401, description = "No session"),
    )
)]
#[get("/session")]
async fn session(req: HttpRequest, s: S) -> R {
    let view = admin_auth::current_session(&req, &s.portico).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(view))
}

/// Ends the session (needs `X-CSRF-Token`).
#[utoipa::path(
    tag = "session",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 401, description = "No session"),
        (status = 403, description = "Missing or wrong CSRF token"),
    )
)]
#[delete("/session")]
async fn sign_out(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?;
    admin_auth::close_session(&req, &s.portico).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((
            "Set-Cookie",
            admin_auth::session_cookie(None, secure(&req, &s)),
        ))
        .finish())
}

// ----- apps and organizations -----

/// The registered app kinds with their manifests.
#[utoipa::path(
    tag = "apps",
    responses((status = 200, description = "Manifests", body = serde_json::Value))
)]
#[get("/api/apps")]
async fn list_apps(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?;
    Ok(HttpResponse::Ok().json(s.portico.registry.manifests()))
}

/// A new organization.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    /// 1–63 of `a-z 0-9 -`, not starting or ending with `-`; the CardDAV username.
    slug: String,
    /// Display name.
    name: String,
    /// Keep an id from an older system (else a random one).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    id: Option<OrgId>,
}

/// Creates an organization (global admin only).
#[utoipa::path(
    tag = "organizations",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = serde_json::Value),
        (status = 403, description = "Organization tokens cannot create organizations"),
        (status = 409, description = "Slug or id taken"),
        (status = 422, description = "Invalid slug or name"),
    )
)]
#[post("/api/orgs")]
async fn create_org(req: HttpRequest, body: web::Bytes, s: S) -> R {
    let who = s.caller(&req).await?;
    who.check_admin()?;
    let n: NewOrg = json(&body)?;
    let org = s.portico.create_org(&n.slug, &n.name, n.id).await?;
    let details = serde_json::json!({ "slug": org.slug });
    s.audit(&req, &who, "org.created", Some(&org.id), None, details)
        .await;
    Ok(HttpResponse::Created().json(org))
}

/// The organizations the caller may see (an organization token sees its own).
#[utoipa::path(
    tag = "organizations",
    responses((status = 200, description = "Organizations", body = serde_json::Value))
)]
#[get("/api/orgs")]
async fn list_orgs(req: HttpRequest, s: S) -> R {
    let who = s.caller(&req).await?;
    let mut orgs = s.portico.store.list_orgs().await?;
    if let Some(mine) = who.org() {
        orgs.retain(|o| &o.id == mine);
    }
    Ok(HttpResponse::Ok().json(orgs))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SlugQuery {
    /// The slug to check.
    slug: String,
}

/// Whether a slug is valid and free.
#[derive(Serialize, ToSchema)]
struct SlugCheck {
    ok: bool,
    message: String,
}

/// Checks a slug with the rules `POST /admin/api/orgs` applies (for live validation).
#[utoipa::path(
    tag = "organizations",
    params(SlugQuery),
    responses((status = 200, description = "The verdict", body = SlugCheck))
)]
#[get("/api/orgs/check-slug")]
async fn check_slug(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?;
    let q: SlugQuery = query(&req)?;
    let (ok, message) = if !crate::core::valid_slug(&q.slug) {
        (false, crate::core::SLUG_RULE.to_owned())
    } else if s.portico.store.find_org_by_slug(&q.slug).await?.is_some() {
        (false, format!("'{}' is taken", q.slug))
    } else {
        (true, format!("'{}' is available", q.slug))
    };
    Ok(HttpResponse::Ok().json(SlugCheck { ok, message }))
}

/// One organization.
#[utoipa::path(
    tag = "organizations",
    params(("org" = String, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The organization", body = serde_json::Value),
        (status = 404, description = "Unknown (or not the caller's)"),
    )
)]
#[get("/api/orgs/{org}")]
async fn get_org(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    Ok(HttpResponse::Ok().json(s.portico.org(&org).await?))
}

// ----- installations -----

/// Install input.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewInstallation {
    /// The app kind (see `GET /admin/api/apps`).
    kind: String,
    /// Keep an installation id (and so the URL) from an older system.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    id: Option<InstallationId>,
    /// App configuration.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: serde_json::Value,
    /// Secrets to import (e.g. an existing password).
    #[serde(default)]
    #[schema(value_type = Object)]
    secrets: std::collections::BTreeMap<String, portico_sdk::Secret<String>>,
}

/// Installs an app kind (or returns the existing installation of that kind).
#[utoipa::path(
    tag = "installations",
    params(("org" = String, Path, description = "Organization id")),
    request_body = NewInstallation,
    responses(
        (status = 201, description = "Installed; `reveal` is shown once", body = serde_json::Value),
        (status = 200, description = "Already installed", body = serde_json::Value),
        (status = 404, description = "Unknown organization or app kind"),
    )
)]
#[post("/api/orgs/{org}/installations")]
async fn install(req: HttpRequest, path: web::Path<String>, body: web::Bytes, s: S) -> R {
    let (who, org) = s.caller_for(&req, &path).await?;
    let n: NewInstallation = json(&body)?;
    let input = InstallInput {
        config: n.config,
        secrets: n.secrets,
    };
    let out = s.portico.install(&org, &n.kind, input, n.id).await?;
    if out.created {
        let details = serde_json::json!({ "kind": n.kind });
        let id = out.installation.id.clone();
        s.audit(
            &req,
            &who,
            "installation.installed",
            Some(&org),
            Some(&id),
            details,
        )
        .await;
    }
    Ok(if out.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(out))
}

/// The installations of an organization.
#[utoipa::path(
    tag = "installations",
    params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "Installations", body = [InstallationView]))
)]
#[get("/api/orgs/{org}/installations")]
async fn list_installations(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    Ok(HttpResponse::Ok().json(s.portico.installations(&org).await?))
}

/// An installation with the status its app reports.
#[utoipa::path(
    tag = "installations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("inst" = String, Path, description = "Installation id"),
    ),
    responses(
        (status = 200, description = "`{installation, status}`", body = serde_json::Value),
        (status = 404, description = "Unknown"),
    )
)]
#[get("/api/orgs/{org}/installations/{inst}")]
async fn installation_status(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, i) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    let (view, status) = s.portico.status(&org, &inst_id(&i)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "installation": view, "status": status })))
}

/// A file action's file as a download.
pub fn file_response(file: portico_sdk::ActionFile) -> HttpResponse {
    let safe: String = file
        .filename
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    HttpResponse::Ok()
        .content_type(file.content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{safe}\""),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .body(file.content)
}

/// Runs an app action. A file action (`file: true` in the manifest) answers with the file.
#[utoipa::path(
    tag = "installations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("inst" = String, Path, description = "Installation id"),
        ("name" = String, Path, description = "Action name from the manifest"),
    ),
    request_body(content = serde_json::Value, description = "The action's input"),
    responses(
        (status = 200, description = "`{result}`, or the file of a file action", body = serde_json::Value),
        (status = 404, description = "Unknown installation or action"),
    )
)]
#[post("/api/orgs/{org}/installations/{inst}/actions/{name}")]
async fn run_action(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    s: S,
) -> R {
    let (o, i, name) = path.into_inner();
    let (who, org) = s.caller_for(&req, &o).await?;
    let input: serde_json::Value = json(&body)?;
    let inst = inst_id(&i)?;
    let done = s.portico.action(&org, &inst, &name, input).await?;
    if done.changed {
        let details = serde_json::json!({ "action": name });
        s.audit(
            &req,
            &who,
            "installation.action",
            Some(&org),
            Some(&inst),
            details,
        )
        .await;
    }
    Ok(match done.file {
        Some(file) => file_response(file),
        None => HttpResponse::Ok().json(serde_json::json!({ "result": done.result })),
    })
}

/// A one-time setup link.
#[derive(Serialize, ToSchema)]
struct SetupLinkView {
    /// Opens the file once, without signing in, until `expires_at`.
    url: String,
    /// HTTP date.
    expires_at: String,
    /// The URL as a QR code (SVG), for a phone's camera.
    qr_svg: String,
}

/// Makes a one-time, short-lived link that downloads a file action's file without signing
/// in (what the QR code on the admin page encodes).
#[utoipa::path(
    tag = "installations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("inst" = String, Path, description = "Installation id"),
        ("name" = String, Path, description = "A file action's name"),
    ),
    request_body(content = serde_json::Value, description = "The action's input"),
    responses(
        (status = 200, description = "The link", body = SetupLinkView),
        (status = 404, description = "Unknown installation or not a file action"),
    )
)]
#[post("/api/orgs/{org}/installations/{inst}/actions/{name}/link")]
async fn action_link(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    s: S,
) -> R {
    let (o, i, name) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    let input: serde_json::Value = json(&body)?;
    let link = crate::setup::create(&s.portico, &org, &inst_id(&i)?, &name, input).await?;
    let qr_svg = crate::setup::qr_svg(&link.url)?;
    Ok(HttpResponse::Ok().json(SetupLinkView {
        url: link.url,
        expires_at: link.expires_at,
        qr_svg,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QrQuery {
    /// The text to encode (at most 1,000 bytes).
    text: String,
}

/// A QR code (SVG) of any text, e.g. the account URL for DAVx5.
#[utoipa::path(
    tag = "installations",
    params(QrQuery),
    responses((status = 200, description = "image/svg+xml"))
)]
#[get("/api/qr.svg")]
async fn qr(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?;
    let q: QrQuery = query(&req)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(crate::setup::qr_svg(&q.text)?))
}

/// Uninstalls: the app's hook runs, then its URLs answer 404.
#[utoipa::path(
    tag = "installations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("inst" = String, Path, description = "Installation id"),
    ),
    responses(
        (status = 204, description = "Uninstalled"),
        (status = 404, description = "Unknown"),
    )
)]
#[delete("/api/orgs/{org}/installations/{inst}")]
async fn uninstall(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, i) = path.into_inner();
    let (who, org) = s.caller_for(&req, &o).await?;
    let inst = inst_id(&i)?;
    s.portico.uninstall(&org, &inst).await?;
    s.audit(
        &req,
        &who,
        "installation.uninstalled",
        Some(&org),
        Some(&inst),
        serde_json::Value::Null,
    )
    .await;
    Ok(HttpResponse::NoContent().finish())
}

// ----- customers -----

/// Creates a customer.
#[utoipa::path(
    tag = "customers",
    params(("org" = String, Path, description = "Organization id")),
    request_body(content = serde_json::Value, description = "A customer draft"),
    responses(
        (status = 201, description = "Created", body = serde_json::Value),
        (status = 422, description = "Invalid"),
    )
)]
#[post("/api/orgs/{org}/customers")]
async fn create_customer(req: HttpRequest, path: web::Path<String>, body: web::Bytes, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    let draft: CustomerDraft = json(&body)?;
    let c = s.portico.create_customer(&org, draft).await?;
    Ok(HttpResponse::Created().json(c))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The `next` of the previous page.
    after: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// Only customers whose name, email or phone contains this (case-insensitive).
    q: Option<String>,
}

/// Customers in id order, a page at a time, optionally filtered.
#[utoipa::path(
    tag = "customers",
    params(("org" = String, Path, description = "Organization id"), ListQuery),
    responses((status = 200, description = "`{customers, next}`", body = serde_json::Value))
)]
#[get("/api/orgs/{org}/customers")]
async fn list_customers(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    let q: ListQuery = query(&req)?;
    let after = q.after.as_deref().map(cust_id).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = match q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => {
            s.portico
                .search_customers(&org, text, after.as_ref(), limit)
                .await?
        }
        None => {
            s.portico.org(&org).await?;
            s.portico
                .store
                .list_customers(&org, after.as_ref(), limit)
                .await?
        }
    };
    let next = if page.len() == limit {
        page.last().map(|c| c.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "customers": page, "next": next })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `jsonl` (default), `csv` or `vcf`.
    #[param(value_type = Option<String>)]
    format: Option<Format>,
}

/// The answer to a refused import.
#[derive(Serialize, ToSchema)]
struct ImportRefused {
    #[schema(value_type = Object)]
    error: serde_json::Value,
    created: usize,
    updated: usize,
    /// `[row, reason]` pairs; rows are line numbers (a CSV header is line 1).
    #[schema(value_type = Vec<Object>)]
    errors: Vec<(usize, String)>,
}

/// Imports a file of customers, all-or-nothing: every row is checked first, and a file with
/// any bad row imports nothing (422 listing every bad row). A row with an existing id updates
/// that customer.
#[utoipa::path(
    tag = "customers",
    params(("org" = String, Path, description = "Organization id"), ImportQuery),
    request_body(content = String, description = "The file's bytes (UTF-8)", content_type = "text/plain"),
    responses(
        (status = 200, description = "Imported", body = ImportReport),
        (status = 422, description = "Refused; nothing was imported", body = ImportRefused),
    )
)]
#[post("/api/orgs/{org}/customers/import")]
async fn import_customers(req: HttpRequest, path: web::Path<String>, body: web::Bytes, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    let q: ImportQuery = query(&req)?;
    let text = std::str::from_utf8(&body).map_err(|_| bad("the file must be UTF-8 text"))?;
    match s
        .portico
        .import_file(&org, q.format.unwrap_or(Format::Jsonl), text)
        .await?
    {
        Ok(report) => Ok(HttpResponse::Ok().json(report)),
        Err(report) => {
            let msg = format!("{} bad row(s); nothing was imported", report.errors.len());
            Ok(HttpResponse::UnprocessableEntity().json(ImportRefused {
                error: crate::error::error_body(ErrorKind::Unprocessable, &msg)["error"].clone(),
                created: 0,
                updated: 0,
                errors: report.errors,
            }))
        }
    }
}

/// The whole book as one `.vcf` file (stored cards byte for byte; vCard 3.0 for customers
/// without one).
#[utoipa::path(
    tag = "customers",
    params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "text/vcard"))
)]
#[get("/api/orgs/{org}/customers/export.vcf")]
async fn export_customers(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    let o = s.portico.org(&org).await?;
    let mut out = String::new();
    let mut after: Option<CustomerId> = None;
    loop {
        let page = s
            .portico
            .store
            .list_customers(&org, after.as_ref(), 1000)
            .await?;
        for c in &page {
            // Photos are stored apart from the card text: read them back for the export.
            let keys: Vec<String> = c
                .card
                .iter()
                .flat_map(|k| k.media.iter().map(|m| m.key.clone()))
                .collect();
            let media = if keys.is_empty() {
                Vec::new()
            } else {
                s.portico.store.get_card_media(&org, &c.id, &keys).await?
            };
            let text = portico_carddav::vcf_file::card_text(c, &media);
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push_str("\r\n");
            }
        }
        if page.len() < 1000 {
            break;
        }
        after = page.last().map(|c| c.id.clone());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/vcard; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{}-contacts.vcf\"", o.slug),
        ))
        .body(out))
}

/// One customer.
#[utoipa::path(
    tag = "customers",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("id" = String, Path, description = "Customer id"),
    ),
    responses(
        (status = 200, description = "The customer", body = serde_json::Value),
        (status = 404, description = "Unknown"),
    )
)]
#[get("/api/orgs/{org}/customers/{id}")]
async fn get_customer(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, c) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    s.portico.org(&org).await?;
    let found = s.portico.store.get_customer(&org, &cust_id(&c)?).await?;
    let c = found.ok_or_else(|| HostError::kind(ErrorKind::NotFound, "customer not found"))?;
    Ok(HttpResponse::Ok().json(c))
}

/// Changes some fields of a customer (`expected_revision` makes it conditional).
#[utoipa::path(
    tag = "customers",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("id" = String, Path, description = "Customer id"),
    ),
    request_body(content = serde_json::Value, description = "The fields to change"),
    responses(
        (status = 200, description = "Updated", body = serde_json::Value),
        (status = 404, description = "Unknown"),
        (status = 412, description = "The revision changed meanwhile"),
    )
)]
#[patch("/api/orgs/{org}/customers/{id}")]
async fn update_customer(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    s: S,
) -> R {
    let (o, c) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    let patch: CustomerPatch = json(&body)?;
    let c = s
        .portico
        .update_customer(&org, &cust_id(&c)?, patch)
        .await?;
    Ok(HttpResponse::Ok().json(c))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// Delete only at this revision.
    expected_revision: Option<u64>,
}

/// Deletes a customer.
#[utoipa::path(
    tag = "customers",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("id" = String, Path, description = "Customer id"),
        DeleteQuery,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown"),
        (status = 412, description = "The revision changed meanwhile"),
    )
)]
#[delete("/api/orgs/{org}/customers/{id}")]
async fn delete_customer(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, c) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    let q: DeleteQuery = query(&req)?;
    s.portico
        .delete_customer(&org, &cust_id(&c)?, q.expected_revision)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ----- organization tokens -----

/// Token input.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    /// What the token is for (e.g. "Owner's laptop").
    label: String,
}

/// A freshly minted token (the token itself is shown only here).
#[derive(Serialize, ToSchema)]
struct MintedToken {
    #[serde(flatten)]
    record: OrgToken,
    /// The token: give it to the organization's owner.
    token: String,
}

/// Mints a token limited to one organization (global admin only).
#[utoipa::path(
    tag = "tokens",
    params(("org" = String, Path, description = "Organization id")),
    request_body = NewToken,
    responses(
        (status = 201, description = "Minted", body = MintedToken),
        (status = 403, description = "Global admin only"),
    )
)]
#[post("/api/orgs/{org}/tokens")]
async fn mint_token(req: HttpRequest, path: web::Path<String>, body: web::Bytes, s: S) -> R {
    let (who, org) = s.caller_for(&req, &path).await?;
    who.check_admin()?;
    s.portico.org(&org).await?;
    let n: NewToken = json(&body)?;
    let (record, token) = admin_auth::mint_token(&s.portico, &org, &n.label).await?;
    let details = serde_json::json!({ "token_id": record.id, "label": record.label });
    s.audit(&req, &who, "token.minted", Some(&org), None, details)
        .await;
    Ok(HttpResponse::Created().json(MintedToken { record, token }))
}

/// The organization's tokens (global admin only).
#[utoipa::path(
    tag = "tokens",
    params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "Tokens (never the token values)", body = [OrgToken]))
)]
#[get("/api/orgs/{org}/tokens")]
async fn list_tokens(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (who, org) = s.caller_for(&req, &path).await?;
    who.check_admin()?;
    s.portico.org(&org).await?;
    Ok(HttpResponse::Ok().json(admin_auth::list_tokens(&s.portico, &org).await?))
}

/// Revokes a token; sessions opened with it end (global admin only).
#[utoipa::path(
    tag = "tokens",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("id" = String, Path, description = "Token id"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "Unknown"),
    )
)]
#[delete("/api/orgs/{org}/tokens/{id}")]
async fn revoke_token(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, id) = path.into_inner();
    let (who, org) = s.caller_for(&req, &o).await?;
    who.check_admin()?;
    admin_auth::revoke_token(&s.portico, &org, &id).await?;
    let details = serde_json::json!({ "token_id": id });
    s.audit(&req, &who, "token.revoked", Some(&org), None, details)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

// ----- operations: request logs and webhooks -----

/// The installation's recent requests, newest first (this process's log; no bodies, query
/// strings or credentials).
#[utoipa::path(
    tag = "installations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("inst" = String, Path, description = "Installation id"),
    ),
    responses(
        (status = 200, description = "Recent requests", body = [crate::operations::RequestRecord]),
        (status = 404, description = "Unknown"),
    )
)]
#[get("/api/orgs/{org}/installations/{inst}/requests")]
async fn installation_requests(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, i) = path.into_inner();
    let (_, org) = s.caller_for(&req, &o).await?;
    let inst = inst_id(&i)?;
    s.portico
        .store
        .get_installation(&org, &inst)
        .await?
        .ok_or_else(|| HostError::kind(ErrorKind::NotFound, "installation not found"))?;
    Ok(HttpResponse::Ok().json(s.portico.request_log.recent(&inst)))
}

/// A webhook endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhook {
    /// Where deliveries go (`http` or `https`).
    url: String,
    /// Event types to send (empty or absent: all).
    #[serde(default)]
    events: Vec<String>,
}

/// A registered endpoint with its signing secret (shown only here).
#[derive(Serialize, ToSchema)]
struct RegisteredWebhook {
    #[serde(flatten)]
    endpoint: crate::webhooks::EndpointView,
    /// HMAC-SHA256 key for `Portico-Signature`.
    secret: String,
}

async fn register_webhook(
    s: &AdminState,
    req: &HttpRequest,
    who: &Principal,
    org: Option<&OrgId>,
    body: &[u8],
) -> R {
    let n: NewWebhook = json(body)?;
    let (endpoint, secret) = crate::webhooks::register(&s.portico, org, &n.url, n.events).await?;
    let details = serde_json::json!({ "endpoint": endpoint.id, "url": endpoint.url });
    s.audit(req, who, "webhook.registered", org, None, details)
        .await;
    Ok(HttpResponse::Created().json(RegisteredWebhook { endpoint, secret }))
}

/// Registers a webhook endpoint for the organization's events.
#[utoipa::path(
    tag = "webhooks",
    params(("org" = String, Path, description = "Organization id")),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = RegisteredWebhook),
        (status = 422, description = "Invalid URL or event list"),
    )
)]
#[post("/api/orgs/{org}/webhooks")]
async fn create_org_webhook(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    s: S,
) -> R {
    let (who, org) = s.caller_for(&req, &path).await?;
    s.portico.org(&org).await?;
    register_webhook(&s, &req, &who, Some(&org), &body).await
}

/// The organization's webhook endpoints with their recent delivery attempts.
#[utoipa::path(
    tag = "webhooks",
    params(("org" = String, Path, description = "Organization id")),
    responses((status = 200, description = "Endpoints", body = [crate::webhooks::EndpointView]))
)]
#[get("/api/orgs/{org}/webhooks")]
async fn list_org_webhooks(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    s.portico.org(&org).await?;
    Ok(HttpResponse::Ok().json(crate::webhooks::list(&s.portico, Some(&org)).await?))
}

/// Deletes a webhook endpoint of the organization (its pending deliveries are dropped).
#[utoipa::path(
    tag = "webhooks",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("id" = String, Path, description = "Endpoint id"),
    ),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown"))
)]
#[delete("/api/orgs/{org}/webhooks/{id}")]
async fn delete_org_webhook(req: HttpRequest, path: web::Path<(String, String)>, s: S) -> R {
    let (o, id) = path.into_inner();
    let (who, org) = s.caller_for(&req, &o).await?;
    crate::webhooks::remove(&s.portico, Some(&org), &id).await?;
    let details = serde_json::json!({ "endpoint": id });
    s.audit(&req, &who, "webhook.deleted", Some(&org), None, details)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// Registers a platform webhook endpoint: every organization's events (global admin only).
#[utoipa::path(
    tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = RegisteredWebhook),
        (status = 403, description = "Global admin only"),
    )
)]
#[post("/api/webhooks")]
async fn create_platform_webhook(req: HttpRequest, body: web::Bytes, s: S) -> R {
    let who = s.caller(&req).await?;
    who.check_admin()?;
    register_webhook(&s, &req, &who, None, &body).await
}

/// The platform webhook endpoints (global admin only).
#[utoipa::path(
    tag = "webhooks",
    responses((status = 200, description = "Endpoints", body = [crate::webhooks::EndpointView]))
)]
#[get("/api/webhooks")]
async fn list_platform_webhooks(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?.check_admin()?;
    Ok(HttpResponse::Ok().json(crate::webhooks::list(&s.portico, None).await?))
}

/// Deletes a platform webhook endpoint (global admin only).
#[utoipa::path(
    tag = "webhooks",
    params(("id" = String, Path, description = "Endpoint id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown"))
)]
#[delete("/api/webhooks/{id}")]
async fn delete_platform_webhook(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let who = s.caller(&req).await?;
    who.check_admin()?;
    crate::webhooks::remove(&s.portico, None, &path).await?;
    let details = serde_json::json!({ "endpoint": path.as_str() });
    s.audit(&req, &who, "webhook.deleted", None, None, details)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// Re-seals every secret under the active key (see `portico keys rotate`): online, and
/// resumable by running it again (global admin only).
#[utoipa::path(
    tag = "keys",
    responses(
        (status = 200, description = "What was re-sealed; `complete` is false while anything is left", body = crate::keys::RotationReport),
        (status = 403, description = "Global admin only"),
    )
)]
#[post("/api/keys/rotate")]
async fn rotate_keys(req: HttpRequest, s: S) -> R {
    let who = s.caller(&req).await?;
    who.check_admin()?;
    let report = crate::keys::rotate(&s.portico).await?;
    let details = serde_json::json!({
        "active_key": report.active_key,
        "values_resealed": report.values_resealed,
        "complete": report.complete,
    });
    s.audit(&req, &who, "keys.rotated", None, None, details)
        .await;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// How many entries (newest first), 1–1000, default 100.
    limit: Option<usize>,
}

/// The audit log, newest first (global admin only): installs, uninstalls, password
/// regenerations and other changing actions, tokens, webhook endpoints, key rotations, sign-ins
/// and lockouts.
#[utoipa::path(
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries", body = [crate::audit::Entry]),
        (status = 403, description = "Global admin only"),
    )
)]
#[get("/api/audit")]
async fn audit_log(req: HttpRequest, s: S) -> R {
    s.caller(&req).await?.check_admin()?;
    let q: AuditQuery = query(&req)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(HttpResponse::Ok().json(crate::audit::recent(&s.portico, None, limit).await?))
}

/// The organization's audit entries, newest first.
#[utoipa::path(
    tag = "audit",
    params(("org" = String, Path, description = "Organization id"), AuditQuery),
    responses((status = 200, description = "Entries", body = [crate::audit::Entry]))
)]
#[get("/api/orgs/{org}/audit")]
async fn org_audit_log(req: HttpRequest, path: web::Path<String>, s: S) -> R {
    let (_, org) = s.caller_for(&req, &path).await?;
    let q: AuditQuery = query(&req)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(HttpResponse::Ok().json(crate::audit::recent(&s.portico, Some(&org), limit).await?))
}

/// This document.
#[utoipa::path(
    tag = "apps",
    responses((status = 200, description = "OpenAPI 3 document of the admin API"))
)]
#[get("/api/openapi.json")]
async fn openapi_json(s: S) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(s.openapi.clone())
}

/// Registers the admin routes, relative to `/admin`. Order matters where a fixed segment and
/// a `{param}` share a position (`check-slug`, `import`, `export.vcf`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(sign_in)
        .service(session)
        .service(sign_out)
        .service(openapi_json)
        .service(list_apps)
        .service(qr)
        .service(check_slug)
        .service(create_org)
        .service(list_orgs)
        .service(get_org)
        .service(install)
        .service(list_installations)
        .service(installation_status)
        .service(uninstall)
        .service(run_action)
        .service(action_link)
        .service(installation_requests)
        .service(create_customer)
        .service(list_customers)
        .service(import_customers)
        .service(export_customers)
        .service(get_customer)
        .service(update_customer)
        .service(delete_customer)
        .service(mint_token)
        .service(list_tokens)
        .service(revoke_token)
        .service(create_org_webhook)
        .service(list_org_webhooks)
        .service(delete_org_webhook)
        .service(create_platform_webhook)
        .service(list_platform_webhooks)
        .service(delete_platform_webhook)
        .service(rotate_keys)
        .service(audit_log)
        .service(org_audit_log);
}

/// The OpenAPI document of the admin API, collected from [`routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .service(utoipa_actix_web::scope("/admin").configure(routes))
        .split_for_parts();
    api.info.title = "Portico admin API".into();
    api.info.version = env!("CARGO_PKG_VERSION").into();
    api.info.contact = None;
    api.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    api.info.description = Some(
        "Organizations, installed apps and customers. Authenticate with \
         `Authorization: Bearer <admin token or organization token>`, or with the admin page's \
         session cookie plus `X-CSRF-Token` on state-changing requests. Errors are \
         `{\"error\": {\"code\", \"message\"}}`."
            .into(),
    );
    api
}

/// The SHA-256 digest of a token, as kept in [`AdminState`].
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.trim().as_bytes()).into()
}
