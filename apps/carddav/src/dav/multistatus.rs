//! The `207 Multi-Status` writer (RFC 4918 §13, §14.16) and helpers to build propstats.
//!
//! [`MultistatusWriter`] appends to an in-memory buffer one `DAV:response` at a time; the glue
//! can drain it with [`MultistatusWriter::take_chunk`] between responses to stream a large book
//! without holding the whole document.
//!
//! Output is compact (no indentation) UTF-8 with the XML declaration, and binds the prefixes
//! `d:` (DAV:), `card:` (CardDAV) and `cs:` (CalendarServer) on the root element.

use portico_sdk::http::StatusCode;

use super::href::encode_href;
use super::names::{predeclared_prefix, PropName, ROOT_NAMESPACE_DECLS};
use super::precondition::Precondition;
use super::xml::{escape_attr, escape_text};

/// A property value to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropValue {
    /// An empty element, `<d:getetag/>` — also what 404 propstats and `propname` answers carry.
    Empty,
    /// Text, escaped on write (see [`crate::dav::xml::escape_text`]: CR kept as `&#13;`,
    /// characters XML forbids replaced by U+FFFD).
    Text(String),
    /// One `<d:href>` holding this decoded path (or URL), percent-encoded on write.
    Href(String),
    /// Several `<d:href>`s (e.g. `addressbook-home-set`, `principal-collection-set`).
    Hrefs(Vec<String>),
    /// Preformatted, well-formed inner XML, written verbatim. It may use the `d:`, `card:` and
    /// `cs:` prefixes (see [`crate::dav::fragments`]) or declare its own namespaces (as
    /// [`crate::dav::PropOp::Set`]'s `value_xml` does).
    Xml(String),
    /// A complete, self-contained property element (start tag, namespace declarations, content,
    /// end tag), written verbatim *instead of* the element the writer would generate — for dead
    /// properties stored whole. Must be well-formed and name the same property.
    Raw(String),
}

/// One `DAV:propstat`: properties sharing a status (RFC 4918 §14.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propstat {
    /// The status of these properties (200, 404, 403, 424, …).
    pub status: StatusCode,
    /// The properties and values.
    pub props: Vec<(PropName, PropValue)>,
    /// An optional `DAV:error` condition for the propstat, e.g.
    /// [`Precondition::CannotModifyProtectedProperty`] in a PROPPATCH answer (RFC 4918 §9.2.1).
    pub error: Option<Precondition>,
}

impl Propstat {
    /// A propstat with this status and properties.
    pub fn new(status: StatusCode, props: Vec<(PropName, PropValue)>) -> Self {
        Propstat {
            status,
            props,
            error: None,
        }
    }

    /// `200 OK` with these properties.
    pub fn ok(props: Vec<(PropName, PropValue)>) -> Self {
        Self::new(StatusCode::OK, props)
    }

    /// `404 Not Found` for these properties (empty elements).
    pub fn not_found(names: Vec<PropName>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            names.into_iter().map(|n| (n, PropValue::Empty)).collect(),
        )
    }

    /// Adds a `DAV:error` condition (builder style).
    pub fn with_error(mut self, error: Precondition) -> Self {
        self.error = Some(error);
        self
    }
}

/// Answers a `prop` request for one resource: a 200 propstat with every property `lookup`
/// returns a value for, then a 404 propstat with the rest (RFC 4918 §9.1: properties that do
/// not exist are reported 404 in their own propstat). Empty propstats are left out; requested
/// order is kept within each.
pub fn propstats_for<F>(requested: &[PropName], mut lookup: F) -> Vec<Propstat>
where
    F: FnMut(&PropName) -> Option<PropValue>,
{
    // Sized for the common answer, where every requested property is found.
    let mut found = Vec::with_capacity(requested.len());
    let mut missing = Vec::new();
    for name in requested {
        match lookup(name) {
            Some(value) => found.push((name.clone(), value)),
            None => missing.push(name.clone()),
        }
    }
    let mut out = Vec::with_capacity(2);
    if !found.is_empty() {
        out.push(Propstat::ok(found));
    }
    if !missing.is_empty() {
        out.push(Propstat::not_found(missing));
    }
    out
}

/// Writes a `DAV:multistatus` document incrementally.
///
/// ```
/// use portico_carddav::dav::{MultistatusWriter, PropName, PropValue, Propstat};
/// use portico_sdk::http::StatusCode;
///
/// let mut w = MultistatusWriter::begin();
/// w.response(
///     "/dav/book/a.vcf",
///     &[Propstat::ok(vec![(PropName::dav("getetag"), PropValue::Text("\"1\"".into()))])],
/// );
/// w.response_status("/dav/book/gone.vcf", StatusCode::NOT_FOUND);
/// w.sync_token("urn:x:sync:7");
/// let body: Vec<u8> = w.finish();
/// assert!(body.ends_with(b"<d:sync-token>urn:x:sync:7</d:sync-token></d:multistatus>"));
/// ```
#[derive(Debug)]
pub struct MultistatusWriter {
    buf: String,
    sync_token: Option<String>,
    /// The collection part (up to the last `/`) of the last response href, and that part as
    /// written: the members of a listing or multiget share it, so it is encoded and escaped
    /// once, not once per card.
    href_dir: (String, String),
}

impl MultistatusWriter {
    /// Starts the document: the XML declaration and the `<d:multistatus …>` start tag.
    pub fn begin() -> Self {
        let mut buf = String::with_capacity(4096);
        buf.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus ");
        buf.push_str(ROOT_NAMESPACE_DECLS);
        buf.push('>');
        MultistatusWriter {
            buf,
            sync_token: None,
            href_dir: (String::new(), String::new()),
        }
    }

    /// A `DAV:response` for `href` (a decoded absolute path, percent-encoded here) with
    /// propstats. Propstats without properties are skipped, unless all are empty, in which case
    /// the first is written with an empty `DAV:prop` (a response must carry a status somehow).
    pub fn response(&mut self, href: &str, propstats: &[Propstat]) {
        self.buf.push_str("<d:response>");
        self.href(href);
        let non_empty = propstats.iter().filter(|p| !p.props.is_empty());
        let written: Vec<&Propstat> = if propstats.iter().any(|p| !p.props.is_empty()) {
            non_empty.collect()
        } else {
            propstats.iter().take(1).collect()
        };
        if written.is_empty() {
            // No propstat at all: fall back to a plain 200 for the resource.
            self.status(StatusCode::OK);
        }
        for ps in written {
            self.propstat(ps);
        }
        self.buf.push_str("</d:response>");
    }

    /// A `DAV:response` with only an href and a status (RFC 4918 §14.24): a multiget href that
    /// does not exist (404), a member removed since the sync token (404, RFC 6578 §3.5.2).
    pub fn response_status(&mut self, href: &str, status: StatusCode) {
        self.buf.push_str("<d:response>");
        self.href(href);
        self.status(status);
        self.buf.push_str("</d:response>");
    }

    /// A `DAV:response` with an href, a status and a `DAV:error` condition — e.g. the 507
    /// `DAV:number-of-matches-within-limits` response for the request-URI when results were
    /// truncated (RFC 6352 §8.6.1, RFC 6578 §3.6).
    pub fn response_error(&mut self, href: &str, status: StatusCode, error: &Precondition) {
        self.buf.push_str("<d:response>");
        self.href(href);
        self.status(status);
        self.buf.push_str("<d:error>");
        self.buf.push_str(&error.element_xml());
        self.buf.push_str("</d:error></d:response>");
    }

    /// Sets the `DAV:sync-token` for the end of the document (RFC 6578 §6.4). It is written by
    /// [`MultistatusWriter::finish`], after all responses, as the schema requires, so this may be
    /// called at any point. A second call replaces the first.
    pub fn sync_token(&mut self, token: &str) {
        self.sync_token = Some(token.to_owned());
    }

    /// Takes what has been written so far, leaving the buffer empty, for streaming. The
    /// concatenation of all chunks and [`MultistatusWriter::finish`] is the document.
    pub fn take_chunk(&mut self) -> Vec<u8> {
        // The next chunk starts with the room this one needed: growing an empty buffer to a
        // streamed chunk's 256 KiB again copied each chunk about twice over.
        // (At most 512 KiB: a chunk that carried a large photo does not set the size for all.)
        let room = String::with_capacity(self.buf.capacity().min(512 * 1024));
        std::mem::replace(&mut self.buf, room).into_bytes()
    }

    /// Makes room for at least `additional` more bytes (an estimate of what is about to be
    /// written), so the buffer grows once rather than doubling its way there.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Bytes currently buffered (not yet taken).
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the sync token (if any) and the end tag; returns what is still buffered.
    pub fn finish(mut self) -> Vec<u8> {
        if let Some(token) = self.sync_token.take() {
            self.buf.push_str("<d:sync-token>");
            escape_text(&token, &mut self.buf);
            self.buf.push_str("</d:sync-token>");
        }
        self.buf.push_str("</d:multistatus>");
        self.buf.into_bytes()
    }

    fn href(&mut self, href: &str) {
        // Percent-encoding and escaping go byte by byte (an encoded href is ASCII), so the
        // parts can be written apart.
        let (dir, name) =
            href.split_at(memchr::memrchr(b'/', href.as_bytes()).map_or(0, |i| i + 1));
        if dir != self.href_dir.0 {
            self.href_dir.0.clear();
            self.href_dir.0.push_str(dir);
            self.href_dir.1.clear();
            escape_text(&encode_href(dir), &mut self.href_dir.1);
        }
        self.buf.push_str("<d:href>");
        self.buf.push_str(&self.href_dir.1);
        escape_text(&encode_href(name), &mut self.buf);
        self.buf.push_str("</d:href>");
    }

    fn status(&mut self, status: StatusCode) {
        self.buf.push_str("<d:status>");
        write_status_line(status, &mut self.buf);
        self.buf.push_str("</d:status>");
    }

    fn propstat(&mut self, ps: &Propstat) {
        self.buf.push_str("<d:propstat><d:prop>");
        for (name, value) in &ps.props {
            write_prop(name, value, &mut self.buf);
        }
        self.buf.push_str("</d:prop>");
        self.status(ps.status);
        if let Some(error) = &ps.error {
            self.buf.push_str("<d:error>");
            self.buf.push_str(&error.element_xml());
            self.buf.push_str("</d:error>");
        }
        self.buf.push_str("</d:propstat>");
    }
}

/// `HTTP/1.1 207 Multi-Status`: the status line form RFC 4918 §14.28 uses.
pub fn status_line(status: StatusCode) -> String {
    let mut out = String::with_capacity(32);
    write_status_line(status, &mut out);
    out
}

/// [`status_line`], appended to `out` (written once per propstat, so without formatting).
fn write_status_line(status: StatusCode, out: &mut String) {
    out.push_str("HTTP/1.1 ");
    out.push_str(status.as_str());
    if let Some(reason) = status.canonical_reason() {
        out.push(' ');
        out.push_str(reason);
    }
}

fn write_href(href: &str, out: &mut String) {
    out.push_str("<d:href>");
    escape_text(&encode_href(href), out);
    out.push_str("</d:href>");
}

/// Writes one property element with its value. A property in one of the predeclared
/// namespaces uses its prefix; any other namespace is bound to `x:` on the element itself; a
/// property in no namespace is written unprefixed (no default namespace is ever in scope).
fn write_prop(name: &PropName, value: &PropValue, out: &mut String) {
    if let PropValue::Raw(xml) = value {
        out.push_str(xml);
        return;
    }
    // The element name: `prefix:local`, `x:local` with its own binding, or `local`.
    let prefix = match predeclared_prefix(&name.ns) {
        Some(prefix) => Some(prefix),
        None if name.ns.is_empty() => None,
        None => Some("x"),
    };
    let push_qname = |out: &mut String| {
        if let Some(p) = prefix {
            out.push_str(p);
            out.push(':');
        }
        out.push_str(&name.local);
    };
    out.push('<');
    push_qname(out);
    if predeclared_prefix(&name.ns).is_none() && !name.ns.is_empty() {
        out.push_str(" xmlns:x=\"");
        escape_attr(&name.ns, out);
        out.push('"');
    }
    match value {
        PropValue::Empty => {
            out.push_str("/>");
            return;
        }
        PropValue::Text(t) if t.is_empty() => {
            out.push_str("/>");
            return;
        }
        PropValue::Hrefs(h) if h.is_empty() => {
            out.push_str("/>");
            return;
        }
        _ => out.push('>'),
    }
    match value {
        PropValue::Text(t) => escape_text(t, out),
        PropValue::Href(h) => write_href(h, out),
        PropValue::Hrefs(hs) => {
            for h in hs {
                write_href(h, out);
            }
        }
        PropValue::Xml(x) => out.push_str(x),
        PropValue::Empty | PropValue::Raw(_) => {}
    }
    out.push_str("</");
    push_qname(out);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::fragments;
    use crate::dav::names::{NS_CALENDARSERVER, NS_CARDDAV, NS_DAV};

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" xmlns:card=\"urn:ietf:params:xml:ns:carddav\" xmlns:cs=\"http://calendarserver.org/ns/\">";

    #[test]
    fn hrefs_written_in_parts_are_each_href_written_whole() {
        // Shared, changing and missing collection parts; characters to encode and to escape on
        // both sides of the last `/`.
        let hrefs = [
            "/dav/a b/c&d.vcf",
            "/dav/a b/\u{e9}t\u{e9}.vcf",
            "/dav/a b/",
            "/dav/x&y/1.vcf",
            "/dav/a b/c&d.vcf",
            "no-slash <here>",
            "/",
            "",
        ];
        let mut w = MultistatusWriter::begin();
        for h in hrefs {
            w.response_status(h, StatusCode::NOT_FOUND);
        }
        let doc = String::from_utf8(w.finish()).unwrap();
        let mut expected = String::new();
        for h in hrefs {
            expected.push_str("<d:response>");
            write_href(h, &mut expected);
            expected.push_str("<d:status>HTTP/1.1 404 Not Found</d:status></d:response>");
        }
        assert!(doc.contains(&expected), "{doc}");
        assert!(doc.contains("<d:href>/dav/a%20b/c&amp;d.vcf</d:href>"));
        assert!(doc.contains("<d:href>/dav/a%20b/%C3%A9t%C3%A9.vcf</d:href>"));
    }

    fn text(w: MultistatusWriter) -> String {
        String::from_utf8(w.finish()).expect("utf-8")
    }

    #[test]
    fn empty_document() {
        assert_eq!(
            text(MultistatusWriter::begin()),
            format!("{HEAD}</d:multistatus>")
        );
    }

    #[test]
    fn propfind_snapshot() {
        let mut w = MultistatusWriter::begin();
        w.response(
            "/api/apps/acme/i1/addressbook/customers/",
            &[
                Propstat::ok(vec![
                    (
                        PropName::dav("resourcetype"),
                        PropValue::Xml(fragments::RESOURCETYPE_ADDRESSBOOK.into()),
                    ),
                    (
                        PropName::dav("displayname"),
                        PropValue::Text("Customers & Friends".into()),
                    ),
                    (
                        PropName::calendarserver("getctag"),
                        PropValue::Text("\"42\"".into()),
                    ),
                    (
                        PropName::dav("current-user-principal"),
                        PropValue::Href("/api/apps/acme/i1/principal/".into()),
                    ),
                    (
                        PropName::carddav("addressbook-home-set"),
                        PropValue::Hrefs(vec!["/api/apps/acme/i1/addressbook/".into()]),
                    ),
                    (
                        PropName::new("http://apple.com/ns/ical/", "calendar-color"),
                        PropValue::Text("#FF0000".into()),
                    ),
                ]),
                Propstat::not_found(vec![
                    PropName::dav("quota-used-bytes"),
                    PropName::new("", "bare"),
                ]),
            ],
        );
        assert_eq!(
            text(w),
            format!(
                "{HEAD}<d:response><d:href>/api/apps/acme/i1/addressbook/customers/</d:href>\
<d:propstat><d:prop>\
<d:resourcetype><d:collection/><card:addressbook/></d:resourcetype>\
<d:displayname>Customers &amp; Friends</d:displayname>\
<cs:getctag>\"42\"</cs:getctag>\
<d:current-user-principal><d:href>/api/apps/acme/i1/principal/</d:href></d:current-user-principal>\
<card:addressbook-home-set><d:href>/api/apps/acme/i1/addressbook/</d:href></card:addressbook-home-set>\
<x:calendar-color xmlns:x=\"http://apple.com/ns/ical/\">#FF0000</x:calendar-color>\
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>\
<d:propstat><d:prop><d:quota-used-bytes/><bare/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat>\
</d:response></d:multistatus>"
            )
        );
    }

    #[test]
    fn multiget_and_sync_snapshot() {
        let card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Élodie <CEO> & Co\r\nEND:VCARD\r\n";
        let mut w = MultistatusWriter::begin();
        w.response(
            "/b/é 1.vcf",
            &[Propstat::ok(vec![
                (PropName::dav("getetag"), PropValue::Text("\"abc\"".into())),
                (
                    PropName::carddav("address-data"),
                    PropValue::Text(card.into()),
                ),
            ])],
        );
        w.response_status("/b/gone.vcf", StatusCode::NOT_FOUND);
        w.sync_token("http://portico.example/sync/9");
        w.response_error(
            "/b/",
            StatusCode::INSUFFICIENT_STORAGE,
            &Precondition::NumberOfMatchesWithinLimits,
        );
        assert_eq!(
            text(w),
            format!(
                "{HEAD}<d:response><d:href>/b/%C3%A9%201.vcf</d:href><d:propstat><d:prop>\
<d:getetag>\"abc\"</d:getetag>\
<card:address-data>BEGIN:VCARD&#13;\nVERSION:3.0&#13;\nFN:Élodie &lt;CEO&gt; &amp; Co&#13;\nEND:VCARD&#13;\n</card:address-data>\
</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\
<d:response><d:href>/b/gone.vcf</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>\
<d:response><d:href>/b/</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status>\
<d:error><d:number-of-matches-within-limits/></d:error></d:response>\
<d:sync-token>http://portico.example/sync/9</d:sync-token></d:multistatus>"
            )
        );
    }

    #[test]
    fn proppatch_snapshot_with_error() {
        let mut w = MultistatusWriter::begin();
        w.response(
            "/b/",
            &[
                Propstat::new(
                    StatusCode::FORBIDDEN,
                    vec![(PropName::dav("getetag"), PropValue::Empty)],
                )
                .with_error(Precondition::CannotModifyProtectedProperty),
                Propstat::new(
                    StatusCode::FAILED_DEPENDENCY,
                    vec![(PropName::dav("displayname"), PropValue::Empty)],
                ),
            ],
        );
        assert_eq!(
            text(w),
            format!(
                "{HEAD}<d:response><d:href>/b/</d:href>\
<d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 403 Forbidden</d:status>\
<d:error><d:cannot-modify-protected-property/></d:error></d:propstat>\
<d:propstat><d:prop><d:displayname/></d:prop><d:status>HTTP/1.1 424 Failed Dependency</d:status></d:propstat>\
</d:response></d:multistatus>"
            )
        );
    }

    #[test]
    fn empty_propstats() {
        let mut w = MultistatusWriter::begin();
        w.response(
            "/a",
            &[
                Propstat::ok(vec![]),
                Propstat::not_found(vec![PropName::dav("x")]),
            ],
        );
        w.response("/b", &[Propstat::ok(vec![])]);
        w.response("/c", &[]);
        assert_eq!(
            text(w),
            format!(
                "{HEAD}<d:response><d:href>/a</d:href><d:propstat><d:prop><d:x/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>\
<d:response><d:href>/b</d:href><d:propstat><d:prop></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\
<d:response><d:href>/c</d:href><d:status>HTTP/1.1 200 OK</d:status></d:response></d:multistatus>"
            )
        );
    }

    #[test]
    fn chunks_concatenate_to_the_document() {
        let mut w = MultistatusWriter::begin();
        let mut all = w.take_chunk();
        assert_eq!(w.buffered_len(), 0);
        w.response_status("/a", StatusCode::NOT_FOUND);
        all.extend(w.take_chunk());
        w.response_status("/b", StatusCode::NOT_FOUND);
        all.extend(w.finish());
        let mut whole = MultistatusWriter::begin();
        whole.response_status("/a", StatusCode::NOT_FOUND);
        whole.response_status("/b", StatusCode::NOT_FOUND);
        assert_eq!(all, whole.finish());
    }

    #[test]
    fn raw_and_dead_property_values() {
        let mut w = MultistatusWriter::begin();
        w.response(
            "/b/",
            &[Propstat::ok(vec![
                (
                    PropName::new("urn:x", "color"),
                    PropValue::Raw("<color xmlns=\"urn:x\">red</color>".into()),
                ),
                (
                    PropName::new("urn:y", "meta"),
                    PropValue::Xml("<k xmlns=\"urn:y\">v</k>".into()),
                ),
            ])],
        );
        let out = text(w);
        assert!(out.contains(
            "<color xmlns=\"urn:x\">red</color><x:meta xmlns:x=\"urn:y\"><k xmlns=\"urn:y\">v</k></x:meta>"
        ));
        assert!(roxmltree::Document::parse(&out).is_ok());
    }

    #[test]
    fn propstats_for_splits_found_and_missing() {
        let requested = vec![
            PropName::dav("getetag"),
            PropName::calendarserver("getctag"),
            PropName::dav("nope"),
            PropName::new("urn:x", "y"),
        ];
        let ps = propstats_for(&requested, |n| {
            (n.ns == NS_DAV && n.local == "getetag" || n.ns == NS_CALENDARSERVER)
                .then(|| PropValue::Text("\"1\"".into()))
        });
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].status, StatusCode::OK);
        assert_eq!(
            ps[0]
                .props
                .iter()
                .map(|(n, _)| n.local.as_str())
                .collect::<Vec<_>>(),
            ["getetag", "getctag"]
        );
        assert_eq!(
            ps[1],
            Propstat::not_found(vec![PropName::dav("nope"), PropName::new("urn:x", "y")])
        );

        assert_eq!(propstats_for(&requested[..1], |_| None).len(), 1);
        assert!(propstats_for(&[], |_| None).is_empty());
    }

    /// Parse our own output back with roxmltree and check hrefs, statuses and properties.
    #[test]
    fn round_trip_through_a_parser() {
        let nasty_name = "/api/apps/o/i/addressbook/customers/a b&c<d>é%\"'.vcf";
        let card = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A & B <x> \u{1}\r\nEND:VCARD\r\n";
        let mut w = MultistatusWriter::begin();
        w.response(
            nasty_name,
            &propstats_for(
                &[
                    PropName::dav("getetag"),
                    PropName::carddav("address-data"),
                    PropName::new("urn:other", "thing"),
                ],
                |n| match n.local.as_str() {
                    "getetag" => Some(PropValue::Text("\"e1\"".into())),
                    "address-data" => Some(PropValue::Text(card.into())),
                    _ => None,
                },
            ),
        );
        w.response_status("/missing.vcf", StatusCode::NOT_FOUND);
        w.sync_token("tok:1&2");
        let body = w.finish();
        let text = std::str::from_utf8(&body).expect("utf-8");
        let doc = roxmltree::Document::parse(text).expect("well-formed");
        let root = doc.root_element();
        assert!(root.has_tag_name((NS_DAV, "multistatus")));

        let responses: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name((NS_DAV, "response")))
            .collect();
        assert_eq!(responses.len(), 2);

        let href = |r: roxmltree::Node| {
            r.children()
                .find(|n| n.has_tag_name((NS_DAV, "href")))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        let first_href = href(responses[0]).expect("href");
        assert_eq!(
            crate::dav::href::percent_decode(&first_href).as_deref(),
            Some(nasty_name)
        );
        assert_eq!(
            crate::dav::normalize_href(&first_href, "/api/apps/o/i/").as_deref(),
            Some("addressbook/customers/a b&c<d>é%\"'.vcf")
        );
        assert_eq!(href(responses[1]).as_deref(), Some("/missing.vcf"));

        let propstats: Vec<_> = responses[0]
            .children()
            .filter(|n| n.has_tag_name((NS_DAV, "propstat")))
            .collect();
        let status = |ps: roxmltree::Node| {
            ps.children()
                .find(|n| n.has_tag_name((NS_DAV, "status")))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        assert_eq!(status(propstats[0]).as_deref(), Some("HTTP/1.1 200 OK"));
        assert_eq!(
            status(propstats[1]).as_deref(),
            Some("HTTP/1.1 404 Not Found")
        );
        let prop = |ps: roxmltree::Node, ns: &str, local: &str| {
            ps.descendants()
                .find(|n| n.has_tag_name((ns, local)))
                .map(|n| n.text().unwrap_or("").to_owned())
        };
        assert_eq!(
            prop(propstats[0], NS_DAV, "getetag").as_deref(),
            Some("\"e1\"")
        );
        assert_eq!(
            prop(propstats[0], NS_CARDDAV, "address-data").as_deref(),
            Some("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A & B <x> \u{fffd}\r\nEND:VCARD\r\n")
        );
        assert_eq!(
            prop(propstats[1], "urn:other", "thing").as_deref(),
            Some("")
        );
        let missing = responses[1]
            .children()
            .find(|n| n.has_tag_name((NS_DAV, "status")))
            .and_then(|n| n.text());
        assert_eq!(missing, Some("HTTP/1.1 404 Not Found"));
        let token = root
            .children()
            .find(|n| n.has_tag_name((NS_DAV, "sync-token")))
            .and_then(|n| n.text());
        assert_eq!(token, Some("tok:1&2"));
    }
}
