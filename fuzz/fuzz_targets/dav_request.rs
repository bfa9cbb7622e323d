//! WebDAV/CardDAV request bodies (`apps/carddav/src/dav/`): PROPFIND, REPORT
//! (addressbook-multiget, addressbook-query, sync-collection) and PROPPATCH.
//!
//! Invariants: parsing never panics; a body with a DOCTYPE or ENTITY declaration is refused
//! (also when one is put in front of an otherwise good body); an accepted document nests at
//! most `XmlLimits::DEFAULT.max_depth` deep; what PROPPATCH keeps of a property
//! (`element_xml`, `value_xml`) is well-formed on its own and names the same property with
//! the same text; a multistatus answer built from the parsed names and values is well-formed;
//! multiget hrefs resolve inside the installation or not at all; query filters evaluate; a
//! REPORT parses to the same request (or error) with and without the direct multiget reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_carddav::dav::xml::{element_name, text_content};
use portico_carddav::dav::{
    normalize_href, parse_propfind, parse_proppatch, parse_report, parse_report_tree, parse_xml,
    propstats_for,
    DavError, FilterProperty, FilterSubject, MultistatusWriter, PropOp, PropRequest, PropValue,
    Propstat, ReportRequest, XmlLimits,
};

const BASE: &str = "/api/apps/org-1/inst-1/";

/// A card with one of everything, for the query filter to look at.
struct Card;

impl FilterSubject for Card {
    fn properties(&self, name: &str) -> Vec<FilterProperty> {
        let value = match name {
            "FN" => "Zoë Ölçer-Smith",
            "EMAIL" => "zoe@example.com",
            "TEL" => "+1 555 0100",
            _ => return Vec::new(),
        };
        vec![FilterProperty {
            value: value.to_owned(),
            params: vec![("TYPE".to_owned(), "work".to_owned())],
        }]
    }
}

fn has_declaration(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("<!doctype") || lower.contains("<!entity")
}

fn check_error(e: &DavError) {
    let _ = e.status();
    let _ = e.precondition();
    let _ = e.response_body();
}

/// Every element of an accepted document is within the depth limit.
fn check_depth(body: &[u8]) {
    if let Ok(doc) = parse_xml(body) {
        let deepest = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.ancestors().filter(|a| a.is_element()).count())
            .max()
            .unwrap_or(0);
        assert!(deepest <= XmlLimits::DEFAULT.max_depth, "depth {deepest}");
    }
}

/// A multistatus answer carrying these properties must be well-formed XML.
fn check_multistatus(props: Vec<(portico_carddav::dav::PropName, PropValue)>) {
    let names: Vec<_> = props.iter().map(|(n, _)| n.clone()).collect();
    let mut w = MultistatusWriter::begin();
    w.response(&format!("{BASE}addressbook/"), &[Propstat::ok(props)]);
    w.response(
        &format!("{BASE}addressbook/customers/a b.vcf"),
        &propstats_for(&names, |_| None),
    );
    let body = w.finish();
    if let Err(e) = parse_xml(&body) {
        panic!(
            "multistatus not well-formed ({e}): {}",
            String::from_utf8_lossy(&body)
        );
    }
}

fn check_proppatch(body: &[u8]) {
    let req = match parse_proppatch(body) {
        Ok(req) => req,
        Err(e) => return check_error(&e),
    };
    let mut written = Vec::new();
    for op in req.ops {
        let PropOp::Set {
            name,
            value_xml,
            text,
            element_xml,
        } = op
        else {
            continue;
        };
        // What a dead property stores must stand on its own and say the same thing.
        let doc = match parse_xml(element_xml.as_bytes()) {
            Ok(doc) => doc,
            Err(e) => panic!("element_xml {element_xml:?} does not parse: {e}"),
        };
        assert_eq!(element_name(doc.root_element()), name, "{element_xml:?}");
        assert_eq!(text_content(doc.root_element()), text, "{element_xml:?}");
        let wrapped = format!("<w>{value_xml}</w>");
        if let Err(e) = parse_xml(wrapped.as_bytes()) {
            panic!("value_xml {value_xml:?} does not parse: {e}");
        }
        written.push((name.clone(), PropValue::Xml(value_xml)));
        written.push((name, PropValue::Raw(element_xml)));
    }
    check_multistatus(written);
}

fn check_propfind(body: &[u8]) {
    match parse_propfind(body) {
        Ok(PropRequest::Prop(names)) | Ok(PropRequest::AllProp { include: names }) => {
            let text: Vec<_> = names
                .iter()
                .map(|n| (n.clone(), PropValue::Text(n.local.clone())))
                .collect();
            check_multistatus(text);
        }
        Ok(PropRequest::PropName) => {}
        Err(e) => check_error(&e),
    }
}

fn check_report(body: &[u8]) {
    let parsed = parse_report(body);
    assert_eq!(
        parsed,
        parse_report_tree(body),
        "{:?}",
        String::from_utf8_lossy(body)
    );
    match parsed {
        Ok(ReportRequest::Multiget(m)) => {
            for href in &m.hrefs {
                if let Some(rel) = normalize_href(href, BASE) {
                    assert!(!rel.starts_with('/'));
                    assert!(!rel.split('/').any(|s| s == "." || s == ".."), "{href:?}");
                }
            }
        }
        Ok(ReportRequest::Query(q)) => {
            let _ = q.filter.matches(&Card);
        }
        Ok(ReportRequest::SyncCollection(_)) | Ok(ReportRequest::Unsupported(_)) => {}
        Err(e) => check_error(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    check_propfind(data);
    check_report(data);
    check_proppatch(data);
    check_depth(data);

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if has_declaration(text) {
        assert!(matches!(parse_xml(data), Err(DavError::Dtd)), "{text:?}");
    }
    // The same body behind a billion-laughs prologue is refused by every parser.
    let hostile = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>{}",
        text.trim_start_matches('\u{feff}')
    );
    assert!(matches!(parse_xml(hostile.as_bytes()), Err(DavError::Dtd)));
    assert!(parse_propfind(hostile.as_bytes()).is_err());
    assert!(parse_report(hostile.as_bytes()).is_err());
    assert!(parse_proppatch(hostile.as_bytes()).is_err());
});
