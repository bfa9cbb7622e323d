//! vCard reading and writing (`apps/carddav/src/vcard/`).
//!
//! Every input goes through `parse` (PUT validation) and the lenient helpers used on stored
//! cards (`properties`, `version_of`, `convert` both ways, `select`); none may panic. For a card
//! `parse` accepts, the invariants are:
//! - converting it to the other version and back gives cards that `properties` reads;
//! - the card Portico renders from the projected fields (`render`) parses again, in both
//!   versions, with the same UID, name, emails and phones;
//! - `patch` with an edit derived from the input keeps a card that parses, with the same UID
//!   and version, and with the edited name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_carddav::vcard::{self, ParsedCard, VCardVersion};
use portico_sdk::{Customer, CustomerDraft, CustomerId, Timestamp};

fn customer_of(card: &ParsedCard) -> Customer {
    let f = &card.fields;
    Customer {
        id: CustomerId::parse("c-1").expect("fixed id"),
        name: f.name.clone(),
        given_name: f.given_name.clone(),
        family_name: f.family_name.clone(),
        email: f.emails.first().cloned(),
        phone: f.phones.first().cloned(),
        known_emails: f.emails.iter().skip(1).cloned().collect(),
        known_phones: f.phones.iter().skip(1).cloned().collect(),
        birthday: f.birthday.clone(),
        note: f.note.clone(),
        tags: Vec::new(),
        card: None,
        updated_at: Timestamp(1_700_000_000_000),
        revision: 1,
    }
}

/// What survives `escape_text`: line breaks become `\n`, other ASCII controls but tab are
/// dropped (RFC 6350 §3.3 allows none of them in a value); `parse` then trims.
fn written(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let kept: String = s
        .chars()
        .filter(|c| !c.is_ascii_control() || matches!(c, '\t' | '\n'))
        .collect();
    kept.trim().to_owned()
}

fn rendered(card: &ParsedCard, customer: &Customer, version: VCardVersion) -> ParsedCard {
    let text = vcard::render(customer, &card.uid, Some("https://p.example/c/1"), version);
    match vcard::parse(text.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("rendered card does not parse ({e}):\n{text}"),
    }
}

/// Rendering normalizes once (controls dropped, `mailto:` stripped, …), then is a fixed
/// point: rendering the re-parsed fields gives the same fields again.
fn check_render(card: &ParsedCard, customer: &Customer) {
    // Portico renders only with its own ids as UIDs; a client's UID made only of control
    // characters (which `parse` tolerates) would render empty.
    // Likewise an FN of control characters renders empty, and the name then comes from N.
    if written(&card.uid).is_empty() || written(&card.fields.name).is_empty() {
        return;
    }
    for version in [VCardVersion::V3, VCardVersion::V4] {
        let once = rendered(card, customer, version);
        assert_eq!(once.version, version);
        assert_eq!(once.uid, written(&card.uid));
        assert_eq!(once.fields.name, written(&card.fields.name));
        assert!(once.fields.emails.len() <= customer.all_emails().len());
        assert!(once.fields.phones.len() <= customer.all_phones().len());
        let once_customer = customer_of(&once);
        let twice = rendered(&once, &once_customer, version);
        let twice_customer = customer_of(&twice);
        assert_eq!(twice.uid, once.uid);
        assert_eq!(twice.fields.name, once.fields.name);
        assert_eq!(twice.fields.given_name, once.fields.given_name);
        assert_eq!(twice.fields.family_name, once.fields.family_name);
        assert_eq!(twice.fields.birthday, once.fields.birthday);
        assert_eq!(twice.fields.note, once.fields.note);
        // A customer holds each address once: compare the lists as the customer sees them.
        assert_eq!(twice_customer.all_emails(), once_customer.all_emails());
        assert_eq!(twice_customer.all_phones(), once_customer.all_phones());
    }
}

fn check_patch(text: &str, card: &ParsedCard, customer: &Customer, seed: &[u8]) {
    let mut after = CustomerDraft::from_customer(customer);
    // The edit: a new name and, depending on the input, a changed email, phone, note, birthday.
    after.name = format!("{} Jr.", customer.name.trim());
    let pick = seed.first().copied().unwrap_or(0);
    if pick & 1 != 0 {
        after.email = Some("new@example.com".to_owned());
    }
    if pick & 2 != 0 {
        after.phone = None;
        after.known_phones.clear();
    }
    if pick & 4 != 0 {
        after.note = Some("line one\nline two; with, punctuation".to_owned());
    }
    if pick & 8 != 0 {
        after.birthday = Some("--02-29".to_owned());
    }
    if pick & 16 != 0 {
        after.given_name = None;
        after.family_name = Some("Family".to_owned());
    }
    let patched = vcard::patch(text, customer, &after, Timestamp(1_800_000_000_000));
    let again = match vcard::parse(patched.as_bytes()) {
        Ok(again) => again,
        Err(e) => panic!("patched card does not parse ({e}):\n{patched}"),
    };
    assert_eq!(again.uid, card.uid);
    assert_eq!(again.version, card.version);
    assert_eq!(again.fields.name, written(&after.name), "{patched}");
}

fuzz_target!(|data: &[u8]| {
    let parsed = vcard::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(parsed.is_err());
        return;
    };
    let _ = vcard::properties(text);
    let _ = vcard::version_of(text);
    let _ = vcard::etag(text);
    let v3 = vcard::convert(text, VCardVersion::V3);
    let v4 = vcard::convert(text, VCardVersion::V4);
    let _ = vcard::convert(&v3, VCardVersion::V4);
    let _ = vcard::convert(&v4, VCardVersion::V3);
    let _ = vcard::select(
        text,
        &[
            ("FN".to_owned(), false),
            ("EMAIL".to_owned(), true),
            ("PHOTO".to_owned(), true),
        ],
    );
    for p in vcard::properties(text).unwrap_or_default().iter().take(64) {
        let _ = p.text();
        let _ = p.components();
        let _ = vcard::fold(&format!("{}:{}", p.name, p.value));
    }

    let Ok(card) = parsed else {
        return;
    };
    // A card parse accepted converts both ways into cards still readable.
    let other = match card.version {
        VCardVersion::V3 => VCardVersion::V4,
        VCardVersion::V4 => VCardVersion::V3,
    };
    let converted = vcard::convert(text, other);
    assert_eq!(vcard::version_of(&converted), other, "{converted}");
    let back = vcard::convert(&converted, card.version);
    assert!(vcard::properties(&back).is_ok());

    let customer = customer_of(&card);
    check_render(&card, &customer);
    check_patch(
        text,
        &card,
        &customer,
        data.get(data.len() / 2..).unwrap_or(&[]),
    );
});
