use std::fmt;

/// The kinds of failure the host knows how to render. The host maps each kind to one HTTP status
/// in a single place; apps pick the kind and a human-readable message.
///
/// Protocol-specific outcomes (a WebDAV precondition body, a 401 challenge) are not errors: an app
/// builds those as an [`crate::AppResponse`] itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed (400).
    BadRequest,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// The thing does not exist, or belongs to someone else (404).
    NotFound,
    /// The method is not supported on this resource (405).
    MethodNotAllowed,
    /// The request conflicts with the current state (409), e.g. a duplicate slug.
    Conflict,
    /// A revision or ETag precondition did not hold (412).
    PreconditionFailed,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// The input is well-formed but not acceptable (422).
    Unprocessable,
    /// Too many failed attempts from this client; retry later (429).
    TooManyRequests,
    /// A dependency (the store, a remote service) is unavailable; try again (503).
    Unavailable,
    /// A bug or an unexpected failure (500). The message is logged, not shown.
    Internal,
}

impl ErrorKind {
    /// A stable snake_case code for JSON error bodies.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unprocessable => "unprocessable",
            ErrorKind::TooManyRequests => "too_many_requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error returned by an app hook or a port. The host renders it as a JSON error body with the
/// status for its [`ErrorKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct AppError {
    /// What went wrong, in the host's vocabulary.
    pub kind: ErrorKind,
    /// A message safe to show to the caller (never a secret). For [`ErrorKind::Internal`] the host
    /// logs it and shows a generic message instead.
    pub message: String,
}

impl AppError {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AppError {
            kind,
            message: message.into(),
        }
    }
    /// A 400-class error for malformed input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }
    /// The thing was not found (or is not visible to this organization).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// A revision precondition did not hold.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, message)
    }
    /// A conflict with existing state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Well-formed input the app refuses.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    /// An unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// A dependency is down; the caller may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
}
