//! WebDAV / CardDAV XML (RFC 4918, 6352, 6578, with bits of 3253, 3744, 5397): pure functions
//! over plain types, no I/O.
//!
//! - Parsing request bodies: [`parse_propfind`], [`parse_proppatch`], [`parse_report`] (all via
//!   the hardened [`parse_xml`]), the `Depth` header ([`Depth`]), client hrefs
//!   ([`normalize_href`]).
//! - Query filters and their evaluation: [`Filter`], [`TextMatch::matches`], [`FilterSubject`].
//! - Writing answers: [`MultistatusWriter`] with [`Propstat`] / [`PropValue`],
//!   [`propstats_for`] to split found and unknown properties, preformatted live property values
//!   in [`fragments`], and `DAV:error` bodies ([`Precondition`], [`error_body`]).
//! - Errors: [`DavError`] — [`DavError::status`] is 400/413 for malformed input, 403 with the
//!   precondition body of [`DavError::response_body`] for unsupported requests.
//!
//! Names are always compared as (namespace URI, local name), never by prefix.
//!
//! A typical PROPFIND in the glue:
//!
//! ```
//! use portico_carddav::dav::*;
//!
//! # fn main() -> Result<(), DavError> {
//! let body = br#"<propfind xmlns="DAV:"><prop><getetag/><resourcetype/><x:nope xmlns:x="urn:x"/></prop></propfind>"#;
//! let depth = Depth::from_header(Some("1"), Depth::Infinity)?;
//! assert_eq!(depth, Depth::One);
//! let names = match parse_propfind(body)? {
//!     PropfindRequest::Prop(names) => names,
//!     _ => unreachable!(),
//! };
//!
//! let mut w = MultistatusWriter::begin();
//! let propstats = propstats_for(&names, |name| match KnownProp::from_name(name)? {
//!     KnownProp::GetEtag => Some(PropValue::Text("\"1\"".into())),
//!     KnownProp::ResourceType => Some(PropValue::Xml(fragments::RESOURCETYPE_ADDRESSBOOK.into())),
//!     _ => None,
//! });
//! w.response("/api/apps/acme/i/addressbook/customers/", &propstats);
//! let xml = String::from_utf8_lossy(&w.finish()).into_owned();
//! assert!(xml.contains("<d:propstat><d:prop><x:nope xmlns:x=\"urn:x\"/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status>"));
//! # Ok(())
//! # }
//! ```

mod error;
mod filter;
pub mod fragments;
pub mod href;
mod multistatus;
mod names;
mod precondition;
mod request;
mod simple_multiget;
pub mod xml;

#[cfg(test)]
mod tests;

pub use error::DavError;
pub use filter::{
    Collation, Filter, FilterProperty, FilterSubject, FilterTest, MatchType, ParamFilter,
    PropFilter, TextMatch,
};
pub use href::{encode_href, normalize_href, percent_decode, HrefBase};
pub use multistatus::{propstats_for, status_line, MultistatusWriter, PropValue, Propstat};
pub use names::{KnownProp, PropName, NS_CALENDARSERVER, NS_CARDDAV, NS_DAV, ROOT_NAMESPACE_DECLS};
pub use precondition::{error_body, error_body_with, Precondition};
pub use request::{
    parse_propfind, parse_proppatch, parse_report, parse_report_tree, AddressDataRequest, Depth,
    MultigetRequest, PropOp, PropRequest, PropfindRequest, ProppatchRequest, QueryRequest,
    ReportRequest, SyncLevel, SyncRequest,
};
pub use xml::{parse_xml, parse_xml_with, XmlLimits};
