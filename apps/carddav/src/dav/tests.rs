//! Request bodies as real clients send them (written here from the RFCs and the clients'
//! documented behaviour), parsed end to end, plus the error cases.

use super::*;

const CARD: &str = "urn:ietf:params:xml:ns:carddav";
const CS: &str = "http://calendarserver.org/ns/";

fn names(p: &PropRequest) -> Vec<String> {
    match p {
        PropRequest::Prop(names) => names.iter().map(ToString::to_string).collect(),
        other => panic!("expected a prop request, got {other:?}"),
    }
}

fn report(body: &str) -> ReportRequest {
    match parse_report(body.as_bytes()) {
        Ok(r) => r,
        Err(e) => panic!("report did not parse: {e}"),
    }
}

// --- PROPFIND --------------------------------------------------------------------------------

#[test]
fn empty_propfind_is_allprop() {
    for body in [&b""[..], b"  \r\n"] {
        assert_eq!(
            parse_propfind(body),
            Ok(PropRequest::AllProp { include: vec![] })
        );
    }
}

#[test]
fn allprop_with_include_and_propname() {
    let body = br#"<?xml version="1.0" encoding="utf-8" ?>
<D:propfind xmlns:D="DAV:">
  <D:allprop/>
  <D:include><D:supported-report-set/><C:getctag xmlns:C="http://calendarserver.org/ns/"/></D:include>
</D:propfind>"#;
    assert_eq!(
        parse_propfind(body),
        Ok(PropRequest::AllProp {
            include: vec![
                PropName::dav("supported-report-set"),
                PropName::calendarserver("getctag")
            ]
        })
    );
    let body = br#"<propfind xmlns="DAV:"><propname/></propfind>"#;
    assert_eq!(parse_propfind(body), Ok(PropRequest::PropName));
}

#[test]
fn apple_contacts_discovery() {
    // Step 1, on the account URL (Depth 0).
    let root = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:current-user-principal/>
    <A:principal-URL/>
    <A:resourcetype/>
  </A:prop>
</A:propfind>
"#;
    let req = parse_propfind(root.as_bytes()).expect("parses");
    assert_eq!(
        names(&req),
        [
            "{DAV:}current-user-principal",
            "{DAV:}principal-URL",
            "{DAV:}resourcetype"
        ]
    );

    // Step 2, on the principal: namespaces declared on each element, as Apple does.
    let principal = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <B:addressbook-home-set xmlns:B="urn:ietf:params:xml:ns:carddav"/>
    <B:directory-gateway xmlns:B="urn:ietf:params:xml:ns:carddav"/>
    <A:displayname/>
    <C:email-address-set xmlns:C="http://calendarserver.org/ns/"/>
    <A:principal-collection-set/>
    <A:principal-URL/>
    <A:resource-id/>
    <A:supported-report-set/>
  </A:prop>
</A:propfind>
"#;
    let req = parse_propfind(principal.as_bytes()).expect("parses");
    let got = names(&req);
    assert_eq!(got[0], format!("{{{CARD}}}addressbook-home-set"));
    assert_eq!(got[3], format!("{{{CS}}}email-address-set"));
    assert_eq!(got.len(), 8);

    // Step 3, on the home (Depth 1).
    let home = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:add-member/>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <A:current-user-privilege-set/>
    <A:displayname/>
    <B:max-image-size xmlns:B="urn:ietf:params:xml:ns:carddav"/>
    <B:max-resource-size xmlns:B="urn:ietf:params:xml:ns:carddav"/>
    <C:me-card xmlns:C="http://calendarserver.org/ns/"/>
    <A:owner/>
    <C:push-transports xmlns:C="http://calendarserver.org/ns/"/>
    <C:pushkey xmlns:C="http://calendarserver.org/ns/"/>
    <A:quota-available-bytes/>
    <A:quota-used-bytes/>
    <A:resource-id/>
    <A:resourcetype/>
    <A:supported-report-set/>
    <A:sync-token/>
  </A:prop>
</A:propfind>
"#;
    let PropRequest::Prop(props) = parse_propfind(home.as_bytes()).expect("parses") else {
        panic!("prop request expected");
    };
    let known: Vec<KnownProp> = props.iter().filter_map(KnownProp::from_name).collect();
    assert_eq!(
        known,
        [
            KnownProp::AddMember,
            KnownProp::GetCtag,
            KnownProp::CurrentUserPrivilegeSet,
            KnownProp::DisplayName,
            KnownProp::MaxResourceSize,
            KnownProp::Owner,
            KnownProp::QuotaAvailableBytes,
            KnownProp::QuotaUsedBytes,
            KnownProp::ResourceType,
            KnownProp::SupportedReportSet,
            KnownProp::SyncToken,
        ]
    );
    // The unknown ones end up in the 404 propstat.
    let ps = propstats_for(&props, |n| {
        KnownProp::from_name(n).map(|_| PropValue::Text("x".into()))
    });
    assert_eq!(ps[1].status.as_u16(), 404);
    assert_eq!(ps[1].props.len(), 5);
}

#[test]
fn davx5_collection_propfind() {
    let body = r#"<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/"><prop><resourcetype /><displayname /><current-user-privilege-set /><CARD:addressbook-description /><CARD:supported-address-data /><CS:getctag /><sync-token /></prop></propfind>"#;
    let req = parse_propfind(body.as_bytes()).expect("parses");
    assert_eq!(
        names(&req),
        [
            "{DAV:}resourcetype".to_string(),
            "{DAV:}displayname".into(),
            "{DAV:}current-user-privilege-set".into(),
            format!("{{{CARD}}}addressbook-description"),
            format!("{{{CARD}}}supported-address-data"),
            format!("{{{CS}}}getctag"),
            "{DAV:}sync-token".into(),
        ]
    );
}

#[test]
fn vdirsyncer_and_thunderbird_listing() {
    let vdirsyncer = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:propfind xmlns:D="DAV:">
    <D:prop>
        <D:resourcetype/>
        <D:getcontenttype/>
        <D:getetag/>
    </D:prop>
</D:propfind>"#;
    assert_eq!(
        names(&parse_propfind(vdirsyncer.as_bytes()).expect("parses")),
        [
            "{DAV:}resourcetype",
            "{DAV:}getcontenttype",
            "{DAV:}getetag"
        ]
    );
    let thunderbird = r#"<propfind xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/"><prop><resourcetype/><displayname/><cs:getctag/><sync-token/><current-user-privilege-set/></prop></propfind>"#;
    assert_eq!(
        names(&parse_propfind(thunderbird.as_bytes()).expect("parses")).len(),
        5
    );
}

#[test]
fn prefixes_do_not_matter() {
    // DAV: bound to a prefix that usually means CardDAV, and vice versa; a default namespace
    // that is not DAV:; the same property twice (deduplicated); comments and PIs ignored.
    let body = r#"<?xml version="1.0"?>
<C:propfind xmlns:C="DAV:" xmlns:D="urn:ietf:params:xml:ns:carddav" xmlns="http://calendarserver.org/ns/">
  <!-- a comment -->
  <?pi ignored?>
  <C:prop>
    <getctag/>
    <D:addressbook-home-set/>
    <C:getetag/>
    <getetag xmlns="DAV:"/>
    <x:getetag xmlns:x="urn:not-dav"/>
    <plain xmlns=""/>
  </C:prop>
</C:propfind>"#;
    let req = parse_propfind(body.as_bytes()).expect("parses");
    assert_eq!(
        names(&req),
        [
            format!("{{{CS}}}getctag"),
            format!("{{{CARD}}}addressbook-home-set"),
            "{DAV:}getetag".into(),
            "{urn:not-dav}getetag".into(),
            "{}plain".into(),
        ]
    );
    // A "propfind" that is not in DAV: is not a propfind.
    assert!(matches!(
        parse_propfind(br#"<propfind><prop><getetag/></prop></propfind>"#),
        Err(DavError::Invalid(_))
    ));
    assert!(matches!(
        parse_propfind(br#"<D:propfind xmlns:D="urn:wrong"><D:prop/></D:propfind>"#),
        Err(DavError::Invalid(_))
    ));
}

#[test]
fn invalid_propfinds() {
    for body in [
        r#"<D:propfind xmlns:D="DAV:"/>"#,
        r#"<D:propfind xmlns:D="DAV:"><D:unknown/></D:propfind>"#,
        r#"<D:propfind xmlns:D="DAV:"><D:prop/><D:allprop/></D:propfind>"#,
        r#"<D:prop xmlns:D="DAV:"><D:getetag/></D:prop>"#,
    ] {
        assert!(
            matches!(parse_propfind(body.as_bytes()), Err(DavError::Invalid(_))),
            "{body}"
        );
    }
    for body in [
        r#"<D:propfind xmlns:D="DAV:"><D:prop><D:getetag></D:prop></D:propfind>"#,
        r#"<D:propfind><D:prop/></D:propfind>"#,
        r#"<?xml version="1.0"?>"#,
        "<D:propfind xmlns:D=\"DAV:\">\u{0}</D:propfind>",
    ] {
        let err = parse_propfind(body.as_bytes()).expect_err(body);
        assert!(matches!(err, DavError::Malformed(_)), "{body}: {err:?}");
        assert_eq!(err.status().as_u16(), 400);
    }
}

#[test]
fn hostile_propfinds() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE D:propfind [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&c;</D:displayname></D:prop></D:propfind>"#;
    assert_eq!(parse_propfind(laughs.as_bytes()), Err(DavError::Dtd));
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><D:propfind xmlns:D="DAV:"><D:prop><D:x>&xxe;</D:x></D:prop></D:propfind>"#;
    assert_eq!(parse_propfind(xxe.as_bytes()), Err(DavError::Dtd));
    let undefined = r#"<D:propfind xmlns:D="DAV:"><D:prop><D:x>&xxe;</D:x></D:prop></D:propfind>"#;
    assert!(matches!(
        parse_propfind(undefined.as_bytes()),
        Err(DavError::Malformed(_))
    ));
    let deep = format!(
        r#"<D:propfind xmlns:D="DAV:"><D:prop>{}{}</D:prop></D:propfind>"#,
        "<D:x>".repeat(100),
        "</D:x>".repeat(100)
    );
    assert_eq!(
        parse_propfind(deep.as_bytes()),
        Err(DavError::TooDeep { limit: 64 })
    );
    assert_eq!(
        parse_propfind(b"<D:propfind xmlns:D=\"DAV:\">\xc3\x28</D:propfind>"),
        Err(DavError::NotUtf8)
    );
    let huge = vec![b' '; XmlLimits::DEFAULT.max_bytes + 1];
    let mut huge_body = b"<D:propfind xmlns:D=\"DAV:\"><D:allprop/>".to_vec();
    huge_body.extend(huge);
    huge_body.extend(b"</D:propfind>");
    assert_eq!(
        parse_propfind(&huge_body).map_err(|e| e.status().as_u16()),
        Err(413)
    );
}

#[test]
fn depth_header() {
    assert_eq!(Depth::parse("0"), Ok(Depth::Zero));
    assert_eq!(Depth::parse(" 1 "), Ok(Depth::One));
    assert_eq!(Depth::parse("infinity"), Ok(Depth::Infinity));
    assert_eq!(Depth::parse("Infinity"), Ok(Depth::Infinity));
    assert_eq!(
        Depth::from_header(None, Depth::Infinity),
        Ok(Depth::Infinity)
    );
    assert_eq!(Depth::from_header(None, Depth::Zero), Ok(Depth::Zero));
    assert_eq!(Depth::from_header(Some("1"), Depth::Zero), Ok(Depth::One));
    for bad in ["2", "", "one", "-1", "1,0", "infinite"] {
        let err = Depth::parse(bad).expect_err(bad);
        assert_eq!(err, DavError::InvalidDepth(bad.into()));
        assert_eq!(err.status().as_u16(), 400);
    }
}

// --- PROPPATCH -------------------------------------------------------------------------------

#[test]
fn proppatch_in_document_order() {
    let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://ns.example.com/standards/z39.50/">
  <D:set>
    <D:prop>
      <D:displayname>Customers &amp; friends</D:displayname>
      <Z:Authors><Z:Author>Jim Whitehead</Z:Author><Z:Author>Roy Fielding</Z:Author></Z:Authors>
    </D:prop>
  </D:set>
  <D:remove>
    <D:prop><Z:Copyright-Owner/></D:prop>
  </D:remove>
  <D:set>
    <D:prop><A:calendar-color xmlns:A="http://apple.com/ns/ical/">#FF2968FF</A:calendar-color></D:prop>
  </D:set>
</D:propertyupdate>"#;
    let req = parse_proppatch(body.as_bytes()).expect("parses");
    let z = "http://ns.example.com/standards/z39.50/";
    assert_eq!(
        req.ops
            .iter()
            .map(|op| match op {
                PropOp::Set { name, value_xml, text, .. } => PropOp::Set {
                    name: name.clone(),
                    value_xml: value_xml.clone(),
                    text: text.clone(),
                    element_xml: String::new(),
                },
                other => other.clone(),
            })
            .collect::<Vec<_>>(),
        vec![
            PropOp::Set {
                name: PropName::dav("displayname"),
                value_xml: "Customers &amp; friends".into(),
                text: "Customers & friends".into(),
                element_xml: String::new(),
            },
            PropOp::Set {
                name: PropName::new(z, "Authors"),
                value_xml: format!(
                    "<Author xmlns=\"{z}\">Jim Whitehead</Author><Author xmlns=\"{z}\">Roy Fielding</Author>"
                ),
                text: "Jim WhiteheadRoy Fielding".into(),
                element_xml: String::new(),
            },
            PropOp::Remove {
                name: PropName::new(z, "Copyright-Owner"),
            },
            PropOp::Set {
                name: PropName::new("http://apple.com/ns/ical/", "calendar-color"),
                value_xml: "#FF2968FF".into(),
                text: "#FF2968FF".into(),
                element_xml: String::new(),
            },
        ]
    );
    assert_eq!(req.ops[2].name(), &PropName::new(z, "Copyright-Owner"));
}

#[test]
fn proppatch_value_written_back_keeps_its_names() {
    let body = r#"<propertyupdate xmlns="DAV:"><set><prop><q:meta xmlns:q="urn:q"><q:k a="1">v</q:k></q:meta></prop></set></propertyupdate>"#;
    let req = parse_proppatch(body.as_bytes()).expect("parses");
    let PropOp::Set {
        name, value_xml, ..
    } = &req.ops[0]
    else {
        panic!("set expected");
    };
    let mut w = MultistatusWriter::begin();
    w.response(
        "/b/",
        &[Propstat::ok(vec![(
            name.clone(),
            PropValue::Xml(value_xml.clone()),
        )])],
    );
    let out = String::from_utf8(w.finish()).expect("utf-8");
    let doc = roxmltree::Document::parse(&out).expect("well-formed");
    let k = doc
        .descendants()
        .find(|n| n.has_tag_name(("urn:q", "k")))
        .expect("value element");
    assert_eq!(k.text(), Some("v"));
    assert_eq!(k.attribute("a"), Some("1"));
    assert!(k
        .parent()
        .is_some_and(|p| p.has_tag_name(("urn:q", "meta"))));
}

#[test]
fn invalid_proppatches() {
    for body in [
        r#"<D:propertyupdate xmlns:D="DAV:"/>"#,
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set/></D:propertyupdate>"#,
        r#"<D:propfind xmlns:D="DAV:"><D:set><D:prop/></D:set></D:propfind>"#,
    ] {
        assert!(
            matches!(parse_proppatch(body.as_bytes()), Err(DavError::Invalid(_))),
            "{body}"
        );
    }
    assert!(matches!(parse_proppatch(b""), Err(DavError::Malformed(_))));
}

// --- REPORT: addressbook-multiget ------------------------------------------------------------

#[test]
fn davx5_multiget_vcard4() {
    let body = r#"<?xml version='1.0' encoding='UTF-8' ?><CARD:addressbook-multiget xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><getcontenttype /><getetag /><CARD:address-data content-type="text/vcard" version="4.0" /></prop><href>/api/apps/acme/i1/addressbook/customers/a.vcf</href><href>/api/apps/acme/i1/addressbook/customers/b%20c.vcf</href></CARD:addressbook-multiget>"#;
    let ReportRequest::Multiget(m) = report(body) else {
        panic!("multiget expected");
    };
    assert_eq!(
        names(&m.props),
        [
            "{DAV:}getcontenttype".to_string(),
            "{DAV:}getetag".into(),
            format!("{{{CARD}}}address-data")
        ]
    );
    assert_eq!(
        m.address_data,
        Some(AddressDataRequest {
            content_type: Some("text/vcard".into()),
            version: Some("4.0".into()),
            all_props: true,
            props: vec![],
        })
    );
    assert_eq!(m.hrefs.len(), 2);
    let rel: Vec<_> = m
        .hrefs
        .iter()
        .map(|h| normalize_href(h, "/api/apps/acme/i1/"))
        .collect();
    assert_eq!(
        rel,
        [
            Some("addressbook/customers/a.vcf".to_string()),
            Some("addressbook/customers/b c.vcf".to_string())
        ]
    );
}

#[test]
fn vdirsyncer_and_thunderbird_multiget() {
    let vdirsyncer = r#"<?xml version="1.0" encoding="utf-8" ?>
<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
    <D:prop>
        <D:getetag/>
        <C:address-data/>
    </D:prop>
    <D:href>https://dav.example.com/api/apps/acme/i1/addressbook/customers/x.vcf</D:href>
    <D:href>
        /api/apps/acme/i1/addressbook/customers/y.vcf
    </D:href>
</C:addressbook-multiget>"#;
    let ReportRequest::Multiget(m) = report(vdirsyncer) else {
        panic!("multiget expected");
    };
    assert_eq!(
        m.address_data,
        Some(AddressDataRequest {
            all_props: true,
            ..AddressDataRequest::default()
        })
    );
    assert_eq!(
        m.hrefs,
        [
            "https://dav.example.com/api/apps/acme/i1/addressbook/customers/x.vcf",
            "/api/apps/acme/i1/addressbook/customers/y.vcf"
        ]
    );

    let thunderbird = r#"<card:addressbook-multiget xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><prop><getetag/><card:address-data/></prop><href>/api/apps/acme/i1/addressbook/customers/z.vcf</href></card:addressbook-multiget>"#;
    let ReportRequest::Multiget(m) = report(thunderbird) else {
        panic!("multiget expected");
    };
    assert_eq!(m.hrefs.len(), 1);
    assert!(m.address_data.is_some());
}

#[test]
fn multiget_with_partial_address_data_and_no_prop() {
    // RFC 6352 §10.4: only some vCard properties, one without its value.
    let body = r#"<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop><C:address-data content-type="text/vcard; charset=utf-8" version="3.0"><C:prop name="VERSION"/><C:prop name="uid"/><C:prop name="PHOTO" novalue="yes"/></C:address-data></D:prop>
  <D:href>/a.vcf</D:href>
</C:addressbook-multiget>"#;
    let ReportRequest::Multiget(m) = report(body) else {
        panic!("multiget expected");
    };
    let ad = m.address_data.expect("address-data");
    assert!(!ad.all_props);
    assert_eq!(
        ad.props,
        [
            ("VERSION".to_string(), false),
            ("UID".to_string(), false),
            ("PHOTO".to_string(), true)
        ]
    );
    assert_eq!(ad.version.as_deref(), Some("3.0"));

    // No DAV:prop at all: allprop.
    let body = r#"<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:href>/a.vcf</D:href></C:addressbook-multiget>"#;
    let ReportRequest::Multiget(m) = report(body) else {
        panic!("multiget expected");
    };
    assert_eq!(m.props, PropRequest::AllProp { include: vec![] });
    assert_eq!(m.address_data, None);
}

#[test]
fn unsupported_address_data() {
    for attrs in [
        r#"content-type="application/vcard+json""#,
        r#"content-type="text/vcard" version="2.1""#,
        r#"version="5.0""#,
    ] {
        let body = format!(
            r#"<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><C:address-data {attrs}/></D:prop><D:href>/a.vcf</D:href></C:addressbook-multiget>"#
        );
        let err = parse_report(body.as_bytes()).expect_err(attrs);
        assert!(
            matches!(err, DavError::UnsupportedAddressData { .. }),
            "{attrs}: {err:?}"
        );
        assert_eq!(err.status().as_u16(), 403);
        assert!(err
            .response_body()
            .is_some_and(|b| b.contains("<card:supported-address-data/>")));
    }
}

// --- REPORT: addressbook-query ---------------------------------------------------------------

#[test]
fn evolution_query() {
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop>
    <D:getetag/>
    <C:address-data/>
  </D:prop>
  <C:filter test="anyof">
    <C:prop-filter name="FN">
      <C:text-match collation="i;unicode-casemap" match-type="contains">élo</C:text-match>
    </C:prop-filter>
    <C:prop-filter name="email">
      <C:text-match collation="i;unicode-casemap" match-type="starts-with">ELO</C:text-match>
    </C:prop-filter>
  </C:filter>
</C:addressbook-query>"#;
    let ReportRequest::Query(q) = report(body) else {
        panic!("query expected");
    };
    assert_eq!(names(&q.props).len(), 2);
    assert!(q.address_data.is_some());
    assert_eq!(q.limit, None);
    assert_eq!(q.filter.test, FilterTest::AnyOf);
    assert_eq!(q.filter.prop_filters.len(), 2);
    let fn_filter = &q.filter.prop_filters[0];
    assert_eq!(fn_filter.name, "FN");
    assert_eq!(
        fn_filter.text_matches,
        [TextMatch {
            text: "élo".into(),
            collation: Collation::UnicodeCasemap,
            match_type: MatchType::Contains,
            negate: false,
        }]
    );
    assert_eq!(q.filter.prop_filters[1].name, "EMAIL");
    assert_eq!(
        q.filter.prop_filters[1].text_matches[0].match_type,
        MatchType::StartsWith
    );
    assert!(fn_filter.text_matches[0].matches("ÉLODIE Martin"));
}

#[test]
fn rfc6352_query_with_param_filter_limit_and_defaults() {
    // Shaped after the examples of RFC 6352 §8.6: allof, negation, param-filter,
    // is-not-defined and a limit; attribute defaults when absent.
    let body = r#"<?xml version="1.0" encoding="utf-8" ?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
  <D:prop><D:getetag/><C:address-data><C:prop name="VERSION"/><C:prop name="UID"/><C:prop name="NICKNAME"/><C:prop name="EMAIL"/><C:prop name="FN"/></C:address-data></D:prop>
  <C:filter test="allof">
    <C:prop-filter name="NICKNAME">
      <C:text-match collation="i;ascii-casemap" match-type="equals">me</C:text-match>
    </C:prop-filter>
    <C:prop-filter name="EMAIL" test="allof">
      <C:text-match negate-condition="yes">example.org</C:text-match>
      <C:param-filter name="TYPE"><C:text-match match-type="equals">work</C:text-match></C:param-filter>
      <C:param-filter name="PREF"><C:is-not-defined/></C:param-filter>
      <C:param-filter name="X-LABEL"/>
    </C:prop-filter>
    <C:prop-filter name="TEL"><C:is-not-defined/></C:prop-filter>
    <C:prop-filter name="UID"/>
  </C:filter>
  <C:limit><C:nresults>10</C:nresults></C:limit>
</C:addressbook-query>"#;
    let ReportRequest::Query(q) = report(body) else {
        panic!("query expected");
    };
    assert_eq!(q.limit, Some(10));
    assert_eq!(q.filter.test, FilterTest::AllOf);
    let [nick, email, tel, uid] = &q.filter.prop_filters[..] else {
        panic!("four prop-filters expected");
    };
    assert_eq!(nick.text_matches[0].collation, Collation::AsciiCasemap);
    assert_eq!(nick.text_matches[0].match_type, MatchType::Equals);
    assert_eq!(email.test, FilterTest::AllOf);
    assert!(email.text_matches[0].negate);
    assert_eq!(email.text_matches[0].collation, Collation::UnicodeCasemap);
    assert_eq!(email.text_matches[0].match_type, MatchType::Contains);
    assert_eq!(
        email.param_filters,
        [
            ParamFilter {
                name: "TYPE".into(),
                is_not_defined: false,
                text_match: Some(TextMatch {
                    match_type: MatchType::Equals,
                    ..TextMatch::new("work")
                }),
            },
            ParamFilter {
                name: "PREF".into(),
                is_not_defined: true,
                text_match: None,
            },
            ParamFilter {
                name: "X-LABEL".into(),
                is_not_defined: false,
                text_match: None,
            },
        ]
    );
    assert!(tel.is_not_defined);
    assert!(!uid.is_not_defined && uid.text_matches.is_empty() && uid.param_filters.is_empty());
    let ad = q.address_data.expect("address-data");
    assert_eq!(ad.props.len(), 5);
    assert_eq!(ad.content_type, None);
    assert_eq!(ad.version, None);
}

#[test]
fn query_without_filter_and_with_dav_limit() {
    let body = r#"<addressbook-query xmlns="urn:ietf:params:xml:ns:carddav" xmlns:d="DAV:"><d:prop><d:getetag/></d:prop><filter/><d:limit><d:nresults> 5 </d:nresults></d:limit></addressbook-query>"#;
    let ReportRequest::Query(q) = report(body) else {
        panic!("query expected");
    };
    assert_eq!(q.filter, Filter::default());
    assert_eq!(q.limit, Some(5));
    let body = r#"<addressbook-query xmlns="urn:ietf:params:xml:ns:carddav"/>"#;
    let ReportRequest::Query(q) = report(body) else {
        panic!("query expected");
    };
    assert_eq!(q.props, PropRequest::AllProp { include: vec![] });
    assert_eq!(q.filter, Filter::default());
}

#[test]
fn query_errors() {
    let wrap = |filter: &str| {
        format!(
            r#"<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop>{filter}</C:addressbook-query>"#
        )
    };
    let collation = wrap(
        r#"<C:filter><C:prop-filter name="FN"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:filter>"#,
    );
    let err = parse_report(collation.as_bytes()).expect_err("unknown collation");
    assert_eq!(err, DavError::UnsupportedCollation("i;klingon".into()));
    assert_eq!(err.status().as_u16(), 403);
    assert!(err
        .response_body()
        .is_some_and(|b| b.contains("<card:supported-collation/>")));

    for unsupported in [
        r#"<C:filter><C:comp-filter name="VCARD"/></C:filter>"#,
        r#"<C:filter><C:prop-filter name="BDAY"><C:time-range start="20200101T000000Z"/></C:prop-filter></C:filter>"#,
        r#"<C:filter><C:prop-filter name="EMAIL"><C:param-filter name="TYPE"><X:regex xmlns:X="urn:x">.*</X:regex></C:param-filter></C:prop-filter></C:filter>"#,
    ] {
        let err = parse_report(wrap(unsupported).as_bytes()).expect_err(unsupported);
        assert!(
            matches!(err, DavError::UnsupportedFilter(_)),
            "{unsupported}: {err:?}"
        );
        assert!(err
            .response_body()
            .is_some_and(|b| b.contains("<card:supported-filter/>")));
    }

    for invalid in [
        r#"<C:filter test="someof"/>"#,
        r#"<C:filter><C:prop-filter/></C:filter>"#,
        r#"<C:filter><C:prop-filter name="FN"><C:text-match match-type="regex">x</C:text-match></C:prop-filter></C:filter>"#,
        r#"<C:filter><C:prop-filter name="FN"><C:text-match negate-condition="maybe">x</C:text-match></C:prop-filter></C:filter>"#,
        r#"<C:filter><C:prop-filter name="FN"><C:is-not-defined/><C:text-match>x</C:text-match></C:prop-filter></C:filter>"#,
        r#"<C:filter><C:prop-filter name="FN"><C:param-filter name="TYPE"><C:text-match>a</C:text-match><C:text-match>b</C:text-match></C:param-filter></C:prop-filter></C:filter>"#,
        r#"<C:filter/><C:limit><C:nresults>lots</C:nresults></C:limit>"#,
        r#"<C:filter/><C:limit/>"#,
        r#"<C:filter/><C:limit><C:nresults>-1</C:nresults></C:limit>"#,
    ] {
        let err = parse_report(wrap(invalid).as_bytes()).expect_err(invalid);
        assert!(matches!(err, DavError::Invalid(_)), "{invalid}: {err:?}");
        assert_eq!(err.status().as_u16(), 400);
    }
}

// --- REPORT: sync-collection -----------------------------------------------------------------

#[test]
fn davx5_sync_collection() {
    let initial = r#"<?xml version='1.0' encoding='UTF-8' ?><sync-collection xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><sync-token /><sync-level>1</sync-level><prop><getetag /></prop></sync-collection>"#;
    assert_eq!(
        report(initial),
        ReportRequest::SyncCollection(SyncRequest {
            sync_token: None,
            sync_level: SyncLevel::One,
            limit: None,
            props: PropRequest::Prop(vec![PropName::dav("getetag")]),
            address_data: None,
        })
    );
    let incremental = r#"<?xml version='1.0' encoding='UTF-8' ?><sync-collection xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><sync-token>http://portico.example/ns/sync/1234</sync-token><sync-level>1</sync-level><prop><getetag /></prop></sync-collection>"#;
    let ReportRequest::SyncCollection(s) = report(incremental) else {
        panic!("sync expected");
    };
    assert_eq!(
        s.sync_token.as_deref(),
        Some("http://portico.example/ns/sync/1234")
    );
}

#[test]
fn sync_collection_variants() {
    // Thunderbird-style: cards in the sync report itself, whitespace around the token.
    let body = r#"<sync-collection xmlns="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav"><sync-token>
        data:,7
    </sync-token><sync-level>infinite</sync-level><limit><nresults>100</nresults></limit><prop><getetag/><card:address-data/></prop></sync-collection>"#;
    let ReportRequest::SyncCollection(s) = report(body) else {
        panic!("sync expected");
    };
    assert_eq!(s.sync_token.as_deref(), Some("data:,7"));
    assert_eq!(s.sync_level, SyncLevel::Infinite);
    assert_eq!(s.limit, Some(100));
    assert!(s.address_data.is_some());

    // Missing sync-level and prop (older clients): defaults.
    let body = r#"<D:sync-collection xmlns:D="DAV:"><D:sync-token/></D:sync-collection>"#;
    let ReportRequest::SyncCollection(s) = report(body) else {
        panic!("sync expected");
    };
    assert_eq!(s.sync_level, SyncLevel::One);
    assert_eq!(s.props, PropRequest::Prop(vec![]));
    assert_eq!(s.sync_token, None);

    let bad = r#"<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>2</D:sync-level></D:sync-collection>"#;
    assert!(matches!(
        parse_report(bad.as_bytes()),
        Err(DavError::Invalid(_))
    ));
}

// --- REPORT: others --------------------------------------------------------------------------

#[test]
fn unknown_and_unimplemented_reports() {
    let caldav = r#"<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></C:calendar-query>"#;
    let err = parse_report(caldav.as_bytes()).expect_err("caldav report");
    assert_eq!(
        err,
        DavError::UnsupportedReport(PropName::new(
            "urn:ietf:params:xml:ns:caldav",
            "calendar-query"
        ))
    );
    assert_eq!(err.status().as_u16(), 403);
    assert!(err
        .response_body()
        .is_some_and(|b| b.contains("<d:supported-report/>")));

    // A CardDAV-looking report in the wrong namespace is unknown too.
    let wrong_ns =
        r#"<addressbook-multiget xmlns="DAV:"><href>/a.vcf</href></addressbook-multiget>"#;
    assert!(matches!(
        parse_report(wrong_ns.as_bytes()),
        Err(DavError::UnsupportedReport(_))
    ));

    let expand = r#"<A:expand-property xmlns:A="DAV:"><A:property name="calendar-proxy-write-for" namespace="http://calendarserver.org/ns/"/></A:expand-property>"#;
    assert_eq!(
        report(expand),
        ReportRequest::Unsupported(PropName::dav("expand-property"))
    );
    let search = r#"<D:principal-property-search xmlns:D="DAV:"><D:property-search><D:prop><D:displayname/></D:prop><D:match>doe</D:match></D:property-search></D:principal-property-search>"#;
    assert_eq!(
        report(search),
        ReportRequest::Unsupported(PropName::dav("principal-property-search"))
    );

    assert!(matches!(parse_report(b"<a"), Err(DavError::Malformed(_))));
    assert!(matches!(parse_report(b""), Err(DavError::Malformed(_))));
}

/// The whole chain for one query: parse, evaluate against cards, write the answer.
#[test]
fn query_end_to_end() {
    struct Card(&'static str, &'static str);
    impl FilterSubject for Card {
        fn properties(&self, name: &str) -> Vec<FilterProperty> {
            let value = match name {
                "FN" => self.0,
                "EMAIL" => self.1,
                _ => return vec![],
            };
            vec![FilterProperty {
                value: value.into(),
                params: vec![],
            }]
        }
    }
    let body = r#"<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop><C:filter><C:prop-filter name="FN"><C:text-match>ÉLO</C:text-match></C:prop-filter><C:prop-filter name="EMAIL"><C:text-match match-type="ends-with">@acme.example</C:text-match></C:prop-filter></C:filter><C:limit><C:nresults>1</C:nresults></C:limit></C:addressbook-query>"#;
    let ReportRequest::Query(q) = report(body) else {
        panic!("query expected");
    };
    let cards = [
        ("a.vcf", Card("Élodie", "e@home.example")),
        ("b.vcf", Card("Bob", "bob@acme.example")),
        ("c.vcf", Card("Carol", "carol@home.example")),
    ];
    let hits: Vec<&str> = cards
        .iter()
        .filter(|(_, c)| q.filter.matches(c))
        .map(|(h, _)| *h)
        .collect();
    assert_eq!(hits, ["a.vcf", "b.vcf"]);

    let limit = q.limit.map_or(usize::MAX, |n| n as usize);
    let mut w = MultistatusWriter::begin();
    for h in hits.iter().take(limit) {
        w.response(
            &format!("/book/{h}"),
            &propstats_for(&names_of(&q.props), |_| {
                Some(PropValue::Text("\"1\"".into()))
            }),
        );
    }
    if hits.len() > limit {
        w.response_error(
            "/book/",
            Precondition::NumberOfMatchesWithinLimits.status(),
            &Precondition::NumberOfMatchesWithinLimits,
        );
    }
    let out = String::from_utf8(w.finish()).expect("utf-8");
    assert!(out.contains("<d:href>/book/a.vcf</d:href>"));
    assert!(!out.contains("b.vcf"));
    assert!(out.contains("HTTP/1.1 507 Insufficient Storage"));
}

fn names_of(p: &PropRequest) -> Vec<PropName> {
    match p {
        PropRequest::Prop(n) => n.clone(),
        _ => vec![],
    }
}

#[test]
fn prefix_undeclaring_is_malformed() {
    // litmus props/propfind_invalid2: `xmlns:bar=""` is not namespace-well-formed XML 1.0.
    let body = br#"<?xml version="1.0"?><propfind xmlns="DAV:"><prop><bar:foo xmlns:bar=""/></prop></propfind>"#;
    let err = crate::dav::parse_propfind(body).unwrap_err();
    assert!(err.is_malformed(), "{err:?}");
    assert_eq!(err.status(), portico_sdk::http::StatusCode::BAD_REQUEST);
    // A default namespace reset (xmlns="") is allowed.
    let ok = br#"<propfind xmlns="DAV:"><prop><foo xmlns=""/></prop></propfind>"#;
    assert!(crate::dav::parse_propfind(ok).is_ok());
}

#[test]
fn proppatch_keeps_the_elements_attributes_and_language() {
    // RFC 4918 §4.3: xml:lang on the property (or inherited from DAV:prop) is part of its value.
    let body = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop xml:lang="fr"><x:note xmlns:x="urn:x" kind="a">bonjour</x:note><x:other xmlns:x="urn:x" xml:lang="de">hallo</x:other></D:prop></D:set></D:propertyupdate>"#;
    let req = parse_proppatch(body.as_bytes()).expect("parses");
    let PropOp::Set { element_xml, .. } = &req.ops[0] else {
        panic!("set expected")
    };
    assert_eq!(
        element_xml,
        r#"<note xmlns="urn:x" xml:lang="fr" kind="a">bonjour</note>"#
    );
    let PropOp::Set { element_xml, .. } = &req.ops[1] else {
        panic!("set expected")
    };
    assert_eq!(
        element_xml,
        r#"<other xmlns="urn:x" xml:lang="de">hallo</other>"#
    );
}
