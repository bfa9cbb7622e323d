//! Replayed request sequences of Apple Contacts (iOS and macOS) and DAVx5 (issue 6, item 4).
//!
//! Each test is one client session written out step by step from the client's documented
//! behaviour and the RFCs it follows (RFC 6764 discovery, RFC 5397 current-user-principal,
//! RFC 6352 CardDAV, RFC 6578 sync-collection with `DAV:limit`, RFC 7240 / RFC 8144
//! `Prefer: return=minimal`, the `Brief: t` header Apple's and DAVx5-era clients send): the
//! method, path, headers and body the client sends, and what the client needs back — status,
//! the headers it reads (ETag, Location, DAV, Preference-Applied) and the XML facts it parses
//! (by namespace URI, never by prefix). The request bodies use the clients' own prefix styles
//! (Apple's `A:`/`B:`/`C:` with per-element declarations, DAVx5's default `DAV:` namespace),
//! so a server that matched prefixes instead of namespaces would fail here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Apple's and CalendarServer's private namespace for `bulk-requests` and `max-image-size`.
const ME: &str = "http://me.com/_namespace/";

const UA_IOS: &str = "iOS/17.5 (21F79) dataaccessd/1.0";
const UA_MAC: &str = "macOS/14.5 (23F79) AddressBookCore/2487.600.91";
const UA_DAVX5: &str = "DAVx5/4.4.1-ose (dav4jvm; okhttp/4.12.0) Android/14";

/// One answer, with everything a replay step looks at.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The body as a multistatus; asserts 207 and an XML content type.
    fn ms(&self, step: &str) -> Multistatus {
        assert_eq!(self.status, 207, "{step}: expected 207, got {}", self.body);
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/xml") || ct.starts_with("text/xml"),
            "{step}: multistatus content type {ct}"
        );
        Multistatus::parse(&self.body)
    }
}

/// Sends one request exactly as the client would (Basic credentials when `auth`).
async fn send(
    book: &Book,
    auth: bool,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut b = if auth {
        book.req(method, path)
    } else {
        book.anon(method, path)
    };
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    if !body.is_empty() {
        b = b.body(body.to_owned());
    }
    let r = b.send().await.unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

/// The properties a `DAV:propfind` / REPORT body asks for, by expanded name.
fn asked(body: &str) -> Vec<QName> {
    let doc = roxmltree::Document::parse(body).unwrap();
    let prop = doc
        .descendants()
        .find(|n| n.has_tag_name((DAV, "prop")))
        .expect("a DAV:prop in the request");
    prop.children()
        .filter(|c| c.is_element())
        .map(|c| qn(c.tag_name().namespace().unwrap_or(""), c.tag_name().name()))
        .collect()
}

/// RFC 4918 §9.1: every requested property of a resource appears in exactly one propstat;
/// with `Prefer: return=minimal` (RFC 8144 §2.1) the 404 ones are left out and no other.
fn assert_accounted_for(step: &str, r: &DavResponse, names: &[QName], minimal: bool) {
    for (ns, local) in names {
        let count = r
            .propstats
            .iter()
            .flat_map(|ps| ps.props.iter())
            .filter(|p| &p.ns == ns && &p.name == local)
            .count();
        let status = r.prop_status(ns, local);
        if minimal && status.is_none() {
            continue; // left out: must have been a 404, checked below
        }
        assert_eq!(
            count, 1,
            "{step}: {{{ns}}}{local} appears {count} times on {}: {r:?}",
            r.href
        );
    }
    if minimal {
        assert!(
            r.propstat(404).is_none(),
            "{step}: a 404 propstat despite return=minimal on {}: {r:?}",
            r.href
        );
    }
}

fn assert_strong_etag(step: &str, etag: &str) {
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{step}: a strong quoted ETag, got {etag:?}"
    );
}

/// Seeds `n` customers through the admin API; their card hrefs (decoded paths).
async fn seed(s: &TestServer, book: &Book, n: usize) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for i in 0..n {
        let c = create_customer(
            s,
            &book.org,
            json!({
                "name": format!("Replay Person {i:02}"),
                "email": format!("replay{i:02}@example.com"),
                "phone": format!("+33 6 12 34 56 {i:02}"),
                "note": if i % 3 == 0 { "Prefers mornings; side entrance, gate 2" } else { "" },
            }),
        )
        .await;
        out.insert(book.card(&format!("{}.vcf", c["id"].as_str().unwrap())));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Apple Contacts on iOS: account set-up from a server name, first sync, create, edit, delete.

const APPLE_CUP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:current-user-principal/>
    <A:principal-URL/>
    <A:resourcetype/>
  </A:prop>
</A:propfind>
"#;

/// What Apple Contacts asks of the principal (RFC 6352 §7.1.1 home set; the rest optional).
const APPLE_PRINCIPAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
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

/// The home listing iOS sends with `Brief: t` and `Prefer: return=minimal`: collection kind,
/// names, change tags, privileges, quota, push and Apple-private properties.
const IOS_HOME: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:add-member/>
    <D:bulk-requests xmlns:D="http://me.com/_namespace/"/>
    <A:current-user-privilege-set/>
    <A:displayname/>
    <D:max-image-size xmlns:D="http://me.com/_namespace/"/>
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
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
  </A:prop>
</A:propfind>
"#;

const APPLE_CTAG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <C:getctag xmlns:C="http://calendarserver.org/ns/"/>
    <A:sync-token/>
  </A:prop>
</A:propfind>
"#;

fn apple_sync(token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<A:sync-collection xmlns:A="DAV:">
  <A:sync-token>{token}</A:sync-token>
  <A:sync-level>1</A:sync-level>
  <A:prop>
    <A:getetag/>
    <A:getcontenttype/>
  </A:prop>
</A:sync-collection>
"#
    )
}

/// Apple's multiget: the CardDAV namespace on the root, `DAV:` declared on each element.
fn apple_multiget(hrefs: &[String]) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<B:addressbook-multiget xmlns:B="urn:ietf:params:xml:ns:carddav">
  <A:prop xmlns:A="DAV:">
    <A:getetag/>
    <B:address-data/>
  </A:prop>
"#,
    );
    for h in hrefs {
        out.push_str(&format!(
            "  <A:href xmlns:A=\"DAV:\">{}</A:href>\n",
            xml_escape(h)
        ));
    }
    out.push_str("</B:addressbook-multiget>\n");
    out
}

/// A card as iOS writes it: PRODID, labelled groups (`item1.X-ABLabel`), Apple type params.
fn apple_card(uid: &str, note: &str) -> String {
    [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Apple Inc.//iPhone OS 17.5//EN",
        "N:Lindqvist;Björn;;;",
        "FN:Björn Lindqvist",
        "ORG:Lindqvist Måleri AB;",
        "item1.EMAIL;type=INTERNET;type=pref:bjorn@lindqvist.example",
        "item1.X-ABLabel:_$!<Other>!$_",
        "TEL;type=CELL;type=VOICE;type=pref:+46 70 123 45 67",
        "item2.ADR;type=HOME;type=pref:;;Storgatan 1;Uppsala;;753 20;Sweden",
        "item2.X-ABADR:se",
        &format!("NOTE:{note}"),
        "REV:2024-06-01T09:30:00Z",
        &format!("UID:{uid}"),
        "END:VCARD",
    ]
    .join("\r\n")
        + "\r\n"
}

#[tokio::test]
async fn ios_contacts_sets_up_the_account_syncs_and_edits() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "ios").await;
    let seeded = seed(&s, &book, 12).await;
    let ua = ("user-agent", UA_IOS);

    // 1. The user typed the server's host name: RFC 6764 §6 well-known URI, first without
    //    credentials (iOS waits for the challenge), then with them.
    let r = send(
        &book,
        false,
        "PROPFIND",
        "/.well-known/carddav",
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        APPLE_CUP,
    )
    .await;
    assert_eq!(r.status, 401, "1a: {}", r.body);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic "));
    let r = send(
        &book,
        true,
        "PROPFIND",
        "/.well-known/carddav",
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        APPLE_CUP,
    )
    .await;
    assert_eq!(r.status, 301, "1b: {}", r.body);
    let location = r.header("location").unwrap();
    assert_eq!(
        location.strip_prefix(&book.url).unwrap_or(location),
        book.base,
        "1b: the redirect names the context path"
    );

    // 2. The context path: current-user-principal (RFC 5397).
    let r = send(
        &book,
        true,
        "PROPFIND",
        &book.base,
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        APPLE_CUP,
    )
    .await;
    let ms = r.ms("2");
    let root = ms.only();
    assert_accounted_for("2", root, &asked(APPLE_CUP), false);
    assert_eq!(
        root.ok(DAV, "current-user-principal").hrefs,
        vec![book.principal()]
    );

    // 3. The principal: the address book home (RFC 6352 §7.1.1).
    let r = send(
        &book,
        true,
        "PROPFIND",
        &book.principal(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        APPLE_PRINCIPAL,
    )
    .await;
    let ms = r.ms("3");
    let p = ms.only();
    assert_accounted_for("3", p, &asked(APPLE_PRINCIPAL), false);
    assert_eq!(p.ok(CARD, "addressbook-home-set").hrefs, vec![book.home()]);
    assert_eq!(p.ok(DAV, "principal-URL").hrefs, vec![book.principal()]);
    assert_eq!(p.ok(DAV, "displayname").text, "IOS");
    // No directory gateway: it must not be reported as present (RFC 6352 §7.1.2).
    assert!(p
        .prop(CARD, "directory-gateway")
        .is_none_or(|g| g.hrefs.is_empty()));

    // 4. OPTIONS on the principal: iOS checks the DAV classes (RFC 6352 §6.1: `addressbook`).
    let r = send(&book, true, "OPTIONS", &book.principal(), &[ua], "").await;
    assert!(matches!(r.status, 200 | 204), "4: {}", r.status);
    let dav = r.header("dav").expect("4: a DAV header");
    assert!(
        dav.split(',').any(|c| c.trim() == "addressbook"),
        "4: DAV {dav}"
    );

    // 5. The home, Depth 1, minimal: which collections are address books?
    let minimal = [
        ua,
        ("depth", "1"),
        ("content-type", "text/xml"),
        ("brief", "t"),
        ("prefer", "return=minimal"),
    ];
    let r = send(&book, true, "PROPFIND", &book.home(), &minimal, IOS_HOME).await;
    assert_eq!(
        r.header("preference-applied"),
        Some("return=minimal"),
        "5: RFC 7240 §3"
    );
    let ms = r.ms("5");
    assert_eq!(
        ms.hrefs().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([book.home(), book.book()]),
        "5: the home and its one book"
    );
    for resp in &ms.responses {
        assert_accounted_for("5", resp, &asked(IOS_HOME), true);
    }
    let b = ms.get(&book.book());
    let rt = b.ok(DAV, "resourcetype");
    assert!(rt.has(DAV, "collection") && rt.has(CARD, "addressbook"));
    let privs = b.ok(DAV, "current-user-privilege-set");
    assert!(
        privs.has(DAV, "read") && privs.has(DAV, "write"),
        "5: {privs:?}"
    );
    let reports = b.ok(DAV, "supported-report-set");
    assert!(reports.has(DAV, "sync-collection") && reports.has(CARD, "addressbook-multiget"));
    let ctag0 = b.ok(CS, "getctag").text.trim().to_owned();
    let token_listed = b.ok(DAV, "sync-token").text.trim().to_owned();
    assert!(!ctag0.is_empty() && !token_listed.is_empty());
    assert!(!ms
        .get(&book.home())
        .ok(DAV, "resourcetype")
        .has(CARD, "addressbook"));

    // 5'. The same request without the preference: the same 200 answers, plus the 404s.
    let r_full = send(
        &book,
        true,
        "PROPFIND",
        &book.home(),
        &[ua, ("depth", "1"), ("content-type", "text/xml")],
        IOS_HOME,
    )
    .await;
    assert!(r_full.header("preference-applied").is_none());
    let full = r_full.ms("5'");
    for resp in &full.responses {
        assert_accounted_for("5'", resp, &asked(IOS_HOME), false);
        let min = ms.get(&resp.href);
        assert_eq!(
            resp.names(200),
            min.names(200),
            "5': minimal drops only 404s"
        );
        assert!(
            resp.prop_status(ME, "bulk-requests") == Some(404),
            "5': an unknown Apple property is 404 when not minimal"
        );
    }

    // 6. Before syncing, iOS compares the ctag.
    let r = send(
        &book,
        true,
        "PROPFIND",
        &book.book(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        APPLE_CTAG,
    )
    .await;
    let ms = r.ms("6");
    assert_eq!(ms.only().ok(CS, "getctag").text.trim(), ctag0);
    assert_eq!(ms.only().ok(DAV, "sync-token").text.trim(), token_listed);

    // 7. Initial sync-collection (RFC 6578 §3.2: empty token, Depth 0).
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        &apple_sync(""),
    )
    .await;
    let ms = r.ms("7");
    assert!(ms.truncation().is_none(), "7: 12 cards fit in one answer");
    let token1 = ms.sync_token.clone().expect("7: a sync-token");
    let mut etags = BTreeMap::new();
    for m in ms.members() {
        assert_accounted_for("7", m, &asked(&apple_sync("")), false);
        let etag = m.ok(DAV, "getetag").text.clone();
        assert_strong_etag("7", &etag);
        assert!(m.ok(DAV, "getcontenttype").text.starts_with("text/vcard"));
        etags.insert(percent_decode(&m.href), etag);
    }
    assert_eq!(
        etags.keys().cloned().collect::<BTreeSet<_>>(),
        seeded,
        "7: every card once"
    );

    // 8. One multiget for everything that is new to the phone.
    let hrefs: Vec<String> = etags.keys().cloned().collect();
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        &apple_multiget(&hrefs),
    )
    .await;
    let ms = r.ms("8");
    assert_eq!(ms.responses.len(), hrefs.len());
    for (href, etag) in &etags {
        let m = ms.get(href);
        assert_eq!(&m.ok(DAV, "getetag").text, etag, "8: same ETag as the sync");
        let card = &m.ok(CARD, "address-data").text;
        assert!(
            card.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"),
            "8: {card}"
        );
        assert!(card_value(card, "FN").unwrap().starts_with("Replay Person"));
    }

    // 9. A contact added on the phone: PUT with If-None-Match: * (RFC 6352 §6.3.2).
    let uid = "8D6F4E2A-3B1C-4C7D-9E0F-1A2B3C4D5E6F";
    let href = book.card(&format!("{uid}.vcf"));
    let card = apple_card(uid, "Met at the fair");
    let r = send(
        &book,
        true,
        "PUT",
        &href,
        &[ua, ("content-type", "text/vcard"), ("if-none-match", "*")],
        &card,
    )
    .await;
    assert_eq!(r.status, 201, "9: {}", r.body);
    let etag1 = r.header("etag").expect("9: ETag on 201").to_owned();
    assert_strong_etag("9", &etag1);
    let (get_etag, body) = book.get_card(&href).await;
    assert_eq!(get_etag, etag1, "9: the PUT's ETag is the stored card's");
    assert_eq!(body, card, "9: the card reads back byte for byte");
    let c = customer_by_card_name(&s, "ios", uid).await;
    assert_eq!(c["name"], "Björn Lindqvist");
    assert_eq!(c["email"], "bjorn@lindqvist.example");

    // 10. Edited on the phone: PUT with If-Match.
    let edited = apple_card(uid, "Met at the fair\\; call after 5");
    let r = send(
        &book,
        true,
        "PUT",
        &href,
        &[ua, ("content-type", "text/vcard"), ("if-match", &etag1)],
        &edited,
    )
    .await;
    assert!(matches!(r.status, 200 | 204), "10: {} {}", r.status, r.body);
    let etag2 = r.header("etag").expect("10: ETag on update").to_owned();
    assert_ne!(etag2, etag1);

    // 11. A second device still holding the first ETag: 412, nothing changes.
    let r = send(
        &book,
        true,
        "PUT",
        &href,
        &[ua, ("content-type", "text/vcard"), ("if-match", &etag1)],
        &apple_card(uid, "lost update"),
    )
    .await;
    assert_eq!(r.status, 412, "11: {}", r.body);
    assert_eq!(book.get_card(&href).await, (etag2.clone(), edited.clone()));

    // 12. The next sync from the first token reports just that card, with its last ETag.
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        &apple_sync(&token1),
    )
    .await;
    let ms = r.ms("12");
    let members = ms.members();
    assert_eq!(members.len(), 1, "12: {}", ms.body);
    assert_eq!(percent_decode(&members[0].href), href);
    assert_eq!(members[0].ok(DAV, "getetag").text, etag2);
    let token2 = ms.sync_token.clone().unwrap();
    assert_ne!(token2, token1);

    // 13. Deleted on the phone: DELETE with If-Match; the next sync reports a 404 member.
    let r = send(
        &book,
        true,
        "DELETE",
        &href,
        &[ua, ("if-match", &etag2)],
        "",
    )
    .await;
    assert!(matches!(r.status, 200 | 204), "13: {}", r.status);
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &[ua, ("depth", "0"), ("content-type", "text/xml")],
        &apple_sync(&token2),
    )
    .await;
    let ms = r.ms("13");
    assert_eq!(ms.responses.len(), 1, "13: {}", ms.body);
    assert_eq!(percent_decode(&ms.responses[0].href), href);
    assert_eq!(ms.responses[0].status, Some(404), "13: RFC 6578 §3.5.2");
    assert!(ms.responses[0].propstats.is_empty());
    s.stop().await;
}

// ------------------------------------------------------------------------------------------
// Apple Contacts on macOS: account from the full URL, ctag polling and a Depth-1 ETag listing.

const MAC_BOOK_LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<A:propfind xmlns:A="DAV:">
  <A:prop>
    <A:getcontenttype/>
    <A:getetag/>
  </A:prop>
</A:propfind>
"#;

#[tokio::test]
async fn macos_contacts_polls_the_ctag_and_lists_etags() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "mac").await;
    let seeded = seed(&s, &book, 5).await;
    let ua = ("user-agent", UA_MAC);
    let pf = |depth: &'static str| [ua, ("depth", depth), ("content-type", "text/xml")];

    // 1. The account was set up with the full installation URL: macOS asks the principal
    //    properties of that URL directly; the context path answers with the principal.
    let r = send(&book, true, "PROPFIND", &book.base, &pf("0"), APPLE_CUP).await;
    let principal = r.ms("1").only().ok(DAV, "current-user-principal").hrefs[0].clone();
    let r = send(
        &book,
        true,
        "PROPFIND",
        &principal,
        &pf("0"),
        APPLE_PRINCIPAL,
    )
    .await;
    let home = r.ms("1").only().ok(CARD, "addressbook-home-set").hrefs[0].clone();
    assert_eq!(home, book.home());

    // 2. ctag, then a Depth-1 listing of ETags (the pre-sync-collection way macOS syncs).
    let r = send(&book, true, "PROPFIND", &book.book(), &pf("0"), APPLE_CTAG).await;
    let ctag1 = r.ms("2").only().ok(CS, "getctag").text.clone();
    let r = send(
        &book,
        true,
        "PROPFIND",
        &book.book(),
        &pf("1"),
        MAC_BOOK_LISTING,
    )
    .await;
    let ms = r.ms("2");
    let listed: BTreeMap<String, String> = ms
        .responses
        .iter()
        .filter(|m| percent_decode(&m.href) != book.book())
        .map(|m| {
            assert_accounted_for("2", m, &asked(MAC_BOOK_LISTING), false);
            (percent_decode(&m.href), m.ok(DAV, "getetag").text.clone())
        })
        .collect();
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), seeded);
    // The book itself has no ETag: 404 in its own propstat, not an empty 200 (RFC 4918 §9.1).
    assert_eq!(ms.get(&book.book()).prop_status(DAV, "getetag"), Some(404));

    // 3. Polling with nothing changed: same ctag (macOS then skips the listing).
    let r = send(&book, true, "PROPFIND", &book.book(), &pf("0"), APPLE_CTAG).await;
    assert_eq!(r.ms("3").only().ok(CS, "getctag").text, ctag1);

    // 4. A change in the back office: new ctag; the listing shows exactly one new ETag.
    let first = listed.keys().next().unwrap().clone();
    let id = first
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".vcf")
        .to_owned();
    let (st, _) = patch_customer(&s, "mac", &id, json!({"note": "Changed in the office"})).await;
    assert_eq!(st, 200);
    let r = send(&book, true, "PROPFIND", &book.book(), &pf("0"), APPLE_CTAG).await;
    assert_ne!(r.ms("4").only().ok(CS, "getctag").text, ctag1);
    let r = send(
        &book,
        true,
        "PROPFIND",
        &book.book(),
        &pf("1"),
        MAC_BOOK_LISTING,
    )
    .await;
    let ms = r.ms("4");
    let changed: Vec<String> = listed
        .iter()
        .filter(|(h, e)| &ms.get(h).ok(DAV, "getetag").text != *e)
        .map(|(h, _)| h.clone())
        .collect();
    assert_eq!(changed, vec![first.clone()]);
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &pf("0"),
        &apple_multiget(std::slice::from_ref(&first)),
    )
    .await;
    let ms = r.ms("4");
    let card = &ms.only().ok(CARD, "address-data").text;
    assert_eq!(
        card_value(card, "NOTE").as_deref(),
        Some("Changed in the office")
    );
    s.stop().await;
}

// ------------------------------------------------------------------------------------------
// DAVx5: service detection from the host root, limited sync-collection, multiget batches of 10.

/// DAVx5 probes the URL it was given for all it might be (dav4jvm: default `DAV:` namespace).
const DAVX5_PROBE: &str = r#"<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><resourcetype /><displayname /><current-user-principal /><current-user-privilege-set /><CARD:addressbook-home-set /><CARD:addressbook-description /></prop></propfind>"#;

const DAVX5_PRINCIPAL: &str = r#"<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><CARD:addressbook-home-set /><group-membership /><displayname /></prop></propfind>"#;

const DAVX5_HOME: &str = r#"<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav"><prop><resourcetype /><displayname /><owner /><current-user-privilege-set /><CARD:addressbook-description /><CARD:supported-address-data /><sync-token /></prop></propfind>"#;

const DAVX5_BOOK: &str = r#"<?xml version='1.0' encoding='UTF-8' ?><propfind xmlns="DAV:" xmlns:CARD="urn:ietf:params:xml:ns:carddav" xmlns:CS="http://calendarserver.org/ns/"><prop><CS:getctag /><sync-token /><supported-report-set /><CARD:supported-address-data /><CARD:max-resource-size /></prop></propfind>"#;

fn davx5_sync(token: &str, nresults: u32) -> String {
    let token = if token.is_empty() {
        "<sync-token />".to_owned()
    } else {
        format!("<sync-token>{token}</sync-token>")
    };
    format!(
        "<?xml version='1.0' encoding='UTF-8' ?><sync-collection xmlns=\"DAV:\">{token}\
<sync-level>1</sync-level><limit><nresults>{nresults}</nresults></limit>\
<prop><getetag /></prop></sync-collection>"
    )
}

fn davx5_multiget(hrefs: &[String]) -> String {
    let mut out = String::from(
        "<?xml version='1.0' encoding='UTF-8' ?><CARD:addressbook-multiget xmlns=\"DAV:\" \
xmlns:CARD=\"urn:ietf:params:xml:ns:carddav\"><prop><getetag /><CARD:address-data \
content-type=\"text/vcard\" version=\"4.0\" /></prop>",
    );
    for h in hrefs {
        out.push_str(&format!("<href>{}</href>", xml_escape(h)));
    }
    out.push_str("</CARD:addressbook-multiget>");
    out
}

fn davx5_card(uid: &str, tel: &str) -> String {
    [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:DAVx5/4.4.1-ose ez-vcard/0.12.1",
        &format!("UID:{uid}"),
        "FN:Nadia Benali",
        "N:Benali;Nadia;;;",
        &format!("TEL;TYPE=cell:{tel}"),
        "EMAIL;TYPE=home:nadia.benali@example.org",
        "REV:20240601T093000Z",
        "END:VCARD",
    ]
    .join("\r\n")
        + "\r\n"
}

/// The sync loop DAVx5 runs: `sync-collection` with `DAV:limit`, continuing with the new token
/// while the answer ends in a 507 `number-of-matches-within-limits` (RFC 6578 §3.6). Returns
/// (href → ETag or None for removed, final token, rounds).
async fn davx5_sync_all(
    book: &Book,
    from: &str,
    nresults: u32,
) -> (BTreeMap<String, Option<String>>, String, usize) {
    let mut token = from.to_owned();
    let mut seen = BTreeMap::new();
    for round in 1..=20 {
        let r = send(
            book,
            true,
            "REPORT",
            &book.book(),
            &[
                ("user-agent", UA_DAVX5),
                ("depth", "0"),
                ("content-type", "application/xml; charset=utf-8"),
            ],
            &davx5_sync(&token, nresults),
        )
        .await;
        let ms = r.ms("sync");
        let members = ms.members();
        assert!(
            members.len() <= nresults as usize,
            "sync round {round}: {} members over the limit {nresults}",
            members.len()
        );
        for m in members {
            let href = percent_decode(&m.href);
            let etag = if m.status == Some(404) {
                None
            } else {
                Some(m.ok(DAV, "getetag").text.clone())
            };
            assert!(
                seen.insert(href.clone(), etag).is_none(),
                "sync round {round}: {href} reported twice"
            );
        }
        token = ms.sync_token.clone().expect("a sync-token on every page");
        match ms.truncation() {
            Some(t) => {
                assert_eq!(
                    percent_decode(&t.href),
                    book.book(),
                    "the 507 names the book"
                );
                assert_eq!(t.error, vec![qn(DAV, "number-of-matches-within-limits")]);
            }
            None => return (seen, token, round),
        }
    }
    panic!("sync-collection did not complete in 20 rounds");
}

#[tokio::test]
async fn davx5_detects_the_service_and_syncs_in_limited_pages() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "droid").await;
    let seeded = seed(&s, &book, 25).await;
    let ua = ("user-agent", UA_DAVX5);
    let pf = |depth: &'static str| {
        [
            ua,
            ("depth", depth),
            ("content-type", "application/xml; charset=utf-8"),
        ]
    };

    // 1. The user entered the host root: DAVx5 probes it, finds no principal there and falls
    //    back to /.well-known/carddav (RFC 6764 §6), whose redirect it follows.
    let r = send(&book, true, "PROPFIND", "/", &pf("0"), DAVX5_PROBE).await;
    if r.status == 207 {
        let ms = Multistatus::parse(&r.body);
        assert!(
            ms.responses
                .iter()
                .all(|x| x.prop(DAV, "current-user-principal").is_none()),
            "1: the host root names no principal"
        );
    } else {
        assert!((400..500).contains(&r.status), "1: {} {}", r.status, r.body);
    }
    let r = send(
        &book,
        true,
        "PROPFIND",
        "/.well-known/carddav",
        &pf("0"),
        DAVX5_PROBE,
    )
    .await;
    assert!(matches!(r.status, 301 | 302 | 307 | 308), "1: {}", r.status);
    let location = r.header("location").unwrap().to_owned();
    let target = location
        .strip_prefix(&book.url)
        .unwrap_or(&location)
        .to_owned();
    assert_eq!(target, book.base);
    let r = send(&book, true, "PROPFIND", &target, &pf("0"), DAVX5_PROBE).await;
    let ms = r.ms("1");
    assert_accounted_for("1", ms.only(), &asked(DAVX5_PROBE), false);
    let principal = ms.only().ok(DAV, "current-user-principal").hrefs[0].clone();

    // 2. The principal's home set.
    let r = send(
        &book,
        true,
        "PROPFIND",
        &principal,
        &pf("0"),
        DAVX5_PRINCIPAL,
    )
    .await;
    let ms = r.ms("2");
    assert_accounted_for("2", ms.only(), &asked(DAVX5_PRINCIPAL), false);
    let home = ms.only().ok(CARD, "addressbook-home-set").hrefs[0].clone();

    // 3. The home listing with the older `return-minimal` spelling and `Brief: t`.
    let mut headers = pf("1").to_vec();
    headers.push(("prefer", "return-minimal"));
    headers.push(("brief", "t"));
    let r = send(&book, true, "PROPFIND", &home, &headers, DAVX5_HOME).await;
    assert_eq!(r.header("preference-applied"), Some("return=minimal"));
    let ms = r.ms("3");
    for resp in &ms.responses {
        assert_accounted_for("3", resp, &asked(DAVX5_HOME), true);
    }
    let b = ms.get(&book.book());
    assert!(b.ok(DAV, "resourcetype").has(CARD, "addressbook"));
    assert_eq!(b.ok(DAV, "owner").hrefs, vec![principal.clone()]);
    // DAVx5 asks for vCard 4 when the book lists it (RFC 6352 §6.2.2).
    let versions: Vec<&str> = b
        .ok(CARD, "supported-address-data")
        .attributes
        .iter()
        .filter(|(el, attr, _)| el == &qn(CARD, "address-data-type") && attr == "version")
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert!(
        versions.contains(&"4.0") && versions.contains(&"3.0"),
        "{versions:?}"
    );

    // 4. Before a sync: ctag, token and capabilities of the book.
    let r = send(&book, true, "PROPFIND", &book.book(), &pf("0"), DAVX5_BOOK).await;
    let ms = r.ms("4");
    let bk = ms.only();
    assert_accounted_for("4", bk, &asked(DAVX5_BOOK), false);
    assert!(bk
        .ok(DAV, "supported-report-set")
        .has(DAV, "sync-collection"));
    let max_size: u64 = bk
        .ok(CARD, "max-resource-size")
        .text
        .trim()
        .parse()
        .unwrap();
    assert!(max_size >= 10_000, "4: max-resource-size {max_size}");
    let ctag1 = bk.ok(CS, "getctag").text.clone();

    // 5. Initial sync in pages of 10: 25 cards -> 10 + 10 + 5, two 507s, then complete.
    let (listed, token1, rounds) = davx5_sync_all(&book, "", 10).await;
    assert_eq!(rounds, 3, "5: pages of 10 for 25 cards");
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), seeded);

    // 6. Multiget in batches of 10, as vCard 4.
    let hrefs: Vec<String> = listed.keys().cloned().collect();
    let mut fetched = 0;
    for batch in hrefs.chunks(10) {
        let r = send(
            &book,
            true,
            "REPORT",
            &book.book(),
            &pf("0"),
            &davx5_multiget(batch),
        )
        .await;
        let ms = r.ms("6");
        assert_eq!(ms.responses.len(), batch.len());
        for h in batch {
            let m = ms.get(h);
            assert_eq!(Some(&m.ok(DAV, "getetag").text), listed[h].as_ref());
            let card = &m.ok(CARD, "address-data").text;
            assert_eq!(card_value(card, "VERSION").as_deref(), Some("4.0"), "6");
            fetched += 1;
        }
    }
    assert_eq!(fetched, 25);

    // 7. Nothing changed: same ctag, and an empty limited sync with no 507.
    let r = send(&book, true, "PROPFIND", &book.book(), &pf("0"), DAVX5_BOOK).await;
    assert_eq!(r.ms("7").only().ok(CS, "getctag").text, ctag1);
    let (none, token1b, rounds) = davx5_sync_all(&book, &token1, 10).await;
    assert!(none.is_empty() && rounds == 1, "7: {none:?}");

    // 8. 12 changes in the back office: the limited incremental sync pages through them.
    let changed: Vec<String> = hrefs[..12].to_vec();
    for h in &changed {
        let id = h.rsplit('/').next().unwrap().trim_end_matches(".vcf");
        let (st, _) = patch_customer(&s, "droid", id, json!({"note": "Back office edit"})).await;
        assert_eq!(st, 200);
    }
    let (delta, token2, rounds) = davx5_sync_all(&book, &token1b, 10).await;
    assert_eq!(rounds, 2, "8: 12 changes in pages of 10");
    assert_eq!(
        delta.keys().cloned().collect::<Vec<_>>(),
        changed,
        "8: exactly the changed cards"
    );
    for (h, e) in &delta {
        assert_ne!(e, &listed[h], "8: {h} has a new ETag");
    }

    // 9. Created on the phone, then edited, then deleted (If-None-Match / If-Match).
    let uid = "5b0e8d4c-2f3a-4e1b-9c7d-6a5f4e3d2c1b";
    let href = book.card(&format!("{uid}.vcf"));
    let vcard = ("content-type", "text/vcard; charset=utf-8");
    let r = send(
        &book,
        true,
        "PUT",
        &href,
        &[ua, vcard, ("if-none-match", "*")],
        &davx5_card(uid, "+213 555 01 02 03"),
    )
    .await;
    assert_eq!(r.status, 201, "9: {}", r.body);
    let etag1 = r.header("etag").expect("9: ETag").to_owned();
    let r = send(
        &book,
        true,
        "PUT",
        &href,
        &[ua, vcard, ("if-match", &etag1)],
        &davx5_card(uid, "+213 555 09 08 07"),
    )
    .await;
    assert!(matches!(r.status, 200 | 204), "9: {}", r.status);
    let etag2 = r.header("etag").expect("9: ETag on update").to_owned();
    let c = customer_by_card_name(&s, "droid", uid).await;
    assert_eq!(c["phone"], "+213 555 09 08 07");
    let (delta, token3, _) = davx5_sync_all(&book, &token2, 10).await;
    assert_eq!(delta, BTreeMap::from([(href.clone(), Some(etag2.clone()))]));

    let r = send(
        &book,
        true,
        "DELETE",
        &href,
        &[ua, ("if-match", &etag1)],
        "",
    )
    .await;
    assert_eq!(r.status, 412, "9: a stale If-Match deletes nothing");
    let r = send(
        &book,
        true,
        "DELETE",
        &href,
        &[ua, ("if-match", &etag2)],
        "",
    )
    .await;
    assert!(matches!(r.status, 200 | 204), "9: {}", r.status);
    let (delta, _, _) = davx5_sync_all(&book, &token3, 10).await;
    assert_eq!(
        delta,
        BTreeMap::from([(href.clone(), None)]),
        "9: a tombstone"
    );

    // 10. A token the server never issued: 403 valid-sync-token, DAVx5 then syncs afresh.
    let r = send(
        &book,
        true,
        "REPORT",
        &book.book(),
        &pf("0"),
        &davx5_sync("http://example.com/ns/sync/1234", 10),
    )
    .await;
    assert_eq!(r.status, 403, "10: {}", r.body);
    assert_eq!(
        error_condition(&r.body),
        qn(DAV, "valid-sync-token"),
        "10: RFC 6578 §3.2"
    );
    s.stop().await;
}
