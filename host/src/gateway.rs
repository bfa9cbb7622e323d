//! The gateway: `/api/apps/{organizationId}/{appId}/{...slug}` for every method, and
//! `/.well-known/{name}` for apps that claim a well-known entry point.
use crate::core::Portico;
use crate::error::HostError;
use actix_web::http::header::{HeaderMap as ActixHeaders, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use portico_sdk::{AppRequest, AppResponse, ErrorKind};
use std::sync::Arc;
use std::time::Instant;

/// Shared handler state.
pub struct GatewayState {
    /// The host.
    pub portico: Arc<Portico>,
    /// Largest accepted body.
    pub body_limit: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: std::time::Duration,
}

const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, DELETE, OPTIONS, PROPFIND, PROPPATCH, REPORT, MKCOL, COPY, MOVE, LOCK, UNLOCK";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, Depth, Prefer, If-Match, If-None-Match, Brief, Overwrite, Destination, Accept, X-Requested-With";
const EXPOSE_HEADERS: &str = "ETag, DAV, Location, Content-Length, WWW-Authenticate";

/// Percent-decodes one path segment. `None` for invalid escapes or invalid UTF-8.
pub fn decode_segment(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The gateway path split into org, installation and the decoded segments below the base.
#[derive(Debug, PartialEq)]
pub struct GatewayPath {
    /// `{organizationId}` as written.
    pub org: String,
    /// `{appId}` as written.
    pub installation: String,
    /// Decoded segments below the base.
    pub segments: Vec<String>,
    /// The path ended with `/` below the base.
    pub trailing_slash: bool,
}

/// Splits and decodes a raw (still percent-encoded) path under `/api/apps/`. Segments are decoded
/// once, each on its own, so an encoded `/` stays inside its segment; `.` and `..` segments
/// (also when encoded) are refused so nothing escapes the installation.
pub fn parse_gateway_path(raw: &str) -> Result<GatewayPath, &'static str> {
    let rest = raw.strip_prefix("/api/apps/").ok_or("not a gateway path")?;
    let mut parts = rest.splitn(3, '/');
    let org = parts
        .next()
        .filter(|s| !s.is_empty())
        .ok_or("missing organization")?;
    let inst = parts
        .next()
        .filter(|s| !s.is_empty())
        .ok_or("missing installation")?;
    let tail = parts.next().unwrap_or("");
    let mut segments = Vec::new();
    for seg in tail.split('/') {
        if seg.is_empty() {
            continue;
        }
        let d = decode_segment(seg).ok_or("invalid percent-encoding in path")?;
        if d == "." || d == ".." || d.contains('\0') {
            return Err("dot segments are not allowed");
        }
        segments.push(d);
    }
    Ok(GatewayPath {
        org: org.to_owned(),
        installation: inst.to_owned(),
        trailing_slash: tail.ends_with('/') && !segments.is_empty(),
        segments,
    })
}

fn cors(req: &HttpRequest, b: &mut HttpResponseBuilder) {
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*");
    b.insert_header(("Access-Control-Allow-Origin", origin));
    b.insert_header(("Access-Control-Expose-Headers", EXPOSE_HEADERS));
    b.insert_header(("Vary", "Origin"));
}

fn json_error(req: &HttpRequest, kind: ErrorKind, message: &str) -> HttpResponse {
    let mut b = HttpResponse::build(crate::error::status_of(kind));
    cors(req, &mut b);
    b.json(crate::error::error_body(kind, message))
}

fn throttled(req: &HttpRequest, secs: u64) -> HttpResponse {
    let mut b = HttpResponse::TooManyRequests();
    cors(req, &mut b);
    b.insert_header(("Retry-After", secs.to_string()));
    b.json(crate::error::error_body(
        ErrorKind::TooManyRequests,
        &format!("too many failed attempts; retry in {secs} s"),
    ))
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    json_error(req, ErrorKind::NotFound, "no such installation")
}

/// Reads the body, refusing it (413) once it passes `limit`.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, HttpResponse> {
    let too_large = || json_error(req, ErrorKind::PayloadTooLarge, "request body too large");
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    let mut body = BytesMut::new();
    // A client that trickles its body is cut off: the whole body must arrive within
    // `timeout` (the head has its own limit, `server.request_head_timeout_ms`).
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|_| json_error(req, ErrorKind::BadRequest, "could not read body"))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r?,
        Err(_) => {
            let mut b = HttpResponse::RequestTimeout();
            cors(req, &mut b);
            b.insert_header(("Connection", "close"));
            return Err(b.json(crate::error::error_body(
                ErrorKind::BadRequest,
                "the request body did not arrive in time",
            )));
        }
    }
    Ok(body.freeze())
}

fn to_http_headers(h: &ActixHeaders) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(h.len());
    for (k, v) in h.iter() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_str().as_bytes()),
            http::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            out.append(n, v);
        }
    }
    out
}

fn write_response(req: &HttpRequest, r: AppResponse) -> HttpResponse {
    let status =
        StatusCode::from_u16(r.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut b = HttpResponse::build(status);
    for (k, v) in r.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            b.append_header((n, v));
        }
    }
    cors(req, &mut b);
    if let Some(stream) = r.stream {
        if req.method() == actix_web::http::Method::HEAD {
            return b.finish();
        }
        let chunks = futures_util::stream::unfold(Some(stream), |state| async move {
            let mut s = state?;
            match s.next_chunk().await {
                Ok(Some(chunk)) => Some((Ok::<Bytes, actix_web::Error>(chunk), Some(s))),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "streamed response ended early");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError("stream failed")),
                        None,
                    ))
                }
            }
        });
        return b.streaming(chunks);
    }
    // For HEAD, actix-http sends no body bytes but keeps the body's length in Content-Length
    // (RFC 9110 §9.3.2: HEAD answers as GET would, without content).
    b.body(r.body)
}

fn is_preflight(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::OPTIONS
        && req.headers().contains_key("origin")
        && req.headers().contains_key("access-control-request-method")
}

fn preflight(req: &HttpRequest) -> HttpResponse {
    let mut b = HttpResponse::NoContent();
    cors(req, &mut b);
    b.insert_header(("Access-Control-Allow-Methods", ALLOW_METHODS));
    b.insert_header(("Access-Control-Allow-Headers", ALLOW_HEADERS));
    b.insert_header(("Access-Control-Max-Age", "600"));
    b.finish()
}

fn app_request(req: &HttpRequest, body: Bytes, p: GatewayPath, base_path: String) -> AppRequest {
    AppRequest {
        method: http::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(http::Method::GET),
        segments: p.segments,
        trailing_slash: p.trailing_slash,
        query: Some(req.query_string().to_owned()).filter(|q| !q.is_empty()),
        headers: to_http_headers(req.headers()),
        body,
        base_path,
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

/// Every request under `/api/apps/`.
pub async fn gateway(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
) -> HttpResponse {
    let started = Instant::now();
    if is_preflight(&req) {
        return preflight(&req);
    }
    let path = match parse_gateway_path(req.uri().path()) {
        Ok(p) => p,
        Err(why) => return json_error(&req, ErrorKind::BadRequest, why),
    };
    let resolved = match state.portico.resolve(&path.org, &path.installation).await {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(&req),
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let (org, inst, reg) = resolved;
    let portico = &state.portico;
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let resp = serve(&req, payload, &state, org, &inst, reg, &addr, path).await;
    finish(portico, &req, &inst, addr, started, resp)
}

/// Serves a resolved request: operator switches, limits, then the app.
#[allow(clippy::too_many_arguments)]
async fn serve(
    req: &HttpRequest,
    payload: web::Payload,
    state: &GatewayState,
    org: portico_sdk::Organization,
    inst: &portico_sdk::Installation,
    reg: crate::registry::Registered,
    addr: &str,
    path: GatewayPath,
) -> HttpResponse {
    let portico = &state.portico;
    if portico.kind_disabled(&inst.kind) {
        let mut b = HttpResponse::ServiceUnavailable();
        cors(req, &mut b);
        b.insert_header(("Retry-After", "3600"));
        return b.json(crate::error::error_body(
            ErrorKind::Unavailable,
            &format!(
                "the '{}' app is switched off by the operator for now; nothing was uninstalled",
                inst.kind
            ),
        ));
    }
    if let Some(limit) = portico.apps.rate_limits.get(&inst.kind) {
        if let Err(wait) = portico.rate_limiter.check(&inst.id, limit) {
            portico.metrics.rate_limited(&inst.kind);
            let mut b = HttpResponse::TooManyRequests();
            cors(req, &mut b);
            b.insert_header(("Retry-After", wait.as_secs().max(1).to_string()));
            return b.json(crate::error::error_body(
                ErrorKind::TooManyRequests,
                "too many requests for this installation; slow down",
            ));
        }
    }
    let limiter = &state.portico.limiter;
    if let Some(wait) = limiter.locked(inst.id.as_str(), addr) {
        return throttled(req, wait.as_secs().max(1));
    }
    let had_credentials = req.headers().contains_key("authorization");
    let body = match read_body(req, payload, state.body_limit, state.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let base_path = format!("/api/apps/{}/{}/", path.org, path.installation);
    let app_req = app_request(req, body, path, base_path);
    let cx = state.portico.context(&org, inst);
    match reg.app.handle(&cx, app_req).await {
        Ok(r) => {
            // An app's 401 is a failed authentication; a success with credentials resets.
            if r.status == http::StatusCode::UNAUTHORIZED && had_credentials {
                if let Some(lock) = limiter.failure(inst.id.as_str(), addr) {
                    audit_lockout(portico, inst, addr, lock).await;
                }
            } else if had_credentials && r.status.as_u16() < 400 {
                limiter.success(inst.id.as_str(), addr);
            }
            write_response(req, r)
        }
        Err(e) => {
            let mut r = actix_web::ResponseError::error_response(&HostError::App(e));
            let origin = req.headers().get("origin").cloned();
            r.headers_mut().insert(
                HeaderName::from_static("access-control-allow-origin"),
                origin.unwrap_or(HeaderValue::from_static("*")),
            );
            r
        }
    }
}

/// Writes a lockout of a client address (too many failed logins) to the audit log.
async fn audit_lockout(
    portico: &crate::core::Portico,
    inst: &portico_sdk::Installation,
    addr: &str,
    lock: std::time::Duration,
) {
    crate::audit::record(
        portico,
        crate::audit::Record {
            action: "auth.locked_out",
            actor: "client",
            address: Some(addr),
            org: Some(&inst.org_id),
            installation: Some(&inst.id),
            details: serde_json::json!({ "kind": inst.kind, "lockout_secs": lock.as_secs() }),
        },
    )
    .await;
}

/// Logs, counts and records a served request.
fn finish(
    portico: &crate::core::Portico,
    req: &HttpRequest,
    inst: &portico_sdk::Installation,
    addr: String,
    started: Instant,
    resp: HttpResponse,
) -> HttpResponse {
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    tracing::info!(
        org = %inst.org_id, installation = %inst.id, kind = %inst.kind, method = %req.method(),
        status, latency_us = elapsed.as_micros() as u64, "request"
    );
    portico.metrics.request(&inst.kind, status, elapsed);
    let bytes = match actix_web::body::MessageBody::size(resp.body()) {
        actix_web::body::BodySize::Sized(n) => n,
        _ => 0,
    };
    // The path below the installation only: no query string (it may carry tokens).
    let below = req
        .path()
        .splitn(5, '/')
        .nth(4)
        .map(|rest| format!("/{}", rest.split_once('/').map(|x| x.1).unwrap_or("")))
        .unwrap_or_else(|| "/".into());
    portico.request_log.record(
        &inst.id,
        portico.apps.request_log_size,
        crate::operations::RequestRecord {
            at: portico.clock.now().0,
            method: req.method().to_string(),
            path: below,
            status,
            micros: elapsed.as_micros() as u64,
            bytes,
            client: addr,
        },
    );
    resp
}

/// Parses `Authorization: Basic …` into (username, password); UTF-8 per RFC 7617.
pub fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers.get("authorization")?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
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

fn challenge(req: &HttpRequest) -> HttpResponse {
    let mut b = HttpResponse::Unauthorized();
    cors(req, &mut b);
    b.insert_header((
        "WWW-Authenticate",
        "Basic realm=\"Portico\", charset=\"UTF-8\"",
    ));
    b.json(crate::error::error_body(
        ErrorKind::Unauthorized,
        "credentials required",
    ))
}

/// `/.well-known/{name}` (RFC 8615; RFC 6764 for CardDAV). The installation is found from the
/// Basic credentials: the username is the organization slug, and the organization must have
/// exactly one installation of an app claiming `name`.
pub async fn well_known(
    req: HttpRequest,
    payload: web::Payload,
    name: web::Path<String>,
    state: web::Data<GatewayState>,
) -> HttpResponse {
    let name = name.into_inner();
    if is_preflight(&req) {
        return preflight(&req);
    }
    let p = &state.portico;
    let claimed = p
        .registry
        .manifests()
        .into_iter()
        .any(|m| m.well_known.contains(&name));
    if !claimed {
        return json_error(&req, ErrorKind::NotFound, "unknown well-known name");
    }
    let headers = to_http_headers(req.headers());
    let Some((user, _)) = basic_credentials(&headers) else {
        return challenge(&req);
    };
    let org = match p.store.find_org_by_slug(&user).await {
        Ok(Some(o)) => o,
        Ok(None) => return challenge(&req),
        Err(e) => return actix_web::ResponseError::error_response(&HostError::Store(e)),
    };
    let insts = match p.store.list_installations(&org.id).await {
        Ok(v) => v,
        Err(e) => return actix_web::ResponseError::error_response(&HostError::Store(e)),
    };
    let mut targets: Vec<_> = insts
        .into_iter()
        .filter(|i| i.status != portico_sdk::InstallationStatus::Disabled)
        .filter_map(|i| {
            let reg = p.registry.get(&i.kind)?;
            reg.manifest.well_known.contains(&name).then_some((i, reg))
        })
        .collect();
    if targets.len() != 1 {
        return challenge(&req);
    }
    let Some((inst, reg)) = targets.pop() else {
        return challenge(&req);
    };
    let body = match read_body(&req, payload, state.body_limit, state.body_timeout).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let base_path = format!("/api/apps/{}/{}/", org.id, inst.id);
    let path = GatewayPath {
        org: org.id.to_string(),
        installation: inst.id.to_string(),
        segments: vec![],
        trailing_slash: false,
    };
    let app_req = app_request(&req, body, path, base_path);
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    if let Some(wait) = p.limiter.locked(inst.id.as_str(), &addr) {
        return throttled(&req, wait.as_secs().max(1));
    }
    let cx = p.context(&org, &inst);
    match reg.app.well_known(&cx, &name, app_req).await {
        Ok(r) => {
            if r.status == http::StatusCode::UNAUTHORIZED {
                if let Some(lock) = p.limiter.failure(inst.id.as_str(), &addr) {
                    audit_lockout(p, &inst, &addr, lock).await;
                }
            } else if r.status.as_u16() < 400 {
                p.limiter.success(inst.id.as_str(), &addr);
            }
            write_response(&req, r)
        }
        Err(e) => actix_web::ResponseError::error_response(&HostError::App(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_once_per_segment() {
        let p = parse_gateway_path("/api/apps/o/i/a%2Fb/c%20d.vcf").unwrap();
        assert_eq!(p.org, "o");
        assert_eq!(p.installation, "i");
        assert_eq!(p.segments, vec!["a/b", "c d.vcf"]);
        assert!(!p.trailing_slash);
        let p = parse_gateway_path("/api/apps/o/i/book/").unwrap();
        assert!(p.trailing_slash);
        let p = parse_gateway_path("/api/apps/o/i").unwrap();
        assert!(p.segments.is_empty());
        let p = parse_gateway_path("/api/apps/o/i/%2541").unwrap();
        assert_eq!(p.segments, vec!["%41"], "double encoding is decoded once");
    }

    #[test]
    fn dot_segments_and_bad_escapes_are_refused() {
        assert!(parse_gateway_path("/api/apps/o/i/../x").is_err());
        assert!(parse_gateway_path("/api/apps/o/i/%2e%2E/x").is_err());
        assert!(parse_gateway_path("/api/apps/o/i/./x").is_err());
        assert!(parse_gateway_path("/api/apps/o/i/%zz").is_err());
        assert!(
            parse_gateway_path("/api/apps/o/i/%c0%af").is_err(),
            "overlong UTF-8"
        );
        assert!(parse_gateway_path("/api/apps/o/i/a%00b").is_err());
        assert!(parse_gateway_path("/api/apps/o").is_err());
    }

    #[test]
    fn basic_credentials_are_utf8() {
        use base64::Engine;
        let mut h = http::HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("zoë:pa:ss");
        h.insert("authorization", format!("Basic {v}").parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("zoë".into(), "pa:ss".into())));
        h.insert("authorization", "Bearer x".parse().unwrap());
        assert_eq!(basic_credentials(&h), None);
    }
}
