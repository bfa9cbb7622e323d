//! Tests of contact group cards (vCard 3.0 Apple form and vCard 4.0 `KIND:group`) and of the
//! `CATEGORIES` that carry a customer's tags.

use portico_sdk::{Customer, CustomerDraft, CustomerId, Timestamp};

use super::*;

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

const REV: Timestamp = Timestamp(1_767_607_200_000); // 2026-01-05T10:00:00Z

fn members() -> Vec<String> {
    vec!["cust-1".to_string(), "8B1F2E3C-6A7D-4E5F".to_string()]
}

#[test]
fn renders_a_group_in_apple_form_for_3_0() {
    let text = render_group("VIP, gold", "g-uid", &members(), REV, VCardVersion::V3);
    assert_eq!(
        text,
        crlf(
            "BEGIN:VCARD
VERSION:3.0
PRODID:-//Portico//CardDAV//EN
UID:g-uid
FN:VIP\\, gold
N:VIP\\, gold;;;;
X-ADDRESSBOOKSERVER-KIND:group
X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:cust-1
X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:8B1F2E3C-6A7D-4E5F
REV:2026-01-05T10:00:00Z
END:VCARD
"
        )
    );
    let parsed = parse(text.as_bytes()).expect("a valid card");
    let facts = group_facts(&parsed.properties).expect("a group");
    assert_eq!(facts.name, "VIP, gold");
    assert_eq!(facts.members, members());
}

#[test]
fn renders_a_group_as_kind_group_for_4_0() {
    let text = render_group("VIP", "g-uid", &members(), REV, VCardVersion::V4);
    assert_eq!(
        text,
        crlf(
            "BEGIN:VCARD
VERSION:4.0
PRODID:-//Portico//CardDAV//EN
UID:g-uid
FN:VIP
N:VIP;;;;
KIND:group
MEMBER:urn:uuid:cust-1
MEMBER:urn:uuid:8B1F2E3C-6A7D-4E5F
REV:20260105T100000Z
END:VCARD
"
        )
    );
    let facts = group_facts(&parse(text.as_bytes()).unwrap().properties).unwrap();
    assert_eq!(facts.members, members());
}

#[test]
fn converting_a_group_maps_apple_properties_to_rfc_6350_and_back() {
    let v3 = render_group("VIP", "g-uid", &members(), REV, VCardVersion::V3);
    let v4 = convert(&v3, VCardVersion::V4);
    assert!(v4.contains("\r\nKIND:group\r\n"), "{v4}");
    assert!(v4.contains("\r\nMEMBER:urn:uuid:cust-1\r\n"), "{v4}");
    assert!(!v4.contains("X-ADDRESSBOOKSERVER"), "{v4}");
    let back = convert(&v4, VCardVersion::V3);
    assert!(
        back.contains("\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n"),
        "{back}"
    );
    assert!(
        back.contains("\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:cust-1\r\n"),
        "{back}"
    );
}

#[test]
fn reads_group_facts_as_clients_write_them() {
    // Apple: lowercase value, mixed-case urn prefix, a duplicate member, a subgroup by UID.
    let apple = crlf(
        "BEGIN:VCARD
VERSION:3.0
PRODID:-//Apple Inc.//iPhone OS 17.4//EN
N:Colour clients
FN:Colour clients
X-ADDRESSBOOKSERVER-KIND:group
X-ADDRESSBOOKSERVER-MEMBER:URN:UUID:A-1
X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:A-1
X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:B-2
UID:G-1
END:VCARD
",
    );
    let facts = group_facts(&parse(apple.as_bytes()).unwrap().properties).unwrap();
    assert_eq!(facts.name, "Colour clients");
    assert_eq!(facts.members, vec!["A-1".to_string(), "B-2".to_string()]);

    // 4.0 with an empty FN: the name comes from N; a mailto member is kept as written.
    let v4 = crlf(
        "BEGIN:VCARD
VERSION:4.0
UID:G-2
FN:
N:Staff;;;;
KIND:GROUP
MEMBER:mailto:ann@example.com
END:VCARD
",
    );
    let facts = group_facts(&parse(v4.as_bytes()).unwrap().properties).unwrap();
    assert_eq!(facts.name, "Staff");
    assert_eq!(facts.members, vec!["mailto:ann@example.com".to_string()]);

    // An individual (or a KIND other than group) is not a group.
    let person = crlf("BEGIN:VCARD\nVERSION:4.0\nUID:p\nFN:P\nKIND:individual\nEND:VCARD\n");
    assert_eq!(
        group_facts(&parse(person.as_bytes()).unwrap().properties),
        None
    );
}

#[test]
fn patching_members_keeps_every_other_byte() {
    // Folded name, an unknown property, LF line ends: all kept as written.
    let stored = "BEGIN:VCARD\nVERSION:3.0\nN:Colour\n  clients\nFN:Colour clients\nX-ADDRESSBOOKSERVER-KIND:group\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:A-1\nX-CUSTOM;x-y=z:kept\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:B-2\nUID:G-1\nEND:VCARD\n";
    let out = patch_members(stored, &["B-2".to_string(), "C-3".to_string()], REV);
    assert_eq!(
        out,
        "BEGIN:VCARD\nVERSION:3.0\nN:Colour\n  clients\nFN:Colour clients\nX-ADDRESSBOOKSERVER-KIND:group\nX-CUSTOM;x-y=z:kept\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:B-2\nUID:G-1\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:C-3\nEND:VCARD\n"
    );
    // Nothing to change: the very same bytes (and so the same ETag).
    let same = patch_members(stored, &["A-1".to_string(), "B-2".to_string()], REV);
    assert_eq!(same, stored);
    // A 4.0 card gets 4.0 member lines; REV follows the change.
    let v4 = render_group(
        "VIP",
        "g",
        &["A-1".to_string()],
        Timestamp(0),
        VCardVersion::V4,
    );
    let out = patch_members(&v4, &["D-4".to_string()], REV);
    assert!(
        out.contains("\r\nMEMBER:urn:uuid:D-4\r\nEND:VCARD"),
        "{out}"
    );
    assert!(!out.contains("A-1"), "{out}");
    assert!(out.contains("\r\nREV:20260105T100000Z\r\n"), "{out}");
    // The last member removed.
    let empty = patch_members(&v4, &[], REV);
    assert!(!empty.contains("MEMBER"), "{empty}");
    assert!(empty.contains("KIND:group"), "{empty}");
}

fn tagged(tags: &[&str]) -> Customer {
    Customer {
        id: CustomerId::parse("cust-1").unwrap(),
        name: "Jane Doe".into(),
        given_name: None,
        family_name: None,
        email: None,
        phone: None,
        known_emails: vec![],
        known_phones: vec![],
        birthday: None,
        note: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        card: None,
        updated_at: REV,
        revision: 1,
    }
}

#[test]
fn members_carry_their_tags_as_categories() {
    let c = tagged(&["VIP", "Colour, cut", " "]);
    let text = render(&c, "cust-1", None, VCardVersion::V3);
    assert!(
        text.contains("\r\nCATEGORIES:VIP,Colour\\, cut\r\n"),
        "{text}"
    );
    let parsed = parse(text.as_bytes()).unwrap();
    let cats = parsed
        .properties
        .iter()
        .find(|p| p.name == "CATEGORIES")
        .unwrap();
    assert_eq!(
        parse::split_unescaped(&cats.value, b',')
            .into_iter()
            .map(unescape_text)
            .collect::<Vec<_>>(),
        vec!["VIP".to_string(), "Colour, cut".to_string()]
    );
    let untagged = render(&tagged(&[]), "cust-1", None, VCardVersion::V4);
    assert!(!untagged.contains("CATEGORIES"), "{untagged}");
}

#[test]
fn an_admin_tag_change_patches_only_categories() {
    let stored = "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Jane Doe\nitem1.X-ABLabel:kept\nCATEGORIES:VIP\nEND:VCARD\n";
    let before = tagged(&["VIP"]);
    let mut after = CustomerDraft::from_customer(&before);
    after.tags = vec!["VIP".into(), "Staff".into()];
    let out = patch(stored, &before, &after, REV);
    assert_eq!(
        out,
        "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Jane Doe\nitem1.X-ABLabel:kept\nCATEGORIES:VIP,Staff\nEND:VCARD\n"
    );
    // Added when the card had none; removed with the last tag.
    let bare = "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Jane Doe\nEND:VCARD\n";
    let out = patch(bare, &tagged(&[]), &after, REV);
    assert_eq!(
        out,
        "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Jane Doe\nCATEGORIES:VIP,Staff\nEND:VCARD\n"
    );
    let mut none = after.clone();
    none.tags.clear();
    let out = patch(stored, &before, &none, REV);
    assert_eq!(
        out,
        "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Jane Doe\nitem1.X-ABLabel:kept\nEND:VCARD\n"
    );
    // Same tags: nothing touched.
    let same = CustomerDraft::from_customer(&before);
    assert_eq!(patch(stored, &before, &same, REV), stored);
}

#[test]
fn stored_group_members_has_no_client_size_limit() {
    // More members than a client card may have properties (MAX_PROPERTIES): all are read.
    let uids: Vec<String> = (0..MAX_PROPERTIES + 500)
        .map(|i| format!("m-{i}"))
        .collect();
    let text = render_group("Everyone", "g", &uids, REV, VCardVersion::V3);
    assert!(properties(&text).is_err(), "over the client limits");
    assert_eq!(stored_group_members(&text).unwrap(), uids);
    // Patching such a card keeps working too.
    let fewer = patch_members(&text, &uids[1..], REV);
    assert_eq!(stored_group_members(&fewer).unwrap(), uids[1..].to_vec());
}

#[test]
fn categories_project_to_tags() {
    let card = |extra: &str| {
        crlf(&format!(
            "BEGIN:VCARD\nVERSION:3.0\nUID:u\nFN:P\n{extra}END:VCARD\n"
        ))
    };
    let tags = |extra: &str| parse(card(extra).as_bytes()).unwrap().fields.categories;
    assert_eq!(tags(""), None, "no CATEGORIES: tags left alone");
    assert_eq!(tags("CATEGORIES:\n"), Some(vec![]));
    assert_eq!(
        tags("CATEGORIES:VIP, Colour\\, cut,VIP\ncategories:Staff\n"),
        Some(vec!["VIP".into(), "Colour, cut".into(), "Staff".into()])
    );
    // A value that cannot be a tag (a line break) is left out.
    assert_eq!(tags("CATEGORIES:a\\nb,ok\n"), Some(vec!["ok".into()]));
}
