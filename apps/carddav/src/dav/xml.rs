//! Safe XML parsing of request bodies, and XML escaping for the writers.
//!
//! Parsing is [`roxmltree`] with DTDs refused and hard limits on size, nesting and node count,
//! so a hostile body costs bounded memory and time. Elements are always matched by namespace
//! URI and local name ([`is_element`]); prefixes are never looked at.

use roxmltree::{Document, Node, ParsingOptions};

use super::error::DavError;
use super::names::PropName;

/// Limits applied while parsing a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XmlLimits {
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting accepted (the root element is level 1).
    pub max_depth: usize,
    /// Most nodes (elements, text, comments, processing instructions) accepted.
    pub max_nodes: u32,
}

impl XmlLimits {
    /// The defaults: 4 MiB, 64 levels, 100 000 nodes — far beyond any real client's request (a
    /// multiget of a few thousand hrefs is well under 1 MiB and 10 000 nodes).
    pub const DEFAULT: XmlLimits = XmlLimits {
        max_bytes: 4 * 1024 * 1024,
        max_depth: 64,
        max_nodes: 100_000,
    };
}

impl Default for XmlLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses a request body with [`XmlLimits::DEFAULT`]. See [`parse_xml_with`].
pub fn parse_xml(body: &[u8]) -> Result<Document<'_>, DavError> {
    parse_xml_with(body, &XmlLimits::DEFAULT)
}

/// Parses a request body safely.
///
/// Refuses, in this order: a body over `max_bytes` ([`DavError::TooLarge`]); a body that is not
/// UTF-8 ([`DavError::NotUtf8`]; a leading UTF-8 byte-order mark is allowed); any `<!DOCTYPE` or
/// `<!ENTITY` anywhere, in any letter case, even inside a comment or CDATA section
/// ([`DavError::Dtd`]) — a conservative byte scan, on top of roxmltree's own `allow_dtd: false`;
/// elements nested deeper than `max_depth` ([`DavError::TooDeep`], checked before the parser runs);
/// more than `max_nodes` nodes ([`DavError::TooManyNodes`]); anything not well-formed, including
/// references to undefined entities such as `&xxe;` ([`DavError::Malformed`]).
pub fn parse_xml_with<'a>(body: &'a [u8], limits: &XmlLimits) -> Result<Document<'a>, DavError> {
    if body.len() > limits.max_bytes {
        return Err(DavError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| DavError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if contains_declaration(text.as_bytes()) {
        return Err(DavError::Dtd);
    }
    check_nesting(text.as_bytes(), limits.max_depth)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => DavError::Dtd,
        roxmltree::Error::NodesLimitReached => DavError::TooManyNodes {
            limit: limits.max_nodes,
        },
        other => DavError::Malformed(other.to_string()),
    })?;
    // Namespaces in XML 1.0 §3 (NSC: No Prefix Undeclaring): `xmlns:p=""` is not well-formed
    // (only XML 1.1 allows it); RFC 4918 §8.2 makes such a body a 400.
    for node in doc.descendants().filter(|n| n.is_element()) {
        if node
            .namespaces()
            .any(|ns| ns.name().is_some() && ns.uri().is_empty())
        {
            return Err(DavError::Malformed(
                "a namespace prefix is bound to an empty URI".into(),
            ));
        }
    }
    Ok(doc)
}

/// Case-insensitive search for `<!DOCTYPE` or `<!ENTITY`.
fn contains_declaration(bytes: &[u8]) -> bool {
    const NEEDLES: [&[u8]; 2] = [b"<!doctype", b"<!entity"];
    memchr::memmem::find_iter(bytes, b"<!").any(|i| {
        NEEDLES.iter().any(|n| {
            bytes
                .get(i..i + n.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(n))
        })
    })
}

/// Bounds element nesting *before* parsing: roxmltree recurses per nesting level, so a body of
/// tens of thousands of nested elements would overflow the stack inside the parser.
///
/// A small scanner over the markup: start tags (`<name … >`) open a level unless they end in
/// `/>`, end tags (`</…>`) close one; comments, CDATA sections, processing instructions and
/// declarations are skipped whole, and quoted attribute values are skipped inside tags, so `>`
/// or `/>` in them does not confuse the count. For a well-formed document the count is the
/// exact element depth; for a malformed one it is what the parser would reach before failing.
fn check_nesting(bytes: &[u8], max_depth: usize) -> Result<(), DavError> {
    let mut depth = 0usize;
    let mut i = 0usize;
    let rest = |i: usize| bytes.get(i..).unwrap_or(&[]);
    // Index just past the first occurrence of `needle` at or after `from` (or the end).
    let skip_past = |from: usize, needle: &[u8]| {
        memchr::memmem::find(rest(from), needle).map_or(bytes.len(), |p| from + p + needle.len())
    };
    while i < bytes.len() {
        let Some(p) = memchr::memchr(b'<', rest(i)) else {
            break;
        };
        i += p;
        let tail = rest(i);
        if tail.starts_with(b"<!--") {
            i = skip_past(i + 4, b"-->");
        } else if tail.starts_with(b"<![CDATA[") {
            i = skip_past(i + 9, b"]]>");
        } else if tail.starts_with(b"<?") {
            i = skip_past(i + 2, b"?>");
        } else if tail.starts_with(b"<!") {
            i = skip_past(i + 2, b">");
        } else if tail.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = skip_past(i + 2, b">");
        } else {
            depth += 1;
            if depth > max_depth {
                return Err(DavError::TooDeep { limit: max_depth });
            }
            // Scan the start tag to its `>`, skipping quoted attribute values.
            i += 1;
            let mut quote: Option<u8> = None;
            let mut prev = 0u8;
            while let Some(&b) = bytes.get(i) {
                i += 1;
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => {}
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if b == b'>' => {
                        if prev == b'/' {
                            depth -= 1;
                        }
                        break;
                    }
                    None => {}
                }
                prev = b;
            }
        }
    }
    Ok(())
}

/// True if `node` is the element `{ns}local`.
pub fn is_element(node: Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

/// The expanded name of an element (`ns` empty for no namespace).
pub fn element_name(node: Node<'_, '_>) -> PropName {
    PropName::new(
        node.tag_name().namespace().unwrap_or(""),
        node.tag_name().name(),
    )
}

/// The element children of `node`.
pub fn child_elements<'a, 'input>(
    node: Node<'a, 'input>,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

/// The first child element `{ns}local`.
pub fn find_child<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &str,
    local: &str,
) -> Option<Node<'a, 'input>> {
    child_elements(node).find(|c| is_element(*c, ns, local))
}

/// All text below `node` (text and CDATA of every descendant), concatenated in document order.
pub fn text_content(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    for d in node.descendants() {
        if d.is_text() {
            out.push_str(d.text().unwrap_or(""));
        }
    }
    out
}

/// Serialises the *content* of `node` (its children, not the element itself) as XML that can be
/// pasted into any document: every top-level element declares its namespace as the default
/// namespace (`xmlns="…"`, or `xmlns=""` for no namespace), nested elements redeclare only when
/// the namespace changes, namespaced attributes get a local `xmlns:aN` prefix. Comments and
/// processing instructions are dropped; text is re-escaped.
///
/// Used for PROPPATCH values, so a dead property written by a client comes back with the same
/// expanded names whatever prefixes the client used (RFC 4918 §4.3, §9.2).
pub fn inner_xml(node: Node<'_, '_>) -> String {
    let mut out = String::new();
    for child in node.children() {
        write_node(child, None, None, &mut out);
    }
    out
}

/// The XML namespace (bound to the `xml:` prefix in every document).
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The element itself, serialized like [`inner_xml`] serializes content, with its attributes —
/// and with the `xml:lang` in scope (RFC 4918 §4.3: a dead property's language must be kept,
/// also when the client declared it on an ancestor such as `DAV:prop`).
pub fn element_xml(node: Node<'_, '_>) -> String {
    let inherited = if node.attribute((XML_NS, "lang")).is_some() {
        None
    } else {
        node.ancestors()
            .skip(1)
            .find_map(|n| n.attribute((XML_NS, "lang")))
    };
    let mut out = String::new();
    write_node(node, None, inherited, &mut out);
    out
}

/// `default_ns`: the default namespace in scope in the output, `None` when unknown (top level of
/// the fragment), `Some("")` for "no namespace".
fn write_node(node: Node<'_, '_>, default_ns: Option<&str>, lang: Option<&str>, out: &mut String) {
    if node.is_text() {
        escape_text(node.text().unwrap_or(""), out);
        return;
    }
    if !node.is_element() {
        return;
    }
    let ns = node.tag_name().namespace().unwrap_or("");
    let local = node.tag_name().name();
    out.push('<');
    out.push_str(local);
    if default_ns != Some(ns) {
        out.push_str(" xmlns=\"");
        escape_attr(ns, out);
        out.push('"');
    }
    if let Some(lang) = lang {
        out.push_str(" xml:lang=\"");
        escape_attr(lang, out);
        out.push('"');
    }
    for (i, attr) in node.attributes().enumerate() {
        out.push(' ');
        match attr.namespace() {
            Some("http://www.w3.org/XML/1998/namespace") => {
                // The `xml:` prefix is bound in every document and must not be redeclared.
                out.push_str("xml:");
            }
            Some(attr_ns) => {
                out.push_str(&format!("xmlns:a{i}=\""));
                escape_attr(attr_ns, out);
                out.push_str(&format!("\" a{i}:"));
            }
            None => {}
        }
        out.push_str(attr.name());
        out.push_str("=\"");
        escape_attr(attr.value(), out);
        out.push('"');
    }
    if !node.has_children() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in node.children() {
        write_node(child, Some(ns), None, out);
    }
    out.push_str("</");
    out.push_str(local);
    out.push('>');
}

/// True for characters XML 1.0 does not allow anywhere in a document (§2.2 `Char`): C0 controls
/// other than tab, line feed and carriage return, and U+FFFE / U+FFFF. (Surrogates cannot occur
/// in a Rust `str`.)
#[cfg(test)]
fn is_forbidden_char(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether byte `b` is looked at closely by [`escape`]: markup characters, the C0 controls
/// that are not copied as they are (tab and line feed are, in text), and the lead byte of
/// U+FFFE/U+FFFF (`EF BF BE`, `EF BF BF`). Every flagged byte is ASCII or a lead byte, so it
/// sits on a char boundary.
const fn needs_escape(b: u8, attr: bool) -> bool {
    match b {
        b'&' | b'<' | b'>' | b'\r' | 0xef => true,
        b'"' | b'\t' | b'\n' => attr,
        _ => b < 0x20,
    }
}

const fn escape_table(attr: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = needs_escape(i as u8, attr);
        i += 1;
    }
    t
}

/// [`needs_escape`] for text and for attribute values, one lookup per byte.
const TEXT_TABLE: [bool; 256] = escape_table(false);
const ATTR_TABLE: [bool; 256] = escape_table(true);

/// Appends `s` escaped as XML character data.
///
/// `&`, `<`, `>` become entity references; a carriage return becomes `&#13;` so that the CRLF
/// line ends of a vCard survive XML end-of-line normalisation (XML 1.0 §2.11) and reach the
/// client byte for byte; characters XML 1.0 forbids (C0 controls other than tab/LF/CR,
/// U+FFFE, U+FFFF) cannot be represented even as character references and are replaced by
/// U+FFFD REPLACEMENT CHARACTER.
pub fn escape_text(s: &str, out: &mut String) {
    escape(s, false, out);
}

/// Appends `s` escaped for a double-quoted attribute value: as [`escape_text`], plus `"` as
/// `&quot;` and tab / line feed as `&#9;` / `&#10;` (so attribute-value normalisation,
/// XML 1.0 §3.3.3, does not turn them into spaces).
pub fn escape_attr(s: &str, out: &mut String) {
    escape(s, true, out);
}

fn escape(s: &str, attr: bool, out: &mut String) {
    // Copies runs of plain text whole (a card is mostly such runs, broken at each CR); only
    // the bytes the table flags are looked at, one at a time.
    let table = if attr { &ATTR_TABLE } else { &TEXT_TABLE };
    out.reserve(s.len() + s.len() / 16);
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while let Some(at) = next_flagged(bytes, i, attr, table) {
        i = at;
        let (replacement, width) = match bytes[i] {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'\r' => ("&#13;", 1),
            b'"' => ("&quot;", 1),
            b'\n' => ("&#10;", 1),
            b'\t' => ("&#9;", 1),
            // U+FFFE and U+FFFF; any other character with this lead byte is copied.
            0xef => match bytes.get(i + 1..i + 3) {
                Some([0xbf, 0xbe | 0xbf]) => ("\u{fffd}", 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            // The other C0 controls.
            _ => ("\u{fffd}", 1),
        };
        out.push_str(s.get(run_start..i).unwrap_or(""));
        out.push_str(replacement);
        i += width;
        run_start = i;
        // In text the LF of a CRLF is copied as it is: start the next scan after it, or the
        // word holding it would be looked at byte by byte on every line of a card.
        if !attr && bytes.get(i) == Some(&b'\n') {
            i += 1;
        }
    }
    out.push_str(s.get(run_start..).unwrap_or(""));
}

/// The index of the first byte at or after `from` that `table` flags (the table of
/// [`needs_escape`] for `attr`). Eight bytes at a time: a mask marks the bytes of a word below
/// 0x20, `&`, `<`, `>`, `0xEF` and (for attributes) `"`, the only bytes the tables can flag,
/// and its lowest set bit is the first such byte (exact: the borrows of these tests only run
/// upwards). That byte is checked against the table (in text, tab and line feed are marked but
/// not flagged), so the plain runs of a card cost a few instructions per word.
fn next_flagged(bytes: &[u8], from: usize, attr: bool, table: &[bool; 256]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `v` that is zero (exact up to the lowest one).
    fn zero_bytes(v: u64) -> u64 {
        v.wrapping_sub(ONES) & !v
    }
    let mut i = from;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let w = u64::from_le_bytes(le);
        // Bytes below 0x20; `&`; `<` and `>` (0x3C, 0x3E: the bytes that are 0x3E with bit 1
        // set); the lead byte 0xEF.
        let mut marks = (w.wrapping_sub(ONES * 0x20) & !w)
            | zero_bytes(w ^ (ONES * u64::from(b'&')))
            | zero_bytes((w | (ONES * 0x02)) ^ (ONES * u64::from(b'>')))
            | zero_bytes(w ^ (ONES * 0xef));
        if attr {
            marks |= zero_bytes(w ^ (ONES * u64::from(b'"')));
        }
        marks &= HIGH;
        if marks == 0 {
            i += 8;
            continue;
        }
        let at = i + (marks.trailing_zeros() / 8) as usize;
        if bytes.get(at).is_some_and(|&b| table[usize::from(b)]) {
            return Some(at);
        }
        i = at + 1;
    }
    bytes
        .get(i..)?
        .iter()
        .position(|&b| table[usize::from(b)])
        .map(|p| i + p)
}

/// [`escape_text`] into a new string.
pub fn escaped_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_text(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_handles_each_flagged_byte() {
        let s = "a&b<c>d\r\ne\tf\"g\u{1}h\u{fffe}i\u{ffff}j\u{fffd}k\u{f000}l\u{efff}m";
        assert_eq!(
            escaped_text(s),
            "a&amp;b&lt;c&gt;d&#13;\ne\tf\"g\u{fffd}h\u{fffd}i\u{fffd}j\u{fffd}k\u{f000}l\u{efff}m"
        );
        let mut attr = String::new();
        escape_attr(s, &mut attr);
        assert_eq!(
            attr,
            "a&amp;b&lt;c&gt;d&#13;&#10;e&#9;f&quot;g\u{fffd}h\u{fffd}i\u{fffd}j\u{fffd}k\u{f000}l\u{efff}m"
        );
        // A lead byte at the very end, and strings with nothing to escape.
        assert_eq!(escaped_text("x\u{fffe}"), "x\u{fffd}");
        assert_eq!(escaped_text("plain ünïcödé"), "plain ünïcödé");
        assert_eq!(escaped_text(""), "");
    }

    #[test]
    fn parses_plain_xml() {
        let doc = parse_xml(b"<a xmlns='urn:x'><b/></a>").expect("parses");
        assert!(is_element(doc.root_element(), "urn:x", "a"));
    }

    #[test]
    fn byte_order_mark_is_allowed() {
        let body = "\u{feff}<a/>".as_bytes();
        assert!(parse_xml(body).is_ok());
    }

    #[test]
    fn refuses_non_utf8() {
        assert_eq!(parse_xml(b"<a>\xff\xfe</a>").err(), Some(DavError::NotUtf8));
        // UTF-16 (with BOM) is not UTF-8 either.
        assert_eq!(
            parse_xml(b"\xff\xfe<\0a\0/\0>\0").err(),
            Some(DavError::NotUtf8)
        );
    }

    #[test]
    fn refuses_dtd_in_any_form() {
        let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol3;</D:displayname></D:prop></D:propfind>"#;
        assert_eq!(parse_xml(laughs).err(), Some(DavError::Dtd));
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><d>&xxe;</d>"#;
        assert_eq!(parse_xml(xxe).err(), Some(DavError::Dtd));
        assert_eq!(parse_xml(b"<!doctype a><a/>").err(), Some(DavError::Dtd));
        assert_eq!(
            parse_xml(b"<a><!-- <!ENTITY x 'y'> --></a>").err(),
            Some(DavError::Dtd)
        );
        assert_eq!(parse_xml(b"<!DOCTYPE a []><a/>").err(), Some(DavError::Dtd));
    }

    #[test]
    fn undefined_entity_reference_is_malformed() {
        assert!(matches!(
            parse_xml(b"<a>&xxe;</a>"),
            Err(DavError::Malformed(_))
        ));
        // The five predefined entities and character references are fine.
        let doc = parse_xml(b"<a>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;</a>").expect("parses");
        assert_eq!(text_content(doc.root_element()), "<&>\"'AB");
    }

    #[test]
    fn malformed() {
        for body in [
            &b""[..],
            b"   ",
            b"<a>",
            b"<a></b>",
            b"<a><b></a></b>",
            b"not xml",
            b"<a/><b/>",
            b"<x:a/>",
            b"<a b='1' b='2'/>",
        ] {
            assert!(
                matches!(parse_xml(body), Err(DavError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn limits() {
        let small = XmlLimits {
            max_bytes: 10,
            ..XmlLimits::DEFAULT
        };
        assert_eq!(
            parse_xml_with(b"<abcdefghijk/>", &small).err(),
            Some(DavError::TooLarge { limit: 10 })
        );

        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse_xml(deep(64).as_bytes()).is_ok());
        assert_eq!(
            parse_xml(deep(65).as_bytes()).err(),
            Some(DavError::TooDeep { limit: 64 })
        );
        // Very deep nesting is refused without blowing the stack.
        assert_eq!(
            parse_xml(deep(50_000).as_bytes()).err(),
            Some(DavError::TooDeep { limit: 64 })
        );
        // Markup the scanner must not miscount: self-closing tags, `>` and `/>` in attribute
        // values and text, comments, CDATA, processing instructions.
        let tricky = format!(
            "<?xml version=\"1.0\"?><r>{}<!-- <a><a><a> --><![CDATA[<a><a>]]><?pi <a>?><x a='/>' b=\"<\"/>/></r>",
            "<e/><e a=\"x>\"/>".repeat(100)
        );
        // (`<` in an attribute is not well-formed, but the depth check passes first.)
        assert!(matches!(
            parse_xml(tricky.as_bytes()),
            Err(DavError::Malformed(_))
        ));
        let tricky = format!(
            "{}<!-- <a><a> --><![CDATA[<b><b>]]><?pi <c>?><x a='/>'/>/&gt;{}",
            "<a>".repeat(62),
            "</a>".repeat(62)
        );
        assert!(parse_xml(tricky.as_bytes()).is_ok());
        let tricky_deeper = format!(
            "{}<x a='/>' b=\"/>\"><y/></x>{}",
            "<a>".repeat(62),
            "</a>".repeat(62)
        );
        assert!(parse_xml(tricky_deeper.as_bytes()).is_ok());
        let too_deep = format!(
            "{}<x a='/>'><y/><z>/></z></x>{}",
            "<a>".repeat(63),
            "</a>".repeat(63)
        );
        assert_eq!(
            parse_xml(too_deep.as_bytes()).err(),
            Some(DavError::TooDeep { limit: 64 })
        );

        let wide = format!("<a>{}</a>", "<b/>".repeat(100_001));
        assert_eq!(
            parse_xml(wide.as_bytes()).err(),
            Some(DavError::TooManyNodes { limit: 100_000 })
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escaped_text("plain"), "plain");
        assert_eq!(escaped_text("a<b>&c\"'"), "a&lt;b&gt;&amp;c\"'");
        assert_eq!(escaped_text("]]>"), "]]&gt;");
        assert_eq!(escaped_text("l1\r\nl2\tx"), "l1&#13;\nl2\tx");
        assert_eq!(
            escaped_text("a\u{0}b\u{1b}c\u{fffe}d\u{ffff}"),
            "a\u{fffd}b\u{fffd}c\u{fffd}d\u{fffd}"
        );
        assert_eq!(
            escaped_text("Élodie ✓ \u{fffd} \u{ef}"),
            "Élodie ✓ \u{fffd} \u{ef}"
        );
        let mut attr = String::new();
        escape_attr("a\"b\n\tc<&", &mut attr);
        assert_eq!(attr, "a&quot;b&#10;&#9;c&lt;&amp;");
    }

    #[test]
    fn escaped_text_survives_a_parser() {
        let nasty = "x\r\ny\u{1}<>&\"'\u{10ffff}";
        let mut doc = String::from("<a t=\"");
        escape_attr(nasty, &mut doc);
        doc.push_str("\">");
        escape_text(nasty, &mut doc);
        doc.push_str("</a>");
        let parsed = Document::parse(&doc).expect("well-formed");
        let expected = "x\r\ny\u{fffd}<>&\"'\u{10ffff}";
        assert_eq!(parsed.root_element().text(), Some(expected));
        assert_eq!(parsed.root_element().attribute("t"), Some(expected));
    }

    #[test]
    fn inner_xml_keeps_expanded_names() {
        let doc = parse_xml(
            br#"<p xmlns:X="urn:x" xmlns:Y="urn:y"><X:color X:kind="k" xml:lang="en">red &amp; <Y:b>blue</Y:b><X:c/></X:color>tail<plain/></p>"#,
        )
        .expect("parses");
        let inner = inner_xml(doc.root_element());
        assert_eq!(
            inner,
            r#"<color xmlns="urn:x" xmlns:a0="urn:x" a0:kind="k" xml:lang="en">red &amp; <b xmlns="urn:y">blue</b><c/></color>tail<plain xmlns=""/>"#
        );
        // Pasted under a default namespace, names still resolve the same way.
        let wrapped = format!("<w xmlns=\"urn:other\">{inner}</w>");
        let again = Document::parse(&wrapped).expect("well-formed");
        let names: Vec<_> = again
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| element_name(n).to_string())
            .collect();
        assert_eq!(
            names,
            [
                "{urn:other}w",
                "{urn:x}color",
                "{urn:y}b",
                "{urn:x}c",
                "{}plain"
            ]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any string, escaped as text and as an attribute, parses back to itself with the
        /// characters XML cannot carry replaced by U+FFFD.
        #[test]
        fn escaping_round_trips(s in any::<String>()) {
            let mut doc = String::from("<a t=\"");
            escape_attr(&s, &mut doc);
            doc.push_str("\">");
            escape_text(&s, &mut doc);
            doc.push_str("</a>");
            let parsed = Document::parse(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let expected: String = s
                .chars()
                .map(|c| if is_forbidden_char(c) { '\u{fffd}' } else { c })
                .collect();
            let text = parsed.root_element().text().unwrap_or("");
            prop_assert_eq!(text, expected.as_str());
            prop_assert_eq!(parsed.root_element().attribute("t"), Some(expected.as_str()));
        }

        /// The word-at-a-time scan finds exactly the bytes a byte-at-a-time scan finds, from
        /// any starting point (strings rich in the flagged bytes, and any string).
        #[test]
        fn word_scan_agrees_with_byte_scan(
            s in prop_oneof![
                "[a-z&<>=?\"'\r\n\t\u{1}\u{1f}\u{7f}\u{fffe}\u{ffff}\u{fffd}\u{efff}é ]{0,80}",
                any::<String>(),
            ],
            attr in any::<bool>(),
            from in 0usize..16,
        ) {
            let table = if attr { &ATTR_TABLE } else { &TEXT_TABLE };
            let bytes = s.as_bytes();
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&b| needs_escape(b, attr))
                .map(|p| from + p);
            prop_assert_eq!(next_flagged(bytes, from, attr, table), expected);
        }

        /// The declaration scan finds `<!DOCTYPE` / `<!ENTITY` in any letter case exactly
        /// where a plain window-by-window search does.
        #[test]
        fn declaration_scan_agrees_with_a_plain_search(
            s in "(<|!|<!|doc|DOC|type|TYPE|ent|ENT|ity|ITY|<!DOCTYPE|<!entity|<!en|x| ){0,24}",
        ) {
            let bytes = s.as_bytes();
            let plain = [&b"<!doctype"[..], b"<!entity"].iter().any(|n| {
                bytes.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
            });
            prop_assert_eq!(contains_declaration(bytes), plain);
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_xml(&body);
        }

        /// Arbitrary markup-ish text never panics the parser either.
        #[test]
        fn parse_markup_never_panics(body in "[<>/a-c=\"' !?\\[\\]-]{0,256}") {
            let _ = parse_xml(body.as_bytes());
        }
    }
}
