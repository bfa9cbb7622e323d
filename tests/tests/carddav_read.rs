//! The CardDAV read path over a real socket (issue 3): discovery as Apple Contacts walks it, the
//! well-known redirect, PROPFIND, REPORTs, sync-collection, GET, authentication, isolation
//! between organizations and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

async fn setup() -> (TestServer, Book) {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    (s, book)
}

/// Creates customers through the admin API; their ids in order.
async fn seed(s: &TestServer, org: &str, customers: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for c in customers {
        let v = create_customer(s, org, c.clone()).await;
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    ids
}

fn assert_strong_etag(etag: &str) {
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "a strong, quoted ETag: {etag}"
    );
}

#[tokio::test]
async fn apple_contacts_discovery_walk_reaches_every_card() {
    let (s, book) = setup().await;
    let ids = seed(
        &s,
        "acme",
        &[
            json!({"name": "Zoë Ünal", "email": "zoe@example.com", "phone": "+1 555 0100"}),
            json!({"name": "O'Brien, Pat", "note": "line one\nline two; with, punctuation"}),
            json!({"name": "Bob Stone", "known_emails": ["bob@work.example"]}),
        ],
    )
    .await;

    // 1. The context path: who am I?
    let ms = book
        .props(
            &book.base,
            "0",
            &[
                (DAV, "current-user-principal"),
                (DAV, "principal-URL"),
                (DAV, "resourcetype"),
            ],
        )
        .await;
    let root = ms.only();
    assert_eq!(percent_decode(&root.href), book.base);
    let principal = root.ok(DAV, "current-user-principal").hrefs.clone();
    assert_eq!(principal, vec![book.principal()]);

    // 2. The principal: where are my address books?
    let ms = book
        .props(
            &principal[0],
            "0",
            &[
                (CARD, "addressbook-home-set"),
                (DAV, "displayname"),
                (DAV, "principal-URL"),
                (DAV, "resourcetype"),
            ],
        )
        .await;
    let p = ms.only();
    assert!(p.ok(DAV, "resourcetype").has(DAV, "principal"));
    assert_eq!(p.ok(DAV, "principal-URL").hrefs, vec![book.principal()]);
    assert_eq!(p.ok(DAV, "displayname").text, "ACME");
    let home = p.ok(CARD, "addressbook-home-set").hrefs.clone();
    assert_eq!(home, vec![book.home()]);

    // 3. The home, Depth 1: which collections are address books?
    let ms = book
        .props(
            &home[0],
            "1",
            &[
                (DAV, "resourcetype"),
                (DAV, "displayname"),
                (CS, "getctag"),
                (DAV, "sync-token"),
                (DAV, "current-user-privilege-set"),
            ],
        )
        .await;
    assert_eq!(ms.responses.len(), 2, "the home and its one book");
    let books: Vec<&DavResponse> = ms
        .responses
        .iter()
        .filter(|r| {
            r.prop(DAV, "resourcetype")
                .is_some_and(|t| t.has(CARD, "addressbook"))
        })
        .collect();
    assert_eq!(books.len(), 1);
    let book_href = books[0].href.clone();
    assert_eq!(percent_decode(&book_href), book.book());
    assert!(books[0].ok(DAV, "resourcetype").has(DAV, "collection"));
    let privileges = books[0].ok(DAV, "current-user-privilege-set");
    assert!(privileges.has(DAV, "read") && privileges.has(DAV, "write"));
    assert!(!ms
        .get(&home[0])
        .ok(DAV, "resourcetype")
        .has(CARD, "addressbook"));

    // 4. The book, Depth 1: what is in it?
    let ms = book
        .props(
            &book_href,
            "1",
            &[
                (DAV, "getetag"),
                (CS, "getctag"),
                (DAV, "sync-token"),
                (DAV, "supported-report-set"),
                (DAV, "resourcetype"),
                (DAV, "getcontenttype"),
            ],
        )
        .await;
    assert_eq!(ms.responses.len(), 1 + ids.len());
    let b = ms.get(&book_href);
    assert!(!b.ok(CS, "getctag").text.trim().is_empty());
    assert!(b.ok(DAV, "sync-token").text.trim().contains(':'));
    let reports = b.ok(DAV, "supported-report-set");
    for (ns, local) in [
        (CARD, "addressbook-multiget"),
        (CARD, "addressbook-query"),
        (DAV, "sync-collection"),
    ] {
        assert!(reports.has(ns, local), "supported report {local}");
    }
    assert_eq!(
        b.prop_status(DAV, "getetag"),
        Some(404),
        "a book has no ETag"
    );
    let mut members = Vec::new();
    for id in &ids {
        let href = book.card(&format!("{id}.vcf"));
        let m = ms.get(&href);
        let etag = m.ok(DAV, "getetag").text.clone();
        assert_strong_etag(&etag);
        assert!(m.ok(DAV, "getcontenttype").text.starts_with("text/vcard"));
        assert!(m.ok(DAV, "resourcetype").elements.is_empty());
        members.push((m.href.clone(), etag));
    }

    // 5. Multiget of every href, with the cards.
    let hrefs: Vec<String> = members.iter().map(|(h, _)| h.clone()).collect();
    let ms = book.report_ms(&book_href, &multiget_body(&hrefs, "")).await;
    assert_eq!(ms.responses.len(), hrefs.len());
    for ((href, etag), name) in members
        .iter()
        .zip(["Zoë Ünal", "O'Brien\\, Pat", "Bob Stone"])
    {
        let r = ms.get(href);
        assert_eq!(&r.ok(DAV, "getetag").text, etag);
        let card = r.ok(CARD, "address-data").text.clone();
        assert!(card.starts_with("BEGIN:VCARD\r\n"), "{card}");
        assert!(card.ends_with("END:VCARD\r\n"));
        assert_eq!(card_value(&card, "FN").as_deref(), Some(name));
        assert_eq!(card_value(&card, "VERSION").as_deref(), Some("3.0"));
        // 6. GET gives the same bytes with the same ETag.
        let (get_etag, body) = book.get_card(href).await;
        assert_eq!(&get_etag, etag);
        assert_eq!(body, card, "multiget and GET agree byte for byte");
    }
    s.stop().await;
}

#[tokio::test]
async fn well_known_asks_for_credentials_then_redirects_to_the_installation() {
    let (s, book) = setup().await;
    for method in ["GET", "PROPFIND"] {
        let r = book
            .anon(method, "/.well-known/carddav")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} without credentials");
        let challenge = header(&r, "www-authenticate").expect("a challenge");
        assert!(challenge.starts_with("Basic "), "{challenge}");

        let r = book
            .with_credentials(&book.username, "wrong-password")
            .req(method, "/.well-known/carddav")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} with a wrong password");

        let r = book
            .req(method, "/.well-known/carddav")
            .header("depth", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 301, "{method} with credentials");
        let location = header(&r, "location").expect("Location");
        let path = location
            .strip_prefix(&book.url)
            .unwrap_or(location.as_str());
        assert_eq!(path, book.base, "redirects to the installation base");
    }
    // Following the redirect works: the base answers PROPFIND for the principal.
    let ms = book
        .props(&book.base, "0", &[(DAV, "current-user-principal")])
        .await;
    assert_eq!(
        ms.only().ok(DAV, "current-user-principal").hrefs,
        vec![book.principal()]
    );
    s.stop().await;
}

#[tokio::test]
async fn unknown_properties_are_404_in_their_own_propstat() {
    let (s, book) = setup().await;
    let body = r#"<?xml version="1.0" encoding="utf-8"?>
<propfind xmlns="DAV:" xmlns:Q="urn:x-test:ns"><prop>
  <displayname/><Q:favourite-colour/><getetag/>
  <C:addressbook-description xmlns:C="urn:ietf:params:xml:ns:carddav"/>
  <C:max-resource-size xmlns:C="urn:ietf:params:xml:ns:carddav"/>
</prop></propfind>"#;
    let ms = book.propfind_ms(&book.book(), "0", body).await;
    let r = ms.only();
    assert_eq!(r.propstats.len(), 2, "one 200 and one 404 propstat: {r:?}");
    let mut ok = r.names(200);
    ok.sort();
    assert_eq!(
        ok,
        vec![qn(DAV, "displayname"), qn(CARD, "max-resource-size")]
    );
    let mut missing = r.names(404);
    missing.sort();
    assert_eq!(
        missing,
        vec![
            qn(DAV, "getetag"),
            qn(CARD, "addressbook-description"),
            qn("urn:x-test:ns", "favourite-colour"),
        ]
    );
    assert_eq!(r.ok(DAV, "displayname").text, "ACME customers");
    // 1 MiB of text + 3 MiB of photos (issue 10, see carddav_photos.rs).
    assert_eq!(r.ok(CARD, "max-resource-size").text.trim(), "4194304");
    // The 404 properties are empty elements: no value leaks.
    for p in &r.propstat(404).unwrap().props {
        assert!(p.text.is_empty() && p.elements.is_empty(), "{p:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn allprop_and_propname_list_what_exists() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let card = book.card(&format!("{}.vcf", ids[0]));
    let (etag, text) = book.get_card(&card).await;

    // allprop on a card, and an empty body meaning allprop.
    for body in [
        r#"<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>"#,
        "",
    ] {
        let ms = book.propfind_ms(&card, "0", body).await;
        let r = ms.only();
        assert!(r.propstat(404).is_none(), "allprop reports no 404: {r:?}");
        assert_eq!(r.ok(DAV, "getetag").text, etag);
        assert_eq!(
            r.ok(DAV, "getcontentlength").text.trim(),
            text.len().to_string()
        );
        assert!(r.ok(DAV, "getcontenttype").text.starts_with("text/vcard"));
        let lm = &r.ok(DAV, "getlastmodified").text;
        assert!(lm.ends_with(" GMT"), "RFC 1123 date: {lm}");
    }

    // allprop with include on the book.
    let ms = book
        .propfind_ms(
            &book.book(),
            "0",
            r#"<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:sync-token/><S:getctag xmlns:S="http://calendarserver.org/ns/"/></D:include></D:propfind>"#,
        )
        .await;
    let r = ms.only();
    assert!(r.ok(DAV, "resourcetype").has(CARD, "addressbook"));
    assert!(!r.ok(DAV, "sync-token").text.is_empty());
    assert!(!r.ok(CS, "getctag").text.is_empty());

    // propname: names only, no values.
    let ms = book
        .propfind_ms(
            &book.book(),
            "0",
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        )
        .await;
    let r = ms.only();
    let names = r.names(200);
    for (ns, local) in [
        (DAV, "resourcetype"),
        (DAV, "displayname"),
        (DAV, "sync-token"),
        (DAV, "supported-report-set"),
        (DAV, "current-user-principal"),
        (CS, "getctag"),
        (CARD, "supported-address-data"),
        (CARD, "max-resource-size"),
    ] {
        assert!(names.contains(&qn(ns, local)), "propname lists {local}");
    }
    assert!(
        !names.contains(&qn(CARD, "addressbook-description")),
        "an unset description is not listed"
    );
    for p in &r.propstat(200).unwrap().props {
        assert!(
            p.text.is_empty() && p.elements.is_empty(),
            "propname gives no values: {p:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn depth_infinity_is_refused_with_propfind_finite_depth() {
    let (s, book) = setup().await;
    for path in [book.base.clone(), book.home(), book.book()] {
        let r = book
            .propfind(&path, "infinity", &propfind_body(&[(DAV, "displayname")]))
            .await;
        expect_error(r, 403, DAV, "propfind-finite-depth").await;
    }
    s.stop().await;
}

#[tokio::test]
async fn missing_resources_are_plain_404s() {
    let (s, book) = setup().await;
    let body = propfind_body(&[(DAV, "getetag")]);
    for path in [
        book.card("no-such-card.vcf"),
        book.card("not-a-card.txt"),
        book.path("addressbook/other-book/"),
        book.path("nothing-here"),
    ] {
        let r = book.propfind(&path, "0", &body).await;
        assert_eq!(r.status(), 404, "PROPFIND {path}");
        let r = book.get(&path).await;
        assert_eq!(r.status(), 404, "GET {path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn options_advertises_dav_classes_and_real_methods() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let card = book.card(&format!("{}.vcf", ids[0]));
    for path in [
        book.base.clone(),
        book.principal(),
        book.home(),
        book.book(),
        card.clone(),
    ] {
        let r = book.req("OPTIONS", &path).send().await.unwrap();
        assert_eq!(r.status(), 200, "OPTIONS {path}");
        let dav = header(&r, "dav").expect("DAV header");
        let classes: Vec<&str> = dav.split(',').map(str::trim).collect();
        for c in ["1", "3", "addressbook"] {
            assert!(classes.contains(&c), "DAV {c} on {path}: {dav}");
        }
        assert!(!classes.contains(&"2"), "no locking class: {dav}");
        let allow = header(&r, "allow").expect("Allow");
        let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
        for m in ["OPTIONS", "PROPFIND"] {
            assert!(methods.contains(&m), "{m} allowed on {path}: {allow}");
        }
        for m in ["LOCK", "UNLOCK", "MKCOL"] {
            assert!(!methods.contains(&m), "{m} not allowed on {path}: {allow}");
        }
    }
    let allow_of = |r: reqwest::Response| header(&r, "allow").unwrap();
    let book_allow = allow_of(book.req("OPTIONS", &book.book()).send().await.unwrap());
    assert!(book_allow.contains("REPORT") && book_allow.contains("PROPPATCH"));
    let card_allow = allow_of(book.req("OPTIONS", &card).send().await.unwrap());
    for m in ["GET", "PUT", "DELETE"] {
        assert!(card_allow.contains(m), "{m} on a card: {card_allow}");
    }
    s.stop().await;
}

#[tokio::test]
async fn sync_collection_reports_admin_creates_updates_and_deletes() {
    let (s, book) = setup().await;
    let ids = seed(
        &s,
        "acme",
        &[
            json!({"name": "Ada"}),
            json!({"name": "Bea"}),
            json!({"name": "Cy"}),
        ],
    )
    .await;
    let href = |id: &str| book.card(&format!("{id}.vcf"));

    let initial = book.sync(None, None).await;
    assert_eq!(initial.responses.len(), 3);
    let mut etags = std::collections::HashMap::new();
    for id in &ids {
        let r = initial.get(&href(id));
        let e = r.ok(DAV, "getetag").text.clone();
        assert_strong_etag(&e);
        etags.insert(id.clone(), e);
    }
    let t1 = initial.sync_token.clone().expect("a sync-token");
    assert_eq!(
        t1,
        book.sync_token().await,
        "the report token is the book's"
    );
    let ctag_before = book.ctag().await;

    // Nothing changed: an empty answer.
    let same = book.sync(Some(&t1), None).await;
    assert!(same.responses.is_empty(), "{}", same.body);

    // Changes through the admin API.
    let (st, _) = patch_customer(&s, "acme", &ids[0], json!({"name": "Ada Lovelace"})).await;
    assert_eq!(st, 200);
    delete_customer(&s, "acme", &ids[1]).await;
    let new = seed(&s, "acme", &[json!({"name": "Dee"})]).await;

    let delta = book.sync(Some(&t1), None).await;
    assert_eq!(delta.responses.len(), 3, "{}", delta.body);
    let updated = delta.get(&href(&ids[0]));
    let new_etag = updated.ok(DAV, "getetag").text.clone();
    assert_ne!(new_etag, etags[&ids[0]], "an admin edit changes the ETag");
    let (get_etag, body) = book.get_card(&href(&ids[0])).await;
    assert_eq!(get_etag, new_etag);
    assert_eq!(card_value(&body, "FN").as_deref(), Some("Ada Lovelace"));
    let deleted = delta.get(&href(&ids[1]));
    assert_eq!(deleted.status, Some(404), "a tombstone");
    assert!(deleted.propstats.is_empty());
    let created = delta.get(&href(&new[0]));
    assert_eq!(created.status, None);
    assert_strong_etag(&created.ok(DAV, "getetag").text);
    assert!(
        delta.find(&href(&ids[2])).is_none(),
        "unchanged cards are left out"
    );
    let t2 = delta.sync_token.clone().unwrap();
    assert_ne!(t1, t2);
    assert_ne!(book.ctag().await, ctag_before, "the ctag moved on too");

    // And from the new token, nothing.
    let after = book.sync(Some(&t2), None).await;
    assert!(after.responses.is_empty(), "{}", after.body);
    assert_eq!(after.sync_token.as_deref(), Some(t2.as_str()));
    s.stop().await;
}

#[tokio::test]
async fn unknown_and_foreign_sync_tokens_are_refused() {
    let s = TestServer::start().await;
    let a = Book::install(&s, "alpha").await;
    let b = Book::install(&s, "beta").await;
    seed(&s, "beta", &[json!({"name": "Beta customer"})]).await;
    let foreign = b.sync_token().await;
    let own = a.sync_token().await;
    // Tokens hold `{customer seq}.{group seq}` (crate::sync_token): a position beyond either
    // log's end is refused.
    let (future, future_groups) = {
        let (prefix, pos) = own.rsplit_once(':').unwrap();
        let (seq, groups) = pos.split_once('.').unwrap();
        let (seq, groups) = (seq.parse::<u64>().unwrap(), groups.parse::<u64>().unwrap());
        (
            format!("{prefix}:{}.{groups}", seq + 1000),
            format!("{prefix}:{seq}.{}", groups + 1000),
        )
    };
    for token in [
        foreign.as_str(),
        "http://example.com/sync/1",
        "urn:x-portico:sync:",
        "not a token at all",
        future.as_str(),
        future_groups.as_str(),
    ] {
        let r = a.report(&a.book(), &sync_body(Some(token), None)).await;
        let body = expect_error(r, 403, DAV, "valid-sync-token").await;
        assert!(!body.contains("Beta customer"));
    }
    s.stop().await;
}

#[tokio::test]
async fn sync_collection_limit_continues_with_507_until_complete() {
    let (s, book) = setup().await;
    let customers: Vec<Value> = (0..7)
        .map(|i| json!({"name": format!("Person {i}")}))
        .collect();
    let ids = seed(&s, "acme", &customers).await;
    let all: std::collections::BTreeSet<String> = ids
        .iter()
        .map(|id| book.card(&format!("{id}.vcf")))
        .collect();

    // Initial sync in pages of 3.
    let mut seen = std::collections::BTreeSet::new();
    let mut token: Option<String> = None;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 10, "the listing terminates");
        let ms = book.sync(token.as_deref(), Some(3)).await;
        let members = ms.members();
        assert!(members.len() <= 3, "limit honoured: {}", ms.body);
        for m in &members {
            assert!(seen.insert(percent_decode(&m.href)), "no duplicates");
        }
        token = Some(ms.sync_token.clone().expect("a token on every page"));
        match ms.truncation() {
            Some(t) => {
                assert_eq!(percent_decode(&t.href), book.book());
                assert_eq!(t.error, vec![qn(DAV, "number-of-matches-within-limits")]);
            }
            None => break,
        }
    }
    assert_eq!(seen, all, "every card listed exactly once");
    assert!(rounds >= 3);

    // Incremental sync with a limit: 4 changes, pages of 3.
    for id in &ids[..4] {
        let (st, _) = patch_customer(&s, "acme", id, json!({"note": "changed"})).await;
        assert_eq!(st, 200);
    }
    let mut changed = std::collections::BTreeSet::new();
    for round in 0.. {
        assert!(round < 5);
        let ms = book.sync(token.as_deref(), Some(3)).await;
        assert!(ms.members().len() <= 3);
        changed.extend(ms.members().iter().map(|m| percent_decode(&m.href)));
        token = ms.sync_token.clone();
        if ms.truncation().is_none() {
            break;
        }
    }
    let expected: std::collections::BTreeSet<String> = ids[..4]
        .iter()
        .map(|id| book.card(&format!("{id}.vcf")))
        .collect();
    assert_eq!(changed, expected);
    s.stop().await;
}

#[tokio::test]
async fn vcard4_is_served_when_asked_for() {
    let (s, book) = setup().await;
    let ids = seed(
        &s,
        "acme",
        &[json!({"name": "Zoë Ünal", "email": "zoe@example.com", "birthday": "1990-04-15"})],
    )
    .await;
    let card = book.card(&format!("{}.vcf", ids[0]));

    let (v3_etag, v3) = book.get_card(&card).await;
    assert_eq!(card_value(&v3, "VERSION").as_deref(), Some("3.0"));

    let r = book
        .req("GET", &card)
        .header("accept", "text/vcard; version=4.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("text/vcard"));
    let v4_etag = header(&r, "etag").unwrap();
    let v4 = r.text().await.unwrap();
    assert_eq!(card_value(&v4, "VERSION").as_deref(), Some("4.0"));
    assert_eq!(card_value(&v4, "FN").as_deref(), Some("Zoë Ünal"));
    assert!(v4.contains("\r\n") && !v4.replace("\r\n", "").contains('\n'));
    assert_ne!(
        v3_etag, v4_etag,
        "another representation, another strong ETag"
    );

    let ms = book
        .report_ms(
            &book.book(),
            &multiget_body(
                std::slice::from_ref(&card),
                r#"content-type="text/vcard" version="4.0""#,
            ),
        )
        .await;
    let data = ms.get(&card).ok(CARD, "address-data").text.clone();
    assert_eq!(card_value(&data, "VERSION").as_deref(), Some("4.0"));
    assert_eq!(card_value(&data, "FN").as_deref(), Some("Zoë Ünal"));

    // An unsupported version is a precondition, not a silent 3.0.
    let r = book
        .report(
            &book.book(),
            &multiget_body(&[card], r#"content-type="text/vcard" version="2.1""#),
        )
        .await;
    expect_error(r, 403, CARD, "supported-address-data").await;
    s.stop().await;
}

#[tokio::test]
async fn get_has_a_strong_etag_and_if_none_match_gives_304() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let card = book.card(&format!("{}.vcf", ids[0]));
    let r = book.get(&card).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/vcard; charset=utf-8")
    );
    assert!(header(&r, "last-modified").unwrap().ends_with(" GMT"));
    let etag = header(&r, "etag").unwrap();
    assert_strong_etag(&etag);
    let body = r.text().await.unwrap();

    let r = book
        .req("GET", &card)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));
    assert!(r.bytes().await.unwrap().is_empty());

    let r = book
        .req("GET", &card)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), body);

    let r = book.req("HEAD", &card).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "etag").as_deref(), Some(etag.as_str()));

    let r = book
        .req("GET", &card)
        .header("if-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    s.stop().await;
}

#[tokio::test]
async fn rev_is_the_record_time_not_the_request_time() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let card = book.card(&format!("{}.vcf", ids[0]));
    let first = book.get(&card).await;
    let first_date = header(&first, "date").expect("Date");
    let first_etag = header(&first, "etag").unwrap();
    let first_body = first.text().await.unwrap();
    assert!(card_value(&first_body, "REV").is_some(), "REV is present");

    // A second GET at a later second (bounded polling on the Date header).
    let later = poll(Duration::from_secs(5), || async {
        let r = book.get(&card).await;
        let date = header(&r, "date").unwrap();
        let etag = header(&r, "etag").unwrap();
        let body = r.text().await.unwrap();
        (date != first_date).then_some((etag, body))
    })
    .await
    .expect("the clock moved on");
    assert_eq!(later.1, first_body, "identical bytes a second later");
    assert_eq!(later.0, first_etag);
    s.stop().await;
}

#[tokio::test]
async fn auth_failures_get_a_basic_challenge_and_no_data() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let other = Book::install(&s, "beta").await;
    seed(&s, "acme", &[json!({"name": "Secret Customer"})]).await;
    let body = propfind_body(&[(DAV, "displayname"), (DAV, "getetag")]);
    let tries: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        (
            "wrong password",
            Some(basic(&book.username, &format!("{}x", book.password))),
        ),
        ("empty password", Some(basic(&book.username, ""))),
        ("wrong username", Some(basic("beta", &book.password))),
        (
            "another org's credentials",
            Some(basic(&other.username, &other.password)),
        ),
        ("bearer scheme", Some(format!("Bearer {}", book.password))),
        ("garbage base64", Some("Basic !!!not-base64!!!".to_owned())),
        (
            "no colon",
            Some(format!(
                "Basic {}",
                base64_of(&format!("{}{}", book.username, book.password))
            )),
        ),
    ];
    for (what, auth) in tries {
        for (method, path) in [("PROPFIND", book.book()), ("GET", book.base.clone())] {
            let mut r = book
                .anon(method, &path)
                .header("depth", "1")
                .body(body.clone());
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 401, "{what}: {method}");
            let challenge = header(&r, "www-authenticate").expect("WWW-Authenticate");
            assert!(challenge.starts_with("Basic "), "{challenge}");
            assert!(challenge.contains("realm=\""), "{challenge}");
            assert!(challenge.contains("charset=\"UTF-8\""), "{challenge}");
            let text = r.text().await.unwrap();
            assert!(!text.contains("Secret Customer") && !text.contains("VCARD"));
        }
        // A success resets the host's brute-force counter, which would otherwise lock this
        // address out after ten failures.
        let r = book.propfind(&book.book(), "0", &body).await;
        assert_eq!(r.status(), 207, "right credentials after {what}");
    }
    // Username comparison is exact (no case folding of the slug).
    let r = book
        .with_credentials("ACME", &book.password)
        .propfind(&book.book(), "0", &body)
        .await;
    assert_eq!(r.status(), 401);
    // The right credentials work.
    let r = book.propfind(&book.book(), "0", &body).await;
    assert_eq!(r.status(), 207);
    s.stop().await;
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn another_orgs_credentials_never_reach_its_data() {
    let s = TestServer::start().await;
    let a = Book::install(&s, "alpha").await;
    let b = Book::install(&s, "beta").await;
    let b_ids = seed(
        &s,
        "beta",
        &[json!({"name": "Beta Private", "email": "private@beta.example"})],
    )
    .await;
    let b_card = b.card(&format!("{}.vcf", b_ids[0]));
    // A's credentials on B's URLs.
    let a_on_b = b.with_credentials(&a.username, &a.password);
    let body = propfind_body(&[(DAV, "getetag"), (DAV, "displayname")]);
    for path in [b.base.clone(), b.book(), b_card.clone()] {
        for method in ["PROPFIND", "GET"] {
            let r = a_on_b
                .req(method, &path)
                .header("depth", "1")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(status == 401 || status == 404, "{method} {path}: {status}");
            assert!(!text.contains("Beta Private") && !text.contains("private@beta"));
        }
    }
    // A's installation under B's organization path, and B's under A's.
    let swapped = format!("/api/apps/beta/{}/addressbook/customers/", a.installation);
    let r = a.propfind(&swapped, "1", &body).await;
    assert_eq!(r.status(), 404);
    let swapped = format!("/api/apps/alpha/{}/addressbook/customers/", b.installation);
    let r = a.propfind(&swapped, "1", &body).await;
    assert_eq!(r.status(), 404);

    // A multiget on A's book naming B's cards: 404 elements, never data.
    let hrefs = vec![
        b_card.clone(),
        format!("{}{}", b.url, b_card),
        a.card(&format!("{}.vcf", b_ids[0])),
        format!(
            "{}../../../../beta/{}/addressbook/customers/{}.vcf",
            a.book(),
            b.installation,
            b_ids[0]
        ),
    ];
    let ms = a.report_ms(&a.book(), &multiget_body(&hrefs, "")).await;
    // One response per distinct resource (spellings of one href are answered once).
    assert!(
        !ms.responses.is_empty() && ms.responses.len() <= hrefs.len(),
        "{}",
        ms.body
    );
    for r in &ms.responses {
        assert_eq!(r.status, Some(404), "{r:?}");
        assert!(r.propstats.is_empty());
    }
    assert!(!ms.body.contains("Beta Private") && !ms.body.contains("VCARD"));
    s.stop().await;
}

#[tokio::test]
async fn regenerating_the_password_rejects_the_old_one_at_once() {
    let (s, book) = setup().await;
    let body = propfind_body(&[(DAV, "displayname")]);
    assert_eq!(book.propfind(&book.book(), "0", &body).await.status(), 207);
    let r = s
        .admin(
            "POST",
            &format!(
                "/orgs/acme/installations/{}/actions/regenerate-password",
                book.installation
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let new_password = v["result"]["password"].as_str().expect("new password");
    assert_ne!(new_password, book.password);
    assert!(new_password.len() >= 16, "at least 96 bits");
    let old = book.propfind(&book.book(), "0", &body).await;
    assert_eq!(old.status(), 401, "the old password stops at once");
    let new = book.with_credentials(&book.username, new_password);
    assert_eq!(new.propfind(&new.book(), "0", &body).await.status(), 207);
    s.stop().await;
}

#[tokio::test]
async fn uninstalling_closes_the_url() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let card = book.card(&format!("{}.vcf", ids[0]));
    assert_eq!(book.get(&card).await.status(), 200);
    let r = s
        .admin(
            "DELETE",
            &format!("/orgs/acme/installations/{}", book.installation),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let body = propfind_body(&[(DAV, "displayname")]);
    for path in [book.base.clone(), book.book(), card.clone()] {
        assert_eq!(book.propfind(&path, "0", &body).await.status(), 404);
        assert_eq!(book.get(&path).await.status(), 404);
    }
    let r = book
        .req("PROPFIND", "/.well-known/carddav")
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 301, "no redirect to a removed installation");
    s.stop().await;
}

#[tokio::test]
async fn malformed_xml_is_400() {
    let (s, book) = setup().await;
    let displayname_before = book
        .props(&book.book(), "0", &[(DAV, "displayname")])
        .await
        .only()
        .ok(DAV, "displayname")
        .text
        .clone();
    for (method, body) in [
        (
            "PROPFIND",
            r#"<propfind xmlns="DAV:"><prop><getetag/></prop>"#,
        ),
        ("PROPFIND", "this is not xml"),
        (
            "PROPFIND",
            r#"<D:propfind xmlns:D="DAV:"><X:prop/></D:propfind>"#,
        ),
        (
            "REPORT",
            r#"<C:addressbook-multiget xmlns:C="urn:ietf:params:xml:ns:carddav">"#,
        ),
        ("REPORT", "{\"json\": true}"),
        (
            "PROPPATCH",
            r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:prop></D:set></D:propertyupdate>"#,
        ),
    ] {
        let r = book
            .req(method, &book.book())
            .header("depth", "0")
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method} {body}");
    }
    let after = book.props(&book.book(), "0", &[(DAV, "displayname")]).await;
    assert_eq!(after.only().ok(DAV, "displayname").text, displayname_before);
    s.stop().await;
}

#[tokio::test]
async fn doctype_and_entities_are_refused_and_never_expanded() {
    let (s, book) = setup().await;
    let marker = "EXPANDED-ENTITY-MARKER";
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let bodies = [
        (
            "PROPFIND",
            format!(
                r#"<?xml version="1.0"?><!DOCTYPE D:propfind [<!ENTITY x "{marker}">]><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/></D:prop></D:propfind>"#
            ),
        ),
        (
            "PROPPATCH",
            format!(
                r#"<?xml version="1.0"?><!DOCTYPE D:propertyupdate [<!ENTITY x "{marker}">]><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&x;</D:displayname></D:prop></D:set></D:propertyupdate>"#
            ),
        ),
        (
            "REPORT",
            r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/hostname">]><C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop><D:href>&xxe;</D:href></C:addressbook-multiget>"#
                .to_owned(),
        ),
        (
            "PROPFIND",
            format!(
                r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "{marker}"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&d;</D:displayname></D:prop></D:propfind>"#
            ),
        ),
        (
            "PROPPATCH",
            format!(
                r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&undefined;{marker}</D:displayname></D:prop></D:set></D:propertyupdate>"#
            ),
        ),
    ];
    for (method, body) in &bodies {
        let r = book
            .req(method, &book.book())
            .header("depth", "0")
            .header("content-type", "application/xml")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!((400..500).contains(&status), "{method}: {status} {text}");
        assert!(!text.contains(marker), "nothing expanded: {text}");
        if !hostname.trim().is_empty() {
            assert!(!text.contains(hostname.trim()), "no external entity read");
        }
    }
    // The PROPPATCHes changed nothing.
    let ms = book.props(&book.book(), "0", &[(DAV, "displayname")]).await;
    assert_eq!(ms.only().ok(DAV, "displayname").text, "ACME customers");
    s.stop().await;
}

#[tokio::test]
async fn unknown_reports_are_403_supported_report() {
    let (s, book) = setup().await;
    let ids = seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    for body in [
        r#"<D:expand-property xmlns:D="DAV:"><D:property name="owner"/></D:expand-property>"#,
        r#"<x:frobnicate xmlns:x="urn:x-test"/>"#,
        r#"<C:calendar-query xmlns:C="urn:ietf:params:xml:ns:caldav"/>"#,
    ] {
        let r = book.report(&book.book(), body).await;
        expect_error(r, 403, DAV, "supported-report").await;
    }
    // A CardDAV report on a resource that is not an address book.
    let multiget = multiget_body(&[book.card(&format!("{}.vcf", ids[0]))], "");
    for path in [book.principal(), book.home(), book.base.clone()] {
        let r = book.report(&path, &multiget).await;
        expect_error(r, 403, DAV, "supported-report").await;
    }
    s.stop().await;
}

#[tokio::test]
async fn huge_href_lists_are_refused() {
    let (s, book) = setup().await;
    for n in [100_001usize, 150_000] {
        let hrefs: Vec<String> = (0..n).map(|i| book.card(&format!("c{i}.vcf"))).collect();
        let r = book.report(&book.book(), &multiget_body(&hrefs, "")).await;
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{n} hrefs: {status}");
    }
    // A normal batch still works afterwards.
    let ms = book
        .report_ms(&book.book(), &multiget_body(&[book.card("x.vcf")], ""))
        .await;
    assert_eq!(ms.only().status, Some(404));
    s.stop().await;
}

async fn seed_query_people(s: &TestServer) {
    seed(
        s,
        "acme",
        &[
            json!({"name": "Zoë Ünal", "email": "zoe@example.com"}),
            json!({"name": "Bob Stone", "email": "bob@work.example"}),
            json!({"name": "Alice Example", "email": "alice@example.com"}),
        ],
    )
    .await;
}

fn query_body(filter: &str, limit: Option<u32>) -> String {
    let limit = limit
        .map(|n| format!("<C:limit><C:nresults>{n}</C:nresults></C:limit>"))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
<D:prop><D:getetag/><C:address-data/></D:prop>{filter}{limit}</C:addressbook-query>"#
    )
}

fn text_filter(prop: &str, attrs: &str, text: &str) -> String {
    format!(
        r#"<C:filter><C:prop-filter name="{prop}"><C:text-match {attrs}>{text}</C:text-match></C:prop-filter></C:filter>"#
    )
}

/// The FN values of the cards a query returned, sorted.
async fn query_names(book: &Book, body: &str) -> Vec<String> {
    let ms = book.report_ms(&book.book(), body).await;
    let mut names: Vec<String> = ms
        .members()
        .iter()
        .map(|r| card_value(&r.ok(CARD, "address-data").text, "FN").unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn addressbook_query_text_match_on_email_and_fn() {
    let (s, book) = setup().await;
    seed_query_people(&s).await;
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            text_filter("EMAIL", r#"match-type="contains""#, "EXAMPLE.COM"),
            vec!["Alice Example", "Zoë Ünal"],
        ),
        (
            text_filter("FN", r#"match-type="equals""#, "bob stone"),
            vec!["Bob Stone"],
        ),
        (
            text_filter("fn", r#"match-type="equals""#, "bob"),
            vec![],
        ),
        (
            text_filter(
                "FN",
                r#"collation="i;unicode-casemap" match-type="contains""#,
                "zOË üNAL",
            ),
            vec!["Zoë Ünal"],
        ),
        (
            text_filter(
                "FN",
                r#"collation="i;ascii-casemap" match-type="contains""#,
                "zOË üNAL",
            ),
            vec![],
        ),
        (
            text_filter(
                "FN",
                r#"collation="i;ascii-casemap" match-type="contains""#,
                "zoë ÜNAL",
            ),
            vec!["Zoë Ünal"],
        ),
        (
            text_filter("FN", r#"match-type="starts-with""#, "ALICE"),
            vec!["Alice Example"],
        ),
        (
            text_filter("FN", r#"match-type="ends-with""#, "stone"),
            vec!["Bob Stone"],
        ),
        (
            text_filter(
                "EMAIL",
                r#"match-type="contains" negate-condition="yes""#,
                "example.com",
            ),
            vec!["Bob Stone"],
        ),
        (
            r#"<C:filter test="anyof"><C:prop-filter name="FN"><C:text-match match-type="contains">bob</C:text-match></C:prop-filter><C:prop-filter name="EMAIL"><C:text-match match-type="starts-with">alice@</C:text-match></C:prop-filter></C:filter>"#.to_owned(),
            vec!["Alice Example", "Bob Stone"],
        ),
        (
            r#"<C:filter test="allof"><C:prop-filter name="FN"><C:text-match match-type="contains">l</C:text-match></C:prop-filter><C:prop-filter name="EMAIL"><C:text-match match-type="contains">zoe</C:text-match></C:prop-filter></C:filter>"#.to_owned(),
            vec!["Zoë Ünal"],
        ),
        (
            r#"<C:filter><C:prop-filter name="NOTE"><C:is-not-defined/></C:prop-filter></C:filter>"#.to_owned(),
            vec!["Alice Example", "Bob Stone", "Zoë Ünal"],
        ),
    ];
    for (filter, expected) in cases {
        let got = query_names(&book, &query_body(&filter, None)).await;
        assert_eq!(got, expected, "{filter}");
    }
    // An unknown collation is a precondition failure.
    let r = book
        .report(
            &book.book(),
            &query_body(&text_filter("FN", r#"collation="i;klingon""#, "x"), None),
        )
        .await;
    expect_error(r, 403, CARD, "supported-collation").await;
    s.stop().await;
}

#[tokio::test]
async fn addressbook_query_limit_is_507_when_truncated() {
    let (s, book) = setup().await;
    seed_query_people(&s).await;
    let ms = book
        .report_ms(&book.book(), &query_body("<C:filter/>", Some(2)))
        .await;
    assert_eq!(ms.members().len(), 2, "{}", ms.body);
    let t = ms.truncation().expect("a 507 response");
    assert_eq!(percent_decode(&t.href), book.book());
    assert_eq!(t.error, vec![qn(DAV, "number-of-matches-within-limits")]);
    // Exactly as many as matched: no 507.
    let ms = book
        .report_ms(
            &book.book(),
            &query_body(
                &text_filter("EMAIL", r#"match-type="contains""#, "example.com"),
                Some(2),
            ),
        )
        .await;
    assert_eq!(ms.members().len(), 2);
    assert!(ms.truncation().is_none(), "{}", ms.body);
    s.stop().await;
}

#[tokio::test]
async fn multiget_accepts_hrefs_in_any_encoding() {
    let (s, book) = setup().await;
    let card = vcard3("enc-1", "Encoded Name", &["EMAIL:enc@example.com"]);
    // A client-chosen name with a space and non-ASCII characters.
    let r = book
        .put(&book.card("Zo%C3%AB%20%C3%9Cnal%201.vcf"), &card, &[])
        .await;
    assert_eq!(r.status(), 201);
    let decoded = book.card("Zoë Ünal 1.vcf");
    let forms = vec![
        decoded.clone(),
        book.card("Zo%C3%AB%20%C3%9Cnal%201.vcf"),
        book.card("Zo%c3%ab%20%c3%9cnal%201%2Evcf"),
        format!("{}{}", book.url, book.card("Zo%C3%AB%20%C3%9Cnal%201.vcf")),
        format!("  {}\n", book.card("Zo%C3%AB%20%C3%9Cnal%201.vcf")),
    ];
    for form in &forms {
        let ms = book
            .report_ms(&book.book(), &multiget_body(std::slice::from_ref(form), ""))
            .await;
        let r = ms.only();
        assert_eq!(percent_decode(&r.href), decoded, "{r:?}");
        assert!(!r.href.contains(' '), "hrefs are sent encoded: {}", r.href);
        assert_eq!(r.ok(CARD, "address-data").text, card);
    }
    // All spellings in one multiget: the card is answered once (duplicate hrefs in one
    // multistatus abort some clients).
    let ms = book
        .report_ms(&book.book(), &multiget_body(&forms, ""))
        .await;
    assert_eq!(ms.responses.len(), 1, "{}", ms.body);
    // The href the server lists is one a client can GET.
    let listed = book.props(&book.book(), "1", &[(DAV, "getetag")]).await;
    let href = listed.get(&decoded).href.clone();
    assert_eq!(book.get_card(&href).await.1, card);
    s.stop().await;
}

#[tokio::test]
async fn address_data_selects_the_requested_properties() {
    let (s, book) = setup().await;
    let card = vcard3(
        "sel-1",
        "Selma",
        &[
            "EMAIL;TYPE=WORK:selma@example.com",
            "TEL;TYPE=CELL:+1 555 0101",
            "NOTE:private note",
        ],
    );
    book.create_card("sel.vcf", &card).await;
    let body = format!(
        r#"<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="{CARD}"><D:prop><C:address-data><C:prop name="FN"/><C:prop name="EMAIL"/></C:address-data></D:prop><D:href>{}</D:href></C:addressbook-multiget>"#,
        book.card("sel.vcf")
    );
    let ms = book.report_ms(&book.book(), &body).await;
    let data = ms.only().ok(CARD, "address-data").text.clone();
    assert_eq!(card_value(&data, "FN").as_deref(), Some("Selma"));
    assert_eq!(
        card_value(&data, "EMAIL").as_deref(),
        Some("selma@example.com")
    );
    assert!(card_value(&data, "TEL").is_none(), "{data}");
    assert!(card_value(&data, "NOTE").is_none(), "{data}");
    assert!(data.starts_with("BEGIN:VCARD\r\n") && data.ends_with("END:VCARD\r\n"));
    s.stop().await;
}

/// Splits raw card bytes into physical lines, asserting CRLF line ends.
fn physical_lines(bytes: &[u8]) -> Vec<&[u8]> {
    assert!(bytes.ends_with(b"\r\n"));
    let mut lines = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        if bytes[i] == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at byte {i}");
            lines.push(&bytes[start..i - 1]);
            start = i + 1;
        }
    }
    lines
}

#[tokio::test]
async fn rendered_cards_fold_at_75_octets_escape_and_use_crlf() {
    let (s, book) = setup().await;
    let note = format!(
        "Zoë's notes, part; one\\two\nsecond line {} {}",
        "é".repeat(40),
        "€".repeat(40)
    );
    let ids = seed(&s, "acme", &[json!({"name": "Fold Test", "note": note})]).await;
    let href = book.card(&format!("{}.vcf", ids[0]));
    let escaped = note
        .replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(';', "\\;")
        .replace('\n', "\\n");
    for accept in ["text/vcard; version=3.0", "text/vcard; version=4.0"] {
        let r = book
            .req("GET", &href)
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap();
        let lines = physical_lines(&bytes);
        let mut folded = 0;
        for l in &lines {
            assert!(l.len() <= 75, "{accept}: a line of {} octets", l.len());
            assert!(
                std::str::from_utf8(l).is_ok(),
                "{accept}: a fold splits a UTF-8 sequence"
            );
            if l.starts_with(b" ") {
                folded += 1;
            }
        }
        assert!(folded >= 3, "{accept}: the long NOTE is folded");
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert_eq!(card_value(&text, "NOTE"), Some(escaped.clone()), "{accept}");
    }
    s.stop().await;
}

#[tokio::test]
async fn sync_collection_without_sync_level_is_level_one() {
    let (s, book) = setup().await;
    seed(&s, "acme", &[json!({"name": "Ada"})]).await;
    let body =
        r#"<sync-collection xmlns="DAV:"><sync-token/><prop><getetag/></prop></sync-collection>"#;
    let ms = book.report_ms(&book.book(), body).await;
    assert_eq!(ms.responses.len(), 1);
    assert!(ms.sync_token.is_some());
    s.stop().await;
}

#[tokio::test]
async fn addressbook_query_param_filter_and_unsupported_filters() {
    let (s, book) = setup().await;
    book.create_card(
        "wendy.vcf",
        &vcard3(
            "wendy-1",
            "Wendy Work",
            &[
                "EMAIL;TYPE=WORK:wendy@corp.example",
                "EMAIL;TYPE=HOME:wendy@home.example",
            ],
        ),
    )
    .await;
    book.create_card(
        "hank.vcf",
        &vcard3(
            "hank-1",
            "Hank Home",
            &["EMAIL;type=home:hank@home.example"],
        ),
    )
    .await;
    let pf = |inner: &str, test: &str| {
        format!(
            r#"<C:filter><C:prop-filter name="EMAIL" test="{test}">{inner}</C:prop-filter></C:filter>"#
        )
    };
    let work = r#"<C:param-filter name="TYPE"><C:text-match match-type="equals">work</C:text-match></C:param-filter>"#;
    let home_text = r#"<C:text-match match-type="contains">home</C:text-match>"#;
    let cases = [
        (pf(work, "anyof"), vec!["Wendy Work"]),
        (
            pf(
                r#"<C:param-filter name="TYPE"><C:text-match match-type="equals">HOME</C:text-match></C:param-filter>"#,
                "anyof",
            ),
            vec!["Hank Home", "Wendy Work"],
        ),
        // One instance must satisfy both: Wendy's work address is not at home.
        (pf(&format!("{work}{home_text}"), "allof"), vec![]),
        (
            pf(&format!("{work}{home_text}"), "anyof"),
            vec!["Hank Home", "Wendy Work"],
        ),
        (
            pf(
                r#"<C:param-filter name="PREF"><C:is-not-defined/></C:param-filter>"#,
                "anyof",
            ),
            vec!["Hank Home", "Wendy Work"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            query_names(&book, &query_body(&filter, None)).await,
            expected,
            "{filter}"
        );
    }
    let r = book
        .report(
            &book.book(),
            &query_body(
                r#"<C:filter><C:comp-filter name="VCARD"/></C:filter>"#,
                None,
            ),
        )
        .await;
    expect_error(r, 403, CARD, "supported-filter").await;
    s.stop().await;
}

#[tokio::test]
async fn installation_status_counts_contacts_and_install_is_idempotent() {
    let (s, book) = setup().await;
    let pw = &book.password;
    assert!(pw.len() >= 16, "at least 96 bits");
    assert!(
        pw.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {pw}"
    );
    assert_eq!(book.username, "acme");
    seed(
        &s,
        "acme",
        &[json!({"name": "Ada"}), json!({"name": "Bea"})],
    )
    .await;
    book.sync(None, None).await;
    let v: Value = s
        .admin(
            "GET",
            &format!("/orgs/acme/installations/{}", book.installation),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"]["status"], "connected", "{v}");
    assert_eq!(v["status"]["details"]["contacts"], 2, "{v}");
    assert!(v["status"]["details"]["last_sync"].is_string(), "{v}");
    assert!(
        !v.to_string().contains(pw.as_str()),
        "no password in status"
    );
    // Installing again returns the same installation without revealing the password.
    let again = s
        .admin("POST", "/orgs/acme/installations")
        .json(&json!({"kind": "carddav"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["installation"]["id"], book.installation.as_str());
    assert!(!again.to_string().contains(pw.as_str()));
    let r = book
        .propfind(&book.book(), "0", &propfind_body(&[(DAV, "displayname")]))
        .await;
    assert_eq!(r.status(), 207, "the password still works");
    s.stop().await;
}

#[tokio::test]
async fn a_book_of_more_than_a_thousand_lists_and_syncs_completely() {
    let (s, book) = setup().await;
    // Exactly two store pages, then one more: the page boundaries of every listing.
    let lines: String = (0..1000)
        .map(|i| {
            json!({"id": format!("p{i:04}"), "name": format!("Person {i}")}).to_string() + "\n"
        })
        .collect();
    let report: Value = s
        .admin("POST", "/orgs/acme/customers/import")
        .body(lines)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["created"], 1000, "{report}");
    for expected in [1000usize, 1001] {
        if expected == 1001 {
            seed(&s, "acme", &[json!({"name": "One more"})]).await;
        }
        let ms = book.props(&book.book(), "1", &[(DAV, "getetag")]).await;
        assert_eq!(ms.responses.len(), expected + 1, "PROPFIND Depth 1");
        let unique: std::collections::HashSet<String> = ms.hrefs().into_iter().collect();
        assert_eq!(unique.len(), expected + 1, "no duplicates");
        let sync = book.sync(None, None).await;
        assert_eq!(sync.members().len(), expected, "sync-collection");
        assert!(sync.truncation().is_none());
        let q = book
            .report_ms(
                &book.book(),
                r#"<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop><C:filter><C:prop-filter name="FN"><C:text-match match-type="starts-with">person</C:text-match></C:prop-filter></C:filter></C:addressbook-query>"#,
            )
            .await;
        assert_eq!(q.members().len(), 1000, "addressbook-query");
    }
    let hrefs: Vec<String> = (0..1000)
        .step_by(7)
        .map(|i| book.card(&format!("p{i:04}.vcf")))
        .collect();
    let ms = book
        .report_ms(&book.book(), &multiget_body(&hrefs, ""))
        .await;
    assert_eq!(ms.responses.len(), hrefs.len());
    assert!(ms
        .responses
        .iter()
        .all(|r| r.prop(CARD, "address-data").is_some()));
    s.stop().await;
}
