//! Request headers and bodies → plain types: `Depth`, PROPFIND, PROPPATCH, REPORT.
//!
//! Every parser takes the raw body bytes, parses them with [`parse_xml`] (DTDs refused, limits
//! applied) and matches elements by namespace and local name only. Unknown elements are ignored
//! where RFC 4918 §17 says a recipient must ignore what it does not understand, and refused
//! where an RFC names a precondition for them (filters, reports).

use roxmltree::Node;

use super::error::DavError;
use super::filter::{Collation, Filter, FilterTest, MatchType, ParamFilter, PropFilter, TextMatch};
use super::names::{PropName, NS_CARDDAV, NS_DAV};
use super::xml::{
    child_elements, element_name, element_xml, find_child, inner_xml, is_element, parse_xml,
    text_content, XmlLimits,
};

// ---------------------------------------------------------------------------------------------
// Depth
// ---------------------------------------------------------------------------------------------

/// The `Depth` request header (RFC 4918 §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `0`: the resource only.
    Zero,
    /// `1`: the resource and its members.
    One,
    /// `infinity`: the resource and all descendants.
    Infinity,
}

impl Depth {
    /// Parses a header value: `0`, `1` or `infinity` (ASCII case-insensitive, surrounding
    /// whitespace ignored). Anything else is [`DavError::InvalidDepth`] (400).
    pub fn parse(value: &str) -> Result<Depth, DavError> {
        match value.trim() {
            "0" => Ok(Depth::Zero),
            "1" => Ok(Depth::One),
            v if v.eq_ignore_ascii_case("infinity") => Ok(Depth::Infinity),
            v => Err(DavError::InvalidDepth(v.to_owned())),
        }
    }

    /// Parses an optional header, with the method's default when it is absent: `Infinity` for
    /// PROPFIND (RFC 4918 §9.1), `Zero` for REPORT (RFC 3253 §3.6), and so on — the caller
    /// decides.
    pub fn from_header(value: Option<&str>, default: Depth) -> Result<Depth, DavError> {
        value.map_or(Ok(default), Depth::parse)
    }
}

// ---------------------------------------------------------------------------------------------
// PROPFIND
// ---------------------------------------------------------------------------------------------

/// Which properties a PROPFIND (or a REPORT's property part) asks for (RFC 4918 §9.1, §14.20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropRequest {
    /// `allprop`: every dead property and the live properties the server defines for allprop
    /// (RFC 4918 §9.1 — not the expensive ones), plus those named in `include` (§14.8).
    AllProp {
        /// Extra properties named by `DAV:include`.
        include: Vec<PropName>,
    },
    /// `propname`: the names of all properties, without values.
    PropName,
    /// `prop`: these properties, in request order (duplicates removed).
    Prop(Vec<PropName>),
}

/// A PROPFIND request body.
pub type PropfindRequest = PropRequest;

/// Parses a PROPFIND body (RFC 4918 §9.1, §14.20).
///
/// An empty (or whitespace-only) body means `allprop`. Otherwise the root must be
/// `DAV:propfind` holding `DAV:prop`, `DAV:propname` or `DAV:allprop` (with an optional
/// `DAV:include`); unknown sibling elements are ignored.
pub fn parse_propfind(body: &[u8]) -> Result<PropfindRequest, DavError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PropRequest::AllProp { include: vec![] });
    }
    let doc = parse_xml(body)?;
    let root = doc.root_element();
    if !is_element(root, NS_DAV, "propfind") {
        return Err(DavError::Invalid(format!(
            "expected {{DAV:}}propfind, found {}",
            element_name(root)
        )));
    }
    prop_request(root)?
        .ok_or_else(|| DavError::Invalid("propfind needs one of prop, propname or allprop".into()))
}

/// The `DAV:prop` / `DAV:propname` / `DAV:allprop` (+ `DAV:include`) children of `parent`, or
/// `None` if it has none of them.
fn prop_request(parent: Node<'_, '_>) -> Result<Option<PropRequest>, DavError> {
    let mut found = None;
    for child in child_elements(parent) {
        let this = if is_element(child, NS_DAV, "prop") {
            PropRequest::Prop(prop_names(child))
        } else if is_element(child, NS_DAV, "propname") {
            PropRequest::PropName
        } else if is_element(child, NS_DAV, "allprop") {
            let include = find_child(parent, NS_DAV, "include")
                .map(prop_names)
                .unwrap_or_default();
            PropRequest::AllProp { include }
        } else {
            continue;
        };
        if found.is_some() {
            return Err(DavError::Invalid(
                "only one of prop, propname and allprop may be given".into(),
            ));
        }
        found = Some(this);
    }
    Ok(found)
}

/// The names of the element children of a `DAV:prop` (or `DAV:include`), without duplicates.
fn prop_names(prop: Node<'_, '_>) -> Vec<PropName> {
    let mut names: Vec<PropName> = Vec::new();
    for child in child_elements(prop) {
        let name = element_name(child);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// PROPPATCH
// ---------------------------------------------------------------------------------------------

/// One instruction of a PROPPATCH, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropOp {
    /// `DAV:set`: give the property this value.
    Set {
        /// The property.
        name: PropName,
        /// The property element's content as self-contained XML (see
        /// [`crate::dav::xml::inner_xml`]): safe to store and later write back with
        /// [`crate::dav::PropValue::Xml`], whatever prefixes the client used.
        value_xml: String,
        /// All text inside the property element, concatenated, not trimmed (e.g. the new
        /// `displayname`).
        text: String,
        /// The whole property element as self-contained XML, attributes and the `xml:lang` in
        /// scope included (see [`crate::dav::xml::element_xml`]): what a dead property stores,
        /// to be written back with [`crate::dav::PropValue::Raw`] (RFC 4918 §4.3).
        element_xml: String,
    },
    /// `DAV:remove`: remove the property.
    Remove {
        /// The property.
        name: PropName,
    },
}

impl PropOp {
    /// The property the instruction is about.
    pub fn name(&self) -> &PropName {
        match self {
            PropOp::Set { name, .. } | PropOp::Remove { name } => name,
        }
    }
}

/// A PROPPATCH request body (RFC 4918 §9.2, §14.19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProppatchRequest {
    /// The instructions in document order. RFC 4918 §9.2 requires them to be applied in this
    /// order and atomically: all succeed or none.
    pub ops: Vec<PropOp>,
}

/// Parses a PROPPATCH body: root `DAV:propertyupdate`, holding one or more `DAV:set` /
/// `DAV:remove`, each holding a `DAV:prop`; every element child of that `DAV:prop` is one
/// [`PropOp`].
pub fn parse_proppatch(body: &[u8]) -> Result<ProppatchRequest, DavError> {
    let doc = parse_xml(body)?;
    let root = doc.root_element();
    if !is_element(root, NS_DAV, "propertyupdate") {
        return Err(DavError::Invalid(format!(
            "expected {{DAV:}}propertyupdate, found {}",
            element_name(root)
        )));
    }
    let mut ops = Vec::new();
    let mut instructions = 0;
    for child in child_elements(root) {
        let set = if is_element(child, NS_DAV, "set") {
            true
        } else if is_element(child, NS_DAV, "remove") {
            false
        } else {
            continue;
        };
        instructions += 1;
        let prop = find_child(child, NS_DAV, "prop")
            .ok_or_else(|| DavError::Invalid("set/remove needs a DAV:prop".into()))?;
        for p in child_elements(prop) {
            let name = element_name(p);
            ops.push(if set {
                PropOp::Set {
                    name,
                    value_xml: inner_xml(p),
                    text: text_content(p),
                    element_xml: element_xml(p),
                }
            } else {
                PropOp::Remove { name }
            });
        }
    }
    if instructions == 0 {
        return Err(DavError::Invalid(
            "propertyupdate needs at least one set or remove".into(),
        ));
    }
    Ok(ProppatchRequest { ops })
}

// ---------------------------------------------------------------------------------------------
// REPORT
// ---------------------------------------------------------------------------------------------

/// A REPORT request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRequest {
    /// `card:addressbook-multiget` (RFC 6352 §8.7).
    Multiget(MultigetRequest),
    /// `card:addressbook-query` (RFC 6352 §8.6).
    Query(QueryRequest),
    /// `DAV:sync-collection` (RFC 6578 §3).
    SyncCollection(SyncRequest),
    /// A report defined by a WebDAV RFC that this server does not implement (yet):
    /// `DAV:expand-property` (RFC 3253 §3.8), `DAV:principal-property-search`,
    /// `DAV:principal-search-property-set`, `DAV:acl-principal-prop-set`,
    /// `DAV:principal-match` (RFC 3744 §9). Answer 403 `DAV:supported-report`
    /// (`DavError::UnsupportedReport(name)` builds it). Any other report is refused by
    /// [`parse_report`] directly.
    Unsupported(PropName),
}

/// What `card:address-data` inside `DAV:prop` asks for (RFC 6352 §10.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressDataRequest {
    /// The `content-type` attribute as sent; `None` means the default, `text/vcard`. When
    /// present it has been checked to be `text/vcard` (parameters ignored).
    pub content_type: Option<String>,
    /// The `version` attribute as sent; `None` means the default (RFC 6352 gives `3.0`; a server
    /// may prefer the stored version). When present it is `3.0` or `4.0`.
    pub version: Option<String>,
    /// True for `card:allprop` or when no `card:prop` is given: the whole card.
    pub all_props: bool,
    /// The `card:prop` elements: (vCard property name upper-cased, `novalue="yes"`).
    pub props: Vec<(String, bool)>,
}

/// `card:addressbook-multiget` (RFC 6352 §8.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultigetRequest {
    /// The properties asked for (`card:address-data` among them if `address_data` is set).
    /// Defaults to `allprop` when the report names none.
    pub props: PropRequest,
    /// The `card:address-data` element of `DAV:prop`, if any.
    pub address_data: Option<AddressDataRequest>,
    /// The `DAV:href` values as sent, trimmed, still encoded; resolve each with
    /// [`crate::dav::normalize_href`]. Each one gets a `DAV:response`, 404 if unknown.
    pub hrefs: Vec<String>,
}

/// `card:addressbook-query` (RFC 6352 §8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRequest {
    /// The properties asked for. Defaults to `allprop` when the report names none.
    pub props: PropRequest,
    /// The `card:address-data` element of `DAV:prop`, if any.
    pub address_data: Option<AddressDataRequest>,
    /// Which cards to return.
    pub filter: Filter,
    /// `card:limit/card:nresults` (RFC 6352 §8.6.1): return at most this many; if more matched,
    /// add a 507 response for the request-URI with `DAV:number-of-matches-within-limits`.
    pub limit: Option<u32>,
}

/// `DAV:sync-level` (RFC 6578 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncLevel {
    /// `1`: immediate members only (the default here if the element is missing).
    #[default]
    One,
    /// `infinite`: all descendants.
    Infinite,
}

/// `DAV:sync-collection` (RFC 6578 §3, §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The token from the previous sync, trimmed; `None` for an empty `DAV:sync-token` (initial
    /// sync, RFC 6578 §3.2). An unknown token is answered 403 `DAV:valid-sync-token`.
    pub sync_token: Option<String>,
    /// `DAV:sync-level`; `One` if missing (RFC 6578 requires it, older clients omit it).
    pub sync_level: SyncLevel,
    /// `DAV:limit/DAV:nresults` (RFC 6578 §3.7).
    pub limit: Option<u32>,
    /// The properties asked for (RFC 6578 §6.1); `Prop(vec![])` if `DAV:prop` is missing.
    pub props: PropRequest,
    /// The `card:address-data` element of `DAV:prop`, if any (some clients fetch cards in the
    /// sync report itself).
    pub address_data: Option<AddressDataRequest>,
}

/// Parses a REPORT body, dispatching on the root element.
///
/// Errors: [`DavError::UnsupportedReport`] for a report not listed in [`ReportRequest`];
/// [`DavError::UnsupportedFilter`], [`DavError::UnsupportedCollation`],
/// [`DavError::UnsupportedAddressData`] for what RFC 6352 §8.6/§8.7 name preconditions for;
/// [`DavError::Invalid`] / [`DavError::Malformed`] (400) for the rest.
pub fn parse_report(body: &[u8]) -> Result<ReportRequest, DavError> {
    // The multiget bodies clients send in every sync batch are read directly; any other body,
    // and every error, comes from the full parser (see `simple_multiget`).
    if let Some(multiget) = super::simple_multiget::parse(body, &XmlLimits::DEFAULT) {
        return Ok(ReportRequest::Multiget(multiget));
    }
    parse_report_tree(body)
}

/// [`parse_report`] through the document tree only, never the direct multiget reader: the
/// reference the direct reader is tested (and fuzzed) against.
pub fn parse_report_tree(body: &[u8]) -> Result<ReportRequest, DavError> {
    let doc = parse_xml(body)?;
    let root = doc.root_element();
    let name = element_name(root);
    match (name.ns.as_str(), name.local.as_str()) {
        (NS_CARDDAV, "addressbook-multiget") => parse_multiget(root).map(ReportRequest::Multiget),
        (NS_CARDDAV, "addressbook-query") => parse_query(root).map(ReportRequest::Query),
        (NS_DAV, "sync-collection") => parse_sync(root).map(ReportRequest::SyncCollection),
        (
            NS_DAV,
            "expand-property"
            | "principal-property-search"
            | "principal-search-property-set"
            | "acl-principal-prop-set"
            | "principal-match",
        ) => Ok(ReportRequest::Unsupported(name)),
        _ => Err(DavError::UnsupportedReport(name)),
    }
}

/// The property part of a report: the prop request (default `default`) and the parsed
/// `card:address-data` inside `DAV:prop`, if any.
fn report_props(
    root: Node<'_, '_>,
    default: PropRequest,
) -> Result<(PropRequest, Option<AddressDataRequest>), DavError> {
    let props = prop_request(root)?.unwrap_or(default);
    let address_data = match find_child(root, NS_DAV, "prop")
        .and_then(|p| find_child(p, NS_CARDDAV, "address-data"))
    {
        Some(el) => Some(parse_address_data(el)?),
        None => None,
    };
    Ok((props, address_data))
}

fn parse_multiget(root: Node<'_, '_>) -> Result<MultigetRequest, DavError> {
    let (props, address_data) = report_props(root, PropRequest::AllProp { include: vec![] })?;
    let hrefs = child_elements(root)
        .filter(|c| is_element(*c, NS_DAV, "href"))
        .map(|h| text_content(h).trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    Ok(MultigetRequest {
        props,
        address_data,
        hrefs,
    })
}

fn parse_query(root: Node<'_, '_>) -> Result<QueryRequest, DavError> {
    let (props, address_data) = report_props(root, PropRequest::AllProp { include: vec![] })?;
    // RFC 6352 §8.6 makes the filter mandatory; an absent one is treated as the empty filter
    // (every card), which is what the few clients that omit it mean.
    let filter = match find_child(root, NS_CARDDAV, "filter") {
        Some(f) => parse_filter(f)?,
        None => Filter::default(),
    };
    // RFC 6352 §10.6 defines limit/nresults in the CardDAV namespace; the DAV: spelling of
    // RFC 5323 is accepted too.
    let limit = parse_limit(root, NS_CARDDAV)?;
    let limit = match limit {
        Some(n) => Some(n),
        None => parse_limit(root, NS_DAV)?,
    };
    Ok(QueryRequest {
        props,
        address_data,
        filter,
        limit,
    })
}

fn parse_sync(root: Node<'_, '_>) -> Result<SyncRequest, DavError> {
    let (props, address_data) = report_props(root, PropRequest::Prop(vec![]))?;
    let sync_token = find_child(root, NS_DAV, "sync-token")
        .map(|t| text_content(t).trim().to_owned())
        .filter(|t| !t.is_empty());
    let sync_level = match find_child(root, NS_DAV, "sync-level") {
        None => SyncLevel::One,
        Some(el) => match text_content(el).trim() {
            "1" => SyncLevel::One,
            v if v.eq_ignore_ascii_case("infinite") || v.eq_ignore_ascii_case("infinity") => {
                SyncLevel::Infinite
            }
            v => return Err(DavError::Invalid(format!("sync-level {v:?}"))),
        },
    };
    let limit = parse_limit(root, NS_DAV)?;
    Ok(SyncRequest {
        sync_token,
        sync_level,
        limit,
        props,
        address_data,
    })
}

/// `{ns}limit/{ns}nresults` under `root`.
fn parse_limit(root: Node<'_, '_>, ns: &str) -> Result<Option<u32>, DavError> {
    let Some(limit) = find_child(root, ns, "limit") else {
        return Ok(None);
    };
    let nresults = find_child(limit, ns, "nresults")
        .ok_or_else(|| DavError::Invalid("limit needs nresults".into()))?;
    let text = text_content(nresults);
    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| DavError::Invalid(format!("nresults {:?} is not a count", text.trim())))
}

/// `card:address-data` in a request (RFC 6352 §10.4).
fn parse_address_data(el: Node<'_, '_>) -> Result<AddressDataRequest, DavError> {
    let content_type = el.attribute("content-type").map(str::to_owned);
    let version = el.attribute("version").map(|v| v.trim().to_owned());
    let type_ok = match content_type.as_deref() {
        None => true,
        Some(ct) => {
            let media = ct.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/vcard")
        }
    };
    let version_ok = matches!(version.as_deref(), None | Some("3.0" | "4.0"));
    if !type_ok || !version_ok {
        return Err(DavError::UnsupportedAddressData {
            content_type,
            version,
        });
    }
    let mut all_props = false;
    let mut props = Vec::new();
    for child in child_elements(el) {
        if is_element(child, NS_CARDDAV, "allprop") {
            all_props = true;
        } else if is_element(child, NS_CARDDAV, "prop") {
            let name = child
                .attribute("name")
                .ok_or_else(|| DavError::Invalid("address-data prop needs a name".into()))?;
            let novalue = match child.attribute("novalue") {
                None | Some("no") => false,
                Some("yes") => true,
                Some(v) => return Err(DavError::Invalid(format!("novalue {v:?}"))),
            };
            props.push((name.trim().to_ascii_uppercase(), novalue));
        }
    }
    if props.is_empty() {
        all_props = true;
    }
    Ok(AddressDataRequest {
        content_type,
        version,
        all_props,
        props,
    })
}

/// `card:filter` (RFC 6352 §10.5).
fn parse_filter(el: Node<'_, '_>) -> Result<Filter, DavError> {
    let test = parse_test(el)?;
    let mut prop_filters = Vec::new();
    for child in child_elements(el) {
        if is_element(child, NS_CARDDAV, "prop-filter") {
            prop_filters.push(parse_prop_filter(child)?);
        } else {
            return Err(DavError::UnsupportedFilter(format!(
                "{} in filter",
                element_name(child)
            )));
        }
    }
    Ok(Filter { test, prop_filters })
}

fn parse_test(el: Node<'_, '_>) -> Result<FilterTest, DavError> {
    match el.attribute("test") {
        None | Some("anyof") => Ok(FilterTest::AnyOf),
        Some("allof") => Ok(FilterTest::AllOf),
        Some(v) => Err(DavError::Invalid(format!("test {v:?}"))),
    }
}

fn required_name(el: Node<'_, '_>) -> Result<String, DavError> {
    let name = el.attribute("name").map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(DavError::Invalid(format!(
            "{} needs a name",
            element_name(el).local
        )));
    }
    Ok(name.to_ascii_uppercase())
}

/// `card:prop-filter` (RFC 6352 §10.5.1).
fn parse_prop_filter(el: Node<'_, '_>) -> Result<PropFilter, DavError> {
    let mut pf = PropFilter {
        name: required_name(el)?,
        test: parse_test(el)?,
        is_not_defined: false,
        text_matches: Vec::new(),
        param_filters: Vec::new(),
    };
    for child in child_elements(el) {
        if is_element(child, NS_CARDDAV, "is-not-defined") {
            pf.is_not_defined = true;
        } else if is_element(child, NS_CARDDAV, "text-match") {
            pf.text_matches.push(parse_text_match(child)?);
        } else if is_element(child, NS_CARDDAV, "param-filter") {
            pf.param_filters.push(parse_param_filter(child)?);
        } else {
            return Err(DavError::UnsupportedFilter(format!(
                "{} in prop-filter",
                element_name(child)
            )));
        }
    }
    if pf.is_not_defined && (!pf.text_matches.is_empty() || !pf.param_filters.is_empty()) {
        return Err(DavError::Invalid(
            "is-not-defined excludes text-match and param-filter".into(),
        ));
    }
    Ok(pf)
}

/// `card:param-filter` (RFC 6352 §10.5.2).
fn parse_param_filter(el: Node<'_, '_>) -> Result<ParamFilter, DavError> {
    let mut pf = ParamFilter {
        name: required_name(el)?,
        is_not_defined: false,
        text_match: None,
    };
    for child in child_elements(el) {
        if is_element(child, NS_CARDDAV, "is-not-defined") && pf.text_match.is_none() {
            pf.is_not_defined = true;
        } else if is_element(child, NS_CARDDAV, "text-match")
            && pf.text_match.is_none()
            && !pf.is_not_defined
        {
            pf.text_match = Some(parse_text_match(child)?);
        } else if is_element(child, NS_CARDDAV, "is-not-defined")
            || is_element(child, NS_CARDDAV, "text-match")
        {
            return Err(DavError::Invalid(
                "param-filter takes one is-not-defined or one text-match".into(),
            ));
        } else {
            return Err(DavError::UnsupportedFilter(format!(
                "{} in param-filter",
                element_name(child)
            )));
        }
    }
    Ok(pf)
}

/// `card:text-match` (RFC 6352 §10.5.4).
fn parse_text_match(el: Node<'_, '_>) -> Result<TextMatch, DavError> {
    let collation = match el.attribute("collation") {
        None => Collation::default(),
        Some(name) => Collation::from_name(name)
            .ok_or_else(|| DavError::UnsupportedCollation(name.to_owned()))?,
    };
    let match_type = match el.attribute("match-type") {
        None => MatchType::default(),
        Some(v) => {
            MatchType::from_name(v).ok_or_else(|| DavError::Invalid(format!("match-type {v:?}")))?
        }
    };
    let negate = match el.attribute("negate-condition") {
        None | Some("no") => false,
        Some("yes") => true,
        Some(v) => return Err(DavError::Invalid(format!("negate-condition {v:?}"))),
    };
    if let Some(child) = child_elements(el).next() {
        return Err(DavError::Invalid(format!(
            "text-match holds text only, found {}",
            element_name(child)
        )));
    }
    Ok(TextMatch {
        text: text_content(el),
        collation,
        match_type,
        negate,
    })
}
