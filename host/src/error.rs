//! The one mapping from failures to HTTP responses for everything the host renders itself
//! (admin API, gateway errors, errors returned by apps).
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use portico_sdk::{AppError, ErrorKind};

/// A failure the host answers with a JSON error body `{ "error": { "code", "message" } }`.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// An error in the shared vocabulary (from an app or the host's own checks).
    #[error("{0}")]
    App(#[from] AppError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Too many failed authentications from this address; retry after this many seconds.
    #[error("too many failed attempts; retry in {0} s")]
    Throttled(u64),
}

impl HostError {
    /// Shorthand for an error of a kind.
    pub fn kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        HostError::App(AppError::new(kind, message))
    }

    fn parts(&self) -> (ErrorKind, String) {
        match self {
            HostError::App(e) if e.kind == ErrorKind::Internal => {
                tracing::error!(error = %e.message, "internal error");
                (ErrorKind::Internal, "internal error".into())
            }
            HostError::App(e) => (e.kind, e.message.clone()),
            HostError::Store(StoreError::Unavailable(m)) => {
                tracing::warn!(error = %m, "store unavailable");
                (
                    ErrorKind::Unavailable,
                    "the store is unavailable; try again".into(),
                )
            }
            // Disk full or read-only data: the write was not applied; the client retries
            // later (503 with Retry-After, for the admin API and CardDAV alike).
            HostError::Store(e @ (StoreError::Full(_) | StoreError::ReadOnly(_))) => {
                tracing::error!(error = %e, "store refused a write");
                (ErrorKind::Unavailable, STORE_CANNOT_WRITE.into())
            }
            HostError::Store(e) => {
                tracing::error!(error = %e, "store failure");
                (ErrorKind::Internal, "internal error".into())
            }
            HostError::Throttled(secs) => (
                ErrorKind::TooManyRequests,
                format!("too many failed attempts; retry in {secs} s"),
            ),
        }
    }
}

/// What a client is told when the store refuses writes (disk full, read-only data).
pub const STORE_CANNOT_WRITE: &str =
    "the store cannot write right now (no space left or read-only); try again later";

/// The status for each error kind. The only place this mapping exists.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body for an error.
pub fn error_body(kind: ErrorKind, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": kind.code(), "message": message } })
}

impl ResponseError for HostError {
    fn status_code(&self) -> StatusCode {
        status_of(self.parts().0)
    }
    fn error_response(&self) -> HttpResponse {
        let (kind, message) = self.parts();
        let mut r = HttpResponse::build(status_of(kind));
        if kind == ErrorKind::Unauthorized {
            r.insert_header(("WWW-Authenticate", "Bearer realm=\"portico-admin\""));
        }
        if kind == ErrorKind::Unavailable {
            r.insert_header(("Retry-After", "1"));
        }
        if let HostError::Throttled(secs) = self {
            r.insert_header(("Retry-After", secs.to_string()));
        }
        r.json(error_body(kind, &message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_status() {
        assert_eq!(status_of(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            status_of(ErrorKind::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let e = HostError::kind(ErrorKind::Internal, "secret detail");
        let (k, m) = e.parts();
        assert_eq!(k, ErrorKind::Internal);
        assert!(!m.contains("secret"), "internal details are not shown");
    }
}
