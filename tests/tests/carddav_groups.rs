//! Contact groups from customer tags over a real socket (issue 10, "Groups"): tags set through
//! the admin API become group cards (Apple's vCard 3.0 form and vCard 4.0 `KIND:group`),
//! members carry `CATEGORIES`, group cards take part in listings, multiget, query, GET and
//! `sync-collection` deltas; a group written on a phone round-trips byte for byte and moves its
//! members' tags; DELETE of a group; isolation between organizations.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::*;
use portico_tests::TestServer;
use serde_json::{json, Value};

const GROUP_PREFIX: &str = "portico-group-";

async fn customer(s: &TestServer, org: &str, name: &str, tags: &[&str]) -> String {
    let c = create_customer(s, org, json!({ "name": name, "tags": tags })).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn set_tags(s: &TestServer, org: &str, id: &str, tags: &[&str]) {
    let (status, body) = patch_customer(s, org, id, json!({ "tags": tags })).await;
    assert_eq!(status, 200, "PATCH tags: {body}");
}

async fn tags(s: &TestServer, org: &str, id: &str) -> Vec<String> {
    let c: Value = get_customer(s, org, id).await.expect("customer exists");
    let mut t: Vec<String> = c["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    t.sort();
    t
}

/// Every member href of the book (PROPFIND Depth 1), with its ETag.
async fn listing(b: &Book) -> Vec<(String, String)> {
    let ms = b.props(&b.book(), "1", &[(DAV, "getetag")]).await;
    let book = b.book();
    ms.members()
        .iter()
        .filter(|r| percent_decode(&r.href) != book)
        .map(|r| (percent_decode(&r.href), r.ok(DAV, "getetag").text.clone()))
        .collect()
}

/// The href of the group card named `name` (found through the listing and GET).
async fn group_href(b: &Book, name: &str) -> Option<String> {
    for (href, _) in listing(b).await {
        let (_, text) = b.get_card(&href).await;
        let is_group = card_value(&text, "X-ADDRESSBOOKSERVER-KIND")
            .or_else(|| card_value(&text, "KIND"))
            .is_some_and(|k| k.eq_ignore_ascii_case("group"));
        if is_group && card_value(&text, "FN").as_deref() == Some(name) {
            return Some(href);
        }
    }
    None
}

fn members(text: &str, prop: &str) -> Vec<String> {
    let mut m: Vec<String> = unfolded_lines(text)
        .into_iter()
        .filter_map(|l| {
            let (head, value) = l.split_once(':')?;
            head.eq_ignore_ascii_case(prop)
                .then(|| value.trim_start_matches("urn:uuid:").to_owned())
        })
        .collect();
    m.sort();
    m
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The hrefs of a multistatus (decoded), with their response status (200 for propstat ones).
fn delta(ms: &Multistatus) -> Vec<(String, u16)> {
    ms.members()
        .iter()
        .map(|r| (percent_decode(&r.href), r.status.unwrap_or(200)))
        .collect()
}

#[tokio::test]
async fn tags_set_in_the_admin_become_group_cards_in_both_versions() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let ann = customer(&s, "acme", "Ann Archer", &["VIP", "Colour, cut"]).await;
    let bob = customer(&s, "acme", "Bob Baker", &["VIP"]).await;
    let _cy = customer(&s, "acme", "Cy Cole", &[]).await;

    // One book: three contacts and two groups, every href once.
    let hrefs: Vec<String> = listing(&b).await.into_iter().map(|(h, _)| h).collect();
    assert_eq!(hrefs.len(), 5, "{hrefs:?}");
    let mut unique = hrefs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), hrefs.len(), "one canonical href each");
    let groups: Vec<&String> = hrefs.iter().filter(|h| h.contains(GROUP_PREFIX)).collect();
    assert_eq!(groups.len(), 2, "{hrefs:?}");
    let home = b.props(&b.home(), "1", &[(DAV, "resourcetype")]).await;
    assert_eq!(
        home.members().len(),
        2,
        "the home and exactly one address book"
    );

    // vCard 3.0 (stored default): Apple's group form, members by card UID.
    let vip = group_href(&b, "VIP").await.expect("a VIP group");
    let (etag3, v3) = b.get_card(&vip).await;
    assert_eq!(
        card_value(&v3, "X-ADDRESSBOOKSERVER-KIND").as_deref(),
        Some("group")
    );
    assert_eq!(
        members(&v3, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(vec![ann.clone(), bob.clone()])
    );
    // (card_value gives the raw value: the comma stays escaped.)
    assert!(group_href(&b, "Colour\\, cut").await.is_some());

    // vCard 4.0 by Accept: KIND:group and MEMBER (RFC 6350 §6.1.4, §6.6.5).
    let r = b
        .req("GET", &vip)
        .header("accept", "text/vcard; version=4.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag4 = header(&r, "etag").unwrap();
    let v4 = r.text().await.unwrap();
    assert_eq!(card_value(&v4, "VERSION").as_deref(), Some("4.0"));
    assert_eq!(card_value(&v4, "KIND").as_deref(), Some("group"));
    assert_eq!(
        members(&v4, "MEMBER"),
        sorted(vec![ann.clone(), bob.clone()])
    );
    assert!(!v4.contains("X-ADDRESSBOOKSERVER"), "{v4}");
    assert_ne!(etag3, etag4, "each version has the ETag of its own bytes");

    // The same through multiget with address-data version="4.0".
    let ms = b
        .report_ms(
            &b.book(),
            &multiget_body(std::slice::from_ref(&vip), "version=\"4.0\""),
        )
        .await;
    let text = &ms.only().ok(CARD, "address-data").text;
    assert_eq!(card_value(text, "KIND").as_deref(), Some("group"));

    // addressbook-query finds the group card like any card.
    let query = format!(
        "<?xml version=\"1.0\"?><C:addressbook-query xmlns:D=\"DAV:\" xmlns:C=\"{CARD}\">\
<D:prop><D:getetag/></D:prop><C:filter><C:prop-filter name=\"X-ADDRESSBOOKSERVER-KIND\">\
<C:text-match collation=\"i;unicode-casemap\" match-type=\"equals\">group</C:text-match>\
</C:prop-filter></C:filter></C:addressbook-query>"
    );
    let found: Vec<String> = b
        .report_ms(&b.book(), &query)
        .await
        .members()
        .iter()
        .map(|r| percent_decode(&r.href))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");

    // A blank tag or one with control characters is refused, and nothing changes.
    for bad in [json!([" "]), json!(["a\u{7}b"])] {
        let (status, body) = patch_customer(&s, "acme", &bob, json!({ "tags": bad })).await;
        assert_eq!(status, 422, "{body}");
    }
    assert_eq!(tags(&s, "acme", &bob).await, vec!["VIP"]);

    // Members carry their tags as CATEGORIES (a comma inside a tag escaped).
    let (_, ann_card) = b.get_card(&b.card(&format!("{ann}.vcf"))).await;
    assert_eq!(
        card_value(&ann_card, "CATEGORIES").as_deref(),
        Some("VIP,Colour\\, cut")
    );
}

#[tokio::test]
async fn sync_collection_reports_group_changes_and_removals() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let ann = customer(&s, "acme", "Ann Archer", &["VIP"]).await;
    let bob = customer(&s, "acme", "Bob Baker", &[]).await;

    let initial = b.sync(None, None).await;
    let vip = group_href(&b, "VIP").await.unwrap();
    let first_etag = initial.get(&vip).ok(DAV, "getetag").text.clone();
    let t0 = initial.sync_token.clone().unwrap();

    // Nothing changed: an empty delta.
    let same = b.sync(Some(&t0), None).await;
    assert!(same.members().is_empty(), "{}", same.body);
    let t0 = same.sync_token.clone().unwrap();

    // A tag added to a customer: the customer and the group, with a new ETag.
    set_tags(&s, "acme", &bob, &["VIP"]).await;
    let d1 = b.sync(Some(&t0), None).await;
    let hrefs = delta(&d1);
    assert!(
        hrefs.contains(&(b.card(&format!("{bob}.vcf")), 200)),
        "{hrefs:?}"
    );
    assert!(hrefs.contains(&(vip.clone(), 200)), "{hrefs:?}");
    assert_eq!(hrefs.len(), 2, "{hrefs:?}");
    let new_etag = d1.get(&vip).ok(DAV, "getetag").text.clone();
    assert_ne!(new_etag, first_etag);
    let (got, text) = b.get_card(&vip).await;
    assert_eq!(got, new_etag);
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(vec![ann.clone(), bob.clone()])
    );
    let t1 = d1.sync_token.clone().unwrap();

    // A change that touches no tag: the customer only, no group.
    let (status, _) = patch_customer(&s, "acme", &ann, json!({ "phone": "+1 555 0100" })).await;
    assert_eq!(status, 200);
    let d2 = b.sync(Some(&t1), None).await;
    assert_eq!(
        delta(&d2),
        vec![(b.card(&format!("{ann}.vcf")), 200)],
        "{}",
        d2.body
    );
    let t2 = d2.sync_token.clone().unwrap();

    // The tag taken from one member: the group changes again.
    set_tags(&s, "acme", &ann, &[]).await;
    let d3 = b.sync(Some(&t2), None).await;
    assert!(delta(&d3).contains(&(vip.clone(), 200)), "{}", d3.body);
    let t3 = d3.sync_token.clone().unwrap();

    // The last carrier loses the tag: the group is gone (404 in the delta, 404 on GET).
    delete_customer(&s, "acme", &bob).await;
    let d4 = b.sync(Some(&t3), None).await;
    let hrefs = delta(&d4);
    assert!(hrefs.contains(&(vip.clone(), 404)), "{hrefs:?}");
    assert!(
        hrefs.contains(&(b.card(&format!("{bob}.vcf")), 404)),
        "{hrefs:?}"
    );
    assert_eq!(b.get(&vip).await.status(), 404);
    assert!(group_href(&b, "VIP").await.is_none());

    // A token from before groups existed (no group position) still works.
    let seq_only = t3.rsplit_once('.').unwrap().0.to_owned();
    let old = b.sync(Some(&seq_only), None).await;
    assert!(old.sync_token.is_some());
}

fn phone_group(uid: &str, name: &str, member_uids: &[&str]) -> String {
    let mut lines = vec![
        "BEGIN:VCARD".to_owned(),
        "VERSION:3.0".to_owned(),
        "PRODID:-//Apple Inc.//iPhone OS 17.4//EN".to_owned(),
        format!("N:{name}"),
        format!("FN:{name}"),
        "X-ADDRESSBOOKSERVER-KIND:group".to_owned(),
    ];
    for m in member_uids {
        lines.push(format!("X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{m}"));
    }
    lines.push("X-ABC-CUSTOM;x-apple=1:kept as written".to_owned());
    lines.push(format!("UID:{uid}"));
    lines.push("REV:2026-01-05T10:00:00Z".to_owned());
    lines.push("END:VCARD".to_owned());
    lines.join("\r\n") + "\r\n"
}

#[tokio::test]
async fn a_group_written_on_the_phone_round_trips_and_moves_tags() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let ann = customer(&s, "acme", "Ann Archer", &[]).await;
    let bob = customer(&s, "acme", "Bob Baker", &[]).await;
    let cy = customer(&s, "acme", "Cy Cole", &["Staff"]).await;
    // A contact written on the phone, with the phone's UID.
    b.create_card(
        "D0E1.vcf",
        &vcard3("D0E1-PHONE-UID", "Dee Dunn", &["N:Dunn;Dee;;;"]),
    )
    .await;
    let dee = customer_by_card_name(&s, "acme", "D0E1").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let href = b.card("6A1F-GROUP.vcf");
    let card = phone_group(
        "6A1F-GROUP",
        "Friends",
        &[&ann, "D0E1-PHONE-UID", "NOT-A-CONTACT"],
    );
    let etag = b.create_card("6A1F-GROUP.vcf", &card).await;
    let (got_etag, got) = b.get_card(&href).await;
    assert_eq!(got, card, "byte for byte");
    assert_eq!(got_etag, etag);
    assert_eq!(tags(&s, "acme", &ann).await, vec!["Friends"]);
    assert_eq!(tags(&s, "acme", &dee).await, vec!["Friends"]);
    assert!(tags(&s, "acme", &bob).await.is_empty());
    let (_, ann_card) = b.get_card(&b.card(&format!("{ann}.vcf"))).await;
    assert_eq!(
        card_value(&ann_card, "CATEGORIES").as_deref(),
        Some("Friends")
    );

    // Listed once, at the phone's href.
    let hrefs: Vec<String> = listing(&b).await.into_iter().map(|(h, _)| h).collect();
    assert_eq!(hrefs.iter().filter(|h| **h == href).count(), 1, "{hrefs:?}");
    assert_eq!(
        group_href(&b, "Friends").await,
        Some(href.clone()),
        "no second Friends group"
    );

    // Edited on the phone: a stale If-Match is refused and changes nothing.
    let edit = phone_group("6A1F-GROUP", "Friends", &[&bob, &cy, "NOT-A-CONTACT"]);
    let r = b.put(&href, &edit, &[("if-match", "\"stale\"")]).await;
    assert_eq!(r.status(), 412);
    assert_eq!(b.get_card(&href).await.1, card);
    let r = b.put(&href, &edit, &[("if-match", &etag)]).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    let (etag2, got) = b.get_card(&href).await;
    assert_eq!(got, edit);
    assert!(tags(&s, "acme", &ann).await.is_empty(), "removed member");
    assert!(tags(&s, "acme", &dee).await.is_empty(), "removed member");
    assert_eq!(tags(&s, "acme", &bob).await, vec!["Friends"]);
    assert_eq!(tags(&s, "acme", &cy).await, vec!["Friends", "Staff"]);

    // The admin adds the tag to Ann: only a member line is added to the phone's card.
    let token = b.sync_token().await;
    set_tags(&s, "acme", &ann, &["Friends"]).await;
    let (etag3, patched) = b.get_card(&href).await;
    assert_ne!(etag3, etag2);
    assert_eq!(
        patched,
        edit.replace(
            "END:VCARD",
            &format!("X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{ann}\r\nEND:VCARD")
        )
        .replace(
            "REV:2026-01-05T10:00:00Z",
            &format!("REV:{}", card_value(&patched, "REV").unwrap())
        )
    );
    let d = b.sync(Some(&token), None).await;
    assert!(delta(&d).contains(&(href.clone(), 200)), "{}", d.body);

    // The group cannot be taken by a contact card, nor a contact by a group card.
    let r = b.put(&href, &vcard3("X-1", "Someone", &[]), &[]).await;
    assert_eq!(r.status(), 409);
    let r = b
        .put(
            &b.card(&format!("{bob}.vcf")),
            &phone_group("G-2", "Other", &[]),
            &[],
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = b
        .put(
            &b.card(&format!("{GROUP_PREFIX}x.vcf")),
            &vcard3("X-2", "Someone", &[]),
            &[],
        )
        .await;
    assert_eq!(r.status(), 409);
    // A second group with the same name is refused; so is a group reusing a contact's UID.
    let r = b
        .put(
            &b.card("other.vcf"),
            &phone_group("G-3", "Friends", &[]),
            &[],
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = b
        .put(
            &b.card("other.vcf"),
            &phone_group("D0E1-PHONE-UID", "Other", &[]),
            &[],
        )
        .await;
    expect_error(r, 409, CARD, "no-uid-conflict").await;

    // DELETE: If-Match applies; the members lose the tag, the card is gone.
    let r = b
        .req("DELETE", &href)
        .header("if-match", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = b
        .req("DELETE", &href)
        .header("if-match", &etag3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(b.get(&href).await.status(), 404);
    for id in [&ann, &bob] {
        assert!(tags(&s, "acme", id).await.is_empty(), "{id}");
    }
    assert_eq!(tags(&s, "acme", &cy).await, vec!["Staff"]);
    let d = b.sync(Some(&token), None).await;
    assert!(delta(&d).contains(&(href.clone(), 404)), "{}", d.body);
}

#[tokio::test]
async fn a_vcard_4_group_round_trips_and_can_be_renamed() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let ann = customer(&s, "acme", "Ann Archer", &[]).await;
    let card = [
        "BEGIN:VCARD",
        "VERSION:4.0",
        "UID:urn:uuid:0b7e7a52-group",
        "FN:Regulars",
        "KIND:group",
        &format!("MEMBER:urn:uuid:{ann}"),
        "END:VCARD",
        "",
    ]
    .join("\r\n");
    let href = b.card("regulars.vcf");
    let etag = b.create_card("regulars.vcf", &card).await;
    assert_eq!(b.get_card(&href).await, (etag.clone(), card.clone()));
    assert_eq!(tags(&s, "acme", &ann).await, vec!["Regulars"]);
    // For a 3.0 client the same group in Apple's form.
    let r = b
        .req("GET", &href)
        .header("accept", "text/vcard; version=3.0")
        .send()
        .await
        .unwrap();
    let v3 = r.text().await.unwrap();
    assert_eq!(
        card_value(&v3, "X-ADDRESSBOOKSERVER-KIND").as_deref(),
        Some("group")
    );
    assert_eq!(
        members(&v3, "X-ADDRESSBOOKSERVER-MEMBER"),
        vec![ann.clone()]
    );

    // Renamed on the phone: the tag follows, the href stays, listed once.
    let token = b.sync_token().await;
    let renamed = card.replace("FN:Regulars", "FN:Regular clients");
    let r = b.put(&href, &renamed, &[("if-match", &etag)]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(b.get_card(&href).await.1, renamed);
    assert_eq!(tags(&s, "acme", &ann).await, vec!["Regular clients"]);
    let d = b.sync(Some(&token), None).await;
    let hrefs = delta(&d);
    assert_eq!(
        hrefs.iter().filter(|(h, _)| *h == href).count(),
        1,
        "{hrefs:?}"
    );
    assert!(hrefs.contains(&(href.clone(), 200)), "{hrefs:?}");
}

#[tokio::test]
async fn groups_never_cross_organizations() {
    let s = TestServer::start().await;
    let acme = Book::install(&s, "acme").await;
    let other = Book::install(&s, "other").await;
    let ann = customer(&s, "acme", "Ann Archer", &["VIP"]).await;
    let _zed = customer(&s, "other", "Zed Zane", &["Partners"]).await;

    let acme_vip = group_href(&acme, "VIP").await.unwrap();
    assert!(group_href(&acme, "Partners").await.is_none());
    assert!(group_href(&other, "VIP").await.is_none());
    // Acme's group href in the other book: 404 (same path below the other base).
    let stem = acme_vip.rsplit('/').next().unwrap();
    assert_eq!(other.get(&other.card(stem)).await.status(), 404);
    // A group on the other book naming acme's customer's UID changes nothing at acme.
    other
        .create_card("g.vcf", &phone_group("G-OTHER", "Poach", &[&ann]))
        .await;
    assert_eq!(tags(&s, "acme", &ann).await, vec!["VIP"]);
    assert!(group_href(&acme, "Poach").await.is_none());
    let initial = other.sync(None, None).await;
    assert!(
        !initial.body.contains(&ann),
        "no trace of acme's customer: {}",
        initial.body
    );
}

#[tokio::test]
async fn concurrent_tag_changes_leave_the_group_exact() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let mut ids = Vec::new();
    for i in 0..24 {
        ids.push(customer(&s, "acme", &format!("Person {i}"), &[]).await);
    }
    // Everyone gets the tag at once (each admin write reconciles the group on its own).
    let adds = ids.iter().map(|id| set_tags(&s, "acme", id, &["VIP"]));
    futures_util::future::join_all(adds).await;
    let vip = group_href(&b, "VIP").await.unwrap();
    let (_, text) = b.get_card(&vip).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(ids.clone())
    );

    // Half lose it while the other half get a second tag, all at once.
    let (leave, stay) = ids.split_at(12);
    let removes = leave.iter().map(|id| set_tags(&s, "acme", id, &[]));
    let seconds = stay
        .iter()
        .map(|id| set_tags(&s, "acme", id, &["VIP", "Staff"]));
    futures_util::future::join(
        futures_util::future::join_all(removes),
        futures_util::future::join_all(seconds),
    )
    .await;
    let (_, text) = b.get_card(&vip).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(stay.to_vec())
    );
    let staff = group_href(&b, "Staff").await.unwrap();
    let (_, text) = b.get_card(&staff).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(stay.to_vec())
    );

    // A contact deleted on the phone leaves its groups.
    let gone = &stay[0];
    let r = b
        .req("DELETE", &b.card(&format!("{gone}.vcf")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, text) = b.get_card(&vip).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(stay[1..].to_vec())
    );
}

#[tokio::test]
async fn tags_set_before_the_app_was_installed_become_groups() {
    let s = TestServer::start().await;
    s.org("acme").await;
    // No installation yet: no app hook runs for these writes.
    let ann = customer(&s, "acme", "Ann Archer", &["VIP"]).await;
    let bob = customer(&s, "acme", "Bob Baker", &["VIP", "Staff"]).await;
    let inst = s.install("acme", "carddav").await;
    let b = Book::from_install(&s, "acme", &inst);
    let vip = group_href(&b, "VIP").await.expect("built at install");
    let (_, text) = b.get_card(&vip).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        sorted(vec![ann, bob.clone()])
    );
    let staff = group_href(&b, "Staff").await.expect("built at install");
    let (_, text) = b.get_card(&staff).await;
    assert_eq!(members(&text, "X-ADDRESSBOOKSERVER-MEMBER"), vec![bob]);
}

#[tokio::test]
async fn clients_that_edit_categories_edit_the_tags() {
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let card = |cats: Option<&str>| {
        let mut lines = vec![
            "BEGIN:VCARD",
            "VERSION:4.0",
            "UID:urn:uuid:5d1e-davx5",
            "FN:Dana Dale",
        ];
        if let Some(c) = cats {
            lines.push(c);
        }
        lines.push("END:VCARD");
        lines.join("\r\n") + "\r\n"
    };
    let href = b.card("5d1e.vcf");
    let etag = b
        .create_card("5d1e.vcf", &card(Some("CATEGORIES:VIP,Staff")))
        .await;
    let id = customer_by_card_name(&s, "acme", "5d1e").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(tags(&s, "acme", &id).await, vec!["Staff", "VIP"]);
    let vip = group_href(&b, "VIP").await.expect("VIP group");
    let (_, text) = b.get_card(&vip).await;
    assert_eq!(
        members(&text, "X-ADDRESSBOOKSERVER-MEMBER"),
        vec!["urn:uuid:5d1e-davx5"
            .trim_start_matches("urn:uuid:")
            .to_owned()]
    );
    let token = b.sync_token().await;

    // One category removed: the contact leaves that group (its last member: gone).
    let r = b
        .put(
            &href,
            &card(Some("CATEGORIES:Staff")),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status(), 204);
    let etag = header(&r, "etag").unwrap();
    assert_eq!(tags(&s, "acme", &id).await, vec!["Staff"]);
    let d = b.sync(Some(&token), None).await;
    assert!(delta(&d).contains(&(vip.clone(), 404)), "{}", d.body);

    // A client that does not know CATEGORIES (no line at all) leaves the tags alone.
    let r = b.put(&href, &card(None), &[("if-match", &etag)]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(tags(&s, "acme", &id).await, vec!["Staff"]);
    assert!(group_href(&b, "Staff").await.is_some());
}

#[tokio::test]
async fn multigets_across_lookup_batches_answer_every_href_once_in_request_order() {
    // The multiget looks hrefs up in batches (64 at a time, customers first, then groups among
    // the rest): a request longer than several batches, with groups, missing cards, hrefs
    // outside the book and repeats placed on and across batch boundaries, must still be
    // answered href by href in the order asked, each resource once.
    let s = TestServer::start().await;
    let b = Book::install(&s, "acme").await;
    let other = Book::install(&s, "globex").await;
    let outsider = customer(&s, "globex", "Other Org", &["VIP"]).await;
    for i in 0..140 {
        let tags: &[&str] = match i % 3 {
            0 => &["VIP"],
            1 => &["Staff", "VIP"],
            _ => &[],
        };
        customer(&s, "acme", &format!("Person {i:03}"), tags).await;
    }
    let mut hrefs: Vec<String> = listing(&b).await.into_iter().map(|(h, _)| h).collect();
    assert_eq!(hrefs.len(), 142, "140 contacts and 2 groups");
    hrefs.reverse();
    let groups: Vec<String> = hrefs
        .iter()
        .filter(|h| h.contains(GROUP_PREFIX))
        .cloned()
        .collect();
    let missing = b.card("nobody.vcf");
    let foreign = other.card(&format!("{outsider}.vcf"));
    let mut request = hrefs.clone();
    request.insert(63, missing.clone());
    request.insert(64, groups[0].clone());
    request.insert(65, hrefs[0].clone()); // a repeat, one batch after its first
    request.insert(127, foreign.clone());
    request.insert(128, b.home());
    request.push(groups[1].clone());
    request.push(missing.clone());

    let ms = b.report_ms(&b.book(), &multiget_body(&request, "")).await;
    let mut expected: Vec<String> = Vec::new();
    for h in &request {
        if !expected.contains(h) {
            expected.push(h.clone());
        }
    }
    let got: Vec<String> = ms
        .responses
        .iter()
        .map(|r| percent_decode(&r.href))
        .collect();
    assert_eq!(got, expected, "one response per href, in request order");
    for r in &ms.responses {
        let href = percent_decode(&r.href);
        if href == missing || href == foreign || href == b.home() {
            assert_eq!(r.status, Some(404), "{href}: {}", ms.body);
            assert!(r.propstats.is_empty(), "no data for {href}");
            continue;
        }
        let text = &r.ok(CARD, "address-data").text;
        let (etag, get) = b.get_card(&href).await;
        assert_eq!(&r.ok(DAV, "getetag").text, &etag, "{href}");
        assert_eq!(text, &get, "multiget and GET agree for {href}");
        let is_group = card_value(text, "X-ADDRESSBOOKSERVER-KIND").as_deref() == Some("group");
        assert_eq!(is_group, groups.contains(&href), "{href}");
    }
    assert!(
        !ms.body.contains("Other Org"),
        "nothing of another organization"
    );
}
