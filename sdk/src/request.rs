use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// A request as the host hands it to an app: framework-free and already normalized.
///
/// The host has matched `/api/apps/{org}/{installation}/`, resolved the installation, bounded the
/// body (a request over the limit never reaches the app) and percent-decoded the rest of the path
/// once. `..` and `.` segments are refused by the host, so `segments` never leave the
/// installation.
#[derive(Debug, Clone)]
pub struct AppRequest {
    /// The HTTP method, including extension methods such as `PROPFIND` or `REPORT`.
    pub method: Method,
    /// The path below the installation base, split at `/` and percent-decoded per segment (an
    /// encoded `%2F` stays inside its segment). Empty for the base itself.
    pub segments: Vec<String>,
    /// True if the path ended with `/` (and is not the base itself).
    pub trailing_slash: bool,
    /// The query string without `?`, as received.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The whole body (bounded by the host's limit).
    pub body: Bytes,
    /// The absolute path of the installation base as clients address it, ending with `/`,
    /// e.g. `/api/apps/acme/4f0c…/`. Use it to build hrefs.
    pub base_path: String,
    /// The client's address as the host saw it, if known.
    pub remote_addr: Option<String>,
}

impl AppRequest {
    /// A request with no headers or body (handy in tests).
    pub fn new(method: Method, base_path: &str, path: &str) -> Self {
        let trailing_slash = path.ends_with('/') && !path.is_empty();
        AppRequest {
            method,
            segments: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            trailing_slash,
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            base_path: base_path.to_owned(),
            remote_addr: None,
        }
    }

    /// Adds a header (builder style; invalid names or values are ignored).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.append(n, v);
        }
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The decoded path below the base, segments joined by `/`.
    pub fn slug(&self) -> String {
        self.segments.join("/")
    }

    /// A header as text, if present and valid visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A body produced piece by piece, for answers too large to hold in memory at once (e.g. a
/// multistatus listing every card of a big address book). The host calls
/// [`BodyStream::next_chunk`] until it returns `Ok(None)`, sending each chunk as it arrives; an
/// error ends the response early (the client sees a truncated body), so produce errors before
/// the first chunk where possible.
#[async_trait::async_trait]
pub trait BodyStream: Send + 'static {
    /// The next piece of the body, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, crate::AppError>;
}

/// What an app answers. The host adds CORS and server headers and writes it out unchanged.
pub struct AppResponse {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body (ignored when `stream` is set).
    pub body: Bytes,
    /// A streamed body, sent instead of `body` (chunked transfer encoding).
    pub stream: Option<Box<dyn BodyStream>>,
}

impl std::fmt::Debug for AppResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("streamed", &self.stream.is_some())
            .finish()
    }
}

impl AppResponse {
    /// An empty response with this status.
    pub fn new(status: StatusCode) -> Self {
        AppResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            stream: None,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self::new(status)
            .with_header("content-type", "text/plain; charset=utf-8")
            .with_body(body.into())
    }

    /// An `application/json` response.
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(value.to_string())
    }

    /// Sets a header, replacing any earlier value of the same name. Names or values that are not
    /// valid HTTP are dropped (apps build headers from their own data, never from raw input).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            self.headers.insert(n, v);
        }
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a streamed body, produced while it is sent.
    pub fn with_stream(mut self, stream: impl BodyStream) -> Self {
        self.stream = Some(Box::new(stream));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_builder_splits_path() {
        let r = AppRequest::new(Method::GET, "/api/apps/o/i/", "a/b/");
        assert_eq!(r.segments, vec!["a", "b"]);
        assert!(r.trailing_slash);
        assert_eq!(r.slug(), "a/b");
        let r = AppRequest::new(Method::GET, "/api/apps/o/i/", "");
        assert!(r.segments.is_empty());
        assert!(!r.trailing_slash);
    }

    #[test]
    fn response_builders() {
        let r = AppResponse::text(StatusCode::OK, "hi").with_header("x-a", "1");
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(r.headers["x-a"], "1");
        assert_eq!(&r.body[..], b"hi");
        let bad = AppResponse::new(StatusCode::OK).with_header("bad header", "x");
        assert!(bad.headers.is_empty());
    }
}
