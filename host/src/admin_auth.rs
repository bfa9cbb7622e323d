//! Who is calling the admin API: the global admin token, an organization-scoped token, or a
//! browser session of the admin page (opened with either), and the CSRF check for sessions.
//!
//! - **Tokens** travel as `Authorization: Bearer …`. The global token is compared with the
//!   configured SHA-256 digest; organization tokens (`pto_…`, minted by the global admin) are
//!   kept as host records keyed by their SHA-256, so the store never holds a usable token.
//! - **Sessions** (`POST /admin/session`) live in host records too, keyed by the SHA-256 of the
//!   cookie value, so every process sharing the store honours them and logout ends them
//!   everywhere. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/admin` and `Secure` when the
//!   page is served over HTTPS. A session carries a CSRF token the page reads from
//!   `GET /admin/session` and must echo in `X-CSRF-Token` on every state-changing request.
//! - Failed token checks count towards the address's lockout ([`crate::limits`]).
use crate::core::Portico;
use crate::error::HostError;
use actix_web::http::Method;
use actix_web::HttpRequest;
use portico_sdk::{ErrorKind, OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The limiter scope of admin authentication failures.
pub const LIMIT_SCOPE: &str = "admin";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "portico_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 8 * 3600 * 1000;
/// Host-record namespace of organization tokens.
pub const TOKENS: &str = "admin_tokens";
/// Host-record namespace of sessions.
pub const SESSIONS: &str = "admin_sessions";
/// The prefix of organization tokens.
pub const ORG_TOKEN_PREFIX: &str = "pto_";

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The global admin: everything.
    Admin,
    /// An organization's owner: that organization only.
    Org {
        /// The organization.
        org: OrgId,
        /// The id of the token this was opened with.
        token_id: String,
    },
}

impl Principal {
    /// Refuses unless the caller may act on `org`. Another organization answers 404, the same
    /// as one that does not exist, so its existence does not leak.
    pub fn check_org(&self, org: &OrgId) -> Result<(), HostError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Org { org: mine, .. } if mine == org => Ok(()),
            Principal::Org { .. } => Err(HostError::kind(
                ErrorKind::NotFound,
                "organization not found",
            )),
        }
    }

    /// Refuses (403) unless the caller is the global admin.
    pub fn check_admin(&self) -> Result<(), HostError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Org { .. } => Err(HostError::kind(
                ErrorKind::Forbidden,
                "this needs the global admin token",
            )),
        }
    }

    /// `"admin"` or `"org"`.
    pub fn scope(&self) -> &'static str {
        match self {
            Principal::Admin => "admin",
            Principal::Org { .. } => "org",
        }
    }

    /// Who this is, for the audit log: `admin` or `org-token:{id}`.
    pub fn actor(&self) -> String {
        match self {
            Principal::Admin => "admin".into(),
            Principal::Org { token_id, .. } => format!("org-token:{token_id}"),
        }
    }

    /// The organization of an organization-scoped caller.
    pub fn org(&self) -> Option<&OrgId> {
        match self {
            Principal::Admin => None,
            Principal::Org { org, .. } => Some(org),
        }
    }
}

/// An organization token as stored (under the SHA-256 of the token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct OrgToken {
    /// Public id (the first 16 hex digits of the digest).
    pub id: String,
    /// The organization it is limited to.
    #[schema(value_type = String)]
    pub org_id: OrgId,
    /// What the owner called it.
    pub label: String,
    /// When it was minted (ms since the epoch).
    #[schema(value_type = i64)]
    pub created_at: Timestamp,
}

/// A session as stored (under the SHA-256 of the cookie value).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    /// `None` for the global admin.
    org: Option<OrgId>,
    /// The digest key of the organization token it was opened with.
    token_key: Option<String>,
    csrf: String,
    expires_at: i64,
}

/// What `GET /admin/session` shows the page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// `"admin"` or `"org"`.
    pub scope: &'static str,
    /// The organization of an organization-scoped session.
    #[schema(value_type = Option<String>)]
    pub org: Option<OrgId>,
    /// The token to send in `X-CSRF-Token`.
    pub csrf: String,
}

/// Hex SHA-256 of a secret, the key it is stored under.
pub fn digest_hex(secret: &str) -> String {
    Sha256::digest(secret.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client address used for lockouts.
pub fn client_addr(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

fn unauthorized() -> HostError {
    HostError::kind(ErrorKind::Unauthorized, "a valid admin token is required")
}

/// The principal a token opens, if any (no lockout accounting here).
async fn principal_of_token(
    portico: &Portico,
    admin_hash: Option<&[u8; 32]>,
    token: &str,
) -> Result<Option<(Principal, Option<String>)>, HostError> {
    let token = token.trim();
    if let Some(expected) = admin_hash {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if bool::from(digest.ct_eq(expected)) {
            return Ok(Some((Principal::Admin, None)));
        }
    }
    if !token.starts_with(ORG_TOKEN_PREFIX) {
        return Ok(None);
    }
    // The lookup is by digest: timing reveals nothing about a stored token.
    let key = digest_hex(token);
    let Some(v) = portico.store.get_record(TOKENS, &key).await? else {
        return Ok(None);
    };
    let t: OrgToken = serde_json::from_value(v)
        .map_err(|e| HostError::kind(ErrorKind::Internal, format!("stored token: {e}")))?;
    Ok(Some((
        Principal::Org {
            org: t.org_id,
            token_id: t.id,
        },
        Some(key),
    )))
}

/// Checks a token given at sign-in or as a bearer token, counting failures per address.
pub async fn check_token(
    portico: &Portico,
    admin_hash: Option<&[u8; 32]>,
    addr: &str,
    token: &str,
) -> Result<(Principal, Option<String>), HostError> {
    let limiter = &portico.limiter;
    if let Some(wait) = limiter.locked(LIMIT_SCOPE, addr) {
        return Err(HostError::Throttled(wait.as_secs().max(1)));
    }
    match principal_of_token(portico, admin_hash, token).await? {
        Some(p) => {
            limiter.success(LIMIT_SCOPE, addr);
            Ok(p)
        }
        None => {
            if let Some(lock) = limiter.failure(LIMIT_SCOPE, addr) {
                crate::audit::record(
                    portico,
                    crate::audit::Record {
                        action: "auth.locked_out",
                        actor: "client",
                        address: Some(addr),
                        org: None,
                        installation: None,
                        details: serde_json::json!({
                            "scope": "admin",
                            "lockout_secs": lock.as_secs(),
                        }),
                    },
                )
                .await;
            }
            tracing::warn!(addr, "admin authentication failed");
            Err(unauthorized())
        }
    }
}

/// The session cookie's value from the `Cookie` header(s) (RFC 6265 §5.4: `name=value` pairs
/// separated by `; `).
fn cookie_value(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all("cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// The caller of an admin request: a bearer token, else the session cookie (with the CSRF
/// token on state-changing methods: 403 without it).
pub async fn authorize(
    req: &HttpRequest,
    portico: &Portico,
    admin_hash: Option<&[u8; 32]>,
) -> Result<Principal, HostError> {
    let addr = client_addr(req);
    if let Some(auth) = req.headers().get("authorization") {
        let bearer = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        return Ok(check_token(portico, admin_hash, &addr, bearer).await?.0);
    }
    let Some(cookie) = cookie_value(req) else {
        return Err(unauthorized());
    };
    let session = load_session(portico, &cookie)
        .await?
        .ok_or_else(unauthorized)?;
    if !is_safe(req.method()) {
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(given.ct_eq(session.csrf.as_bytes())) {
            return Err(HostError::kind(
                ErrorKind::Forbidden,
                "missing or wrong X-CSRF-Token for this session",
            ));
        }
    }
    principal_of_session(portico, &session).await
}

async fn principal_of_session(
    portico: &Portico,
    session: &Session,
) -> Result<Principal, HostError> {
    match (&session.org, &session.token_key) {
        (None, _) => Ok(Principal::Admin),
        (Some(org), Some(key)) => {
            // A revoked token ends the sessions opened with it.
            let Some(v) = portico.store.get_record(TOKENS, key).await? else {
                return Err(unauthorized());
            };
            let t: OrgToken = serde_json::from_value(v)
                .map_err(|e| HostError::kind(ErrorKind::Internal, format!("stored token: {e}")))?;
            Ok(Principal::Org {
                org: org.clone(),
                token_id: t.id,
            })
        }
        (Some(_), None) => Err(unauthorized()),
    }
}

async fn load_session(portico: &Portico, cookie: &str) -> Result<Option<Session>, HostError> {
    let key = digest_hex(cookie);
    let Some(v) = portico.store.get_record(SESSIONS, &key).await? else {
        return Ok(None);
    };
    let Ok(s) = serde_json::from_value::<Session>(v) else {
        portico.store.take_record(SESSIONS, &key).await?;
        return Ok(None);
    };
    if s.expires_at <= portico.clock.now().0 {
        portico.store.take_record(SESSIONS, &key).await?;
        return Ok(None);
    }
    Ok(Some(s))
}

/// Opens a session for `principal`: returns the cookie value and what the page sees. Expired
/// sessions are swept on the way.
pub async fn open_session(
    portico: &Portico,
    principal: &Principal,
    token_key: Option<String>,
) -> Result<(String, SessionView), HostError> {
    let now = portico.clock.now().0;
    for (key, v) in portico.store.list_records(SESSIONS).await? {
        let expired = serde_json::from_value::<Session>(v)
            .map(|s| s.expires_at <= now)
            .unwrap_or(true);
        if expired {
            portico.store.take_record(SESSIONS, &key).await?;
        }
    }
    let cookie = crate::secrets::random_token(32);
    let csrf = crate::secrets::random_token(24);
    let session = Session {
        org: principal.org().cloned(),
        token_key,
        csrf: csrf.clone(),
        expires_at: now + SESSION_TTL_MS,
    };
    let value = serde_json::to_value(&session)
        .map_err(|e| HostError::kind(ErrorKind::Internal, e.to_string()))?;
    portico
        .store
        .put_record(SESSIONS, &digest_hex(&cookie), &value)
        .await?;
    Ok((
        cookie,
        SessionView {
            scope: principal.scope(),
            org: principal.org().cloned(),
            csrf,
        },
    ))
}

/// The session of this request, as the page sees it.
pub async fn current_session(
    req: &HttpRequest,
    portico: &Portico,
) -> Result<SessionView, HostError> {
    let cookie = cookie_value(req).ok_or_else(unauthorized)?;
    let session = load_session(portico, &cookie)
        .await?
        .ok_or_else(unauthorized)?;
    let principal = principal_of_session(portico, &session).await?;
    Ok(SessionView {
        scope: principal.scope(),
        org: principal.org().cloned(),
        csrf: session.csrf,
    })
}

/// Ends the session of this request (CSRF checked by [`authorize`] first).
pub async fn close_session(req: &HttpRequest, portico: &Portico) -> Result<(), HostError> {
    if let Some(cookie) = cookie_value(req) {
        portico
            .store
            .take_record(SESSIONS, &digest_hex(&cookie))
            .await?;
    }
    Ok(())
}

/// The `Set-Cookie` value for a session (or, with `None`, one that clears it).
pub fn session_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{SESSION_COOKIE}={v}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL_MS / 1000
        ),
        None => {
            format!("{SESSION_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
        }
    }
}

/// Mints an organization token: returns the record and the token (shown once).
pub async fn mint_token(
    portico: &Portico,
    org: &OrgId,
    label: &str,
) -> Result<(OrgToken, String), HostError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        return Err(HostError::kind(
            ErrorKind::Unprocessable,
            "a token needs a label of 1 to 100 characters",
        ));
    }
    let token = format!("{ORG_TOKEN_PREFIX}{}", crate::secrets::random_token(32));
    let key = digest_hex(&token);
    let record = OrgToken {
        id: key[..16].to_owned(),
        org_id: org.clone(),
        label: label.to_owned(),
        created_at: portico.clock.now(),
    };
    let value = serde_json::to_value(&record)
        .map_err(|e| HostError::kind(ErrorKind::Internal, e.to_string()))?;
    portico.store.put_record(TOKENS, &key, &value).await?;
    tracing::info!(org = %org, token = %record.id, "organization token minted");
    Ok((record, token))
}

/// The tokens of an organization.
pub async fn list_tokens(portico: &Portico, org: &OrgId) -> Result<Vec<OrgToken>, HostError> {
    Ok(portico
        .store
        .list_records(TOKENS)
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value::<OrgToken>(v).ok())
        .filter(|t| &t.org_id == org)
        .collect())
}

/// Revokes a token of an organization (its sessions end with it).
pub async fn revoke_token(portico: &Portico, org: &OrgId, id: &str) -> Result<(), HostError> {
    for (key, v) in portico.store.list_records(TOKENS).await? {
        if let Ok(t) = serde_json::from_value::<OrgToken>(v) {
            if &t.org_id == org && t.id == id {
                portico.store.take_record(TOKENS, &key).await?;
                tracing::info!(org = %org, token = %id, "organization token revoked");
                return Ok(());
            }
        }
    }
    Err(HostError::kind(ErrorKind::NotFound, "token not found"))
}
