//! Building protocol responses: multistatus, `DAV:error` preconditions, plain statuses.
use crate::dav::{error_body, DavError, Precondition};
use portico_sdk::http::StatusCode;
use portico_sdk::AppResponse;

/// The DAV compliance classes we advertise (RFC 4918 §18; RFC 6352 §6.1). No class 2: we do not
/// support locking, so LOCK/UNLOCK are answered 405.
pub const DAV_HEADER: &str = "1, 3, addressbook";

/// A 207 Multi-Status with an XML body.
pub fn multistatus(body: Vec<u8>) -> AppResponse {
    AppResponse::new(StatusCode::MULTI_STATUS)
        .with_header("content-type", "application/xml; charset=utf-8")
        .with_body(body)
}

/// A precondition failure with its `DAV:error` body (RFC 4918 §16).
pub fn precondition(p: Precondition) -> AppResponse {
    AppResponse::new(p.status())
        .with_header("content-type", "application/xml; charset=utf-8")
        .with_body(error_body(&p))
}

/// A request body error: 400 for malformed XML, 403 + precondition for unsupported requests.
pub fn dav_error(e: &DavError) -> AppResponse {
    match e.response_body() {
        Some(body) => AppResponse::new(e.status())
            .with_header("content-type", "application/xml; charset=utf-8")
            .with_body(body),
        None => AppResponse::text(e.status(), e.to_string()),
    }
}

/// A plain status with a short text body.
pub fn status(code: StatusCode, text: &str) -> AppResponse {
    AppResponse::text(code, text)
}

/// 405 with the methods the resource does support.
pub fn method_not_allowed(allow: &str) -> AppResponse {
    AppResponse::text(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this resource",
    )
    .with_header("allow", allow)
}
