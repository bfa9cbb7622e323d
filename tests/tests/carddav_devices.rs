//! Per-device app passwords and honest privileges (issue 10) over a real socket: labelled
//! passwords created, listed (never with a secret), used and revoked one at a time beside the
//! install password; a read-only install or a read-only device password advertising only read
//! privileges (RFC 3744 §5.4) and refusing writes with 403 `DAV:need-privileges` (§7.1.1)
//! while changing nothing; and no password of one organization opening another's book.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::{json, Value};

/// Runs an app action through the admin API: (status, body).
async fn action(s: &TestServer, book: &Book, name: &str, input: Value) -> (u16, Value) {
    let r = s
        .admin(
            "POST",
            &format!(
                "/orgs/{}/installations/{}/actions/{name}",
                book.org, book.installation
            ),
        )
        .json(&input)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Creates a device password; (id, the book with that password).
async fn device(s: &TestServer, book: &Book, label: &str, read_only: bool) -> (String, Book) {
    let (status, v) = action(
        s,
        book,
        "create-device",
        json!({ "label": label, "read_only": read_only }),
    )
    .await;
    assert_eq!(status, 200, "create-device {label}: {v}");
    let r = &v["result"];
    assert_eq!(r["label"], label);
    assert_eq!(r["username"], book.username.as_str());
    let password = r["password"].as_str().expect("the password, once");
    assert!(password.len() >= 22, "at least 128 bits: {password}");
    (
        r["id"].as_str().unwrap().to_owned(),
        book.with_credentials(&book.username, password),
    )
}

/// The `list-devices` result.
async fn list(s: &TestServer, book: &Book) -> Value {
    let (status, v) = action(s, book, "list-devices", json!({})).await;
    assert_eq!(status, 200, "list-devices: {v}");
    v["result"].clone()
}

fn entry<'a>(listing: &'a Value, id: &str) -> Option<&'a Value> {
    listing["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
}

/// The status of an authenticated PROPFIND Depth 0 on the book.
async fn probe(book: &Book) -> u16 {
    book.propfind(&book.book(), "0", &propfind_body(&[(DAV, "displayname")]))
        .await
        .status()
        .as_u16()
}

const WRITE_PRIVILEGES: [&str; 5] = [
    "write",
    "write-content",
    "write-properties",
    "bind",
    "unbind",
];

/// Asserts the credential's `current-user-privilege-set` on `path`: read privileges always,
/// write privileges exactly when `writable`.
async fn assert_privileges(book: &Book, path: &str, writable: bool) {
    let ms = book
        .props(path, "0", &[(DAV, "current-user-privilege-set")])
        .await;
    let set = ms.only().ok(DAV, "current-user-privilege-set");
    assert!(set.has(DAV, "read"), "{}", set.xml);
    assert!(
        set.has(DAV, "read-current-user-privilege-set"),
        "{}",
        set.xml
    );
    for p in WRITE_PRIVILEGES {
        assert_eq!(set.has(DAV, p), writable, "{p} on {path}: {}", set.xml);
    }
}

/// The (href, privilege) pairs of a `DAV:need-privileges` error body (RFC 3744 §7.1.1).
fn need_privileges(body: &str) -> Vec<(String, String)> {
    assert_eq!(error_condition(body), qn(DAV, "need-privileges"), "{body}");
    let doc = roxmltree::Document::parse(body).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name((DAV, "resource")))
        .map(|res| {
            let href = res
                .children()
                .find(|c| c.has_tag_name((DAV, "href")))
                .and_then(|h| h.text())
                .unwrap_or("")
                .to_owned();
            let privilege = res
                .children()
                .find(|c| c.has_tag_name((DAV, "privilege")))
                .and_then(|p| p.children().find(|c| c.is_element()))
                .map(|p| p.tag_name().name().to_owned())
                .unwrap_or_default();
            (href, privilege)
        })
        .collect()
}

async fn expect_need(r: reqwest::Response, href: &str, privilege: &str) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        need_privileges(&body),
        vec![(href.to_owned(), privilege.to_owned())]
    );
}

fn proppatch_body(name: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop><d:displayname>{name}</d:displayname></d:prop></d:set></d:propertyupdate>"#
    )
}

async fn proppatch(book: &Book, name: &str) -> reqwest::Response {
    book.req("PROPPATCH", &book.book())
        .header("content-type", "application/xml; charset=utf-8")
        .body(proppatch_body(name))
        .send()
        .await
        .unwrap()
}

async fn displayname(book: &Book) -> String {
    let ms = book.props(&book.book(), "0", &[(DAV, "displayname")]).await;
    ms.only().ok(DAV, "displayname").text.clone()
}

/// The hrefs of the book's cards (PROPFIND Depth 1).
async fn card_hrefs(book: &Book) -> Vec<String> {
    let ms = book.props(&book.book(), "1", &[(DAV, "getetag")]).await;
    ms.hrefs()
        .into_iter()
        .filter(|h| h.ends_with(".vcf"))
        .collect()
}

async fn install_with(s: &TestServer, org: &str, config: Value) -> Book {
    s.org(org).await;
    let r = s
        .admin("POST", &format!("/orgs/{org}/installations"))
        .json(&json!({ "kind": "carddav", "config": config }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "install with {config}");
    Book::from_install(s, org, &r.json().await.unwrap())
}

#[tokio::test]
async fn revoking_one_device_leaves_the_others_and_the_install_password_working() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let (ipad_id, ipad) = device(&s, &book, "Front desk iPad", false).await;
    let (sarah_id, sarah) = device(&s, &book, "Sarah's phone", false).await;
    for (who, b) in [("install", &book), ("iPad", &ipad), ("Sarah", &sarah)] {
        assert_eq!(probe(b).await, 207, "{who} before the revoke");
    }
    let wrong = book.with_credentials(&book.username, "not-a-password-of-this-book");
    assert_eq!(probe(&wrong).await, 401);

    let (status, v) = action(&s, &book, "revoke-device", json!({ "id": ipad_id })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["label"], "Front desk iPad");
    let r = ipad
        .propfind(&ipad.book(), "0", &propfind_body(&[(DAV, "displayname")]))
        .await;
    assert_eq!(r.status(), 401, "the revoked password is refused at once");
    assert!(header(&r, "www-authenticate").is_some_and(|h| h.starts_with("Basic ")));
    assert_eq!(probe(&sarah).await, 207, "the other device keeps working");
    assert_eq!(
        probe(&book).await,
        207,
        "the install password keeps working"
    );

    let listing = list(&s, &book).await;
    assert!(entry(&listing, &ipad_id).is_none());
    assert!(entry(&listing, &sarah_id).is_some());
    assert_eq!(entry(&listing, "install").unwrap()["kind"], "install");

    // Revoking twice, an unknown id, or the install password: refused, nothing changes.
    let (status, _) = action(&s, &book, "revoke-device", json!({ "id": ipad_id })).await;
    assert_eq!(status, 404);
    let (status, v) = action(&s, &book, "revoke-device", json!({ "id": "install" })).await;
    assert_eq!(status, 422, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("regenerate"));
    let (status, _) = action(&s, &book, "revoke-device", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(probe(&book).await, 207);
    assert_eq!(probe(&sarah).await, 207);

    // Regenerating replaces only the install password: devices stay signed in.
    let (status, v) = action(&s, &book, "regenerate-password", json!({})).await;
    assert_eq!(status, 200);
    let fresh = book.with_credentials(&book.username, v["result"]["password"].as_str().unwrap());
    assert_eq!(probe(&book).await, 401, "the old install password");
    assert_eq!(probe(&fresh).await, 207);
    assert_eq!(
        probe(&sarah).await,
        207,
        "device passwords survive a regenerate"
    );
    let (_, creds) = action(&s, &book, "credentials", json!({})).await;
    assert_eq!(creds["result"]["password"], fresh.password.as_str());
    s.stop().await;
}

#[tokio::test]
async fn listing_shows_last_use_and_never_a_secret() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let (used_id, used) = device(&s, &book, "Used", false).await;
    let (idle_id, idle) = device(&s, &book, "Idle", true).await;

    let before = list(&s, &book).await;
    assert_eq!(before["devices"].as_array().unwrap().len(), 3);
    assert!(entry(&before, &used_id).unwrap()["last_used_at"].is_null());
    assert!(entry(&before, &used_id).unwrap()["created_at"].is_string());
    assert_eq!(entry(&before, &idle_id).unwrap()["read_only"], true);
    assert_eq!(entry(&before, &used_id).unwrap()["read_only"], false);

    assert_eq!(probe(&used).await, 207);
    let after = list(&s, &book).await;
    assert!(
        entry(&after, &used_id).unwrap()["last_used_at"].is_string(),
        "{after}"
    );
    assert!(entry(&after, &idle_id).unwrap()["last_used_at"].is_null());
    assert!(entry(&after, "install").unwrap()["last_used_at"].is_null());
    assert_eq!(probe(&book).await, 207);
    let after = list(&s, &book).await;
    assert!(entry(&after, "install").unwrap()["last_used_at"].is_string());

    // Neither the passwords nor their digests appear in the listing, the status or the
    // installation record the admin API shows.
    let status: Value = s
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
    assert_eq!(status["status"]["details"]["devices"], 2);
    let installations: Value = s
        .admin("GET", "/orgs/acme/installations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for shown in [
        after.to_string(),
        status.to_string(),
        installations.to_string(),
    ] {
        for secret in [&used.password, &idle.password, &book.password] {
            assert!(!shown.contains(secret.as_str()), "a password in {shown}");
        }
        assert!(!shown.contains("digest"), "a digest in {shown}");
        let used_digest: String = {
            use sha2::Digest;
            sha2::Sha256::digest(used.password.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        assert!(!shown.contains(&used_digest), "a digest in {shown}");
    }
    s.stop().await;
}

#[tokio::test]
async fn labels_are_validated_and_devices_bounded() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    device(&s, &book, "Front desk iPad", false).await;
    let refused = [
        (json!({ "label": "" }), 422),
        (json!({ "label": "   " }), 422),
        (json!({ "label": "x".repeat(65) }), 422),
        (json!({ "label": "two\nlines" }), 422),
        (json!({ "label": "front DESK ipad" }), 422),
        (json!({ "label": "Install password" }), 422),
        (json!({}), 422),
        (json!({ "label": 7 }), 400),
        (json!({ "label": "ok", "read_only": "yes" }), 400),
        (json!(["label"]), 400),
    ];
    for (input, want) in refused {
        let (status, v) = action(&s, &book, "create-device", input.clone()).await;
        assert_eq!(status, want, "{input}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    assert_eq!(
        list(&s, &book).await["devices"].as_array().unwrap().len(),
        2,
        "refused input stores nothing"
    );
    // 64 characters is fine; the 100th device too, the 101st is refused with a clear message.
    device(&s, &book, &"é".repeat(64), false).await;
    for i in 2..100 {
        let (status, v) = action(
            &s,
            &book,
            "create-device",
            json!({ "label": format!("Device {i}") }),
        )
        .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = action(
        &s,
        &book,
        "create-device",
        json!({ "label": "One too many" }),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("100"),
        "{v}"
    );
    assert_eq!(
        list(&s, &book).await["devices"].as_array().unwrap().len(),
        101
    );
    s.stop().await;
}

#[tokio::test]
async fn a_read_only_install_refuses_writes_and_says_so_until_switched_back() {
    let s = TestServer::start().await;
    let book = install_with(&s, "acme", json!({ "read_only": true })).await;
    create_customer(
        &s,
        "acme",
        json!({ "name": "Ada Lovelace", "email": "ada@example.com" }),
    )
    .await;
    let cards = card_hrefs(&book).await;
    assert_eq!(cards.len(), 1);
    let card = cards[0].clone();
    let (etag, text) = {
        let (e, t) = book.get_card(&card).await;
        (e, t)
    };
    let token = book.sync_token().await;
    let name = displayname(&book).await;

    assert_privileges(&book, &book.book(), false).await;
    assert_privileges(&book, &card, false).await;
    let (_, v) = action(&s, &book, "list-devices", json!({})).await;
    assert_eq!(v["result"]["read_only"], true);

    // A new card needs DAV:bind on the book, an existing one DAV:write-content on itself,
    // DELETE DAV:unbind on the book, PROPPATCH DAV:write-properties (RFC 3744 Appendix B).
    let new = vcard3("new-1", "New Person", &[]);
    expect_need(
        book.put(&book.card("new-1.vcf"), &new, &[]).await,
        &book.book(),
        "bind",
    )
    .await;
    let edited = vcard3("x", "Ada Edited", &[]);
    expect_need(book.put(&card, &edited, &[]).await, &card, "write-content").await;
    let r = book.req("DELETE", &card).send().await.unwrap();
    expect_need(r, &book.book(), "unbind").await;
    expect_need(
        proppatch(&book, "Renamed").await,
        &book.book(),
        "write-properties",
    )
    .await;

    // Nothing changed.
    assert_eq!(book.sync_token().await, token);
    assert_eq!(book.get_card(&card).await, (etag, text));
    assert_eq!(displayname(&book).await, name);
    assert_eq!(card_hrefs(&book).await, cards);
    // OPTIONS keeps listing what the resource supports; the privilege set tells the user.
    let r = book.req("OPTIONS", &card).send().await.unwrap();
    assert!(header(&r, "allow").unwrap().contains("PUT"));

    // Switched back to writable: the privileges and the writes come back.
    let (status, v) = action(&s, &book, "set-read-only", json!({ "read_only": false })).await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = action(&s, &book, "set-read-only", json!({ "read_only": "no" })).await;
    assert_eq!(status, 400);
    let (status, _) = action(&s, &book, "set-read-only", json!({})).await;
    assert_eq!(status, 422);
    assert_privileges(&book, &book.book(), true).await;
    assert_privileges(&book, &card, true).await;
    book.create_card("new-1.vcf", &new).await;
    let r = proppatch(&book, "Renamed").await;
    assert_eq!(r.status(), 207);
    assert_eq!(displayname(&book).await, "Renamed");
    let r = book
        .req("DELETE", &book.card("new-1.vcf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // And read-only again later.
    let (status, _) = action(&s, &book, "set-read-only", json!({ "read_only": true })).await;
    assert_eq!(status, 200);
    assert_privileges(&book, &book.book(), false).await;
    let r = book.req("DELETE", &card).send().await.unwrap();
    assert_eq!(r.status(), 403);
    s.stop().await;
}

#[tokio::test]
async fn a_read_only_device_on_a_writable_book_reads_while_the_install_password_writes() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let (_, viewer) = device(&s, &book, "Reception (view only)", true).await;
    let (_, editor) = device(&s, &book, "Office Mac", false).await;
    book.create_card("a.vcf", &vcard3("a", "Alice", &[])).await;
    let token = book.sync_token().await;

    assert_privileges(&viewer, &viewer.book(), false).await;
    assert_privileges(&viewer, &viewer.card("a.vcf"), false).await;
    assert_privileges(&book, &book.book(), true).await;
    assert_privileges(&editor, &editor.card("a.vcf"), true).await;
    // The home and the principal are read-only for everyone.
    assert_privileges(&book, &book.home(), false).await;
    // The streamed Depth 1 listing tells every card's privileges the same way.
    for (who, b, writable) in [("viewer", &viewer, false), ("install", &book, true)] {
        let ms = b
            .props(&b.book(), "1", &[(DAV, "current-user-privilege-set")])
            .await;
        assert_eq!(ms.members().len(), 2, "the book and a.vcf");
        for r in ms.members() {
            let set = r.ok(DAV, "current-user-privilege-set");
            assert!(set.has(DAV, "read"));
            for p in WRITE_PRIVILEGES {
                assert_eq!(set.has(DAV, p), writable, "{who}: {p} on {}", r.href);
            }
        }
    }

    let r = viewer
        .put(&viewer.card("b.vcf"), &vcard3("b", "Bob", &[]), &[])
        .await;
    expect_need(r, &viewer.book(), "bind").await;
    let r = viewer
        .req("DELETE", &viewer.card("a.vcf"))
        .send()
        .await
        .unwrap();
    expect_need(r, &viewer.book(), "unbind").await;
    expect_need(
        proppatch(&viewer, "Mine").await,
        &viewer.book(),
        "write-properties",
    )
    .await;
    assert_eq!(
        book.sync_token().await,
        token,
        "the refused writes changed nothing"
    );
    // Reading works as ever.
    let (_, text) = viewer.get_card(&viewer.card("a.vcf")).await;
    assert!(text.contains("FN:Alice"));

    editor.create_card("b.vcf", &vcard3("b", "Bob", &[])).await;
    book.create_card("c.vcf", &vcard3("c", "Carol", &[])).await;
    let r = book
        .req("DELETE", &book.card("a.vcf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    s.stop().await;
}

#[tokio::test]
async fn a_device_password_of_one_organization_never_opens_another() {
    let s = TestServer::start().await;
    let a = Book::install(&s, "acme").await;
    let b = Book::install(&s, "globex").await;
    let (_, a_dev) = device(&s, &a, "Shared name", false).await;
    let (_, b_dev) = device(&s, &b, "Shared name", false).await;
    assert_eq!(probe(&a_dev).await, 207);
    assert_eq!(probe(&b_dev).await, 207);

    // A's device password at B's URL, with either username.
    let stolen = b.with_credentials(&b.username, &a_dev.password);
    assert_eq!(probe(&stolen).await, 401);
    let stolen = b.with_credentials(&a.username, &a_dev.password);
    assert_eq!(probe(&stolen).await, 401);
    // A's username with B's device password at A's URL.
    let mixed = a.with_credentials(&a.username, &b_dev.password);
    assert_eq!(probe(&mixed).await, 401);
    // Discovery finds the book of the username's organization only with its own password.
    let r = b
        .anon("PROPFIND", "/.well-known/carddav")
        .header("authorization", basic(&b.username, &a_dev.password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = a
        .anon("PROPFIND", "/.well-known/carddav")
        .header("authorization", basic(&a.username, &a_dev.password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert!(header(&r, "location").unwrap().ends_with(&a.base));

    // Each listing shows only its own organization's devices.
    let la = list(&s, &a).await;
    assert_eq!(la["devices"].as_array().unwrap().len(), 2);
    s.stop().await;
}
