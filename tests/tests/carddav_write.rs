//! The CardDAV write path over a real socket (issue 4): PUT and DELETE with their preconditions,
//! round-trip fidelity, projection to the customer record, admin edits meeting client edits,
//! PROPPATCH, refused methods, concurrent writers, failed writes changing nothing, and
//! isolation between organizations.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::{json, Value};

async fn setup() -> (TestServer, Book) {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    (s, book)
}

fn crlf(lines: &[&str]) -> String {
    lines.join("\r\n") + "\r\n"
}

/// Apple Contacts (iOS) writes vCard 3.0 with `type=` parameters repeated, `item1.` groups with
/// `X-ABLabel`, folded lines and its own X- properties.
fn apple_card() -> String {
    crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Apple Inc.//iPhone OS 17.2//EN",
        "N:Appleseed;Johnny;;;",
        "FN:Johnny Appleseed",
        "ORG:Apple Inc.;",
        "TITLE:Engineer",
        "EMAIL;type=INTERNET;type=WORK;type=pref:johnny@example.com",
        "EMAIL;type=INTERNET;type=HOME:j.appleseed@home.example",
        "TEL;type=CELL;type=VOICE;type=pref:+1 (555) 010-0100",
        "item1.TEL:+1 555 010 0199",
        "item1.X-ABLabel:_$!<Other>!$_",
        "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;United S",
        " tates",
        "item2.X-ABADR:us",
        "NOTE:Met at WWDC\\, 2023\\nLikes apples",
        "BDAY;VALUE=date:1980-04-15",
        "X-SOCIALPROFILE;type=twitter:https://twitter.com/johnny",
        "UID:8C2B2F3E-AB6F-4C3B-9F7A-2D1C0E9B7A61",
        "REV:2023-11-24T10:00:00Z",
        "END:VCARD",
    ])
}

/// DAVx5 (ez-vcard) writes vCard 4.0 with `urn:uuid:` UIDs and year-less birthdays.
fn davx5_card() -> String {
    crlf(&[
        "BEGIN:VCARD",
        "VERSION:4.0",
        "PRODID:ez-vcard 0.11.3",
        "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1",
        "FN:Zoë Ünal",
        "N:Ünal;Zoë;;;",
        "EMAIL;TYPE=home:zoe@example.com",
        "TEL;TYPE=cell:+49 30 1234567",
        "BDAY:--0415",
        "NOTE:Prefers email",
        "X-PHONETIC-FIRST-NAME:Zo-eh",
        "REV:20231124T100000Z",
        "END:VCARD",
    ])
}

/// Thunderbird (102+) writes vCard 4.0 with `PREF=1` and `VALUE=TEXT` telephone numbers.
fn thunderbird_card() -> String {
    crlf(&[
        "BEGIN:VCARD",
        "VERSION:4.0",
        "EMAIL;PREF=1:pat@example.org",
        "FN:Pat O'Brien",
        "N:O'Brien;Pat;;;",
        "TEL;TYPE=work;VALUE=TEXT:+353 1 555 0000",
        "UID:a8d2c6e1-1f2b-4c1e-8f0a-2f6d7b3c9e10",
        "END:VCARD",
    ])
}

/// Evolution writes vCard 3.0 with X-EVOLUTION- parameters and folds long lines.
fn evolution_card() -> String {
    crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:pas-id-6561B2C700000001",
        "FN:Grace Hopper",
        "N:Hopper;Grace;Brewster Murray;Rear Admiral;",
        "X-EVOLUTION-FILE-AS:Hopper\\, Grace",
        "EMAIL;TYPE=WORK;X-EVOLUTION-UI-SLOT=1:grace@navy.example",
        "TEL;TYPE=WORK;TYPE=VOICE;X-EVOLUTION-UI-SLOT=1:+1 202 555 0142",
        "NOTE:A very long note that goes past seventy-five octets so that it has to",
        "  be folded onto a continuation line by the exporter.",
        "REV:2023-11-24T10:00:00Z",
        "END:VCARD",
    ])
}

/// A Google Contacts export (vCard 3.0; `CATEGORIES`, `item1.URL` with an escaped colon).
fn google_card() -> String {
    crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "FN:Ada Lovelace",
        "N:Lovelace;Ada;;;",
        "EMAIL;TYPE=INTERNET;TYPE=HOME:ada@example.net",
        "TEL;TYPE=CELL:+44 20 7946 0000",
        "ADR;TYPE=HOME:;;12 St James's Square;London;;SW1Y 4JH;United Kingdom",
        "ORG:Analytical Engines Ltd",
        "item1.URL:https\\://example.net/ada",
        "item1.X-ABLabel:Blog",
        "CATEGORIES:myContacts,Friends",
        "UID:google-7f3e9a1b0c",
        "END:VCARD",
    ])
}

#[tokio::test]
async fn put_creates_at_the_client_name_and_reads_back_byte_identical() {
    let (s, book) = setup().await;
    let fixtures = [
        ("8C2B2F3E-AB6F-4C3B-9F7A-2D1C0E9B7A61.vcf", apple_card()),
        ("4fbe8971-0bc3-424c-9c26-36c3e1eff6b1.vcf", davx5_card()),
        ("thunderbird contact é.vcf", thunderbird_card()),
        ("pas-id-6561B2C700000001.vcf", evolution_card()),
        ("google-7f3e9a1b0c.vcf", google_card()),
    ];
    for (file, card) in &fixtures {
        let etag = book.create_card(file, card).await;
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong ETag: {etag}"
        );
        let href = book.card(&encode_segment(file));
        let (get_etag, body) = book.get_card(&href).await;
        assert_eq!(&body, card, "{file} reads back byte for byte");
        assert_eq!(get_etag, etag, "{file}: PUT and GET agree on the ETag");
    }
    // The book lists every card under the name its client chose.
    let ms = book.props(&book.book(), "1", &[(DAV, "getetag")]).await;
    for (file, _) in &fixtures {
        assert!(ms.find(&book.card(file)).is_some(), "{file} listed");
    }
    assert_eq!(all_customers(&s, "acme").await.len(), fixtures.len());
    s.stop().await;
}

fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn put_projects_the_modelled_fields_to_the_customer() {
    let (s, book) = setup().await;
    book.create_card("apple.vcf", &apple_card()).await;
    let c = customer_by_card_name(&s, "acme", "apple").await;
    assert_eq!(c["name"], "Johnny Appleseed");
    assert_eq!(c["given_name"], "Johnny");
    assert_eq!(c["family_name"], "Appleseed");
    assert_eq!(c["email"], "johnny@example.com");
    assert_eq!(c["known_emails"], json!(["j.appleseed@home.example"]));
    assert_eq!(c["phone"], "+1 (555) 010-0100");
    assert_eq!(c["known_phones"], json!(["+1 555 010 0199"]));
    assert_eq!(c["birthday"], "1980-04-15");
    assert_eq!(c["note"], "Met at WWDC, 2023\nLikes apples");

    book.create_card("davx5.vcf", &davx5_card()).await;
    let c = customer_by_card_name(&s, "acme", "davx5").await;
    assert_eq!(c["name"], "Zoë Ünal");
    assert_eq!(c["email"], "zoe@example.com");
    assert_eq!(c["known_emails"], json!([]));
    assert_eq!(c["phone"], "+49 30 1234567");
    assert_eq!(c["birthday"], "--04-15", "a year-less birthday");
    assert_eq!(c["note"], "Prefers email");

    // An N-only card (empty FN) takes its name from N.
    let n_only = crlf(&[
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:n-only-1",
        "FN:",
        "N:Curie;Marie;;;",
        "END:VCARD",
    ]);
    book.create_card("n-only.vcf", &n_only).await;
    let c = customer_by_card_name(&s, "acme", "n-only").await;
    assert_eq!(c["name"], "Marie Curie");
    s.stop().await;
}

#[tokio::test]
async fn put_with_if_match_updates_with_204_and_a_new_etag() {
    let (s, book) = setup().await;
    let href = book.card("ada.vcf");
    let v1 = vcard3("ada-1", "Ada", &["EMAIL:ada@example.com"]);
    let e1 = book.create_card("ada.vcf", &v1).await;
    let token = book.sync_token().await;

    let v2 = vcard3(
        "ada-1",
        "Ada Lovelace",
        &["EMAIL:ada@example.com", "TEL;TYPE=CELL:+44 1"],
    );
    let r = book.put(&href, &v2, &[("if-match", &e1)]).await;
    assert_eq!(r.status(), 204);
    let e2 = header(&r, "etag").expect("ETag on 204");
    assert_ne!(e1, e2);
    let (get_etag, body) = book.get_card(&href).await;
    assert_eq!(
        (get_etag.as_str(), body.as_str()),
        (e2.as_str(), v2.as_str())
    );
    let c = customer_by_card_name(&s, "acme", "ada").await;
    assert_eq!(c["name"], "Ada Lovelace");
    assert_eq!(c["phone"], "+44 1");

    // Other clients see the change in their next sync.
    let delta = book.sync(Some(&token), None).await;
    assert_eq!(delta.only().ok(DAV, "getetag").text, e2);

    // No precondition: last writer wins.
    let v3 = vcard3("ada-1", "Ada King", &[]);
    let r = book.put(&href, &v3, &[]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(book.get_card(&href).await.1, v3);
    s.stop().await;
}

#[tokio::test]
async fn if_none_match_star_on_an_existing_card_is_412() {
    let (s, book) = setup().await;
    let v1 = vcard3("u-1", "First", &[]);
    let e1 = book.create_card("a.vcf", &v1).await;
    let r = book
        .put(
            &book.card("a.vcf"),
            &vcard3("u-1", "Second", &[]),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(r.status(), 412);
    assert_eq!(book.get_card(&book.card("a.vcf")).await, (e1, v1));
    s.stop().await;
}

#[tokio::test]
async fn stale_if_match_is_412() {
    let (s, book) = setup().await;
    let href = book.card("a.vcf");
    let e1 = book
        .create_card("a.vcf", &vcard3("u-1", "First", &[]))
        .await;
    let v2 = vcard3("u-1", "Second", &[]);
    let r = book.put(&href, &v2, &[("if-match", &e1)]).await;
    assert_eq!(r.status(), 204);
    let e2 = header(&r, "etag").unwrap();
    for stale in [e1.as_str(), "\"never-issued\"", "W/\"weak\""] {
        let r = book
            .put(&href, &vcard3("u-1", "Third", &[]), &[("if-match", stale)])
            .await;
        assert_eq!(r.status(), 412, "If-Match {stale}");
    }
    // If-Match on a card that does not exist.
    let r = book
        .put(
            &book.card("new.vcf"),
            &vcard3("u-2", "New", &[]),
            &[("if-match", &e2)],
        )
        .await;
    assert_eq!(r.status(), 412);
    assert_eq!(book.get(&book.card("new.vcf")).await.status(), 404);
    assert_eq!(book.get_card(&href).await, (e2, v2));
    s.stop().await;
}

#[tokio::test]
async fn admin_edit_keeps_unmodelled_properties_byte_for_byte() {
    let (s, book) = setup().await;
    let href = book.card("apple.vcf");
    let original = apple_card();
    let e1 = book.create_card("apple.vcf", &original).await;
    let c = customer_by_card_name(&s, "acme", "apple").await;
    let id = c["id"].as_str().unwrap();
    let (st, patched) = patch_customer(
        &s,
        "acme",
        id,
        json!({"name": "Johnny Appleseed", "note": "Updated by the shop", "expected_revision": c["revision"]}),
    )
    .await;
    assert_eq!(st, 200, "{patched}");

    let (e2, after) = book.get_card(&href).await;
    assert_ne!(e1, e2, "an admin edit changes the ETag");
    assert_eq!(
        card_value(&after, "NOTE").as_deref(),
        Some("Updated by the shop")
    );
    // Every physical line except NOTE and REV is kept byte for byte, in order.
    let kept = |card: &str| -> Vec<String> {
        card.split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with("NOTE") && !l.starts_with("REV"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(kept(&after), kept(&original), "after the edit:\n{after}");
    for line in [
        "ORG:Apple Inc.;",
        "item1.X-ABLabel:_$!<Other>!$_",
        "item2.ADR;type=HOME;type=pref:;;1 Infinite Loop;Cupertino;CA;95014;United S\r\n tates",
        "X-SOCIALPROFILE;type=twitter:https://twitter.com/johnny",
        "EMAIL;type=INTERNET;type=WORK;type=pref:johnny@example.com",
    ] {
        assert!(after.contains(line), "{line:?} kept");
    }
    assert!(after.ends_with("END:VCARD\r\n"));
    // The book's listing and a multiget agree with GET.
    let ms = book.props(&book.book(), "1", &[(DAV, "getetag")]).await;
    assert_eq!(ms.get(&href).ok(DAV, "getetag").text, e2);

    // A second admin edit of a modelled field changes only that line (and REV).
    let (st, _) = patch_customer(&s, "acme", id, json!({"phone": "+1 555 999 0000"})).await;
    assert_eq!(st, 200);
    let (_, third) = book.get_card(&href).await;
    assert!(third.contains("+1 555 999 0000"), "{third}");
    assert!(!third.contains("+1 (555) 010-0100"));
    assert!(third.contains("item1.TEL:+1 555 010 0199"));
    assert!(third.contains("item1.X-ABLabel:_$!<Other>!$_"));
    s.stop().await;
}

#[tokio::test]
async fn phone_put_after_an_admin_edit_with_a_stale_etag_is_412() {
    let (s, book) = setup().await;
    let href = book.card("c.vcf");
    let e1 = book
        .create_card("c.vcf", &vcard3("c-1", "Carol", &["NOTE:from the phone"]))
        .await;
    let c = customer_by_card_name(&s, "acme", "c").await;
    let id = c["id"].as_str().unwrap().to_owned();
    let (st, _) = patch_customer(&s, "acme", &id, json!({"note": "from the admin"})).await;
    assert_eq!(st, 200);
    let (e2, admin_version) = book.get_card(&href).await;
    assert_ne!(e1, e2);

    let r = book
        .put(
            &href,
            &vcard3("c-1", "Carol", &["NOTE:phone overwrites"]),
            &[("if-match", &e1)],
        )
        .await;
    assert_eq!(r.status(), 412);
    assert_eq!(book.get_card(&href).await, (e2.clone(), admin_version));
    let c = get_customer(&s, "acme", &id).await.unwrap();
    assert_eq!(c["note"], "from the admin");

    // After re-reading, the phone's write with the current ETag goes through.
    let r = book
        .put(
            &href,
            &vcard3("c-1", "Carol", &["NOTE:merged"]),
            &[("if-match", &e2)],
        )
        .await;
    assert_eq!(r.status(), 204);
    let c = get_customer(&s, "acme", &id).await.unwrap();
    assert_eq!(c["note"], "merged");
    s.stop().await;
}

#[tokio::test]
async fn client_can_edit_a_customer_created_in_the_admin() {
    let (s, book) = setup().await;
    let c = create_customer(
        &s,
        "acme",
        json!({"name": "Dora", "email": "dora@example.com", "tags": ["vip"]}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let href = book.card(&format!("{id}.vcf"));
    let (etag, rendered) = book.get_card(&href).await;
    assert_eq!(card_value(&rendered, "UID").as_deref(), Some(id));
    let edited = vcard3(
        id,
        "Dora Explorer",
        &["EMAIL:dora@example.com", "TEL:+1 555 0123"],
    );
    let r = book.put(&href, &edited, &[("if-match", &etag)]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(book.get_card(&href).await.1, edited);
    let c = get_customer(&s, "acme", id).await.unwrap();
    assert_eq!(c["name"], "Dora Explorer");
    assert_eq!(c["phone"], "+1 555 0123");
    assert_eq!(c["tags"], json!(["vip"]), "admin-only fields survive a PUT");
    assert_eq!(all_customers(&s, "acme").await.len(), 1, "no duplicate");
    s.stop().await;
}

#[tokio::test]
async fn unsupported_media_type_or_version_is_supported_address_data() {
    let (s, book) = setup().await;
    let href = book.card("x.vcf");
    let card = vcard3("x-1", "X", &[]);
    for ct in ["application/json", "text/plain", "text/calendar"] {
        let r = book
            .req("PUT", &href)
            .header("content-type", ct)
            .body(card.clone())
            .send()
            .await
            .unwrap();
        expect_error(r, 403, CARD, "supported-address-data").await;
    }
    let v21 = crlf(&[
        "BEGIN:VCARD",
        "VERSION:2.1",
        "N:Old;Card",
        "FN:Old Card",
        "TEL;WORK;VOICE:+1 555 0000",
        "UID:v21-1",
        "END:VCARD",
    ]);
    let r = book.put(&href, &v21, &[]).await;
    expect_error(r, 403, CARD, "supported-address-data").await;
    assert_eq!(book.get(&href).await.status(), 404);
    assert!(all_customers(&s, "acme").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn invalid_cards_are_valid_address_data() {
    let (s, book) = setup().await;
    let href = book.card("x.vcf");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("junk", b"hello, this is not a vCard".to_vec()),
        (
            "missing UID",
            crlf(&["BEGIN:VCARD", "VERSION:3.0", "FN:No Uid", "END:VCARD"]).into_bytes(),
        ),
        (
            "missing FN",
            crlf(&["BEGIN:VCARD", "VERSION:3.0", "UID:no-fn", "END:VCARD"]).into_bytes(),
        ),
        (
            "missing END",
            crlf(&["BEGIN:VCARD", "VERSION:3.0", "UID:x", "FN:X"]).into_bytes(),
        ),
        (
            "two cards",
            (vcard3("a-1", "A", &[]) + &vcard3("b-1", "B", &[])).into_bytes(),
        ),
        (
            "not UTF-8",
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:l1\r\nFN:Ren\xe9\r\nEND:VCARD\r\n".to_vec(),
        ),
        (
            "a line without a colon",
            crlf(&[
                "BEGIN:VCARD",
                "VERSION:3.0",
                "UID:x",
                "FN:X",
                "THIS LINE HAS NO VALUE",
                "END:VCARD",
            ])
            .into_bytes(),
        ),
    ];
    for (what, body) in cases {
        let r = book
            .req("PUT", &href)
            .header("content-type", "text/vcard; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 403, "{what}: {text}");
        assert_eq!(
            error_condition(&text),
            qn(CARD, "valid-address-data"),
            "{what}"
        );
    }
    assert_eq!(book.get(&href).await.status(), 404);
    assert!(all_customers(&s, "acme").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn uid_conflicts_are_refused_and_name_the_existing_card() {
    let (s, book) = setup().await;
    book.create_card("first.vcf", &vcard3("shared-uid", "First", &[]))
        .await;
    let r = book
        .put(
            &book.card("second.vcf"),
            &vcard3("shared-uid", "Second", &[]),
            &[("if-none-match", "*")],
        )
        .await;
    let body = expect_error(r, 409, CARD, "no-uid-conflict").await;
    let hrefs: Vec<String> = error_hrefs(&body)
        .iter()
        .map(|h| percent_decode(h))
        .collect();
    assert_eq!(hrefs, vec![book.card("first.vcf")]);
    assert_eq!(book.get(&book.card("second.vcf")).await.status(), 404);

    // The UID of a customer created in the admin (its id) is taken too.
    let c = create_customer(&s, "acme", json!({"name": "Admin Made"})).await;
    let id = c["id"].as_str().unwrap();
    let r = book
        .put(&book.card("third.vcf"), &vcard3(id, "Impostor", &[]), &[])
        .await;
    let body = expect_error(r, 409, CARD, "no-uid-conflict").await;
    let hrefs: Vec<String> = error_hrefs(&body)
        .iter()
        .map(|h| percent_decode(h))
        .collect();
    assert_eq!(hrefs, vec![book.card(&format!("{id}.vcf"))]);

    // Changing the UID of an existing card is refused the same way (documented choice).
    let (etag, text) = book.get_card(&book.card("first.vcf")).await;
    let r = book
        .put(
            &book.card("first.vcf"),
            &vcard3("another-uid", "First", &[]),
            &[("if-match", &etag)],
        )
        .await;
    expect_error(r, 409, CARD, "no-uid-conflict").await;
    assert_eq!(book.get_card(&book.card("first.vcf")).await, (etag, text));
    assert_eq!(all_customers(&s, "acme").await.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn oversized_card_is_max_resource_size() {
    let (s, book) = setup().await;
    let big_note = format!("NOTE:{}", "x".repeat(1 << 20));
    let card = vcard3("big-1", "Big", &[&big_note]);
    assert!(card.len() > 1 << 20);
    let r = book.put(&book.card("big.vcf"), &card, &[]).await;
    expect_error(r, 403, CARD, "max-resource-size").await;
    assert_eq!(book.get(&book.card("big.vcf")).await.status(), 404);
    // The advertised limit is the one enforced.
    let ms = book
        .props(&book.book(), "0", &[(CARD, "max-resource-size")])
        .await;
    let limit: usize = ms
        .only()
        .ok(CARD, "max-resource-size")
        .text
        .trim()
        .parse()
        .unwrap();
    // The advertised limit is text (1 MiB) + photos (3 MiB): the card's text alone above its
    // 1 MiB part is refused although the card is under the total (RFC 6352 §6.3.2.1 lets the
    // server refuse with this precondition; issue 10, see carddav_photos.rs).
    assert_eq!(limit, 4 << 20);
    assert!(card.len() < limit);
    let huge = vcard3("big-1", "Big", &[&format!("NOTE:{}", "x".repeat(limit))]);
    let r = book.put(&book.card("big.vcf"), &huge, &[]).await;
    expect_error(r, 403, CARD, "max-resource-size").await;
    assert_eq!(book.get(&book.card("big.vcf")).await.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn put_on_collections_is_addressbook_collection_location_ok() {
    let (s, book) = setup().await;
    let card = vcard3("loc-1", "Loc", &[]);
    for path in [
        book.book(),
        book.home(),
        book.principal(),
        book.base.clone(),
    ] {
        let r = book.put(&path, &card, &[]).await;
        expect_error(r, 403, CARD, "addressbook-collection-location-ok").await;
    }
    assert!(all_customers(&s, "acme").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn delete_with_a_stale_if_match_is_412() {
    let (s, book) = setup().await;
    let href = book.card("d.vcf");
    let e1 = book.create_card("d.vcf", &vcard3("d-1", "Dee", &[])).await;
    let r = book
        .req("DELETE", &href)
        .header("if-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(book.get_card(&href).await.0, e1);
    let r = book
        .req("DELETE", &href)
        .header("if-match", &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    s.stop().await;
}

#[tokio::test]
async fn delete_removes_the_card_and_leaves_a_tombstone() {
    let (s, book) = setup().await;
    let href = book.card("gone.vcf");
    book.create_card("gone.vcf", &vcard3("gone-1", "Gone", &[]))
        .await;
    book.create_card("stays.vcf", &vcard3("stays-1", "Stays", &[]))
        .await;
    let id = customer_by_card_name(&s, "acme", "gone").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = book.sync_token().await;

    let r = book.req("DELETE", &href).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(book.get(&href).await.status(), 404);
    assert_eq!(
        book.req("DELETE", &href).send().await.unwrap().status(),
        404
    );
    assert!(get_customer(&s, "acme", &id).await.is_none());

    let delta = book.sync(Some(&token), None).await;
    let tomb = delta.only();
    assert_eq!(percent_decode(&tomb.href), href);
    assert_eq!(tomb.status, Some(404));
    // A fresh listing no longer has it.
    let full = book.sync(None, None).await;
    assert_eq!(full.hrefs(), vec![book.card("stays.vcf")]);
    // The name is free again.
    book.create_card("gone.vcf", &vcard3("gone-2", "Back", &[]))
        .await;
    s.stop().await;
}

#[tokio::test]
async fn delete_on_collections_is_403() {
    let (s, book) = setup().await;
    book.create_card("k.vcf", &vcard3("k-1", "Kept", &[])).await;
    for path in [
        book.book(),
        book.home(),
        book.principal(),
        book.base.clone(),
    ] {
        let r = book.req("DELETE", &path).send().await.unwrap();
        assert_eq!(r.status(), 403, "DELETE {path}");
    }
    assert_eq!(book.get(&book.card("k.vcf")).await.status(), 200);
    s.stop().await;
}

fn proppatch(set: &str, remove: &str) -> String {
    let mut out = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">"#,
    );
    if !set.is_empty() {
        out.push_str(&format!("<D:set><D:prop>{set}</D:prop></D:set>"));
    }
    if !remove.is_empty() {
        out.push_str(&format!("<D:remove><D:prop>{remove}</D:prop></D:remove>"));
    }
    out.push_str("</D:propertyupdate>");
    out
}

async fn send_proppatch(book: &Book, body: &str) -> Multistatus {
    expect_multistatus(
        book.req("PROPPATCH", &book.book())
            .header("content-type", "application/xml; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn proppatch_displayname_and_description_persist() {
    let (s, book) = setup().await;
    let ms = send_proppatch(
        &book,
        &proppatch(
            "<D:displayname>Kunden &amp; Freunde</D:displayname><C:addressbook-description>Everyone we sell to</C:addressbook-description>",
            "",
        ),
    )
    .await;
    let r = ms.only();
    assert_eq!(percent_decode(&r.href), book.book());
    let mut ok = r.names(200);
    ok.sort();
    assert_eq!(
        ok,
        vec![qn(DAV, "displayname"), qn(CARD, "addressbook-description")]
    );
    let read = book
        .props(
            &book.book(),
            "0",
            &[(DAV, "displayname"), (CARD, "addressbook-description")],
        )
        .await;
    assert_eq!(read.only().ok(DAV, "displayname").text, "Kunden & Freunde");
    assert_eq!(
        read.only().ok(CARD, "addressbook-description").text,
        "Everyone we sell to"
    );
    // Seen through the home too, as clients list books.
    let home = book.props(&book.home(), "1", &[(DAV, "displayname")]).await;
    assert_eq!(
        home.get(&book.book()).ok(DAV, "displayname").text,
        "Kunden & Freunde"
    );
    // Removing the description.
    send_proppatch(&book, &proppatch("", "<C:addressbook-description/>")).await;
    let read = book
        .props(&book.book(), "0", &[(CARD, "addressbook-description")])
        .await;
    assert_eq!(
        read.only().prop_status(CARD, "addressbook-description"),
        Some(404)
    );
    s.stop().await;
}

#[tokio::test]
async fn proppatch_of_a_protected_property_fails_the_whole_request() {
    let (s, book) = setup().await;
    for protected in [
        "<D:getetag>\"x\"</D:getetag>",
        "<D:resourcetype><D:collection/></D:resourcetype>",
        "<D:sync-token>urn:x</D:sync-token>",
        "<C:supported-address-data/>",
    ] {
        let ms = send_proppatch(
            &book,
            &proppatch(
                &format!("<D:displayname>Should not stick</D:displayname>{protected}"),
                "",
            ),
        )
        .await;
        let r = ms.only();
        let forbidden = r.propstat(403).expect("a 403 propstat");
        assert_eq!(forbidden.props.len(), 1, "{protected}");
        assert_eq!(
            forbidden.error,
            vec![qn(DAV, "cannot-modify-protected-property")]
        );
        assert_eq!(r.names(424), vec![qn(DAV, "displayname")], "{protected}");
        assert!(r.propstat(200).is_none());
    }
    let read = book.props(&book.book(), "0", &[(DAV, "displayname")]).await;
    assert_eq!(read.only().ok(DAV, "displayname").text, "ACME customers");
    s.stop().await;
}

#[tokio::test]
async fn dead_property_round_trips_with_its_namespace() {
    let (s, book) = setup().await;
    let ms = send_proppatch(
        &book,
        &proppatch(
            r#"<Z:colour xmlns:Z="http://example.com/ns/">deep <Z:shade xmlns:Q="urn:x-q" Q:kind="ink">blue</Z:shade></Z:colour><A:order xmlns:A="http://apple.com/ns/ical/">3</A:order>"#,
            "",
        ),
    )
    .await;
    assert_eq!(ms.only().names(200).len(), 2);
    let read = book
        .props(
            &book.book(),
            "0",
            &[
                ("http://example.com/ns/", "colour"),
                ("http://apple.com/ns/ical/", "order"),
                ("http://example.com/other/", "colour"),
            ],
        )
        .await;
    let r = read.only();
    let colour = r.ok("http://example.com/ns/", "colour");
    assert_eq!(colour.text, "deep blue");
    assert_eq!(colour.elements, vec![qn("http://example.com/ns/", "shade")]);
    assert!(
        colour
            .attributes
            .iter()
            .any(|(_, name, value)| name == "kind" && value == "ink"),
        "{colour:?}"
    );
    assert_eq!(r.ok("http://apple.com/ns/ical/", "order").text, "3");
    assert_eq!(
        r.prop_status("http://example.com/other/", "colour"),
        Some(404),
        "the same local name in another namespace is another property"
    );
    // propname lists it; removing it makes it 404.
    let names = book
        .propfind_ms(
            &book.book(),
            "0",
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        )
        .await;
    assert!(names
        .only()
        .names(200)
        .contains(&qn("http://example.com/ns/", "colour")));
    send_proppatch(
        &book,
        &proppatch("", r#"<Z:colour xmlns:Z="http://example.com/ns/"/>"#),
    )
    .await;
    let read = book
        .props(&book.book(), "0", &[("http://example.com/ns/", "colour")])
        .await;
    assert_eq!(
        read.only().prop_status("http://example.com/ns/", "colour"),
        Some(404)
    );
    s.stop().await;
}

#[tokio::test]
async fn mkcol_lock_copy_and_move_are_refused() {
    let (s, book) = setup().await;
    let card = book.card("m.vcf");
    let etag = book.create_card("m.vcf", &vcard3("m-1", "Em", &[])).await;
    // A client trying to create another address book (or any collection).
    for path in [
        book.path("addressbook/second-book/"),
        book.path("new-collection/"),
    ] {
        let r = book
            .req("MKCOL", &path)
            .header("content-type", "application/xml")
            .body(
                r#"<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"#,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "MKCOL {path}");
        let r = book.req("MKCOL", &path).send().await.unwrap();
        assert_eq!(r.status(), 403, "plain MKCOL {path}");
        let r = book
            .propfind(&path, "0", &propfind_body(&[(DAV, "resourcetype")]))
            .await;
        assert_eq!(r.status(), 404, "nothing was created at {path}");
    }
    // On the existing book: RFC 4918 §9.3.1, MKCOL only on an unmapped URL.
    let r = book.req("MKCOL", &book.book()).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let allow = header(&r, "allow").expect("Allow on 405");
    assert!(!allow.contains("MKCOL"), "{allow}");
    for path in [card.clone(), book.book()] {
        for method in ["LOCK", "UNLOCK"] {
            let r = book
                .req(method, &path)
                .header("content-type", "application/xml")
                .header("lock-token", "<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>")
                .body(r#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 405, "{method} {path}");
            let allow = header(&r, "allow").expect("Allow on 405");
            assert!(!allow.contains("LOCK"), "{allow}");
        }
    }
    for method in ["COPY", "MOVE"] {
        let r = book
            .req(method, &card)
            .header(
                "destination",
                format!("{}{}", book.url, book.card("copy.vcf")),
            )
            .header("overwrite", "F")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method}");
    }
    assert_eq!(book.get_card(&card).await.0, etag, "the card is untouched");
    assert_eq!(book.get(&book.card("copy.vcf")).await.status(), 404);
    let ms = book
        .props(&book.home(), "1", &[(DAV, "resourcetype")])
        .await;
    assert_eq!(ms.responses.len(), 2, "still exactly one book");
    s.stop().await;
}

#[tokio::test]
async fn put_with_an_unknown_lock_token_does_not_succeed() {
    let (s, book) = setup().await;
    let href = book.card("l.vcf");
    let v1 = vcard3("l-1", "Locked?", &[]);
    let e1 = book.create_card("l.vcf", &v1).await;
    let r = book
        .put(
            &href,
            &vcard3("l-1", "Changed", &[]),
            &[("if", "(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>)")],
        )
        .await;
    assert_eq!(
        r.status(),
        412,
        "RFC 4918 §10.4: a false If header fails with 412"
    );
    let r = book
        .put(
            &book.card("l2.vcf"),
            &vcard3("l-2", "New", &[]),
            &[(
                "if",
                "(<opaquelocktoken:e71d4fae-5dec-22d6-fea5-00a0c91e6be4>)",
            )],
        )
        .await;
    assert_eq!(r.status(), 412);
    let r = book
        .req("DELETE", &href)
        .header("if", "(<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(book.get_card(&href).await, (e1.clone(), v1));
    assert_eq!(book.get(&book.card("l2.vcf")).await.status(), 404);
    // An If header that holds (Not a token, or the current ETag) is true.
    let v2 = vcard3("l-1", "Changed", &[]);
    let r = book
        .put(
            &href,
            &v2,
            &[(
                "if",
                &format!("(Not <urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2> [{e1}])"),
            )],
        )
        .await;
    assert_eq!(r.status(), 204);
    s.stop().await;
}

#[tokio::test]
async fn concurrent_puts_with_the_same_if_match_one_wins() {
    let (s, book) = setup().await;
    let href = book.card("race.vcf");
    let mut etag = book
        .create_card("race.vcf", &vcard3("race-1", "Racer", &[]))
        .await;
    for round in 0..8 {
        let a = vcard3(
            "race-1",
            "Racer",
            &[&format!("NOTE:round {round} writer A")],
        );
        let b = vcard3(
            "race-1",
            "Racer",
            &[&format!("NOTE:round {round} writer B")],
        );
        let condition = [("if-match", etag.as_str())];
        let (ra, rb) = tokio::join!(
            book.put(&href, &a, &condition),
            book.put(&href, &b, &condition),
        );
        let (sa, sb) = (ra.status().as_u16(), rb.status().as_u16());
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(statuses, [204, 412], "round {round}");
        let (winner_etag, winner_body) = if sa == 204 {
            (header(&ra, "etag").unwrap(), a)
        } else {
            (header(&rb, "etag").unwrap(), b)
        };
        let (now_etag, now_body) = book.get_card(&href).await;
        assert_eq!(now_etag, winner_etag, "round {round}");
        assert_eq!(now_body, winner_body, "round {round}");
        let c = customer_by_card_name(&s, "acme", "race").await;
        assert_eq!(
            c["note"].as_str().unwrap(),
            card_value(&winner_body, "NOTE").unwrap(),
            "the record matches the card"
        );
        etag = now_etag;
    }
    s.stop().await;
}

/// A refused PUT: what it tries, its body, its headers, the expected status.
type Attempt<'a> = (&'a str, String, Vec<(&'a str, String)>, u16);

/// What a rejected write must leave alone.
#[derive(Debug, PartialEq)]
struct Snapshot {
    etag: String,
    body: String,
    sync_token: String,
    ctag: String,
    customers: Vec<Value>,
}

async fn snapshot(s: &TestServer, book: &Book, href: &str) -> Snapshot {
    let (etag, body) = book.get_card(href).await;
    Snapshot {
        etag,
        body,
        sync_token: book.sync_token().await,
        ctag: book.ctag().await,
        customers: all_customers(s, "acme").await,
    }
}

#[tokio::test]
async fn rejected_writes_change_nothing() {
    let (s, book) = setup().await;
    let href = book.card("keep.vcf");
    let e1 = book
        .create_card("keep.vcf", &vcard3("keep-1", "Keeper", &["NOTE:original"]))
        .await;
    book.create_card("other.vcf", &vcard3("other-1", "Other", &[]))
        .await;
    let before = snapshot(&s, &book, &href).await;
    let changed = |note: &str| vcard3("keep-1", "Keeper", &[&format!("NOTE:{note}")]);
    let big = format!("NOTE:{}", "y".repeat(1 << 20));

    let attempts: Vec<Attempt> = vec![
        (
            "junk",
            "not a card".into(),
            vec![("if-match", e1.clone())],
            403,
        ),
        (
            "stale If-Match",
            changed("stale"),
            vec![("if-match", "\"old\"".into())],
            412,
        ),
        (
            "If-None-Match *",
            changed("inm"),
            vec![("if-none-match", "*".into())],
            412,
        ),
        (
            "vCard 2.1",
            changed("v21").replace("VERSION:3.0", "VERSION:2.1"),
            vec![],
            403,
        ),
        (
            "too large",
            vcard3("keep-1", "Keeper", &[&big]),
            vec![],
            403,
        ),
        (
            "UID of another card",
            vcard3("other-1", "Keeper", &[]),
            vec![],
            409,
        ),
        ("changed UID", vcard3("keep-2", "Keeper", &[]), vec![], 409),
        (
            "missing FN",
            changed("nofn").replace("FN:Keeper\r\n", ""),
            vec![],
            403,
        ),
        (
            "unknown lock token",
            changed("locked"),
            vec![(
                "if",
                "(<urn:uuid:00000000-0000-0000-0000-000000000000>)".into(),
            )],
            412,
        ),
    ];
    for (what, body, headers, status) in &attempts {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = book.put(&href, body, &hs).await;
        assert_eq!(r.status().as_u16(), *status, "{what}");
    }
    let r = book
        .req("PUT", &href)
        .header("content-type", "application/octet-stream")
        .body(changed("binary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = book
        .req("DELETE", &href)
        .header("if-match", "\"old\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // A failed create leaves no customer behind.
    let r = book
        .put(&book.card("new.vcf"), "BEGIN:VCARD\r\nEND:VCARD\r\n", &[])
        .await;
    assert_eq!(r.status(), 403);
    let r = book
        .put(&book.card("new2.vcf"), &vcard3("keep-1", "Dup", &[]), &[])
        .await;
    assert_eq!(r.status(), 409);

    let after = snapshot(&s, &book, &href).await;
    assert_eq!(after, before);
    s.stop().await;
}

#[tokio::test]
async fn another_orgs_writes_are_refused() {
    let s = TestServer::start().await;
    let a = Book::install(&s, "alpha").await;
    let b = Book::install(&s, "beta").await;
    let b_href = b.card("b.vcf");
    let b_card = vcard3("beta-uid", "Beta Person", &["NOTE:beta's"]);
    let b_etag = b.create_card("b.vcf", &b_card).await;
    let b_token = b.sync_token().await;

    let a_on_b = b.with_credentials(&a.username, &a.password);
    let evil = vcard3("beta-uid", "Overwritten", &[]);
    for (method, path, body) in [
        ("PUT", b_href.clone(), evil.clone()),
        (
            "PUT",
            b.card("planted.vcf"),
            vcard3("planted", "Planted", &[]),
        ),
        ("DELETE", b_href.clone(), String::new()),
        (
            "PROPPATCH",
            b.book(),
            proppatch("<D:displayname>pwned</D:displayname>", ""),
        ),
    ] {
        let r = a_on_b
            .req(method, &path)
            .header("content-type", "text/vcard")
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        assert!(st == 401 || st == 404, "{method} {path}: {st}");
    }
    // A's installation id under B's organization, and B's under A's.
    for path in [
        format!(
            "/api/apps/beta/{}/addressbook/customers/b.vcf",
            a.installation
        ),
        format!(
            "/api/apps/alpha/{}/addressbook/customers/b.vcf",
            b.installation
        ),
    ] {
        let r = a.put(&path, &evil, &[]).await;
        assert_eq!(r.status(), 404, "PUT {path}");
        let r = a.req("DELETE", &path).send().await.unwrap();
        assert_eq!(r.status(), 404, "DELETE {path}");
    }
    // Copying or moving into another organization's book.
    let a_etag = a
        .create_card("a.vcf", &vcard3("alpha-uid", "Alpha", &[]))
        .await;
    for method in ["COPY", "MOVE"] {
        let r = a
            .req(method, &a.card("a.vcf"))
            .header("destination", format!("{}{}", b.url, b.card("copied.vcf")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method}");
    }
    assert_eq!(a.get_card(&a.card("a.vcf")).await.0, a_etag);
    // The same UID in A's own book is A's business and does not touch B.
    a.create_card("same-uid.vcf", &vcard3("beta-uid", "Alpha's", &[]))
        .await;

    assert_eq!(b.get_card(&b_href).await, (b_etag, b_card));
    assert_eq!(b.get(&b.card("planted.vcf")).await.status(), 404);
    assert_eq!(b.get(&b.card("copied.vcf")).await.status(), 404);
    assert_eq!(b.sync_token().await, b_token);
    assert_eq!(all_customers(&s, "beta").await.len(), 1);
    let name = b.props(&b.book(), "0", &[(DAV, "displayname")]).await;
    assert_eq!(name.only().ok(DAV, "displayname").text, "BETA customers");
    s.stop().await;
}

#[tokio::test]
async fn a_vcard4_card_is_kept_as_written_and_converted_on_request() {
    let (s, book) = setup().await;
    let href = book.card("davx5.vcf");
    let card = davx5_card();
    let etag = book.create_card("davx5.vcf", &card).await;
    // As stored by default.
    assert_eq!(book.get_card(&href).await, (etag.clone(), card.clone()));
    // 3.0 when a client asks for it, by Accept or by address-data.
    let r = book
        .req("GET", &href)
        .header("accept", "text/vcard; version=3.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v3_etag = header(&r, "etag").unwrap();
    let v3 = r.text().await.unwrap();
    assert_eq!(card_value(&v3, "VERSION").as_deref(), Some("3.0"));
    assert_eq!(card_value(&v3, "FN").as_deref(), Some("Zoë Ünal"));
    assert_eq!(card_value(&v3, "EMAIL").as_deref(), Some("zoe@example.com"));
    assert_ne!(v3_etag, etag);
    let ms = book
        .report_ms(
            &book.book(),
            &multiget_body(std::slice::from_ref(&href), r#"version="3.0""#),
        )
        .await;
    let data = ms.only().ok(CARD, "address-data").text.clone();
    assert_eq!(card_value(&data, "VERSION").as_deref(), Some("3.0"));
    // A conditional GET with the PUT's ETag.
    let r = book
        .req("GET", &href)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    s.stop().await;
}

#[tokio::test]
async fn put_accepts_real_world_quirks_and_keeps_the_bytes() {
    let (s, book) = setup().await;
    // Bare LF line ends, lowercase names, a tab continuation, a quoted-printable FN from an old
    // exporter, repeated type parameters and RFC 6868 ^-encoding; no Content-Type at all.
    let card = "BEGIN:VCARD\nVERSION:3.0\nuid:quirky-1\n\
fn;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Ren=C3=A9 Dupont\n\
n:Dupont;René;;;\n\
email;type=WORK;type=pref:rene@example.fr\n\
item1.tel;type=HOME:+33 1 23 45 67 89\n\
note:A note folded with a tab\n\tcontinuation\n\
X-CUSTOM;X-LABEL=say ^'hi^':value\n\
bday:--1224\n\
END:VCARD\n";
    let r = book
        .req("PUT", &book.card("quirky.vcf"))
        .body(card)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let etag = header(&r, "etag");
    let text = r.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    let (get_etag, body) = book.get_card(&book.card("quirky.vcf")).await;
    assert_eq!(Some(get_etag), etag);
    assert_eq!(body, card, "stored byte for byte, LF line ends included");
    let c = customer_by_card_name(&s, "acme", "quirky").await;
    assert_eq!(c["name"], "René Dupont");
    assert_eq!(c["email"], "rene@example.fr");
    assert_eq!(c["phone"], "+33 1 23 45 67 89");
    assert_eq!(c["note"], "A note folded with a tabcontinuation");
    assert_eq!(c["birthday"], "--12-24");
    s.stop().await;
}

#[tokio::test]
async fn an_admin_delete_of_a_client_card_is_a_tombstone_at_the_clients_href() {
    let (s, book) = setup().await;
    let href = book.card("Client-Name-42.vcf");
    book.create_card("Client-Name-42.vcf", &vcard3("cn-42", "Client Made", &[]))
        .await;
    let token = book.sync_token().await;
    let id = customer_by_card_name(&s, "acme", "Client-Name-42").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    delete_customer(&s, "acme", &id).await;
    assert_eq!(book.get(&href).await.status(), 404);
    let delta = book.sync(Some(&token), None).await;
    let tomb = delta.only();
    assert_eq!(percent_decode(&tomb.href), href);
    assert_eq!(tomb.status, Some(404));
    s.stop().await;
}

#[tokio::test]
async fn if_match_star_needs_an_existing_card() {
    let (s, book) = setup().await;
    let r = book
        .put(
            &book.card("star.vcf"),
            &vcard3("star-1", "Star", &[]),
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(r.status(), 412, "If-Match: * on a missing card");
    assert_eq!(book.get(&book.card("star.vcf")).await.status(), 404);
    book.create_card("star.vcf", &vcard3("star-1", "Star", &[]))
        .await;
    let v2 = vcard3("star-1", "Star Two", &[]);
    let r = book
        .put(&book.card("star.vcf"), &v2, &[("if-match", "*")])
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(book.get_card(&book.card("star.vcf")).await.1, v2);
    s.stop().await;
}

#[tokio::test]
async fn concurrent_creates_of_the_same_name_one_wins() {
    let (s, book) = setup().await;
    for round in 0..6 {
        let file = format!("new-{round}.vcf");
        let href = book.card(&file);
        let a = vcard3(&format!("new-{round}"), "Writer A", &[]);
        let b = vcard3(&format!("new-{round}"), "Writer B", &[]);
        let condition = [("if-none-match", "*")];
        let (ra, rb) = tokio::join!(
            book.put(&href, &a, &condition),
            book.put(&href, &b, &condition),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 412], "round {round}");
        let winner = if ra.status() == 201 { &a } else { &b };
        assert_eq!(&book.get_card(&href).await.1, winner);
    }
    assert_eq!(all_customers(&s, "acme").await.len(), 6, "no duplicates");
    s.stop().await;
}
