//! A direct reader for the `addressbook-multiget` bodies clients send on every sync batch
//! (RFC 6352 §8.7): an optional XML declaration, the report element with its namespace
//! declarations, one `DAV:prop` of empty property elements and a list of `DAV:href`s.
//!
//! A sync of a large book sends one such body per hundred cards, and building roxmltree's
//! document for each cost about a fifth of the server's work in a sync. This reader walks the
//! bytes once and builds the [`MultigetRequest`] directly — but only for a deliberately narrow
//! shape: ASCII only, no comments, processing instructions, CDATA, entity or character
//! references, no attributes but namespace declarations on the report element, no text outside
//! the hrefs. Anything else (still valid XML, or not) answers `None`, and the caller parses the
//! body with [`super::xml::parse_xml`], which gives the answer or the error. Inside the shape
//! both readers agree: a property test checks it against the roxmltree path.
use super::names::{PropName, NS_CARDDAV, NS_DAV};
use super::request::{AddressDataRequest, MultigetRequest, PropRequest};
use super::xml::XmlLimits;

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// The multiget `body` asks for, if the body has the narrow shape this reader takes.
pub fn parse(body: &[u8], limits: &XmlLimits) -> Option<MultigetRequest> {
    // Every byte is ASCII (so the body is UTF-8 and names, URIs and hrefs need no decoding),
    // and nothing here nests deeper than three levels or needs many nodes per byte.
    if body.len() > limits.max_bytes || limits.max_depth < 3 || !body.is_ascii() {
        return None;
    }
    let mut r = Reader { b: body, i: 0 };
    r.declaration()?;
    r.skip_space();
    r.eat(b"<")?;
    let root = r.qname()?;
    let scope = r.namespace_declarations()?;
    if scope.resolve(root)? != (NS_CARDDAV, "addressbook-multiget") {
        return None;
    }
    let mut props: Option<(Vec<PropName>, Option<AddressDataRequest>)> = None;
    let mut hrefs = Vec::new();
    // Elements and text runs, counted as roxmltree counts nodes (kept well under its limit).
    let mut nodes: u64 = 2;
    loop {
        if r.skip_space() {
            nodes += 1;
        }
        nodes += 1;
        if nodes.saturating_mul(2) > u64::from(limits.max_nodes) {
            return None;
        }
        r.eat(b"<")?;
        if r.eat(b"/").is_some() {
            r.end_tag_rest(root)?;
            break;
        }
        let name = r.qname()?;
        let empty = r.tag_end()?;
        match scope.resolve(name)? {
            (NS_DAV, "prop") if props.is_none() => {
                let mut names: Vec<PropName> = Vec::new();
                let mut address_data = None;
                if !empty {
                    loop {
                        if r.skip_space() {
                            nodes += 1;
                        }
                        nodes += 1;
                        r.eat(b"<")?;
                        if r.eat(b"/").is_some() {
                            r.end_tag_rest(name)?;
                            break;
                        }
                        let prop = r.qname()?;
                        if !r.tag_end()? {
                            // `<p:x></p:x>`: nothing between the tags.
                            r.eat(b"</")?;
                            r.end_tag_rest(prop)?;
                        }
                        let (ns, local) = scope.resolve(prop)?;
                        if (ns, local) == (NS_CARDDAV, "address-data") && address_data.is_none() {
                            // No attributes and no children: the whole card, default type.
                            address_data = Some(AddressDataRequest {
                                all_props: true,
                                ..AddressDataRequest::default()
                            });
                        }
                        let prop = PropName::new(ns, local);
                        if !names.contains(&prop) {
                            names.push(prop);
                        }
                    }
                }
                props = Some((names, address_data));
            }
            (NS_DAV, "href") => {
                if !empty {
                    let text = r.href_text()?;
                    nodes += 1;
                    r.eat(b"</")?;
                    r.end_tag_rest(name)?;
                    let text = text.trim();
                    if !text.is_empty() {
                        hrefs.push(text.to_owned());
                    }
                }
            }
            _ => return None,
        }
    }
    r.skip_space();
    if r.i != body.len() || nodes.saturating_mul(2) > u64::from(limits.max_nodes) {
        return None;
    }
    let (props, address_data) = match props {
        Some((names, address_data)) => (PropRequest::Prop(names), address_data),
        None => (PropRequest::AllProp { include: vec![] }, None),
    };
    Some(MultigetRequest {
        props,
        address_data,
        hrefs,
    })
}

/// A qualified name as written: prefix (empty for none) and local part.
#[derive(Clone, Copy, PartialEq, Eq)]
struct QName<'a> {
    prefix: &'a str,
    local: &'a str,
}

/// The namespace declarations of the report element (the only ones this reader takes).
struct Scope<'a> {
    default: Option<&'a str>,
    prefixes: Vec<(&'a str, &'a str)>,
}

impl<'a> Scope<'a> {
    /// The (namespace, local name) of `q`; `None` for an undeclared prefix.
    fn resolve(&self, q: QName<'a>) -> Option<(&'a str, &'a str)> {
        let ns = if q.prefix.is_empty() {
            self.default.unwrap_or("")
        } else {
            self.prefixes
                .iter()
                .find(|(p, _)| *p == q.prefix)
                .map(|(_, uri)| *uri)?
        };
        Some((ns, q.local))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Consumes `s` if the input continues with it.
    fn eat(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..)?.starts_with(s) {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips XML white space (XML 1.0 §2.3 `S`); true if there was any.
    fn skip_space(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
        self.i > start
    }

    /// `<?xml version="1.0"?>`, optionally with `encoding="UTF-8"` (any letter case, either
    /// quote), or nothing. A declaration with anything else (`standalone`, another version or
    /// encoding) or a processing instruction is left to the full parser.
    fn declaration(&mut self) -> Option<()> {
        if self.eat(b"<?").is_none() {
            return Some(());
        }
        self.eat(b"xml")?;
        if !self.skip_space() {
            return None;
        }
        self.eat(b"version")?;
        if self.attr_value()? != "1.0" {
            return None;
        }
        let spaced = self.skip_space();
        if spaced && self.eat(b"encoding").is_some() {
            if !self.attr_value()?.eq_ignore_ascii_case("utf-8") {
                return None;
            }
            self.skip_space();
        }
        self.eat(b"?>")
    }

    /// `= "value"` after an attribute name (XML 1.0 §2.3 `Eq`, `AttValue`), for values this
    /// reader takes as written: no references, no `<`, no control characters (which attribute
    /// value normalisation would turn into spaces).
    fn attr_value(&mut self) -> Option<&'a str> {
        self.skip_space();
        self.eat(b"=")?;
        self.skip_space();
        let quote = self.peek().filter(|q| matches!(q, b'"' | b'\''))?;
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == quote {
                let value = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
                self.i += 1;
                return Some(value);
            }
            if c < 0x20 || c == b'<' || c == b'&' {
                return None;
            }
            self.i += 1;
        }
        None
    }

    /// An ASCII name: a letter or `_`, then letters, digits, `.`, `-`, `_`.
    fn ncname(&mut self) -> Option<&'a str> {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.i += 1,
            _ => return None,
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        {
            self.i += 1;
        }
        std::str::from_utf8(self.b.get(start..self.i)?).ok()
    }

    /// `prefix:local` or `local`.
    fn qname(&mut self) -> Option<QName<'a>> {
        let first = self.ncname()?;
        if self.eat(b":").is_some() {
            let local = self.ncname()?;
            Some(QName {
                prefix: first,
                local,
            })
        } else {
            Some(QName {
                prefix: "",
                local: first,
            })
        }
    }

    /// The rest of a start tag without attributes: `>` (false) or `/>` (true, empty element).
    fn tag_end(&mut self) -> Option<bool> {
        self.skip_space();
        if self.eat(b"/>").is_some() {
            Some(true)
        } else {
            self.eat(b">").map(|()| false)
        }
    }

    /// After `</`: the name, which must be `open`'s as written, and `>`.
    fn end_tag_rest(&mut self, open: QName<'_>) -> Option<()> {
        if self.qname()? != open {
            return None;
        }
        self.skip_space();
        self.eat(b">")
    }

    /// The report element's attributes up to its `>`: namespace declarations only, each prefix
    /// once, none empty, none for the reserved `xml` and `xmlns` prefixes.
    fn namespace_declarations(&mut self) -> Option<Scope<'a>> {
        let mut scope = Scope {
            default: None,
            prefixes: Vec::new(),
        };
        loop {
            let spaced = self.skip_space();
            if self.eat(b">").is_some() {
                return Some(scope);
            }
            if !spaced {
                return None;
            }
            let name = self.qname()?;
            let uri = self.attr_value()?;
            // Namespaces in XML 1.0 §3: no empty prefixed URI, and the `xml` and `xmlns`
            // namespaces are bound only to their own prefixes.
            if uri.is_empty() || uri == XML_NAMESPACE || uri == XMLNS_NAMESPACE {
                return None;
            }
            match (name.prefix, name.local) {
                ("", "xmlns") if scope.default.is_none() => scope.default = Some(uri),
                ("xmlns", p)
                    if p != "xml"
                        && p != "xmlns"
                        && !scope.prefixes.iter().any(|(q, _)| *q == p) =>
                {
                    scope.prefixes.push((p, uri));
                }
                _ => return None,
            }
        }
    }

    /// The text of an href up to its end tag: printable ASCII, tabs and line feeds, without
    /// `&` (references) or `>` (`]]>` is not allowed in text).
    fn href_text(&mut self) -> Option<&'a str> {
        let rest = self.b.get(self.i..)?;
        let text = rest.get(..memchr::memchr(b'<', rest)?)?;
        // Without early exit, so the check compiles to a few vector instructions a word.
        let plain = text.iter().fold(true, |ok, &c| {
            ok & (((0x20..0x7f).contains(&c) && c != b'&' && c != b'>')
                | (c == b'\t')
                | (c == b'\n'))
        });
        if !plain {
            return None;
        }
        self.i += text.len();
        std::str::from_utf8(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::request::{parse_report_tree, ReportRequest};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    fn fast(body: &str) -> Option<MultigetRequest> {
        parse(body.as_bytes(), &XmlLimits::DEFAULT)
    }

    fn tree(body: &str) -> Result<ReportRequest, crate::dav::DavError> {
        parse_report_tree(body.as_bytes())
    }

    /// Bodies as clients send them: each is read directly, with the tree's answer.
    #[test]
    fn client_bodies_take_the_direct_path_with_the_same_answer() {
        let bodies = [
            // The benchmark client (after the shared harness).
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><card:addressbook-multiget \
             xmlns:d=\"DAV:\" xmlns:card=\"urn:ietf:params:xml:ns:carddav\"><d:prop><d:getetag/>\
             <card:address-data/></d:prop><d:href>/dav/a.vcf</d:href><d:href>/dav/b%20c.vcf\
             </d:href></card:addressbook-multiget>",
            // Default DAV: namespace, spaces before `/>` and `?>`, single quotes (DAVx5-like).
            "<?xml version='1.0' encoding='UTF-8' ?><CARD:addressbook-multiget xmlns=\"DAV:\" \
             xmlns:CARD=\"urn:ietf:params:xml:ns:carddav\"><prop><getcontenttype /><getetag />\
             <CARD:address-data /></prop><href>/dav/a.vcf</href><href>/dav/a.vcf</href>\
             </CARD:addressbook-multiget>",
            // No declaration, line breaks and indentation, an open/close property element.
            "<C:addressbook-multiget xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\r\n\
             \t<prop>\n    <getetag></getetag>\n    <C:address-data/>\n  </prop>\n\
             \t<href>  /dav/x.vcf\t</href>\n  <href/>\n  <href></href>\n</C:addressbook-multiget>\n",
            // No prop at all: allprop.
            "<c:addressbook-multiget xmlns:c=\"urn:ietf:params:xml:ns:carddav\" \
             xmlns:d=\"DAV:\"><d:href>/dav/a.vcf</d:href></c:addressbook-multiget>",
        ];
        for body in bodies {
            let direct = fast(body).unwrap_or_else(|| panic!("not read directly: {body}"));
            assert_eq!(tree(body), Ok(ReportRequest::Multiget(direct)), "{body}");
        }
        let direct = fast(bodies[1]).unwrap();
        assert_eq!(direct.hrefs, ["/dav/a.vcf", "/dav/a.vcf"], "repeats kept");
        assert_eq!(
            direct.props,
            PropRequest::Prop(vec![
                PropName::new(NS_DAV, "getcontenttype"),
                PropName::new(NS_DAV, "getetag"),
                PropName::new(NS_CARDDAV, "address-data"),
            ])
        );
        assert_eq!(fast(bodies[2]).unwrap().hrefs, ["/dav/x.vcf"]);
        assert_eq!(
            fast(bodies[3]).unwrap().props,
            PropRequest::AllProp { include: vec![] }
        );
    }

    /// Bodies outside the narrow shape go to the full parser, valid or not.
    #[test]
    fn other_bodies_are_left_to_the_full_parser() {
        let head = "<c:addressbook-multiget xmlns:d=\"DAV:\" \
                    xmlns:c=\"urn:ietf:params:xml:ns:carddav\">";
        let tail = "</c:addressbook-multiget>";
        let inner = [
            "<!-- a comment --><d:href>/a.vcf</d:href>",
            "<d:href>/a.vcf?x=1&amp;y=2</d:href>",
            "<d:href>/caf\u{e9}.vcf</d:href>",
            "<d:href><![CDATA[/a.vcf]]></d:href>",
            "<d:prop><c:address-data content-type=\"text/vcard\" version=\"4.0\"/></d:prop>",
            "<d:prop><c:address-data><c:prop name=\"FN\"/></c:address-data></d:prop>",
            "<d:prop xmlns:e=\"urn:x\"><e:x/></d:prop>",
            "<d:prop><d:getetag/></d:prop><d:prop><d:getetag/></d:prop>",
            "<d:allprop/>",
            "<d:href>/a.vcf</d:hre>",
            "<e:href>/a.vcf</e:href>",
            "<d:href>/a\r\n.vcf</d:href>",
            "text<d:href>/a.vcf</d:href>",
        ];
        for i in inner {
            let body = format!("{head}{i}{tail}");
            assert!(fast(&body).is_none(), "read directly: {body}");
        }
        for body in [
            format!("\u{feff}{head}{tail}"),
            format!("<?xml version=\"1.0\" standalone=\"yes\"?>{head}{tail}"),
            format!("<?xml version=\"1.1\"?>{head}{tail}"),
            format!("<!DOCTYPE x>{head}{tail}"),
            format!("{head}{tail}<!-- after -->"),
            format!("{head}{tail}x"),
            format!("{head}<d:href>/a.vcf</d:href>"),
            "<c:addressbook-multiget xmlns:c=\"urn:ietf:params:xml:ns:carddav\" \
             xmlns:c=\"DAV:\"></c:addressbook-multiget>"
                .to_owned(),
            "<c:addressbook-multiget xmlns:c=\"urn:ietf:params:xml:ns:carddav\" xmlns:d=\"\">\
             </c:addressbook-multiget>"
                .to_owned(),
            "<c:addressbook-query xmlns:c=\"urn:ietf:params:xml:ns:carddav\">\
             </c:addressbook-query>"
                .to_owned(),
            "<c:addressbook-multiget xmlns:c=\"urn:ietf:params:xml:ns:carddav\"/>".to_owned(),
        ] {
            assert!(fast(&body).is_none(), "read directly: {body}");
        }
        // Where the full parser answers, the answer is unchanged: an entity in an href.
        let body = format!("{head}<d:href>/a.vcf?x=1&amp;y=2</d:href>{tail}");
        let Ok(ReportRequest::Multiget(m)) = crate::dav::parse_report(body.as_bytes()) else {
            panic!("not a multiget");
        };
        assert_eq!(m.hrefs, ["/a.vcf?x=1&y=2"]);
        // A body over the size or node limits is never read directly.
        let many = format!("{head}{}{tail}", "<d:href>/a.vcf</d:href>".repeat(40));
        let small = XmlLimits {
            max_nodes: 100,
            ..XmlLimits::DEFAULT
        };
        assert!(parse(many.as_bytes(), &small).is_none());
        assert!(parse(many.as_bytes(), &XmlLimits::DEFAULT).is_some());
        let tiny = XmlLimits {
            max_bytes: 64,
            ..XmlLimits::DEFAULT
        };
        assert!(parse(many.as_bytes(), &tiny).is_none());
    }

    /// Pieces a generated multiget body is made of; some leave the direct path's shape.
    fn body_strategy() -> impl Strategy<Value = String> {
        let decl = prop::sample::select(vec![
            "",
            "<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
            "<?xml version='1.0' encoding='UTF-8' ?>",
            "<?xml version=\"1.0\" encoding=\"latin1\"?>",
            " <?xml version=\"1.0\"?>",
            "<?xml  version = \"1.0\"   ?>",
        ]);
        let space = prop::sample::select(vec!["", " ", "\n", "\r\n\t", "  "]);
        // (DAV: prefix, CardDAV prefix): "" is the default namespace.
        let prefixes = prop::sample::select(vec![
            ("d", "c"),
            ("", "C"),
            ("D", "CARD"),
            ("x", "x"),
            ("d", ""),
            ("", ""),
            ("a.b", "c-d"),
        ]);
        let props = prop::collection::vec(
            prop::sample::select(vec![
                "D:getetag/",
                "D:getcontenttype /",
                "C:address-data/",
                "D:getetag></D:getetag",
                "D:getetag> </D:getetag",
                "C:address-data version=\"3.0\"/",
                "D:resourcetype/",
                "U:x/",
                "D:getetag/",
            ]),
            0..5,
        );
        let hrefs = prop::collection::vec(
            prop::sample::select(vec![
                "/dav/a.vcf",
                " /dav/b.vcf\n",
                "",
                "/dav/c%20d.vcf",
                "/dav/e.vcf?x=1&amp;y=2",
                "/dav/f]]>.vcf",
                "/dav/\u{e9}.vcf",
                "\t",
                "/dav/<x/>.vcf",
                "/dav/g&#46;vcf",
            ]),
            0..6,
        );
        let with_prop = any::<bool>();
        (decl, space, prefixes, props, hrefs, with_prop, any::<u8>()).prop_map(
            |(decl, sp, (dp, cp), props, hrefs, with_prop, extra)| {
                let q = |p: &str, local: &str| {
                    if p.is_empty() {
                        local.to_owned()
                    } else {
                        format!("{p}:{local}")
                    }
                };
                let decl_of = |p: &str, uri: &str| {
                    if p.is_empty() {
                        format!(" xmlns=\"{uri}\"")
                    } else {
                        format!(" xmlns:{p}=\"{uri}\"")
                    }
                };
                let root = q(cp, "addressbook-multiget");
                let mut b = format!("{decl}{sp}<{root}");
                b.push_str(&decl_of(dp, "DAV:"));
                b.push_str(&decl_of(cp, "urn:ietf:params:xml:ns:carddav"));
                if extra % 7 == 0 {
                    b.push_str(" xmlns:U=\"urn:u\"");
                }
                b.push_str(&format!("{sp}>{sp}"));
                if with_prop {
                    b.push_str(&format!("<{}>", q(dp, "prop")));
                    for p in &props {
                        let p = p.replace("D:", &q(dp, "")).replace("C:", &q(cp, ""));
                        b.push_str(&format!("{sp}<{p}>"));
                    }
                    b.push_str(&format!("</{}>", q(dp, "prop")));
                }
                for h in &hrefs {
                    b.push_str(&format!("{sp}<{0}>{h}</{0}>", q(dp, "href")));
                }
                b.push_str(&format!("{sp}</{root}>{sp}"));
                b
            },
        )
    }

    proptest! {
        /// Whatever the direct path reads, the tree path reads the same; and it reads every
        /// body of the common shape (no namespace clash, nothing outside the subset).
        #[test]
        fn direct_path_agrees_with_the_tree(body in body_strategy()) {
            if let Some(direct) = fast(&body) {
                prop_assert_eq!(tree(&body), Ok(ReportRequest::Multiget(direct)), "{}", body);
            }
        }

        /// A byte changed, dropped or inserted anywhere: still no disagreement.
        #[test]
        fn damaged_bodies_never_disagree(
            body in body_strategy(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"<>/&:=\"' \nx-".to_vec()),
            how in 0u8..3,
        ) {
            let mut b = body.into_bytes();
            let i = at.index(b.len() + 1);
            match how {
                0 if i < b.len() => b[i] = byte,
                1 if i < b.len() => {
                    b.remove(i);
                }
                _ => b.insert(i, byte),
            }
            if let Some(direct) = parse(&b, &XmlLimits::DEFAULT) {
                prop_assert_eq!(
                    parse_report_tree(&b),
                    Ok(ReportRequest::Multiget(direct)),
                    "{}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
    }

    #[test]
    fn the_generator_often_makes_bodies_of_the_common_shape() {
        // So the property tests above compare something: a good share of generated bodies is
        // read directly.
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = body_strategy();
        let mut direct = 0;
        for _ in 0..1000 {
            let body = strategy.new_tree(&mut runner).unwrap().current();
            if fast(&body).is_some() {
                direct += 1;
            }
        }
        assert!(
            direct >= 50,
            "{direct} of 1000 generated bodies read directly"
        );
    }
}
