//! The admin API under `/admin/api`: JSON in and out, bearer admin token, errors from the one
//! mapping in [`crate::error`].
use crate::core::{CustomerPatch, Portico};
use crate::error::HostError;
use actix_web::{web, HttpRequest, HttpResponse};
use portico_sdk::{CustomerDraft, CustomerId, ErrorKind, InstallInput, InstallationId, OrgId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Admin API state.
pub struct AdminState {
    /// The host.
    pub portico: Arc<Portico>,
    /// SHA-256 of the admin token; `None` closes the API.
    pub token_hash: Option<[u8; 32]>,
}

type R = Result<HttpResponse, HostError>;

fn bad(msg: impl Into<String>) -> HostError {
    HostError::kind(ErrorKind::BadRequest, msg)
}

/// Compares the bearer token in constant time (on digests, so the length does not leak).
/// Failures count towards a lockout of the client address (see [`crate::limits`]).
fn authorize(req: &HttpRequest, state: &AdminState) -> Result<(), HostError> {
    let unauthorized =
        || HostError::kind(ErrorKind::Unauthorized, "a valid admin token is required");
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let limiter = &state.portico.limiter;
    if let Some(wait) = limiter.locked(LIMIT_SCOPE, &addr) {
        return Err(HostError::Throttled(wait.as_secs().max(1)));
    }
    let expected = state.token_hash.ok_or_else(unauthorized)?;
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(given) = given else {
        return Err(unauthorized());
    };
    let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    if bool::from(digest.ct_eq(&expected)) {
        limiter.success(LIMIT_SCOPE, &addr);
        Ok(())
    } else {
        limiter.failure(LIMIT_SCOPE, &addr);
        Err(unauthorized())
    }
}

/// The limiter scope of admin token failures.
const LIMIT_SCOPE: &str = "admin";

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, HostError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| bad(format!("invalid JSON body: {e}")));
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON body: {e}")))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    slug: String,
    name: String,
    #[serde(default)]
    id: Option<OrgId>,
}

async fn create_org(req: HttpRequest, body: web::Bytes, s: web::Data<AdminState>) -> R {
    authorize(&req, &s)?;
    let n: NewOrg = json(&body)?;
    let org = s.portico.create_org(&n.slug, &n.name, n.id).await?;
    Ok(HttpResponse::Created().json(org))
}

async fn list_orgs(req: HttpRequest, s: web::Data<AdminState>) -> R {
    authorize(&req, &s)?;
    Ok(HttpResponse::Ok().json(s.portico.store.list_orgs().await?))
}

async fn get_org(req: HttpRequest, path: web::Path<String>, s: web::Data<AdminState>) -> R {
    authorize(&req, &s)?;
    Ok(HttpResponse::Ok().json(s.portico.org(&org_id(&path)?).await?))
}

async fn list_apps(req: HttpRequest, s: web::Data<AdminState>) -> R {
    authorize(&req, &s)?;
    Ok(HttpResponse::Ok().json(s.portico.registry.manifests()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInstallation {
    kind: String,
    #[serde(default)]
    id: Option<InstallationId>,
    #[serde(default)]
    config: serde_json::Value,
    #[serde(default)]
    secrets: std::collections::BTreeMap<String, portico_sdk::Secret<String>>,
}

async fn install(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let n: NewInstallation = json(&body)?;
    let input = InstallInput {
        config: n.config,
        secrets: n.secrets,
    };
    let out = s
        .portico
        .install(&org_id(&path)?, &n.kind, input, n.id)
        .await?;
    Ok(if out.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    }
    .json(out))
}

async fn list_installations(
    req: HttpRequest,
    path: web::Path<String>,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    Ok(HttpResponse::Ok().json(s.portico.installations(&org_id(&path)?).await?))
}

async fn installation_status(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, i) = path.into_inner();
    let (view, status) = s.portico.status(&org_id(&o)?, &inst_id(&i)?).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "installation": view, "status": status })))
}

async fn run_action(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, i, name) = path.into_inner();
    let input: serde_json::Value = json(&body)?;
    let result = s
        .portico
        .action(&org_id(&o)?, &inst_id(&i)?, &name, input)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "result": result })))
}

async fn uninstall(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, i) = path.into_inner();
    s.portico.uninstall(&org_id(&o)?, &inst_id(&i)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn create_customer(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let draft: CustomerDraft = json(&body)?;
    let c = s.portico.create_customer(&org_id(&path)?, draft).await?;
    Ok(HttpResponse::Created().json(c))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list_customers(req: HttpRequest, path: web::Path<String>, s: web::Data<AdminState>) -> R {
    authorize(&req, &s)?;
    let q: ListQuery = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| bad(format!("invalid query: {e}")))?
        .into_inner();
    let org = org_id(&path)?;
    s.portico.org(&org).await?;
    let after = q.after.as_deref().map(cust_id).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = s
        .portico
        .store
        .list_customers(&org, after.as_ref(), limit)
        .await?;
    let next = if page.len() == limit {
        page.last().map(|c| c.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "customers": page, "next": next })))
}

async fn get_customer(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, c) = path.into_inner();
    let org = org_id(&o)?;
    s.portico.org(&org).await?;
    let found = s.portico.store.get_customer(&org, &cust_id(&c)?).await?;
    let c = found.ok_or_else(|| HostError::kind(ErrorKind::NotFound, "customer not found"))?;
    Ok(HttpResponse::Ok().json(c))
}

async fn update_customer(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, c) = path.into_inner();
    let patch: CustomerPatch = json(&body)?;
    let c = s
        .portico
        .update_customer(&org_id(&o)?, &cust_id(&c)?, patch)
        .await?;
    Ok(HttpResponse::Ok().json(c))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    expected_revision: Option<u64>,
}

async fn delete_customer(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let (o, c) = path.into_inner();
    let q = web::Query::<DeleteQuery>::from_query(req.query_string())
        .map_err(|e| bad(format!("invalid query: {e}")))?;
    s.portico
        .delete_customer(&org_id(&o)?, &cust_id(&c)?, q.expected_revision)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn import_customers(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    s: web::Data<AdminState>,
) -> R {
    authorize(&req, &s)?;
    let text = std::str::from_utf8(&body).map_err(|_| bad("the body must be UTF-8 JSON lines"))?;
    let report = s.portico.import_customers(&org_id(&path)?, text).await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Registers the admin API routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/api")
            .route("/apps", web::get().to(list_apps))
            .route("/orgs", web::post().to(create_org))
            .route("/orgs", web::get().to(list_orgs))
            .route("/orgs/{org}", web::get().to(get_org))
            .route("/orgs/{org}/installations", web::post().to(install))
            .route(
                "/orgs/{org}/installations",
                web::get().to(list_installations),
            )
            .route(
                "/orgs/{org}/installations/{inst}",
                web::get().to(installation_status),
            )
            .route(
                "/orgs/{org}/installations/{inst}",
                web::delete().to(uninstall),
            )
            .route(
                "/orgs/{org}/installations/{inst}/actions/{name}",
                web::post().to(run_action),
            )
            .route("/orgs/{org}/customers", web::post().to(create_customer))
            .route("/orgs/{org}/customers", web::get().to(list_customers))
            .route(
                "/orgs/{org}/customers/import",
                web::post().to(import_customers),
            )
            .route("/orgs/{org}/customers/{id}", web::get().to(get_customer))
            .route(
                "/orgs/{org}/customers/{id}",
                web::patch().to(update_customer),
            )
            .route(
                "/orgs/{org}/customers/{id}",
                web::delete().to(delete_customer),
            )
            .default_service(web::to(|| async {
                HostError::kind(ErrorKind::NotFound, "no such admin endpoint").into_response()
            })),
    );
}

trait IntoResponse {
    fn into_response(self) -> HttpResponse;
}

impl IntoResponse for HostError {
    fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// The SHA-256 digest of a token, as kept in [`AdminState`].
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}
