//! The HTTP methods: request headers in, [`crate::ops`] / [`crate::props`] in the middle,
//! responses out. Reads use the installation record the host resolved for this request; writes
//! go through [`mutate`], which queues them per installation inside this process and loads,
//! changes and saves the tree with the store's optimistic revision check, retrying when another
//! process wrote first.
use crate::conditions::{self, Blocked};
use crate::ops::{self, Transfer};
use crate::props;
use crate::tree::{Refusal, Tree, MAX_BYTES, MAX_PATH};
use dashmap::DashMap;
use portico_carddav::dav::{
    error_body, normalize_href, parse_propfind, parse_proppatch, DavError, Depth,
    MultistatusWriter, PropValue, Propstat,
};
use portico_sdk::http::StatusCode;
use portico_sdk::{
    AppContext, AppError, AppRequest, AppResponse, ErrorKind, InstallationId, Timestamp,
};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The methods every resource answers (RFC 9110 §10.2.1), for `Allow`.
pub const ALLOW: &str = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH";

/// The compliance class (RFC 4918 §18.1): class 1, no locking.
pub const DAV_CLASSES: &str = "1";

/// How often a write is tried when another write to the same installation won the race.
const WRITE_ATTEMPTS: usize = 5;

const XML: &str = "application/xml; charset=utf-8";

/// What a change to the tree gives: a response, and whether the tree must be saved.
pub enum Step {
    /// Nothing changed (a refusal, or a no-op): answer without saving.
    Keep(AppResponse),
    /// The tree changed: save it, then answer.
    Save(AppResponse),
}

/// A refusal as a response: a `DAV:error` body when it names a condition, else text; 405
/// carries `Allow`.
pub fn refusal(r: Refusal) -> AppResponse {
    let resp = match &r.condition {
        Some(c) => AppResponse::new(r.status)
            .with_header("content-type", XML)
            .with_body(error_body(c)),
        None => AppResponse::text(r.status, r.reason),
    };
    if r.status == StatusCode::METHOD_NOT_ALLOWED {
        resp.with_header("allow", ALLOW)
    } else {
        resp
    }
}

fn status(code: StatusCode, text: &str) -> AppResponse {
    AppResponse::text(code, text)
}

/// A request body error: 400 (or 413) for malformed XML, 403 with a condition otherwise.
fn dav_error(e: &DavError) -> AppResponse {
    match e.response_body() {
        Some(body) => AppResponse::new(e.status())
            .with_header("content-type", XML)
            .with_body(body),
        None => AppResponse::text(e.status(), e.to_string()),
    }
}

fn blocked(b: Blocked) -> AppResponse {
    match b {
        Blocked::Failed => status(
            StatusCode::PRECONDITION_FAILED,
            "a condition of the request does not hold",
        ),
        Blocked::NotModified(etag) => {
            let r = AppResponse::new(StatusCode::NOT_MODIFIED);
            match etag {
                Some(e) => r.with_header("etag", &e),
                None => r,
            }
        }
        Blocked::Malformed => status(StatusCode::BAD_REQUEST, "malformed If header"),
    }
}

/// The tree path a request addresses, or why it is refused.
pub fn target_path(req: &AppRequest) -> Result<String, Refusal> {
    if req.segments.iter().any(|s| s.contains('/')) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "an encoded '/' inside a path segment is not supported",
        ));
    }
    let path = req.segments.join("/");
    if path.len() > MAX_PATH {
        return Err(Refusal::new(StatusCode::URI_TOO_LONG, "path too long"));
    }
    Ok(path)
}

/// Queues the writes to one installation inside this process, so they do not race each other
/// for the record's revision; writes from other processes sharing the store are caught by the
/// revision check in [`mutate`]. Each lock holds the revision this process saved last.
#[derive(Default)]
pub struct WriteLocks {
    locks: DashMap<InstallationId, Arc<Mutex<u64>>>,
}

impl WriteLocks {
    fn get(&self, id: &InstallationId) -> Arc<Mutex<u64>> {
        if self.locks.len() > 100_000 {
            // Dropping entries only loses queueing (holders keep theirs), never correctness.
            self.locks.clear();
        }
        self.locks.entry(id.clone()).or_default().clone()
    }

    /// Forgets an installation (after uninstall).
    pub fn forget(&self, id: &InstallationId) {
        self.locks.remove(id);
    }
}

/// Loads the tree, lets `change` work on it, and saves it if asked, with the installation's
/// write lock held. The record the host resolved for this request is used unless this process
/// has saved a newer one since; when the store reports that another process wrote first, the
/// record is read again and the change retried, a few times, then 503.
async fn mutate<F>(
    cx: &AppContext,
    locks: &WriteLocks,
    mut change: F,
) -> Result<AppResponse, AppError>
where
    F: FnMut(&mut Tree, Timestamp) -> Step + Send,
{
    let lock = locks.get(&cx.installation.id);
    let mut last_saved = lock.lock().await;
    let mut inst = cx.installation.clone();
    for attempt in 0..WRITE_ATTEMPTS {
        if attempt > 0 || inst.revision < *last_saved {
            inst = cx.installation_store.load().await?;
        }
        let mut tree = Tree::from_data(&inst.data)?;
        match change(&mut tree, cx.clock.now()) {
            Step::Keep(r) => return Ok(r),
            Step::Save(r) => {
                tree.write_into(&mut inst.data)?;
                match cx.installation_store.save(&inst).await {
                    Ok(saved) => {
                        *last_saved = saved.revision;
                        return Ok(r);
                    }
                    Err(e) if e.kind == ErrorKind::PreconditionFailed => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(status(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many concurrent changes; retry",
    )
    .with_header("retry-after", "1"))
}

/// OPTIONS: the compliance class and the methods.
pub fn options() -> AppResponse {
    AppResponse::new(StatusCode::OK)
        .with_header("dav", DAV_CLASSES)
        .with_header("allow", ALLOW)
}

/// Any method this server does not implement (LOCK and UNLOCK among them: class 1).
pub fn not_allowed() -> AppResponse {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not supported by this WebDAV scratch area",
    )
    .with_header("allow", ALLOW)
}

/// GET and HEAD: a file's bytes, or a plain-text listing of a collection.
pub fn get(cx: &AppContext, req: &AppRequest, path: &str) -> Result<AppResponse, AppError> {
    let tree = Tree::from_data(&cx.installation.data)?;
    let Some(node) = tree.get(path) else {
        return Ok(status(StatusCode::NOT_FOUND, "no such resource"));
    };
    if let Err(b) = conditions::check(req, &tree, path, true) {
        return Ok(blocked(b));
    }
    let modified = props::http_date(node.modified);
    Ok(match &node.file {
        Some(f) => AppResponse::new(StatusCode::OK)
            .with_header("content-type", &f.content_type)
            .with_header("etag", &f.etag)
            .with_header("last-modified", &modified)
            .with_body(f.body.clone()),
        None => {
            let mut listing = format!("{}\n", props::href(&req.base_path, path, true));
            for m in tree.members(path) {
                let name = m.rsplit('/').next().unwrap_or(&m);
                let slash = if tree.is_collection(&m) { "/" } else { "" };
                listing.push_str(&format!("{name}{slash}\n"));
            }
            AppResponse::text(StatusCode::OK, listing).with_header("last-modified", &modified)
        }
    })
}

/// PUT: create or replace a file with the request body.
pub async fn put(
    cx: &AppContext,
    locks: &WriteLocks,
    req: &AppRequest,
    path: &str,
) -> Result<AppResponse, AppError> {
    if req.header("content-range").is_some() {
        // RFC 9110 §14.5: a partial PUT must not be taken for a whole one.
        return Ok(status(
            StatusCode::BAD_REQUEST,
            "Content-Range on PUT is not supported",
        ));
    }
    if req.body.len() as u64 > MAX_BYTES {
        return Ok(refusal(Refusal::storage()));
    }
    let content_type = req
        .header("content-type")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("application/octet-stream");
    mutate(cx, locks, |tree, now| {
        if let Err(b) = conditions::check(req, tree, path, false) {
            return Step::Keep(blocked(b));
        }
        match ops::put(tree, path, &req.body, content_type, now) {
            Ok(done) => {
                let etag = tree.get(path).and_then(|n| n.etag()).unwrap_or_default();
                Step::Save(AppResponse::new(done.status()).with_header("etag", etag))
            }
            Err(r) => Step::Keep(refusal(r)),
        }
    })
    .await
}

/// DELETE: a resource, collections with all their members.
pub async fn delete(
    cx: &AppContext,
    locks: &WriteLocks,
    req: &AppRequest,
    path: &str,
) -> Result<AppResponse, AppError> {
    let depth = match Depth::from_header(req.header("depth"), Depth::Infinity) {
        Ok(d) => d,
        Err(e) => return Ok(dav_error(&e)),
    };
    mutate(cx, locks, |tree, _| {
        if depth != Depth::Infinity && tree.is_collection(path) {
            // RFC 4918 §9.6.1: DELETE of a collection is always Depth: infinity.
            return Step::Keep(status(
                StatusCode::BAD_REQUEST,
                "DELETE of a collection takes Depth: infinity",
            ));
        }
        if tree.get(path).is_some() {
            if let Err(b) = conditions::check(req, tree, path, false) {
                return Step::Keep(blocked(b));
            }
        }
        match ops::delete(tree, path) {
            Ok(()) => Step::Save(AppResponse::new(StatusCode::NO_CONTENT)),
            Err(r) => Step::Keep(refusal(r)),
        }
    })
    .await
}

/// MKCOL: a new, empty collection. A body is refused with 415: no MKCOL body format is
/// supported (RFC 4918 §9.3).
pub async fn mkcol(
    cx: &AppContext,
    locks: &WriteLocks,
    req: &AppRequest,
    path: &str,
) -> Result<AppResponse, AppError> {
    if !req.body.is_empty() {
        return Ok(status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "MKCOL with a body is not supported",
        ));
    }
    mutate(cx, locks, |tree, now| {
        if let Err(b) = conditions::check(req, tree, path, false) {
            return Step::Keep(blocked(b));
        }
        match ops::mkcol(tree, path, now) {
            Ok(()) => Step::Save(AppResponse::new(StatusCode::CREATED)),
            Err(r) => Step::Keep(refusal(r)),
        }
    })
    .await
}

/// The authority (`host[:port]`) of an absolute URL, if it is one.
fn authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    rest.split(['/', '?', '#']).next()
}

/// The `Destination` header (RFC 4918 §10.3) as a tree path. 400 if it is missing or
/// malformed; 502 if it names another server or a place outside this installation
/// (RFC 4918 §9.8.5, §9.9.4: "the destination is on another server, repository, or URL
/// namespace").
pub fn destination(cx: &AppContext, req: &AppRequest) -> Result<String, Refusal> {
    let Some(raw) = req.header("destination").map(str::trim) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Destination header required",
        ));
    };
    if let Some(auth) = authority(raw) {
        let ours = req
            .header("host")
            .is_some_and(|h| h.trim().eq_ignore_ascii_case(auth))
            || authority(&cx.links.public_url).is_some_and(|p| p.eq_ignore_ascii_case(auth));
        if !ours {
            return Err(Refusal::new(
                StatusCode::BAD_GATEWAY,
                "the destination is on another server",
            ));
        }
    }
    match normalize_href(raw, &req.base_path) {
        Some(p) => {
            let p = p.trim_end_matches('/').to_owned();
            if p.len() > MAX_PATH {
                return Err(Refusal::new(
                    StatusCode::URI_TOO_LONG,
                    "destination too long",
                ));
            }
            Ok(p)
        }
        None if normalize_href(raw, "/").is_some() => Err(Refusal::new(
            StatusCode::BAD_GATEWAY,
            "the destination is outside this installation",
        )),
        None => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "malformed Destination",
        )),
    }
}

/// COPY and MOVE.
pub async fn transfer(
    cx: &AppContext,
    locks: &WriteLocks,
    req: &AppRequest,
    path: &str,
    kind: Transfer,
) -> Result<AppResponse, AppError> {
    let dst = match destination(cx, req) {
        Ok(d) => d,
        Err(r) => return Ok(refusal(r)),
    };
    let overwrite = match req.header("overwrite").map(str::trim) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("t") => true,
        Some(v) if v.eq_ignore_ascii_case("f") => false,
        Some(_) => return Ok(status(StatusCode::BAD_REQUEST, "Overwrite must be T or F")),
    };
    let depth = match Depth::from_header(req.header("depth"), Depth::Infinity) {
        Ok(d) => d,
        Err(e) => return Ok(dav_error(&e)),
    };
    mutate(cx, locks, |tree, now| {
        if tree.is_collection(path) {
            // RFC 4918 §9.8.3: COPY takes 0 or infinity; §9.9.2: MOVE only infinity.
            let valid = match kind {
                Transfer::Copy => depth != Depth::One,
                Transfer::Move => depth == Depth::Infinity,
            };
            if !valid {
                return Step::Keep(status(
                    StatusCode::BAD_REQUEST,
                    "invalid Depth for this method on a collection",
                ));
            }
        }
        if let Err(b) = conditions::check(req, tree, path, false) {
            return Step::Keep(blocked(b));
        }
        match ops::transfer(tree, kind, path, &dst, depth, overwrite, now) {
            Ok(done) => Step::Save(AppResponse::new(done.status())),
            Err(r) => Step::Keep(refusal(r)),
        }
    })
    .await
}

/// PROPFIND: Depth 0, 1 or infinity (the default); `prop`, `allprop` (with `include`) or
/// `propname`.
pub fn propfind(cx: &AppContext, req: &AppRequest, path: &str) -> Result<AppResponse, AppError> {
    let depth = match Depth::from_header(req.header("depth"), Depth::Infinity) {
        Ok(d) => d,
        Err(e) => return Ok(dav_error(&e)),
    };
    let request = match parse_propfind(&req.body) {
        Ok(r) => r,
        Err(e) => return Ok(dav_error(&e)),
    };
    let tree = Tree::from_data(&cx.installation.data)?;
    if tree.get(path).is_none() {
        return Ok(status(StatusCode::NOT_FOUND, "no such resource"));
    }
    if let Err(b) = conditions::check(req, &tree, path, true) {
        return Ok(blocked(b));
    }
    let body = props::propfind(&tree, path, depth, &request, &req.base_path);
    Ok(AppResponse::new(StatusCode::MULTI_STATUS)
        .with_header("content-type", XML)
        .with_body(body))
}

/// PROPPATCH: set and remove dead properties, all or nothing.
pub async fn proppatch(
    cx: &AppContext,
    locks: &WriteLocks,
    req: &AppRequest,
    path: &str,
) -> Result<AppResponse, AppError> {
    let parsed = match parse_proppatch(&req.body) {
        Ok(p) => p,
        Err(e) => return Ok(dav_error(&e)),
    };
    mutate(cx, locks, |tree, _| {
        let collection = tree.is_collection(path);
        if tree.get(path).is_some() {
            if let Err(b) = conditions::check(req, tree, path, false) {
                return Step::Keep(blocked(b));
            }
        }
        let outcome = match ops::proppatch(tree, path, &parsed.ops) {
            Ok(o) => o,
            Err(r) => return Step::Keep(refusal(r)),
        };
        // One propstat per status, in order of first appearance.
        let mut groups: Vec<Propstat> = Vec::new();
        for (name, code, condition) in outcome.results {
            match groups
                .iter_mut()
                .find(|g| g.status == code && g.error == condition)
            {
                Some(g) => g.props.push((name, PropValue::Empty)),
                None => {
                    let mut g = Propstat::new(code, vec![(name, PropValue::Empty)]);
                    g.error = condition;
                    groups.push(g);
                }
            }
        }
        let mut w = MultistatusWriter::begin();
        w.response(&props::href(&req.base_path, path, collection), &groups);
        let resp = AppResponse::new(StatusCode::MULTI_STATUS)
            .with_header("content-type", XML)
            .with_body(w.finish());
        if outcome.applied {
            Step::Save(resp)
        } else {
            Step::Keep(resp)
        }
    })
    .await
}
