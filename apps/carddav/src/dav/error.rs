//! [`DavError`]: why a request body (or header) could not be used, and how to answer.

use portico_sdk::http::StatusCode;

use super::names::PropName;
use super::precondition::{error_body, Precondition};

/// Why a WebDAV request could not be parsed or is not supported.
///
/// Two families, told apart by [`DavError::status`]:
/// - the request is **malformed** (not XML, not UTF-8, a DTD, wrong structure, a bad `Depth`):
///   400 Bad Request with no body (RFC 4918 §8.2: a body that is not well-formed XML gets 400);
///   a body over the size or node limits gets 413;
/// - the request is well-formed but asks for something **unsupported**: 403 Forbidden with the
///   `DAV:error` body of [`DavError::precondition`] (e.g. `DAV:supported-report`,
///   `card:supported-filter`, `card:supported-collation`, `card:supported-address-data`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DavError {
    /// The body is not UTF-8 (the only encoding accepted; RFC 4918 §8.2 requires UTF-8 or
    /// UTF-16 support and no client sends UTF-16).
    #[error("request body is not UTF-8")]
    NotUtf8,
    /// The body is larger than the parser accepts.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Elements nest deeper than the parser accepts.
    #[error("XML nests deeper than {limit} levels")]
    TooDeep {
        /// The limit in element levels.
        limit: usize,
    },
    /// The document has more nodes than the parser accepts.
    #[error("XML has more than {limit} nodes")]
    TooManyNodes {
        /// The limit in nodes.
        limit: u32,
    },
    /// The body contains a document type or entity declaration. Refused outright: no DAV body
    /// needs one and they are the vehicle of entity-expansion and external-entity attacks
    /// (RFC 4918 §20.6).
    #[error("DOCTYPE and entity declarations are not accepted")]
    Dtd,
    /// The body is not well-formed XML.
    #[error("malformed XML: {0}")]
    Malformed(String),
    /// The body is well-formed XML but not a valid request of its kind (wrong root element, a
    /// required element or attribute missing, an attribute value outside its enumeration).
    #[error("invalid request body: {0}")]
    Invalid(String),
    /// The `Depth` header has a value other than `0`, `1` or `infinity` (RFC 4918 §10.2).
    #[error("invalid Depth header {0:?}")]
    InvalidDepth(String),
    /// A REPORT this server does not implement (RFC 3253 §3.6).
    #[error("unsupported report {0}")]
    UnsupportedReport(PropName),
    /// An `addressbook-query` filter uses an element this server does not support
    /// (RFC 6352 §8.6, `card:supported-filter`).
    #[error("unsupported filter: {0}")]
    UnsupportedFilter(String),
    /// A `text-match` names a collation this server does not implement
    /// (RFC 6352 §8.3, `card:supported-collation`).
    #[error("unsupported collation {0:?}")]
    UnsupportedCollation(String),
    /// `address-data` asks for a media type or version this server cannot produce
    /// (RFC 6352 §8.7, `card:supported-address-data`).
    #[error("unsupported address data {content_type:?} version {version:?}")]
    UnsupportedAddressData {
        /// The requested `content-type`, if given.
        content_type: Option<String>,
        /// The requested `version`, if given.
        version: Option<String>,
    },
}

impl DavError {
    /// True for the malformed family (400/413): the client sent something broken.
    pub fn is_malformed(&self) -> bool {
        self.precondition().is_none()
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            DavError::TooLarge { .. } | DavError::TooManyNodes { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            DavError::NotUtf8
            | DavError::TooDeep { .. }
            | DavError::Dtd
            | DavError::Malformed(_)
            | DavError::Invalid(_)
            | DavError::InvalidDepth(_) => StatusCode::BAD_REQUEST,
            DavError::UnsupportedReport(_)
            | DavError::UnsupportedFilter(_)
            | DavError::UnsupportedCollation(_)
            | DavError::UnsupportedAddressData { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The precondition to name in the response body, for the unsupported family.
    pub fn precondition(&self) -> Option<Precondition> {
        match self {
            DavError::UnsupportedReport(_) => Some(Precondition::SupportedReport),
            DavError::UnsupportedFilter(_) => Some(Precondition::SupportedFilter),
            DavError::UnsupportedCollation(_) => Some(Precondition::SupportedCollation),
            DavError::UnsupportedAddressData { .. } => Some(Precondition::SupportedAddressData),
            _ => None,
        }
    }

    /// The response body: the `DAV:error` document for the unsupported family, `None` (an empty
    /// body) for the malformed family.
    pub fn response_body(&self) -> Option<String> {
        self.precondition().map(|p| error_body(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(
            DavError::Malformed("x".into()).status(),
            StatusCode::BAD_REQUEST
        );
        assert!(DavError::Dtd.is_malformed());
        assert_eq!(DavError::Dtd.response_body(), None);
        assert_eq!(
            DavError::TooLarge { limit: 1 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let e = DavError::UnsupportedCollation("i;x".into());
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(!e.is_malformed());
        assert_eq!(e.precondition(), Some(Precondition::SupportedCollation));
        assert!(e
            .response_body()
            .is_some_and(|b| b.contains("<card:supported-collation/>")));
        assert_eq!(
            DavError::UnsupportedReport(PropName::dav("expand-property")).precondition(),
            Some(Precondition::SupportedReport)
        );
    }
}
