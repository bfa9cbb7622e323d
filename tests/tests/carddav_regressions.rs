//! Regressions found by the interop suite, each reproduced over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::{base_path, TestServer};
use serde_json::json;

const CTAG_AND_TOKEN: &str = r#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/"><d:prop><cs:getctag/><d:sync-token/></d:prop></d:propfind>"#;

fn prop_of(xml: &str, href_suffix: &str, ns: &str, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    for resp in doc
        .descendants()
        .filter(|n| n.has_tag_name(("DAV:", "response")))
    {
        let href = resp
            .descendants()
            .find(|n| n.has_tag_name(("DAV:", "href")))?
            .text()?;
        if href.ends_with(href_suffix) {
            return resp
                .descendants()
                .find(|n| n.has_tag_name((ns, local)))
                .and_then(|n| n.text())
                .map(str::to_owned);
        }
    }
    None
}

/// tsdav lists the home at Depth 1 and reads the book's getctag there: it must be the same
/// value as on the book itself (it was "0" for the home listing).
#[tokio::test]
async fn the_books_ctag_is_the_same_however_it_is_listed() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let base = base_path(&inst);
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let r = s
        .admin("POST", "/orgs/acme/customers")
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let home = s
        .req("PROPFIND", &format!("{base}addressbook/"))
        .basic_auth("acme", Some(&pw))
        .header("Depth", "1")
        .body(CTAG_AND_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 207);
    let home = home.text().await.unwrap();
    let book = s
        .req("PROPFIND", &format!("{base}addressbook/customers/"))
        .basic_auth("acme", Some(&pw))
        .header("Depth", "0")
        .body(CTAG_AND_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cs = "http://calendarserver.org/ns/";
    let from_home = prop_of(&home, "/addressbook/customers/", cs, "getctag").unwrap();
    let from_book = prop_of(&book, "/addressbook/customers/", cs, "getctag").unwrap();
    assert_eq!(from_home, from_book);
    assert_ne!(from_book, "\"0\"", "one customer exists");
    assert_eq!(
        prop_of(&home, "/addressbook/customers/", "DAV:", "sync-token"),
        prop_of(&book, "/addressbook/customers/", "DAV:", "sync-token")
    );
    s.stop().await;
}

/// RFC 4918 §9.3.1: MKCOL on an existing resource is 405, on an unmapped URL where no
/// collection may be created 403; malformed XML (an undeclared prefix) is 400 (§8.2).
#[tokio::test]
async fn mkcol_statuses_and_prefix_undeclaring() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let base = base_path(&inst);
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let mkcol = |p: String| s.req("MKCOL", &p).basic_auth("acme", Some(&pw)).send();
    assert_eq!(
        mkcol(format!("{base}addressbook/customers/"))
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(
        mkcol(format!("{base}addressbook/customers/litmus/"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        mkcol(format!("{base}elsewhere/")).await.unwrap().status(),
        403
    );
    let put = s
        .req("PUT", &format!("{base}addressbook/customers/notes.txt"))
        .basic_auth("acme", Some(&pw))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    let bad = s
        .req("PROPFIND", &base)
        .basic_auth("acme", Some(&pw))
        .header("Depth", "0")
        .body(r#"<propfind xmlns="DAV:"><prop><bar:foo xmlns:bar=""/></prop></propfind>"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    s.stop().await;
}

/// Listings of the whole book are streamed page by page (chunked, no Content-Length) and
/// complete: PROPFIND Depth 1, addressbook-query and the initial sync-collection.
#[tokio::test]
async fn whole_book_listings_stream_and_are_complete() {
    let s = TestServer::start().await;
    s.org("big").await;
    let inst = s.install("big", "carddav").await;
    let base = base_path(&inst);
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let n = 1_234;
    let lines: String = (0..n)
        .map(|i| format!("{{\"id\":\"c{i:05}\",\"name\":\"Customer {i}\"}}\n"))
        .collect();
    let r = s
        .admin("POST", "/orgs/big/customers/import")
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let book = format!("{base}addressbook/customers/");
    let count = |xml: &str| {
        let doc = roxmltree::Document::parse(xml).unwrap();
        doc.descendants()
            .filter(|n| {
                n.has_tag_name(("DAV:", "href")) && n.text().is_some_and(|t| t.ends_with(".vcf"))
            })
            .count()
    };
    let bodies = [
        (
            "PROPFIND",
            "1",
            r#"<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>"#,
        ),
        (
            "REPORT",
            "1",
            r#"<c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/></d:prop><c:filter><c:prop-filter name="FN"><c:text-match>customer</c:text-match></c:prop-filter></c:filter></c:addressbook-query>"#,
        ),
        (
            "REPORT",
            "0",
            r#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/><d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"#,
        ),
    ];
    for (method, depth, body) in bodies {
        let r = s
            .req(method, &book)
            .basic_auth("big", Some(&pw))
            .header("Depth", depth)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 207, "{method}");
        assert!(
            r.content_length().is_none(),
            "{method}: streamed, not buffered"
        );
        let text = r.text().await.unwrap();
        assert_eq!(count(&text), n, "{method}: every card listed");
    }
    s.stop().await;
}

/// RFC 9110 §9.3.2 / §8.6: HEAD carries the Content-Length a GET would have, and no body.
#[tokio::test]
async fn head_reports_the_get_length() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let base = base_path(&inst);
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let c: serde_json::Value = s
        .admin("POST", "/orgs/acme/customers")
        .json(&json!({"name": "Ann Example", "note": "some text"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!(
        "{base}addressbook/customers/{}.vcf",
        c["id"].as_str().unwrap()
    );
    let get = s
        .req("GET", &url)
        .basic_auth("acme", Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let etag = get.headers()["etag"].clone();
    let len = get.bytes().await.unwrap().len();
    assert!(len > 50);
    let head = s
        .req("HEAD", &url)
        .basic_auth("acme", Some(&pw))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"].to_str().unwrap(),
        len.to_string()
    );
    assert_eq!(head.headers()["etag"], etag);
    assert!(head.bytes().await.unwrap().is_empty());
    s.stop().await;
}

/// RFC 4918 §4.3: a dead property keeps its attributes and its xml:lang, also when the
/// language was declared on DAV:prop.
#[tokio::test]
async fn dead_properties_keep_attributes_and_language() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let book = format!("{}addressbook/customers/", base_path(&inst));
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let patch = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop xml:lang="fr"><x:note xmlns:x="urn:x" kind="a">bonjour</x:note></D:prop></D:set></D:propertyupdate>"#;
    let r = s
        .req("PROPPATCH", &book)
        .basic_auth("acme", Some(&pw))
        .body(patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let find =
        r#"<D:propfind xmlns:D="DAV:"><D:prop><y:note xmlns:y="urn:x"/></D:prop></D:propfind>"#;
    let r = s
        .req("PROPFIND", &book)
        .basic_auth("acme", Some(&pw))
        .header("Depth", "0")
        .body(find)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    let xml = r.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let note = doc
        .descendants()
        .find(|n| n.has_tag_name(("urn:x", "note")))
        .expect("the property");
    assert_eq!(note.text(), Some("bonjour"));
    assert_eq!(note.attribute("kind"), Some("a"));
    assert_eq!(
        note.attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("fr")
    );
    s.stop().await;
}

/// RFC 8144 §2.1 / RFC 7240: with `Prefer: return=minimal` (or `Brief: t`) 404 propstats are
/// left out, and `Preference-Applied` says so; without it they are reported.
#[tokio::test]
async fn return_minimal_drops_not_found_propstats() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let book = format!("{}addressbook/customers/", base_path(&inst));
    let pw = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let body =
        r#"<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><d:nope/></d:prop></d:propfind>"#;
    let ask = |h: Option<(&'static str, &'static str)>| {
        let mut r = s
            .req("PROPFIND", &book)
            .basic_auth("acme", Some(&pw))
            .header("Depth", "0")
            .body(body);
        if let Some((k, v)) = h {
            r = r.header(k, v);
        }
        r.send()
    };
    let full = ask(None).await.unwrap();
    assert!(!full.headers().contains_key("preference-applied"));
    assert!(full.text().await.unwrap().contains("404 Not Found"));
    for h in [("Prefer", "return=minimal"), ("Brief", "t")] {
        let r = ask(Some(h)).await.unwrap();
        assert_eq!(r.status(), 207);
        assert_eq!(r.headers()["preference-applied"], "return=minimal");
        let text = r.text().await.unwrap();
        assert!(!text.contains("404 Not Found"), "{h:?}: {text}");
        assert!(text.contains("displayname"));
    }
    s.stop().await;
}
