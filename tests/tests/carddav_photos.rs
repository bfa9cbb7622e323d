//! Photos in cards over a real socket (issue 10, "Photos"): inline 3.0 base64, 4.0 `data:` URIs
//! and URI references read back byte for byte with the same ETag; the photos are stored apart
//! from the card text, so listings and reports without `address-data` never read them (observed
//! through the store's own operation counter in `/metrics`); version conversion keeps them;
//! oversize photos are refused with `max-resource-size` and change nothing; admin edits keep
//! them; DELETE removes them from the store; organizations never see each other's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_sdk::{CustomerId, OrgId};
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::json;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `n` characters of base64-looking data, different per `seed`.
fn b64(n: usize, seed: usize) -> String {
    (0..n)
        .map(|i| ALPHABET[(i * 7 + seed * 13 + i / 64) % 64] as char)
        .collect()
}

/// A content line folded at 75 octets with CRLF + space (RFC 6350 §3.2), CRLF at the end.
fn folded(line: &str) -> String {
    let mut out = String::new();
    for (i, chunk) in line.as_bytes().chunks(74).enumerate() {
        if i > 0 {
            out.push_str("\r\n ");
        }
        out.push_str(std::str::from_utf8(chunk).unwrap());
    }
    out + "\r\n"
}

/// A vCard 3.0 as Apple Contacts writes it, with an inline JPEG of `n` base64 characters.
fn card_v3_photo(uid: &str, name: &str, photo: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.0//EN\r\nN:{name};;;;\r\n\
         FN:{name}\r\nTEL;type=CELL;type=VOICE;type=pref:+44 20 7946 0000\r\n{}UID:{uid}\r\nEND:VCARD\r\n",
        folded(&format!("PHOTO;ENCODING=b;TYPE=JPEG:{photo}"))
    )
}

/// A vCard 4.0 with a `data:` URI photo and a URI-reference logo.
fn card_v4_photo(uid: &str, name: &str, photo: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{name}\r\n{}\
         LOGO;VALUE=uri:https://example.com/logo.png\r\nEMAIL:x@example.com\r\nEND:VCARD\r\n",
        folded(&format!("PHOTO:data:image/jpeg;base64,{photo}"))
    )
}

/// How often the store's `get_card_media` ran, from `/metrics`.
async fn media_reads(s: &TestServer) -> u64 {
    let body = s
        .req("GET", "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("portico_store_operation_duration_seconds_count{")?;
            let (labels, n) = rest.split_once("} ")?;
            labels
                .contains("op=\"get_card_media\"")
                .then(|| n.trim().parse::<f64>().unwrap() as u64)
        })
        .unwrap_or(0)
}

async fn media_count(s: &TestServer, org: &str) -> u64 {
    s.portico
        .store
        .count_card_media(&OrgId::parse(org).unwrap())
        .await
        .unwrap()
}

fn multiget_props(hrefs: &[String], prop: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<C:addressbook-multiget xmlns:D=\"DAV:\" \
         xmlns:C=\"{CARD}\"><D:prop><D:getetag/><D:getcontentlength/>{prop}</D:prop>"
    );
    for h in hrefs {
        out.push_str(&format!("<D:href>{}</D:href>", xml_escape(h)));
    }
    out + "</C:addressbook-multiget>"
}

#[tokio::test]
async fn photos_read_back_byte_for_byte_with_the_put_etag() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let v3 = card_v3_photo("ann-uid", "Ann Lee", &b64(60_000, 1));
    let v4 = card_v4_photo("bob-uid", "Bob Stone", &b64(40_000, 2));
    let e3 = book.create_card("ann.vcf", &v3).await;
    let e4 = book.create_card("bob.vcf", &v4).await;
    assert_eq!(
        book.get_card(&book.card("ann.vcf")).await,
        (e3.clone(), v3.clone())
    );
    assert_eq!(
        book.get_card(&book.card("bob.vcf")).await,
        (e4.clone(), v4.clone())
    );
    // The record keeps the text without the photo; the photo lives apart.
    let ann = customer_by_card_name(&s, "acme", "ann").await;
    let stored = ann["card"]["text"].as_str().unwrap();
    assert!(
        !stored.contains("PHOTO"),
        "photo cut out of the stored text"
    );
    assert_eq!(ann["card"]["media"].as_array().unwrap().len(), 1);
    assert_eq!(
        media_count(&s, "acme").await,
        2,
        "one photo per card; the URI logo stays inline"
    );

    // getcontentlength is the full size without reading the photo.
    let before = media_reads(&s).await;
    let ms = book
        .props(
            &book.card("ann.vcf"),
            "0",
            &[(DAV, "getcontentlength"), (DAV, "getetag")],
        )
        .await;
    let r = ms.only();
    assert_eq!(r.ok(DAV, "getcontentlength").text, v3.len().to_string());
    assert_eq!(r.ok(DAV, "getetag").text, e3);
    assert_eq!(media_reads(&s).await, before);

    // If-None-Match with the PUT's ETag: 304 (the ETag is over the bytes with the photo).
    let r = book
        .req("GET", &book.card("ann.vcf"))
        .header("if-none-match", &e3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn version_conversion_keeps_the_photo() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let photo3 = b64(9_000, 3);
    let photo4 = b64(7_000, 4);
    book.create_card("ann.vcf", &card_v3_photo("ann-uid", "Ann", &photo3))
        .await;
    book.create_card("bob.vcf", &card_v4_photo("bob-uid", "Bob", &photo4))
        .await;

    let r = book
        .req("GET", &book.card("ann.vcf"))
        .header("accept", "text/vcard; version=4.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let as4 = r.text().await.unwrap();
    assert_eq!(card_value(&as4, "VERSION").as_deref(), Some("4.0"));
    assert_eq!(
        card_value(&as4, "PHOTO"),
        Some(format!("data:image/jpeg;base64,{photo3}")),
        "3.0 inline base64 becomes a 4.0 data: URI with the same bytes"
    );

    let hrefs = vec![book.card("bob.vcf")];
    let ms = book
        .report_ms(&book.book(), &multiget_body(&hrefs, "version=\"3.0\""))
        .await;
    let as3 = ms.only().ok(CARD, "address-data").text.clone();
    assert_eq!(card_value(&as3, "VERSION").as_deref(), Some("3.0"));
    let photo_line = unfolded_lines(&as3)
        .into_iter()
        .find(|l| l.starts_with("PHOTO"))
        .expect("a PHOTO line");
    assert!(
        photo_line.to_ascii_uppercase().contains("ENCODING=B")
            && photo_line.ends_with(&format!(":{photo4}")),
        "4.0 data: URI becomes 3.0 inline base64 with the same bytes: {}",
        &photo_line[..60]
    );
}

#[tokio::test]
async fn listings_and_reports_without_address_data_never_read_photos() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let mut cards = Vec::new();
    for i in 0..6 {
        let card = if i % 2 == 0 {
            card_v3_photo(&format!("u{i}"), &format!("P {i}"), &b64(20_000, i))
        } else {
            card_v4_photo(&format!("u{i}"), &format!("P {i}"), &b64(20_000, i))
        };
        let etag = book.create_card(&format!("c{i}.vcf"), &card).await;
        cards.push((book.card(&format!("c{i}.vcf")), card, etag));
    }
    let hrefs: Vec<String> = cards.iter().map(|c| c.0.clone()).collect();
    let start = media_reads(&s).await;

    // PROPFIND Depth 1 (what every client does first), with lengths and ETags.
    let r = book
        .propfind(
            &book.book(),
            "1",
            &propfind_body(&[
                (DAV, "getetag"),
                (DAV, "getcontentlength"),
                (DAV, "resourcetype"),
            ]),
        )
        .await;
    let bytes = r.text().await.unwrap();
    let ms = Multistatus::parse(&bytes);
    for (href, card, etag) in &cards {
        let m = ms.get(href);
        assert_eq!(&m.ok(DAV, "getetag").text, etag);
        assert_eq!(m.ok(DAV, "getcontentlength").text, card.len().to_string());
    }
    assert!(
        bytes.len() < 20_000,
        "the listing carries no photo ({} bytes)",
        bytes.len()
    );
    // sync-collection (initial and incremental) asking for ETags.
    let ms = book.sync(None, None).await;
    assert_eq!(ms.members().len(), 6);
    let token = ms.sync_token.clone().expect("token");
    book.put(&cards[0].0, &cards[0].1.replace("P 0", "P zero"), &[])
        .await;
    let ms = book.sync(Some(&token), None).await;
    assert_eq!(ms.members().len(), 1);
    // Multiget without address-data, and with a selection that does not name PHOTO.
    let ms = book
        .report_ms(&book.book(), &multiget_props(&hrefs, ""))
        .await;
    assert_eq!(ms.members().len(), 6);
    let sel = "<C:address-data><C:prop name=\"FN\"/><C:prop name=\"UID\"/></C:address-data>";
    let ms = book
        .report_ms(&book.book(), &multiget_props(&hrefs, sel))
        .await;
    let data = &ms.get(&hrefs[1]).ok(CARD, "address-data").text;
    assert!(data.contains("FN:P 1") && !data.contains("PHOTO"), "{data}");
    assert_eq!(
        media_reads(&s).await,
        start,
        "no store read of photo bytes for listings, sync or multiget without address-data"
    );

    // With address-data: one read per card, exact bytes.
    let ms = book
        .report_ms(&book.book(), &multiget_body(&hrefs, ""))
        .await;
    for (href, card, _) in cards.iter().skip(1) {
        assert_eq!(&ms.get(href).ok(CARD, "address-data").text, card);
    }
    assert_eq!(media_reads(&s).await, start + 6);
    // A sync-collection asking for address-data streams the photos too.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:sync-collection xmlns:D=\"DAV:\" \
         xmlns:C=\"{CARD}\"><D:sync-token/><D:sync-level>1</D:sync-level>\
         <D:prop><D:getetag/><C:address-data/></D:prop></D:sync-collection>"
    );
    let ms = book.report_ms(&book.book(), &body).await;
    for (href, card, _) in cards.iter().skip(1) {
        assert_eq!(&ms.get(href).ok(CARD, "address-data").text, card);
    }
    assert_eq!(media_reads(&s).await, start + 12);
}

#[tokio::test]
async fn oversize_photos_are_refused_with_max_resource_size_and_change_nothing() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    // The advertised limit is text (1 MiB) + photos (3 MiB).
    let ms = book
        .props(&book.book(), "0", &[(CARD, "max-resource-size")])
        .await;
    assert_eq!(
        ms.only().ok(CARD, "max-resource-size").text,
        (4u64 << 20).to_string()
    );
    let card = card_v3_photo("ann-uid", "Ann", &b64(2_000_000, 5));
    let etag = book.create_card("ann.vcf", &card).await;
    assert_eq!(media_count(&s, "acme").await, 1);

    // A photo above 3 MiB in a card under the advertised total: refused all the same.
    let big = card_v3_photo("ann-uid", "Ann", &b64(3_200_000, 6));
    assert!(big.len() < 4 << 20);
    let r = book.put(&book.card("ann.vcf"), &big, &[]).await;
    expect_error(r, 403, CARD, "max-resource-size").await;
    // A new card with it too.
    let r = book
        .put(
            &book.card("new.vcf"),
            &big.replace("ann-uid", "new-uid"),
            &[],
        )
        .await;
    expect_error(r, 403, CARD, "max-resource-size").await;
    // Above the advertised total.
    let huge = card_v4_photo("ann-uid", "Ann", &b64(4_300_000, 7));
    let r = book.put(&book.card("ann.vcf"), &huge, &[]).await;
    assert!(r.status() == 403 || r.status() == 413, "{}", r.status());
    // Nothing changed.
    assert_eq!(book.get_card(&book.card("ann.vcf")).await, (etag, card));
    assert_eq!(book.get(&book.card("new.vcf")).await.status(), 404);
    assert_eq!(media_count(&s, "acme").await, 1);
}

#[tokio::test]
async fn admin_edit_keeps_the_photo_and_replace_and_delete_remove_it() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let photo = b64(12_000, 8);
    let card = card_v3_photo("ann-uid", "Ann Lee", &photo);
    book.create_card("ann.vcf", &card).await;
    let ann = customer_by_card_name(&s, "acme", "ann").await;
    let id = ann["id"].as_str().unwrap().to_owned();
    let key = ann["card"]["media"][0]["key"].as_str().unwrap().to_owned();

    // An admin edit of another field: the card changes there, the photo stays (same piece).
    let (status, _) = patch_customer(&s, "acme", &id, json!({ "note": "prefers mornings" })).await;
    assert_eq!(status, 200);
    let (_, after) = book.get_card(&book.card("ann.vcf")).await;
    assert_eq!(
        card_value(&after, "NOTE").as_deref(),
        Some("prefers mornings")
    );
    assert_eq!(
        card_value(&after, "PHOTO").as_deref(),
        Some(photo.as_str()),
        "the photo survives the admin edit"
    );
    assert!(after.contains(&folded(&format!("PHOTO;ENCODING=b;TYPE=JPEG:{photo}"))));
    let edited = customer_by_card_name(&s, "acme", "ann").await;
    assert_eq!(edited["card"]["media"][0]["key"], key, "no bytes moved");
    assert_eq!(media_count(&s, "acme").await, 1);

    // A client replacing the card replaces the photo.
    let photo2 = b64(5_000, 9);
    let card2 = card_v3_photo("ann-uid", "Ann Lee", &photo2);
    let r = book.put(&book.card("ann.vcf"), &card2, &[]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(book.get_card(&book.card("ann.vcf")).await.1, card2);
    let store = &s.portico.store;
    let (org, cid) = (
        OrgId::parse("acme").unwrap(),
        CustomerId::parse(&id).unwrap(),
    );
    assert_eq!(
        store.get_card_media(&org, &cid, &[key]).await.unwrap(),
        vec![None],
        "the old photo is gone from the store"
    );
    assert_eq!(media_count(&s, "acme").await, 1);

    // A card without a photo drops it.
    let plain = vcard3("ann-uid", "Ann Lee", &[]);
    book.put(&book.card("ann.vcf"), &plain, &[]).await;
    assert_eq!(media_count(&s, "acme").await, 0);
    book.put(&book.card("ann.vcf"), &card2, &[]).await;
    assert_eq!(media_count(&s, "acme").await, 1);

    // DELETE removes the photo from the store.
    let r = book
        .req("DELETE", &book.card("ann.vcf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(media_count(&s, "acme").await, 0);
}

#[tokio::test]
async fn organizations_never_see_each_others_photos() {
    let s = TestServer::start().await;
    let a = Book::install(&s, "acme").await;
    let b = Book::install(&s, "beta").await;
    let ca = card_v3_photo("same-uid", "Ann", &b64(8_000, 10));
    let cb = card_v4_photo("same-uid", "Bea", &b64(8_000, 11));
    a.create_card("same.vcf", &ca).await;
    b.create_card("same.vcf", &cb).await;
    assert_eq!(a.get_card(&a.card("same.vcf")).await.1, ca);
    assert_eq!(b.get_card(&b.card("same.vcf")).await.1, cb);
    // B asking for A's href gets a 404 response, never A's data.
    let ms = b
        .report_ms(&b.book(), &multiget_body(&[a.card("same.vcf")], ""))
        .await;
    let r = ms.only();
    assert!(r.prop(CARD, "address-data").is_none());
    // A's piece is not reachable through B's organization, even with its key.
    let ann = customer_by_card_name(&s, "acme", "same").await;
    let key = ann["card"]["media"][0]["key"].as_str().unwrap().to_owned();
    let cid = CustomerId::parse(ann["id"].as_str().unwrap()).unwrap();
    let beta = OrgId::parse("beta").unwrap();
    assert_eq!(
        s.portico
            .store
            .get_card_media(&beta, &cid, &[key])
            .await
            .unwrap(),
        vec![None]
    );
    let r = b.req("DELETE", &b.card("same.vcf")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(media_count(&s, "beta").await, 0);
    assert_eq!(media_count(&s, "acme").await, 1, "A's photo stays");
    assert_eq!(a.get_card(&a.card("same.vcf")).await.1, ca);
}

/// What a crash can leave behind, made by hand through the store: a photo no card names is
/// garbage that is never served; a card naming a photo the store lacks is detected (500 for
/// that card, the rest of a report answers normally, nothing served as if it were whole).
#[tokio::test]
async fn orphaned_photos_are_never_served_and_missing_ones_are_detected() {
    use portico_sdk::{CardMedia, CustomerDraft, StoredCard, Timestamp};
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let card = card_v3_photo("ann-uid", "Ann", &b64(4_000, 12));
    let etag = book.create_card("ann.vcf", &card).await;
    let ann = customer_by_card_name(&s, "acme", "ann").await;
    let cid = CustomerId::parse(ann["id"].as_str().unwrap()).unwrap();
    let org = OrgId::parse("acme").unwrap();
    let store = &s.portico.store;

    // Garbage: a piece under the customer that its card does not name.
    let orphan = "PHOTO;ENCODING=b;TYPE=JPEG:T1JQSEFO\r\n".to_owned();
    store
        .import_card_media(&org, &cid, &[("orphan".into(), orphan)])
        .await
        .unwrap();
    assert_eq!(media_count(&s, "acme").await, 2);
    assert_eq!(
        book.get_card(&book.card("ann.vcf")).await,
        (etag, card.clone())
    );

    // Damaged: a record naming a piece the store does not hold.
    let text = vcard3("bad-uid", "Broken", &[]);
    let draft = CustomerDraft {
        name: "Broken".into(),
        card: Some(StoredCard {
            name: "broken".into(),
            uid: "bad-uid".into(),
            etag: "\"damaged\"".into(),
            media: vec![CardMedia {
                offset: (text.len() - "END:VCARD\r\n".len()) as u64,
                len: 40,
                key: "gone".into(),
            }],
            text,
        }),
        ..Default::default()
    };
    let broken = draft.into_customer(CustomerId::parse("broken-1").unwrap(), 1, Timestamp(1));
    store.import_customers(&org, &[broken]).await.unwrap();
    let r = book.get(&book.card("broken.vcf")).await;
    assert_eq!(r.status(), 500, "a damaged card is never served as whole");
    let hrefs = vec![book.card("ann.vcf"), book.card("broken.vcf")];
    let ms = book
        .report_ms(&book.book(), &multiget_body(&hrefs, ""))
        .await;
    assert_eq!(ms.get(&hrefs[0]).ok(CARD, "address-data").text, card);
    let damaged = ms.get(&hrefs[1]);
    assert!(damaged.prop(CARD, "address-data").is_none());
    assert_eq!(
        damaged.status,
        Some(500),
        "the damaged card answers 500 inside the multistatus"
    );
    // Listings without address-data still list it (its ETag and size are in the record).
    let ms = book
        .propfind_ms(&book.book(), "1", &propfind_body(&[(DAV, "getetag")]))
        .await;
    assert_eq!(ms.get(&hrefs[1]).ok(DAV, "getetag").text, "\"damaged\"");
}

/// Concurrent clients replacing one card's photo: one wins each round, the losers get 412, and
/// the store ends with exactly the winner's photo (no orphan from a lost write).
#[tokio::test]
async fn concurrent_photo_writes_leave_no_orphans() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    book.create_card("ann.vcf", &card_v3_photo("ann-uid", "Ann", &b64(3_000, 20)))
        .await;
    let bodies: Vec<String> = (0..8)
        .map(|i| card_v3_photo("ann-uid", "Ann", &b64(3_000 + i * 10, 21 + i)))
        .collect();
    let mut tasks = Vec::new();
    for body in bodies.clone() {
        let book = book.clone();
        tasks.push(tokio::spawn(async move {
            let href = book.card("ann.vcf");
            book.put(&href, &body, &[]).await.status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 412),
        "{statuses:?}"
    );
    assert!(statuses.contains(&204));
    let (_, now) = book.get_card(&book.card("ann.vcf")).await;
    assert!(
        bodies.contains(&now),
        "the card is one client's bytes exactly"
    );
    assert_eq!(
        media_count(&s, "acme").await,
        1,
        "only the stored card's photo remains"
    );
}
