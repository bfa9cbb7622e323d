//! Tests of the vCard module. The fixtures are written by hand after the shape of what each
//! client exports (names, numbers and addresses are made up).

use std::borrow::Cow;

use portico_sdk::{Customer, CustomerDraft, CustomerId, Timestamp};
use proptest::prelude::*;

use super::lines::logical_lines;
use super::*;

/// LF → CRLF, so fixtures can be written as plain multi-line strings.
fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// Apple Contacts (iOS/macOS), vCard 3.0: lowercase `type=` repeated, `itemN.` groups with
/// `X-ABLabel`, an inline JPEG, `X-APPLE-OMIT-YEAR` for a birthday without a year.
const APPLE: &str = "BEGIN:VCARD
VERSION:3.0
PRODID:-//Apple Inc.//iPhone OS 17.4//EN
N:Appleseed;Johnny;Q.;Mr.;
FN:Johnny Appleseed
ORG:Orchard Co.;Seeds
TITLE:Founder
item1.EMAIL;type=INTERNET;type=pref:johnny@orchard.example
item2.EMAIL;type=INTERNET:j.appleseed@mail.example
item2.X-ABLabel:_$!<Other>!$_
TEL;type=CELL;type=VOICE;type=pref:+1 (555) 010-2030
item3.TEL:+1 555 010 9999
item3.X-ABLabel:Orchard line
item4.ADR;type=HOME;type=pref:;;1 Orchard Lane;Cupertino;CA;95014;United States
item4.X-ABADR:us
BDAY;X-APPLE-OMIT-YEAR=1604:1604-09-26
NOTE:Likes apples\\, pears\\; and\\nplums
PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgID
 AwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/yQ
 ALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=
X-ABUID:8B1F2E3C-6A7D-4E5F-9A0B-1C2D3E4F5A6B:ABPerson
UID:8B1F2E3C-6A7D-4E5F-9A0B-1C2D3E4F5A6B
REV:2025-03-14T09:26:53Z
END:VCARD
";

/// DAVx5 (Android), vCard 4.0 via ez-vcard: `PREF=1`, a `tel:` URI, a birthday without a
/// year, an RFC 6868-encoded `LABEL` parameter, 4.0-only properties.
const DAVX5_V4: &str = "BEGIN:VCARD
VERSION:4.0
UID:urn:uuid:3f1c9d2e-7b1a-4c8e-9f0d-2a6b5c4d3e21
PRODID:DAVx5/4.4.2-ose ez-vcard/0.12.1
FN:Zoë Faßbinder
N:Faßbinder;Zoë;;Dr.;
NICKNAME:Zo
EMAIL;TYPE=home;PREF=1:zoe@example.org
EMAIL;TYPE=work:zoe.fassbinder@firma.example
TEL;TYPE=cell:+49 170 1234567
TEL;VALUE=uri;TYPE=work:tel:+49-30-1234567
ADR;TYPE=home;LABEL=\"Hauptstraße 5^n10115 Berlin\":;;Hauptstraße 5;Berlin;;10115;Germany
BDAY:--0229
ANNIVERSARY:20100612
GENDER:F
RELATED;TYPE=spouse;VALUE=text:Max
NOTE:Met at FOSDEM\\, room H.2215
CATEGORIES:Friends,Berlin
REV:20250101T120000Z
END:VCARD
";

/// DAVx5 writing vCard 3.0 (the default for many servers).
const DAVX5_V3: &str = "BEGIN:VCARD
VERSION:3.0
UID:c0ffee00-1111-4222-8333-444455556666
PRODID:DAVx5/4.4.2-ose ez-vcard/0.12.1
FN:Marie Curie
N:Curie;Marie;Skłodowska;;
X-PHONETIC-FIRST-NAME:Marie
TEL;TYPE=cell:+33 6 12 34 56 78
TEL;TYPE=fax,work:+33 1 23 45 67 89
EMAIL;TYPE=internet,work:marie@radium.example
item1.X-ABDATE:1895-07-26
item1.X-ABLabel:_$!<Anniversary>!$_
BDAY:1867-11-07
REV:20250102T083000Z
END:VCARD
";

/// Thunderbird (115+), vCard 4.0, here with bare LF line ends as some tools save it.
const THUNDERBIRD_V4: &str = "BEGIN:VCARD
VERSION:4.0
EMAIL;PREF=1:ada@example.net
EMAIL:countess@lovelace.example
FN:Ada Lovelace
NICKNAME:Ada
NOTE:Analytical engine\\nenthusiast
ORG:Analytical Society
N:Lovelace;Ada;;;
TEL;TYPE=work;VALUE=TEXT:+44 20 7946 0000
TEL;TYPE=cell;VALUE=TEXT:+44 7700 900 001
BDAY;VALUE=DATE:18151210
URL;VALUE=URL:https://example.net/ada
UID:5a1e0b7c-1f2d-4e3a-8b9c-0d1e2f3a4b5c
END:VCARD
";

/// Evolution, vCard 3.0: empty `X-EVOLUTION-*` fields, `X-EVOLUTION-UI-SLOT` parameters,
/// `LABEL`, and a long note folded with a tab.
const EVOLUTION: &str = "BEGIN:VCARD
VERSION:3.0
URL:
TITLE:Rear Admiral
ROLE:
X-EVOLUTION-MANAGER:
X-EVOLUTION-ASSISTANT:
NICKNAME:Amazing Grace
X-EVOLUTION-SPOUSE:
NOTE:Wrote the first compiler.\\nFound a moth in the Mark II and taped it into
\t the log book.
FN:Grace Hopper
N:Hopper;Grace;Brewster Murray;;
X-EVOLUTION-FILE-AS:Hopper\\, Grace
CATEGORIES:Navy,Computing
LABEL;TYPE=WORK:1 Navy Way\\nArlington\\, VA
ADR;TYPE=WORK:;;1 Navy Way;Arlington;VA;;
EMAIL;X-EVOLUTION-UI-SLOT=1;TYPE=WORK:grace@navy.example
EMAIL;X-EVOLUTION-UI-SLOT=2;TYPE=HOME:grace.hopper@home.example
TEL;X-EVOLUTION-UI-SLOT=1;TYPE=CELL:+1-555-0100
TEL;X-EVOLUTION-UI-SLOT=2;TYPE=WORK;TYPE=VOICE:+1-555-0101
BDAY:1906-12-09
X-EVOLUTION-BLOG-URL:
CALURI:
FBURL:
X-EVOLUTION-VIDEO-URL:
X-MOZILLA-HTML:FALSE
UID:pas-id-65D8A1F200000001
REV:2025-02-01T10:11:12Z
END:VCARD
";

/// Google Contacts over CardDAV, vCard 3.0: uppercase repeated `TYPE=`, `\\:` in URLs, an
/// empty `X-ABLabel`, a basic-format birthday.
const GOOGLE: &str = "BEGIN:VCARD
VERSION:3.0
N:Turing;Alan;Mathison;;
FN:Alan Turing
EMAIL;TYPE=INTERNET;TYPE=HOME:alan@example.com
EMAIL;TYPE=INTERNET:turing@bletchley.example
TEL;TYPE=CELL:+44 7700 900123
ADR;TYPE=HOME:;;Bletchley Park;Milton Keynes;;MK3 6EB;United Kingdom
item1.URL:http\\://example.com/turing
item1.X-ABLabel:
BDAY:19120623
CATEGORIES:myContacts
UID:4d3f2a1b0c9e8f7a
REV:2025-04-01T00:00:00Z
END:VCARD
";

/// A 3.0 card from a 2.1-era exporter: quoted-printable values with CHARSET, soft breaks.
const QP_V3: &str = "BEGIN:VCARD
VERSION:3.0
N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;
FN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:J=FCrgen M=FCller
NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Erste Zeile=0D=0AZweite Zeile, mit=
 Komma und Stra=C3=9Fe
TEL;WORK;VOICE:+49 89 123456
UID:qp-0001
END:VCARD
";

fn all_fixtures() -> Vec<(&'static str, String)> {
    vec![
        ("apple", crlf(APPLE)),
        ("davx5-4", crlf(DAVX5_V4)),
        ("davx5-3", crlf(DAVX5_V3)),
        ("thunderbird", THUNDERBIRD_V4.to_string()),
        ("evolution", crlf(EVOLUTION)),
        ("google", crlf(GOOGLE)),
        ("qp", crlf(QP_V3)),
    ]
}

fn ok(text: &str) -> ParsedCard {
    match parse(text.as_bytes()) {
        Ok(card) => card,
        Err(e) => panic!("card refused: {e}\n{text}"),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn minimal(version: &str, extra: &str) -> String {
    crlf(&format!(
        "BEGIN:VCARD\nVERSION:{version}\nUID:u-1\nFN:Test Person\n{extra}END:VCARD\n"
    ))
}

fn customer() -> Customer {
    Customer {
        id: CustomerId::parse("cust-1").expect("valid id"),
        name: "Jane Doe".to_string(),
        given_name: Some("Jane".to_string()),
        family_name: Some("Doe".to_string()),
        email: Some("jane@example.com".to_string()),
        phone: Some("+1 555 0100".to_string()),
        known_emails: vec!["jd@work.example".to_string()],
        known_phones: vec![],
        birthday: Some("1985-04-12".to_string()),
        note: Some("VIP".to_string()),
        tags: vec![],
        card: None,
        updated_at: Timestamp(1_767_607_200_000), // 2026-01-05T10:00:00Z
        revision: 1,
    }
}

/// The physical lines of a text (terminators removed).
fn physical(text: &str) -> Vec<&str> {
    text.split_terminator('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// The logical lines of a text.
fn logical(text: &str) -> Vec<String> {
    logical_lines(text, None)
        .expect("no limit")
        .into_iter()
        .map(|l| l.content.into_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing client cards

#[test]
fn parses_apple_contacts_card() {
    let card = ok(&crlf(APPLE));
    assert_eq!(card.version, VCardVersion::V3);
    assert_eq!(card.uid, "8B1F2E3C-6A7D-4E5F-9A0B-1C2D3E4F5A6B");
    let f = &card.fields;
    assert_eq!(f.name, "Johnny Appleseed");
    assert_eq!(f.given_name.as_deref(), Some("Johnny"));
    assert_eq!(f.family_name.as_deref(), Some("Appleseed"));
    assert_eq!(
        f.emails,
        strings(&["johnny@orchard.example", "j.appleseed@mail.example"])
    );
    assert_eq!(f.phones, strings(&["+1 (555) 010-2030", "+1 555 010 9999"]));
    assert_eq!(f.birthday.as_deref(), Some("--09-26"));
    assert_eq!(f.note.as_deref(), Some("Likes apples, pears; and\nplums"));

    let email = &card.properties[6];
    assert_eq!(email.group.as_deref(), Some("item1"));
    assert_eq!(email.name, "EMAIL");
    assert_eq!(
        email.param("type"),
        Some(&strings(&["INTERNET", "pref"])[..])
    );
    assert!(email.has_type("PREF"));
    let label = card
        .properties
        .iter()
        .find(|p| p.name == "X-ABLABEL")
        .expect("label");
    assert_eq!(label.group.as_deref(), Some("item2"));
    assert_eq!(label.value, "_$!<Other>!$_");
    let photo = card
        .properties
        .iter()
        .find(|p| p.name == "PHOTO")
        .expect("photo");
    assert_eq!(photo.param("ENCODING"), Some(&strings(&["b"])[..]));
    assert!(photo.value.starts_with("/9j/4AAQ"));
    assert!(photo.value.ends_with("D8A0s8g/9k="));
    assert!(!photo.value.contains(' '));
    assert_eq!(
        card.properties
            .iter()
            .find(|p| p.name == "ORG")
            .map(|p| p.components()),
        Some(strings(&["Orchard Co.", "Seeds"]))
    );
}

#[test]
fn parses_davx5_v4_card() {
    let card = ok(&crlf(DAVX5_V4));
    assert_eq!(card.version, VCardVersion::V4);
    assert_eq!(card.uid, "urn:uuid:3f1c9d2e-7b1a-4c8e-9f0d-2a6b5c4d3e21");
    let f = &card.fields;
    assert_eq!(f.name, "Zoë Faßbinder");
    assert_eq!(f.given_name.as_deref(), Some("Zoë"));
    assert_eq!(f.family_name.as_deref(), Some("Faßbinder"));
    assert_eq!(
        f.emails,
        strings(&["zoe@example.org", "zoe.fassbinder@firma.example"])
    );
    assert_eq!(f.phones, strings(&["+49 170 1234567", "+49-30-1234567"]));
    assert_eq!(f.birthday.as_deref(), Some("--02-29"));
    assert_eq!(f.note.as_deref(), Some("Met at FOSDEM, room H.2215"));
    let adr = card
        .properties
        .iter()
        .find(|p| p.name == "ADR")
        .expect("adr");
    assert_eq!(
        adr.param("LABEL"),
        Some(&strings(&["Hauptstraße 5\n10115 Berlin"])[..])
    );
    assert_eq!(adr.components()[2], "Hauptstraße 5");
}

#[test]
fn parses_davx5_v3_card() {
    let f = ok(&crlf(DAVX5_V3)).fields;
    assert_eq!(f.name, "Marie Curie");
    assert_eq!(f.family_name.as_deref(), Some("Curie"));
    assert_eq!(f.emails, strings(&["marie@radium.example"]));
    assert_eq!(
        f.phones,
        strings(&["+33 6 12 34 56 78", "+33 1 23 45 67 89"])
    );
    assert_eq!(f.birthday.as_deref(), Some("1867-11-07"));
    assert_eq!(f.note, None);
}

#[test]
fn parses_thunderbird_card_with_bare_lf() {
    let card = ok(THUNDERBIRD_V4);
    assert_eq!(card.version, VCardVersion::V4);
    let f = &card.fields;
    assert_eq!(f.name, "Ada Lovelace");
    assert_eq!(
        f.emails,
        strings(&["ada@example.net", "countess@lovelace.example"])
    );
    assert_eq!(f.phones, strings(&["+44 20 7946 0000", "+44 7700 900 001"]));
    assert_eq!(f.birthday.as_deref(), Some("1815-12-10"));
    assert_eq!(f.note.as_deref(), Some("Analytical engine\nenthusiast"));
}

#[test]
fn parses_evolution_card() {
    let card = ok(&crlf(EVOLUTION));
    let f = &card.fields;
    assert_eq!(f.name, "Grace Hopper");
    assert_eq!(f.given_name.as_deref(), Some("Grace"));
    assert_eq!(
        f.emails,
        strings(&["grace@navy.example", "grace.hopper@home.example"])
    );
    assert_eq!(f.phones, strings(&["+1-555-0100", "+1-555-0101"]));
    assert_eq!(f.birthday.as_deref(), Some("1906-12-09"));
    assert_eq!(
        f.note.as_deref(),
        Some("Wrote the first compiler.\nFound a moth in the Mark II and taped it into the log book.")
    );
    let tel = card
        .properties
        .iter()
        .filter(|p| p.name == "TEL")
        .nth(1)
        .expect("tel");
    assert_eq!(tel.param("TYPE"), Some(&strings(&["WORK", "VOICE"])[..]));
    assert_eq!(tel.param("X-EVOLUTION-UI-SLOT"), Some(&strings(&["2"])[..]));
    assert!(card
        .properties
        .iter()
        .any(|p| p.name == "X-EVOLUTION-FILE-AS" && p.text() == "Hopper, Grace"));
}

#[test]
fn parses_google_card() {
    let card = ok(&crlf(GOOGLE));
    let f = &card.fields;
    assert_eq!(f.name, "Alan Turing");
    assert_eq!(
        f.emails,
        strings(&["alan@example.com", "turing@bletchley.example"])
    );
    assert_eq!(f.phones, strings(&["+44 7700 900123"]));
    assert_eq!(f.birthday.as_deref(), Some("1912-06-23"));
    let url = card
        .properties
        .iter()
        .find(|p| p.name == "URL")
        .expect("url");
    assert_eq!(url.text(), "http://example.com/turing");
    assert_eq!(
        card.properties[3].param("TYPE"),
        Some(&strings(&["INTERNET", "HOME"])[..])
    );
}

#[test]
fn google_export_without_uid_is_refused() {
    // Google's "export to vCard" file has no UID; a PUT needs one.
    let export = crlf(GOOGLE).replace("UID:4d3f2a1b0c9e8f7a\r\n", "");
    assert_eq!(
        parse(export.as_bytes()),
        Err(CardError::MissingProperty("UID"))
    );
}

#[test]
fn parses_quoted_printable_from_old_exporters() {
    let card = ok(&crlf(QP_V3));
    let f = &card.fields;
    assert_eq!(f.name, "Jürgen Müller");
    assert_eq!(f.family_name.as_deref(), Some("Müller"));
    assert_eq!(f.given_name.as_deref(), Some("Jürgen"));
    assert_eq!(
        f.note.as_deref(),
        Some("Erste Zeile\nZweite Zeile, mit Komma und Straße")
    );
    assert_eq!(f.phones, strings(&["+49 89 123456"]));
    let n = card.properties.iter().find(|p| p.name == "N").expect("N");
    assert_eq!(n.param("ENCODING"), None);
    assert_eq!(n.param("CHARSET"), None);
    let tel = card
        .properties
        .iter()
        .find(|p| p.name == "TEL")
        .expect("TEL");
    assert_eq!(tel.param("TYPE"), Some(&strings(&["WORK", "VOICE"])[..]));
}

#[test]
fn quoted_printable_in_an_unknown_charset_is_refused() {
    let text = minimal(
        "3.0",
        "NOTE;CHARSET=KOI8-R;ENCODING=QUOTED-PRINTABLE:=F0=D2\n",
    );
    assert!(matches!(
        parse(text.as_bytes()),
        Err(CardError::Malformed { line: 5, .. })
    ));
    // The lenient reader skips the line instead.
    let props = properties(&text).expect("within limits");
    assert!(props.iter().all(|p| p.name != "NOTE"));
}

#[test]
fn quoted_printable_keeps_a_literal_equals_sign() {
    let text = minimal("3.0", "NOTE;ENCODING=QUOTED-PRINTABLE:1+1=2 =3D two=\n!\n");
    assert_eq!(ok(&text).fields.note.as_deref(), Some("1+1=2 = two!"));
}

/// Found by the `vcard_parse` fuzz target: a fold (RFC 6350 §3.2) after a physical line ending
/// in `=` was read as a quoted-printable soft break when the word QUOTED-PRINTABLE appeared in
/// any parameter, so the `=` was lost and the fold's space kept. An admin edit that folded such
/// a line at an `=` changed the stored name on the next read.
#[test]
fn a_fold_after_equals_is_a_fold_unless_the_value_is_quoted_printable() {
    let text = minimal("3.0", "NOTE;X-A=QUOTED-PRINTABLE:J=C3=\n BCrgen\n");
    assert_eq!(ok(&text).fields.note.as_deref(), Some("J=C3=BCrgen"));
    // A real quoted-printable value still joins its soft breaks.
    let text = minimal("3.0", "NOTE;QUOTED-PRINTABLE:J=C3=\n=BCrgen\n");
    assert_eq!(ok(&text).fields.note.as_deref(), Some("J\u{fc}rgen"));

    // The fuzzer's card, minimized: patching the name folds the FN line after `=C3=`.
    let stored = crlf("BEGIN:VCARD\nVERSION:3.0\nFN;X-A=QUOTED-PRINTABLE:x\nUID:u-1\nEND:VCARD\n");
    let card = ok(&stored);
    let before = Customer {
        name: card.fields.name.clone(),
        given_name: None,
        family_name: None,
        email: None,
        phone: None,
        known_emails: vec![],
        birthday: None,
        note: None,
        ..customer()
    };
    let mut after = CustomerDraft::from_customer(&before);
    after.name = format!(
        "{}J=C3=BCrgen",
        "n".repeat(75 - "FN;X-A=QUOTED-PRINTABLE:J=C3=".len())
    );
    let patched = patch(&stored, &before, &after, Timestamp(1_767_607_200_000));
    assert!(
        physical(&patched).iter().any(|l| l.ends_with('=')),
        "{patched}"
    );
    assert_eq!(ok(&patched).fields.name, after.name, "{patched}");
}

/// Found by the `vcard_parse` fuzz target: `parse` accepted a 4.0 card whose VERSION carries a
/// parameter, but `version_of` saw no `VERSION:` line and called it 3.0, so `convert` to 3.0
/// returned the 4.0 card unchanged.
#[test]
fn version_with_a_parameter_is_read_like_parse_reads_it() {
    let text = crlf("BEGIN:VCARD\nVERSION;X-P=v:4.0\nFN:A\nUID:u-1\nEND:VCARD\n");
    assert_eq!(ok(&text).version, VCardVersion::V4);
    assert_eq!(version_of(&text), VCardVersion::V4);
    assert_eq!(
        version_of(&convert(&text, VCardVersion::V3)),
        VCardVersion::V3
    );
}

#[test]
fn too_many_parameters_are_refused_quickly() {
    let params: String = (0..20_000).map(|i| format!(";X-P{i}=v")).collect();
    let text = minimal("3.0", &format!("NOTE{params}:x\n"));
    let started = std::time::Instant::now();
    assert!(matches!(
        parse(text.as_bytes()),
        Err(CardError::Malformed { line: 5, .. })
    ));
    let repeated = ";TYPE=a".repeat(20_000);
    let card = ok(&minimal("3.0", &format!("TEL{repeated}:1\n")));
    assert_eq!(
        card.properties[3].param("TYPE").map(<[String]>::len),
        Some(20_000)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn type_parameter_forms_are_merged() {
    for line in [
        "TEL;TYPE=WORK,pref:+1 555",
        "tel;type=WORK;type=pref:+1 555",
        "TEL;TYPE=\"WORK,pref\":+1 555",
        "TEL;WORK;pref:+1 555",
    ] {
        let text = minimal("3.0", &format!("{line}\n"));
        let card = ok(&text);
        let tel = card
            .properties
            .iter()
            .find(|p| p.name == "TEL")
            .expect("tel");
        let types = tel.param("Type").expect("TYPE").to_vec();
        assert_eq!(
            types.len(),
            if line.contains('"') { 1 } else { 2 },
            "{line}"
        );
        assert!(tel.has_type("work") || types == ["WORK,pref"], "{line}");
        assert_eq!(card.fields.phones, strings(&["+1 555"]));
    }
}

#[test]
fn rfc6868_and_quoted_parameter_values() {
    let text = minimal(
        "4.0",
        "X-PLACE;X-LABEL=\"a^nb ^'q^' ^^ ^x; c:d\";X-B=one,\"t,wo\":v:w\n",
    );
    let card = ok(&text);
    let p = card
        .properties
        .iter()
        .find(|p| p.name == "X-PLACE")
        .expect("prop");
    assert_eq!(
        p.param("x-label"),
        Some(&strings(&["a\nb \"q\" ^ ^x; c:d"])[..])
    );
    assert_eq!(p.param("X-B"), Some(&strings(&["one", "t,wo"])[..]));
    assert_eq!(p.value, "v:w");
}

#[test]
fn unfolding_handles_tabs_spaces_lf_and_bom() {
    let text =
        "\u{feff}BEGIN:VCARD\nVERSION:4.0\nUID:u\nFN:Long\n  Name\nNOTE:a\n\tb\n c\nEND:VCARD\n";
    let card = ok(text);
    assert_eq!(card.fields.name, "Long Name");
    assert_eq!(card.fields.note.as_deref(), Some("abc"));
}

#[test]
fn empty_fn_falls_back_to_n() {
    let text = crlf("BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:\nN:Doe;John;;;\nEND:VCARD\n");
    assert_eq!(ok(&text).fields.name, "John Doe");
    let org_only =
        crlf("BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN: \nN:;;;;\nORG:Acme Inc.;Sales\nEND:VCARD\n");
    assert_eq!(ok(&org_only).fields.name, "Acme Inc.");
    let nothing = crlf("BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:\nEND:VCARD\n");
    assert_eq!(
        parse(nothing.as_bytes()),
        Err(CardError::MissingProperty("FN"))
    );
}

#[test]
fn birthday_forms() {
    let cases: &[(&str, Option<&str>)] = &[
        ("BDAY:19850412", Some("1985-04-12")),
        ("BDAY:1985-04-12", Some("1985-04-12")),
        ("BDAY:--0412", Some("--04-12")),
        ("BDAY:--04-12", Some("--04-12")),
        ("BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12", Some("--04-12")),
        (
            "BDAY;x-apple-omit-year=1604;VALUE=date:1604-04-12",
            Some("--04-12"),
        ),
        ("BDAY:1604-04-12", Some("--04-12")),
        ("BDAY:16040412", Some("--04-12")),
        ("BDAY:1985-04-12T10:00:00Z", Some("1985-04-12")),
        ("BDAY:19850412T100000", Some("1985-04-12")),
        (
            "BDAY;VALUE=date-time:1985-04-12t10:00:00-05:00",
            Some("1985-04-12"),
        ),
        ("BDAY;VALUE=text:circa 1800", None),
        ("BDAY:1985", None),
        ("BDAY:1985-04", None),
        ("BDAY:---12", None),
        ("BDAY:1985-02-30", None),
        ("BDAY:1900-02-29", None),
        ("BDAY:2000-02-29", Some("2000-02-29")),
        ("BDAY:--0229", Some("--02-29")),
        ("BDAY:0000-07-01", Some("--07-01")),
        ("BDAY:1985-13-01", None),
        ("BDAY:12.04.1985", None),
        ("BDAY:１９８５０４１２", None),
    ];
    for (line, want) in cases {
        let card = ok(&minimal("4.0", &format!("{line}\n")));
        assert_eq!(card.fields.birthday.as_deref(), *want, "{line}");
    }
}

#[test]
fn linear_time_on_adversarial_folding() {
    // 240 KiB of note folded every 2 bytes: 120k physical lines.
    let mut note = String::from("NOTE:");
    for _ in 0..(120 * 1024) {
        note.push_str("ab\n ");
    }
    note.push_str("end");
    let text = minimal("3.0", &format!("{note}\n"));
    let started = std::time::Instant::now();
    let card = ok(&text);
    assert_eq!(
        card.fields.note.as_ref().map(String::len),
        Some(240 * 1024 + 3)
    );
    // Quoted-printable soft breaks, also 2 bytes per physical line.
    let mut qp = String::from("NOTE;ENCODING=QUOTED-PRINTABLE:");
    for _ in 0..(100 * 1024) {
        qp.push_str("a=\n");
    }
    qp.push('z');
    let card = ok(&minimal("3.0", &format!("{qp}\n")));
    assert_eq!(
        card.fields.note.as_ref().map(String::len),
        Some(100 * 1024 + 1)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------------
// Refused cards

#[test]
fn vcard_21_is_unsupported() {
    let text = crlf(
        "BEGIN:VCARD\nVERSION:2.1\nN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:M=C3=BCller;J=\nan;;;\nTEL;WORK;VOICE:+49 89 1\nLABEL;HOME;ENCODING=QUOTED-PRINTABLE:a=0D=0Ab\n broken\nEND:VCARD\n",
    );
    let err = parse(text.as_bytes()).expect_err("2.1");
    assert_eq!(err, CardError::UnsupportedVersion("2.1".to_string()));
    assert!(err.is_unsupported_version());
    assert!(err.to_string().contains("2.1"));
}

#[test]
fn missing_or_unknown_version_is_unsupported() {
    let none = crlf("BEGIN:VCARD\nUID:x\nFN:x\nEND:VCARD\n");
    let err = parse(none.as_bytes()).expect_err("no version");
    assert_eq!(err, CardError::UnsupportedVersion(String::new()));
    assert!(err.to_string().contains("no VERSION"));
    let five = minimal("5.0", "");
    assert_eq!(
        parse(five.as_bytes()),
        Err(CardError::UnsupportedVersion("5.0".to_string()))
    );
}

#[test]
fn bad_inputs_give_the_right_error() {
    let valid = minimal("3.0", "");
    assert!(parse(valid.as_bytes()).is_ok());

    let mut not_utf8 = valid.clone().into_bytes();
    not_utf8.insert(30, 0xff);
    assert_eq!(parse(&not_utf8), Err(CardError::NotUtf8));

    let nul = valid.replace("FN:Test", "FN:Te\0st");
    assert_eq!(
        parse(nul.as_bytes()),
        Err(CardError::Malformed {
            line: 4,
            reason: "NUL byte".to_string()
        })
    );

    let no_uid = valid.replace("UID:u-1\r\n", "");
    assert_eq!(
        parse(no_uid.as_bytes()),
        Err(CardError::MissingProperty("UID"))
    );
    let empty_uid = valid.replace("UID:u-1", "UID: ");
    assert_eq!(
        parse(empty_uid.as_bytes()),
        Err(CardError::MissingProperty("UID"))
    );
    let no_fn = valid.replace("FN:Test Person\r\n", "");
    assert_eq!(
        parse(no_fn.as_bytes()),
        Err(CardError::MissingProperty("FN"))
    );

    let no_end = valid.replace("END:VCARD\r\n", "");
    assert_eq!(parse(no_end.as_bytes()), Err(CardError::NotVCard));
    assert_eq!(parse(b""), Err(CardError::NotVCard));
    assert_eq!(parse(b"hello"), Err(CardError::NotVCard));
    let junk_before = format!("hello\r\n{valid}");
    assert_eq!(parse(junk_before.as_bytes()), Err(CardError::NotVCard));
    let junk_after = format!("{valid}trailing junk\r\n");
    assert_eq!(parse(junk_after.as_bytes()), Err(CardError::NotVCard));
    let blank_after = format!("{valid}\r\n\r\n");
    assert!(parse(blank_after.as_bytes()).is_ok());
    let two = format!("{valid}{valid}");
    assert_eq!(parse(two.as_bytes()), Err(CardError::MultipleCards));
    let nested = valid.replace("FN:", "BEGIN:VCARD\r\nFN:");
    assert!(matches!(
        parse(nested.as_bytes()),
        Err(CardError::Malformed { line: 4, .. })
    ));

    let no_colon = valid.replace("FN:Test Person", "FN Test Person");
    assert!(matches!(
        parse(no_colon.as_bytes()),
        Err(CardError::Malformed { line: 4, .. })
    ));
    let bad_quote = valid.replace("FN:", "FN;X-A=\"open:");
    assert!(matches!(
        parse(bad_quote.as_bytes()),
        Err(CardError::Malformed { line: 4, .. })
    ));
    let bad_name = valid.replace("FN:", "F N:");
    assert!(matches!(
        parse(bad_name.as_bytes()),
        Err(CardError::Malformed { .. })
    ));
    let continuation_first = format!(" {valid}");
    assert_eq!(
        parse(continuation_first.as_bytes()),
        Err(CardError::NotVCard)
    );
    let two_versions = valid.replace("UID:", "VERSION:3.0\r\nUID:");
    assert!(matches!(
        parse(two_versions.as_bytes()),
        Err(CardError::Malformed { .. })
    ));
}

#[test]
fn size_limits() {
    let big_photo = format!("PHOTO;ENCODING=b:{}\n", "A".repeat(MAX_CARD_BYTES));
    assert_eq!(
        parse(minimal("3.0", &big_photo).as_bytes()),
        Err(CardError::TooLarge)
    );
    assert_eq!(
        properties(&minimal("3.0", &big_photo)),
        Err(CardError::TooLarge)
    );

    let many = "X-A:1\n".repeat(MAX_PROPERTIES);
    assert_eq!(
        parse(minimal("3.0", &many).as_bytes()),
        Err(CardError::TooLarge)
    );
    assert!(parse(minimal("3.0", &"X-A:1\n".repeat(MAX_PROPERTIES - 4)).as_bytes()).is_ok());

    // Under 1 MiB in total, but one line of 300 KiB once unfolded.
    let chunk = "B".repeat(1000);
    let mut long = String::from("PHOTO;ENCODING=b:");
    for _ in 0..300 {
        long.push_str(&chunk);
        long.push_str("\n ");
    }
    long.push_str("C\n");
    assert_eq!(
        parse(minimal("3.0", &long).as_bytes()),
        Err(CardError::TooLarge)
    );
    let unfolded_long = format!("NOTE:{}\n", "x".repeat(MAX_LINE_BYTES + 1));
    assert_eq!(
        parse(minimal("3.0", &unfolded_long).as_bytes()),
        Err(CardError::TooLarge)
    );
}

#[test]
fn error_messages_are_clear() {
    let cases = [
        (CardError::NotUtf8, "UTF-8"),
        (CardError::NotVCard, "BEGIN:VCARD"),
        (CardError::UnsupportedVersion("2.1".into()), "3.0 and 4.0"),
        (
            CardError::Malformed {
                line: 7,
                reason: "bad".into(),
            },
            "line 7: bad",
        ),
        (CardError::MissingProperty("UID"), "no UID property"),
        (CardError::MultipleCards, "more than one vCard"),
        (CardError::TooLarge, "1 MiB"),
    ];
    for (err, needle) in cases {
        assert!(err.to_string().contains(needle), "{err}");
        assert_eq!(
            err.is_unsupported_version(),
            matches!(err, CardError::UnsupportedVersion(_))
        );
    }
}

#[test]
fn lenient_properties_skip_structure_and_bad_lines() {
    let text = "FN:No Begin\r\nthis line is junk\r\nEMAIL;TYPE=work:a@b.example\r\nEND:VCARD\r\n";
    let props = properties(text).expect("lenient");
    let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["FN", "EMAIL"]);
    let props = properties(&crlf(APPLE)).expect("apple");
    assert_eq!(props.first().map(|p| p.name.as_str()), Some("VERSION"));
    assert!(props.iter().all(|p| p.name != "BEGIN" && p.name != "END"));
}

// ---------------------------------------------------------------------------------------------
// Escaping and folding

#[test]
fn escape_and_unescape() {
    assert_eq!(
        escape_text("a,b;c\\d\ne\r\nf\rg"),
        "a\\,b\\;c\\\\d\\ne\\nf\\ng"
    );
    assert_eq!(escape_text("tab\there\u{7}bell\0"), "tab\therebell");
    assert_eq!(unescape_text("a\\,b\\;c\\\\d\\ne\\Nf"), "a,b;c\\d\ne\nf");
    assert_eq!(unescape_text("http\\://x"), "http://x");
    assert_eq!(unescape_text("C:\\Users\\x\\"), "C:\\Users\\x\\");
    assert_eq!(
        unescape_text(&escape_text("Müller, \"Jo\"; \\o/")),
        "Müller, \"Jo\"; \\o/"
    );
}

#[test]
fn fold_splits_at_75_octets_without_breaking_characters() {
    let ascii = format!("NOTE:{}", "x".repeat(300));
    let folded = fold(&ascii);
    let lines: Vec<&str> = folded.split("\r\n").collect();
    assert_eq!(lines[0].len(), 75);
    assert!(lines[1..]
        .iter()
        .all(|l| l.starts_with(' ') && l.len() <= 75));
    assert_eq!(folded.replace("\r\n ", ""), ascii);
    assert_eq!(fold("FN:short"), "FN:short");
    assert_eq!(fold(&"y".repeat(75)), "y".repeat(75));

    for filler in ["é", "€", "😀", "e\u{301}", "ab😀"] {
        for offset in 0..4 {
            let line = format!("NOTE:{}{}", "z".repeat(offset), filler.repeat(80));
            let folded = fold(&line);
            for l in folded.split("\r\n") {
                assert!(l.len() <= 75, "{l:?}");
            }
            assert_eq!(folded.replace("\r\n ", ""), line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

#[test]
fn renders_v3_snapshot() {
    let text = render(
        &customer(),
        "cust-1@portico",
        Some("https://portico.example/admin/c/cust-1"),
        VCardVersion::V3,
    );
    let want = crlf(
        "BEGIN:VCARD
VERSION:3.0
PRODID:-//Portico//CardDAV//EN
UID:cust-1@portico
FN:Jane Doe
N:Doe;Jane;;;
EMAIL;TYPE=INTERNET,pref:jane@example.com
EMAIL;TYPE=INTERNET:jd@work.example
TEL;TYPE=pref:+1 555 0100
BDAY:1985-04-12
NOTE:VIP
URL:https://portico.example/admin/c/cust-1
REV:2026-01-05T10:00:00Z
END:VCARD
",
    );
    assert_eq!(text, want);
}

#[test]
fn renders_v4_snapshot() {
    let mut c = customer();
    c.birthday = Some("--04-12".to_string());
    c.known_phones = vec!["+1 555 0199".to_string()];
    let text = render(&c, "cust-1", None, VCardVersion::V4);
    let want = crlf(
        "BEGIN:VCARD
VERSION:4.0
PRODID:-//Portico//CardDAV//EN
UID:cust-1
FN:Jane Doe
N:Doe;Jane;;;
EMAIL;PREF=1:jane@example.com
EMAIL:jd@work.example
TEL;PREF=1:+1 555 0100
TEL:+1 555 0199
BDAY:--0412
NOTE:VIP
REV:20260105T100000Z
END:VCARD
",
    );
    assert_eq!(text, want);
}

#[test]
fn renders_v3_birthday_without_year_apple_style() {
    let mut c = customer();
    c.birthday = Some("--12-24".to_string());
    let text = render(&c, "u", None, VCardVersion::V3);
    assert!(text.contains("\r\nBDAY;X-APPLE-OMIT-YEAR=1604:1604-12-24\r\n"));
    assert_eq!(ok(&text).fields.birthday.as_deref(), Some("--12-24"));
    c.birthday = Some("not a date".to_string());
    assert!(!render(&c, "u", None, VCardVersion::V3).contains("BDAY"));
}

#[test]
fn renders_non_ascii_escaped_and_folded() {
    let mut c = customer();
    c.name = "Łukasz Żółćiński-Brzęczyszczykiewicz, Jr.".to_string();
    c.given_name = None;
    c.family_name = None;
    let note = format!(
        "Prefers calls; never email.\nAddress: 5, Rue de l'Église, Paris\r\nPath C:\\tmp\n{}",
        "長い備考です。".repeat(20)
    );
    c.note = Some(note.clone());
    for version in [VCardVersion::V3, VCardVersion::V4] {
        let text = render(&c, "uid-ł", None, version);
        assert!(text.ends_with("END:VCARD\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        for line in physical(&text) {
            assert!(line.len() <= 75, "{line:?}");
        }
        assert!(text.contains("FN:Łukasz Żółćiński-Brzęczyszczykiewicz\\, Jr."));
        assert!(text.contains("N:Żółćiński-Brzęczyszczykiewicz\\, Jr.;Łukasz;;;"));
        let note_line = logical(&text)
            .into_iter()
            .find(|l| l.starts_with("NOTE:"))
            .expect("note");
        assert_eq!(
            unescape_text(&note_line["NOTE:".len()..]),
            note.replace("\r\n", "\n")
        );
        let card = ok(&text);
        assert_eq!(card.uid, "uid-ł");
        assert_eq!(card.version, version);
        assert_eq!(card.fields.name, c.name);
        assert_eq!(
            card.fields.note.as_deref(),
            Some(note.replace("\r\n", "\n").as_str())
        );
        assert_eq!(
            card.fields.family_name.as_deref(),
            Some("Żółćiński-Brzęczyszczykiewicz, Jr.")
        );
    }
}

#[test]
fn render_is_deterministic_and_derives_n() {
    let mut c = customer();
    c.given_name = None;
    c.family_name = None;
    c.name = "Ada King Lovelace".to_string();
    let a = render(&c, "u", None, VCardVersion::V3);
    assert_eq!(a, render(&c, "u", None, VCardVersion::V3));
    assert!(a.contains("\r\nN:Lovelace;Ada King;;;\r\n"));
    c.name = "Cher".to_string();
    assert!(render(&c, "u", None, VCardVersion::V4).contains("\r\nN:;Cher;;;\r\n"));
    c.family_name = Some("Sarkisian".to_string());
    assert!(render(&c, "u", None, VCardVersion::V4).contains("\r\nN:Sarkisian;;;;\r\n"));
}

#[test]
fn rev_timestamps() {
    use super::date::format_rev;
    let cases = [
        (
            1_767_607_200_000,
            "2026-01-05T10:00:00Z",
            "20260105T100000Z",
        ),
        (
            1_751_327_999_000,
            "2025-06-30T23:59:59Z",
            "20250630T235959Z",
        ),
        (951_827_696_000, "2000-02-29T12:34:56Z", "20000229T123456Z"),
        (-1_000, "1969-12-31T23:59:59Z", "19691231T235959Z"),
        (0, "1970-01-01T00:00:00Z", "19700101T000000Z"),
    ];
    for (ms, v3, v4) in cases {
        assert_eq!(format_rev(Timestamp(ms), VCardVersion::V3), v3);
        assert_eq!(format_rev(Timestamp(ms), VCardVersion::V4), v4);
    }
    assert_eq!(
        format_rev(Timestamp(i64::MAX), VCardVersion::V3),
        "9999-12-31T23:59:59Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Patching

fn apple_customer() -> Customer {
    let f = ok(&crlf(APPLE)).fields;
    Customer {
        name: f.name,
        given_name: f.given_name,
        family_name: f.family_name,
        email: f.emails.first().cloned(),
        phone: f.phones.first().cloned(),
        known_emails: f.emails[1..].to_vec(),
        known_phones: f.phones[1..].to_vec(),
        birthday: f.birthday,
        note: f.note,
        ..customer()
    }
}

/// True if `needle`'s lines appear in `hay` in the same order (other lines may be between).
fn in_order(hay: &[&str], needle: &[&str]) -> bool {
    let mut it = hay.iter();
    needle.iter().all(|n| it.any(|h| h == n))
}

#[test]
fn patch_keeps_unmodelled_lines_byte_for_byte() {
    let stored = crlf(APPLE);
    let before = apple_customer();
    let mut after = CustomerDraft::from_customer(&before);
    after.known_emails = vec!["johnny.new@mail.example".to_string()];
    after.note = Some("Now: only apples".to_string());
    let rev = Timestamp(1_767_607_200_000);
    let out = patch(&stored, &before, &after, rev);

    let unchanged: Vec<&str> = physical(&stored)
        .into_iter()
        .filter(|l| {
            !l.contains("EMAIL")
                && !l.starts_with("NOTE")
                && !l.starts_with("REV")
                && !l.starts_with("item2.")
        })
        .collect();
    let got = physical(&out);
    assert!(in_order(&got, &unchanged), "{out}");
    assert_eq!(got.len(), physical(&stored).len() - 1, "{out}");
    assert!(got.contains(&"item1.EMAIL;type=INTERNET;type=pref:johnny@orchard.example"));
    assert!(got.contains(&"EMAIL;TYPE=INTERNET:johnny.new@mail.example"));
    assert!(!out.contains("item2."), "orphaned label removed: {out}");
    assert!(got.contains(&"NOTE:Now: only apples"));
    assert!(got.contains(&"REV:2026-01-05T10:00:00Z"));
    assert!(out.contains(
        "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgID\r\n AwMD"
    ));
    // The emails sit where the first one was: after TITLE, before the TELs.
    let pos = |l: &str| got.iter().position(|g| *g == l);
    assert!(pos("TITLE:Founder") < pos("EMAIL;TYPE=INTERNET:johnny.new@mail.example"));
    assert!(
        pos("EMAIL;TYPE=INTERNET:johnny.new@mail.example")
            < pos("TEL;type=CELL;type=VOICE;type=pref:+1 (555) 010-2030")
    );

    let f = ok(&out).fields;
    assert_eq!(
        f.emails,
        strings(&["johnny@orchard.example", "johnny.new@mail.example"])
    );
    assert_eq!(f.note.as_deref(), Some("Now: only apples"));
    assert_eq!(f.phones, before.all_phones());
}

#[test]
fn patch_with_no_field_change_only_touches_rev() {
    let stored = crlf(APPLE);
    let before = apple_customer();
    let after = CustomerDraft::from_customer(&before);
    let out = patch(&stored, &before, &after, Timestamp(0));
    assert_eq!(
        out,
        stored.replace("REV:2025-03-14T09:26:53Z", "REV:1970-01-01T00:00:00Z")
    );
    // Without REV in the card, nothing changes at all.
    let no_rev = crlf(GOOGLE).replace("REV:2025-04-01T00:00:00Z\r\n", "");
    let g = ok(&no_rev).fields;
    let before = Customer {
        name: g.name,
        given_name: g.given_name,
        family_name: g.family_name,
        email: g.emails.first().cloned(),
        known_emails: g.emails[1..].to_vec(),
        phone: g.phones.first().cloned(),
        known_phones: vec![],
        birthday: g.birthday,
        note: g.note,
        ..customer()
    };
    let after = CustomerDraft::from_customer(&before);
    assert_eq!(patch(&no_rev, &before, &after, Timestamp(0)), no_rev);
}

#[test]
fn patch_phones_keep_parameters_of_unchanged_numbers() {
    let stored = crlf(APPLE);
    let before = apple_customer();
    let mut after = CustomerDraft::from_customer(&before);
    after.phone = Some("+1 555 010 9999".to_string());
    after.known_phones = vec!["+1 555 777 0000".to_string()];
    let out = patch(&stored, &before, &after, Timestamp(0));
    let got = physical(&out);
    // The kept number moves first with its group and label; the old primary is gone.
    assert!(
        in_order(
            &got,
            &[
                "item3.TEL:+1 555 010 9999",
                "TEL:+1 555 777 0000",
                "item3.X-ABLabel:Orchard line"
            ]
        ),
        "{out}"
    );
    assert!(!out.contains("010-2030"));
    assert_eq!(
        ok(&out).fields.phones,
        strings(&["+1 555 010 9999", "+1 555 777 0000"])
    );
}

#[test]
fn patch_name_birthday_and_removals() {
    let stored = crlf(APPLE);
    let before = apple_customer();
    let mut after = CustomerDraft::from_customer(&before);
    after.name = "John Appleseed".to_string();
    after.given_name = Some("John".to_string());
    after.birthday = Some("1990-09-26".to_string());
    after.note = None;
    after.email = None;
    after.known_emails = vec![];
    let out = patch(&stored, &before, &after, Timestamp(0));
    let got = physical(&out);
    assert!(got.contains(&"FN:John Appleseed"));
    assert!(got.contains(&"N:Appleseed;John;Q.;Mr.;"), "{out}");
    assert!(got.contains(&"BDAY:1990-09-26"));
    assert!(!out.contains("NOTE"));
    assert!(!out.contains("EMAIL"));
    assert!(!out.contains("X-ABLabel:_$!<Other>"));
    let f = ok(&out).fields;
    assert_eq!(f.name, "John Appleseed");
    assert_eq!(f.given_name.as_deref(), Some("John"));
    assert_eq!(f.birthday.as_deref(), Some("1990-09-26"));
    assert!(f.emails.is_empty());
}

#[test]
fn patch_adds_missing_properties_before_end_in_card_style() {
    let stored = THUNDERBIRD_V4.replace("BDAY;VALUE=DATE:18151210\n", "");
    let card = ok(&stored);
    let f = card.fields;
    let before = Customer {
        name: f.name,
        given_name: f.given_name,
        family_name: f.family_name,
        email: f.emails.first().cloned(),
        known_emails: f.emails[1..].to_vec(),
        phone: f.phones.first().cloned(),
        known_phones: f.phones[1..].to_vec(),
        birthday: None,
        note: f.note,
        ..customer()
    };
    let mut after = CustomerDraft::from_customer(&before);
    after.birthday = Some("--12-10".to_string());
    after.known_phones.push("+44 1632 960000".to_string());
    let out = patch(&stored, &before, &after, Timestamp(0));
    assert!(!out.contains('\r'), "bare LF card stays LF");
    assert!(out.ends_with("BDAY:--1210\nEND:VCARD\n"), "{out}");
    assert!(
        out.contains("TEL;TYPE=cell;VALUE=TEXT:+44 7700 900 001\nTEL:+44 1632 960000\nURL"),
        "{out}"
    );
    let f = ok(&out).fields;
    assert_eq!(f.birthday.as_deref(), Some("--12-10"));
    assert_eq!(f.phones.len(), 3);
}

#[test]
fn patch_v4_card_uses_v4_formats() {
    let stored = crlf(DAVX5_V4);
    let f = ok(&stored).fields;
    let before = Customer {
        name: f.name,
        given_name: f.given_name,
        family_name: f.family_name,
        email: f.emails.first().cloned(),
        known_emails: f.emails[1..].to_vec(),
        phone: f.phones.first().cloned(),
        known_phones: f.phones[1..].to_vec(),
        birthday: f.birthday,
        note: f.note,
        ..customer()
    };
    let mut after = CustomerDraft::from_customer(&before);
    after.birthday = Some("1990-02-28".to_string());
    after.email = Some("zoe@new.example".to_string());
    let out = patch(&stored, &before, &after, Timestamp(1_767_607_200_000));
    let got = physical(&out);
    assert!(got.contains(&"BDAY:19900228"));
    assert!(got.contains(&"EMAIL;PREF=1:zoe@new.example"));
    assert!(got.contains(&"EMAIL;TYPE=work:zoe.fassbinder@firma.example"));
    assert!(got.contains(&"TEL;VALUE=uri;TYPE=work:tel:+49-30-1234567"));
    assert!(got.contains(&"REV:20260105T100000Z"));
    assert!(got.contains(&"RELATED;TYPE=spouse;VALUE=text:Max"));
    assert_eq!(ok(&out).version, VCardVersion::V4);
}

#[test]
fn patch_of_a_quoted_printable_value_drops_the_encoding() {
    let stored = crlf(QP_V3);
    let f = ok(&stored).fields;
    let before = Customer {
        name: f.name,
        given_name: f.given_name,
        family_name: f.family_name,
        email: None,
        known_emails: vec![],
        phone: f.phones.first().cloned(),
        known_phones: vec![],
        birthday: None,
        note: f.note,
        ..customer()
    };
    let mut after = CustomerDraft::from_customer(&before);
    after.name = "Jürgen Müller-Lüdenscheidt".to_string();
    after.note = Some("Neu".to_string());
    let out = patch(&stored, &before, &after, Timestamp(0));
    assert!(
        out.contains("\r\nFN:Jürgen Müller-Lüdenscheidt\r\n"),
        "{out}"
    );
    assert!(out.contains("\r\nNOTE:Neu\r\n"), "{out}");
    assert!(out.contains("N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller"));
    assert_eq!(ok(&out).fields.name, "Jürgen Müller-Lüdenscheidt");
}

// ---------------------------------------------------------------------------------------------
// Conversion and selection

fn projection(text: &str) -> CardFields {
    ok(text).fields
}

#[test]
fn convert_same_version_borrows() {
    let apple = crlf(APPLE);
    assert!(matches!(
        convert(&apple, VCardVersion::V3),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        convert(DAVX5_V4, VCardVersion::V4),
        Cow::Borrowed(_)
    ));
}

#[test]
fn convert_apple_to_v4() {
    let apple = crlf(APPLE);
    let out = convert(&apple, VCardVersion::V4).into_owned();
    let lines = logical(&out);
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(has("VERSION:4.0"));
    assert!(has("BDAY:--0926"), "{out}");
    assert!(
        has("item1.EMAIL;TYPE=INTERNET;PREF=1:johnny@orchard.example"),
        "{out}"
    );
    assert!(has("TEL;TYPE=CELL,VOICE;PREF=1:+1 (555) 010-2030"), "{out}");
    assert!(has(
        "item4.ADR;TYPE=HOME;PREF=1:;;1 Orchard Lane;Cupertino;CA;95014;United States"
    ));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("PHOTO:data:image/jpeg;base64,/9j/4AAQ") && l.ends_with("/9k=")));
    // Untouched lines are copied as written.
    for l in [
        "item2.X-ABLabel:_$!<Other>!$_",
        "NOTE:Likes apples\\, pears\\; and\\nplums",
        "REV:20250314T092653Z",
    ] {
        assert!(has(l), "{l} in {out}");
    }
    assert!(out.contains("\r\nitem3.TEL:+1 555 010 9999\r\n"));
    for l in physical(&out) {
        assert!(l.len() <= 75);
    }
    let card = ok(&out);
    assert_eq!(card.version, VCardVersion::V4);
    assert_eq!(card.fields, projection(&apple));
}

#[test]
fn convert_davx5_to_v3() {
    let v4 = crlf(DAVX5_V4);
    let out = convert(&v4, VCardVersion::V3).into_owned();
    let lines = logical(&out);
    let has = |l: &str| lines.iter().any(|x| x == l);
    assert!(has("VERSION:3.0"));
    assert!(has("BDAY;X-APPLE-OMIT-YEAR=1604:1604-02-29"), "{out}");
    assert!(has("EMAIL;TYPE=home,pref:zoe@example.org"), "{out}");
    assert!(has("TEL;TYPE=work:+49-30-1234567"), "{out}");
    assert!(has("X-ANNIVERSARY:2010-06-12"));
    assert!(has("REV:2025-01-01T12:00:00Z"));
    assert!(
        has("ADR;TYPE=home:;;Hauptstraße 5;Berlin;;10115;Germany"),
        "{out}"
    );
    assert!(has("LABEL;TYPE=home:Hauptstraße 5\\n10115 Berlin"), "{out}");
    assert!(!out.contains("RELATED") && !out.contains("GENDER"));
    assert!(has("NOTE:Met at FOSDEM\\, room H.2215"));
    let card = ok(&out);
    assert_eq!(card.version, VCardVersion::V3);
    assert_eq!(card.fields, projection(&v4));
}

#[test]
fn convert_round_trips_keep_the_projection() {
    for (name, text) in all_fixtures() {
        let original = ok(&text);
        let other = match original.version {
            VCardVersion::V3 => VCardVersion::V4,
            VCardVersion::V4 => VCardVersion::V3,
        };
        let there = convert(&text, other).into_owned();
        let back = convert(&there, original.version).into_owned();
        let there_card = ok(&there);
        assert_eq!(there_card.version, other, "{name}");
        assert_eq!(there_card.fields, original.fields, "{name}: {there}");
        assert_eq!(there_card.uid, original.uid, "{name}");
        let back_card = ok(&back);
        assert_eq!(back_card.fields, original.fields, "{name}: {back}");
        // A second round changes nothing more.
        assert_eq!(
            convert(&convert(&back, other), original.version),
            back,
            "{name}"
        );
    }
}

#[test]
fn convert_drops_properties_illegal_in_the_target() {
    let v3 = minimal(
        "3.0",
        "NAME:Card name\nPROFILE:VCARD\nLABEL;TYPE=HOME:1 Main St\nMAILER:Mutt\nCLASS:PUBLIC\nX-ADDRESSBOOKSERVER-KIND:group\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:abc\nGEO:37.38;-122.08\n",
    );
    let v4 = convert(&v3, VCardVersion::V4).into_owned();
    for gone in ["NAME:", "PROFILE", "LABEL", "MAILER", "CLASS"] {
        assert!(!v4.contains(gone), "{gone} in {v4}");
    }
    assert!(v4.contains("\r\nKIND:group\r\n"));
    assert!(v4.contains("\r\nMEMBER:urn:uuid:abc\r\n"));
    assert!(v4.contains("\r\nGEO:geo:37.38,-122.08\r\n"));
    let back = convert(&v4, VCardVersion::V3).into_owned();
    assert!(back.contains("\r\nX-ADDRESSBOOKSERVER-KIND:group\r\n"));
    assert!(back.contains("\r\nGEO:37.38;-122.08\r\n"));

    let individual = minimal(
        "4.0",
        "KIND:individual\nFN;ALTID=1;LANGUAGE=ja:山田\nBDAY;VALUE=text:circa 1800\nCLIENTPIDMAP:1;urn:uuid:x\nEMAIL;PID=1.1;PREF=2:a@b.example\n",
    );
    let v3 = convert(&individual, VCardVersion::V3).into_owned();
    assert!(!v3.contains("KIND"));
    assert!(!v3.contains("山田"), "second FN dropped: {v3}");
    assert!(!v3.contains("BDAY"));
    assert!(!v3.contains("CLIENTPIDMAP"));
    assert!(v3.contains("\r\nEMAIL:a@b.example\r\n"), "{v3}");
}

#[test]
fn convert_quoted_printable_card_to_v4_decodes_it() {
    let out = convert(&crlf(QP_V3), VCardVersion::V4).into_owned();
    assert!(!out.contains("QUOTED-PRINTABLE"));
    assert!(out.contains("\r\nFN:Jürgen Müller\r\n"));
    assert!(out.contains("\r\nN:Müller;Jürgen;;;\r\n"));
    assert_eq!(projection(&out), projection(&crlf(QP_V3)));
}

#[test]
fn select_keeps_named_properties() {
    let apple = crlf(APPLE);
    let props = vec![
        ("EMAIL".to_string(), false),
        ("fn".to_string(), false),
        ("PHOTO".to_string(), true),
        ("X-NOT-THERE".to_string(), false),
    ];
    let out = select(&apple, &props);
    assert_eq!(
        out,
        crlf(
            "BEGIN:VCARD
VERSION:3.0
FN:Johnny Appleseed
item1.EMAIL;type=INTERNET;type=pref:johnny@orchard.example
item2.EMAIL;type=INTERNET:j.appleseed@mail.example
PHOTO;ENCODING=b;TYPE=JPEG:
END:VCARD
"
        )
    );
    assert_eq!(
        select(&apple, &[]),
        crlf("BEGIN:VCARD\nVERSION:3.0\nEND:VCARD\n")
    );
    let photo = select(&apple, &[("photo".to_string(), false)]);
    assert!(photo.contains("\r\n ALCAABAAEBAREA/8wABgAQEAX/2gAIAQEAAD8A0s8g/9k=\r\n"));
}

#[test]
fn etag_and_version_of() {
    assert_eq!(etag(""), "\"47DEQpj8HBSa-_TImW-5JA\"");
    assert_eq!(etag("BEGIN:VCARD\r\n"), "\"azpJ9jlPJiKjB4PDvSOLqg\"");
    let a = crlf(APPLE);
    assert_eq!(etag(&a), etag(&a.clone()));
    assert_ne!(etag(&a), etag(&a.replace("Founder", "founder")));
    assert_eq!(etag(&a).len(), 24);

    assert_eq!(version_of(&a), VCardVersion::V3);
    assert_eq!(version_of(DAVX5_V4), VCardVersion::V4);
    assert_eq!(version_of(THUNDERBIRD_V4), VCardVersion::V4);
    assert_eq!(
        version_of("BEGIN:VCARD\r\nversion: 4.0 \r\nEND:VCARD"),
        VCardVersion::V4
    );
    assert_eq!(version_of("garbage"), VCardVersion::V3);
    assert_eq!(VCardVersion::V3.as_str(), "3.0");
    assert_eq!(VCardVersion::V4.as_str(), "4.0");
}

// ---------------------------------------------------------------------------------------------
// Properties

/// What a TEXT value becomes after escape → unescape: CRLF/CR as LF, other controls gone.
fn normalized(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_ascii_control())
        .collect()
}

fn field() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}".prop_filter_map("blank", |s| {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_string())
    })
}

fn birthday() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        (1000u32..=9999, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| Some(format!("{y:04}-{m:02}-{d:02}"))),
        (1u32..=12, 1u32..=29).prop_map(|(m, d)| Some(format!("--{m:02}-{d:02}"))),
    ]
}

prop_compose! {
    fn arb_customer()(
        name in field(),
        given in proptest::option::of(field()),
        family in proptest::option::of(field()),
        emails in proptest::collection::vec(field(), 0..4),
        phones in proptest::collection::vec("[+0-9 ()-]{0,8}[0-9]", 0..4),
        birthday in birthday(),
        note in proptest::option::of(".{0,200}"),
    ) -> Customer {
        let mut c = customer();
        c.name = name;
        c.given_name = given;
        c.family_name = family;
        c.email = emails.first().cloned();
        c.known_emails = emails.iter().skip(1).cloned().collect();
        c.phone = phones.first().map(|p| p.trim().to_string());
        c.known_phones = phones.iter().skip(1).map(|p| p.trim().to_string()).collect();
        c.birthday = birthday;
        c.note = note;
        c
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_survives_escape_fold_parse(s in any::<String>()) {
        prop_assert_eq!(unescape_text(&escape_text(&s)), normalized(&s));
        let line = fold(&format!("NOTE;LANGUAGE=en:{}", escape_text(&s)));
        let text = format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:x\r\nFN:x\r\n{line}\r\nEND:VCARD\r\n");
        for l in physical(&text) {
            prop_assert!(l.len() <= 75);
        }
        let card = parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let note = card.properties.iter().find(|p| p.name == "NOTE").map(Property::text);
        prop_assert_eq!(note, Some(normalized(&s)));
    }

    #[test]
    fn rendered_customers_project_back(c in arb_customer(), v4 in any::<bool>()) {
        let version = if v4 { VCardVersion::V4 } else { VCardVersion::V3 };
        let text = render(&c, "uid-1", Some("https://admin.example/c/1"), version);
        for l in physical(&text) {
            prop_assert!(l.len() <= 75);
        }
        let card = parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(card.version, version);
        prop_assert_eq!(&card.uid, "uid-1");
        let f = card.fields;
        prop_assert_eq!(&f.name, &c.name);
        let (family, given) = super::write::name_parts(&c.name, c.given_name.as_deref(), c.family_name.as_deref());
        prop_assert_eq!(f.family_name.unwrap_or_default(), family.trim());
        prop_assert_eq!(f.given_name.unwrap_or_default(), given.trim());
        prop_assert_eq!(f.emails, c.all_emails());
        prop_assert_eq!(f.phones, c.all_phones());
        prop_assert_eq!(f.birthday, c.birthday.clone());
        let note = c.note.as_deref().map(normalized).filter(|n| !n.is_empty());
        prop_assert_eq!(f.note, note);
        // Conversion keeps the projection too.
        let other = if v4 { VCardVersion::V3 } else { VCardVersion::V4 };
        let converted = convert(&text, other);
        let again = parse(converted.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.fields, parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?.fields);
    }

    #[test]
    fn patch_then_parse_gives_the_edit(
        c in arb_customer(),
        edit in arb_customer(),
        v4 in any::<bool>(),
    ) {
        let version = if v4 { VCardVersion::V4 } else { VCardVersion::V3 };
        let stored = render(&c, "uid-1", None, version);
        let mut draft = CustomerDraft::from_customer(&edit);
        draft.id = Some(c.id.clone());
        let out = patch(&stored, &c, &draft, Timestamp(0));
        let rendered = render(&edit, "uid-1", None, version);
        let want = parse(rendered.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?.fields;
        let got = parse(out.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?.fields;
        prop_assert_eq!(got, want);
    }

    #[test]
    fn nothing_panics_on_junk(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = properties(&text);
        let _ = convert(&text, VCardVersion::V4);
        let _ = convert(&text, VCardVersion::V3);
        let _ = select(&text, &[("FN".to_string(), true)]);
        let c = customer();
        let _ = patch(&text, &c, &CustomerDraft::default(), Timestamp(0));
    }

    #[test]
    fn nothing_panics_on_card_shaped_junk(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("BEGIN:VCARD".to_string()),
                Just("END:VCARD".to_string()),
                Just("VERSION:3.0".to_string()),
                Just("VERSION:4.0".to_string()),
                "[A-Za-z.;=\",:^ \\\\-]{0,30}",
                "(BDAY|REV|ANNIVERSARY|GEO|TEL|PHOTO)(;[A-Z-]{1,10}=[A-Za-z0-9,\"]{0,10}){0,2}:[-0-9TZ:.+;,a-z]{0,20}",
                " [^\\n]{0,20}",
            ],
            0..20,
        ),
        lf in any::<bool>(),
    ) {
        let text = lines.join(if lf { "\n" } else { "\r\n" });
        let _ = parse(text.as_bytes());
        let _ = properties(&text);
        for to in [VCardVersion::V3, VCardVersion::V4] {
            let out = convert(&text, to);
            let _ = parse(out.as_bytes());
        }
        let _ = select(&text, &[("BDAY".to_string(), true)]);
        let c = customer();
        let _ = patch(&text, &c, &CustomerDraft::default(), Timestamp(0));
    }
}

// ---------------------------------------------------------------------------------------------
// Field-tested cases (issue 10)

#[test]
fn no_client_is_told_born_1604() {
    for bday in [
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12",
        "BDAY;X-APPLE-OMIT-YEAR=1604;VALUE=date:16040412",
        // An exporter that dropped Apple's parameter but kept its marker year.
        "BDAY:1604-04-12",
    ] {
        let v3 = minimal("3.0", &format!("{bday}\n"));
        assert_eq!(
            ok(&v3).fields.birthday.as_deref(),
            Some("--04-12"),
            "{bday}"
        );
        let v4 = convert(&v3, VCardVersion::V4).into_owned();
        assert!(logical(&v4).iter().any(|l| l == "BDAY:--0412"), "{v4}");
        assert!(!v4.contains("1604"), "{v4}");
    }
    // The way back: a 4.0 year-less birthday reaches 3.0 clients in Apple's form only.
    let v4 = minimal("4.0", "BDAY:--0412\n");
    let v3 = convert(&v4, VCardVersion::V3).into_owned();
    assert!(
        logical(&v3)
            .iter()
            .any(|l| l == "BDAY;X-APPLE-OMIT-YEAR=1604:1604-04-12"),
        "{v3}"
    );
    // A date-time birthday keeps its calendar date: no time-zone shift to the day before.
    let late = minimal("4.0", "BDAY:19850412T230000-0500\n");
    assert_eq!(ok(&late).fields.birthday.as_deref(), Some("1985-04-12"));
}

#[test]
fn full_names_split_once_and_sensibly() {
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("Anna Schmidt", Some("Anna"), Some("Schmidt")),
        ("Anna Maria Schmidt", Some("Anna Maria"), Some("Schmidt")),
        (
            "Ludwig van Beethoven",
            Some("Ludwig"),
            Some("van Beethoven"),
        ),
        ("Maria de la Cruz", Some("Maria"), Some("de la Cruz")),
        (
            "Martin Luther King Jr.",
            Some("Martin Luther"),
            Some("King Jr."),
        ),
        ("Schmidt, Anna", Some("Anna"), Some("Schmidt")),
        ("Sammy Davis, Jr.", Some("Sammy"), Some("Davis, Jr.")),
        ("Kai", Some("Kai"), None),
        ("  Zoë   Müller  ", Some("Zoë"), Some("Müller")),
        ("山田太郎", Some("山田太郎"), None),
        ("דוד בן גוריון", Some("דוד בן"), Some("גוריון")),
        ("", None, None),
    ];
    for (name, given, family) in cases {
        let (g, f) = split_full_name(name);
        assert_eq!((g.as_deref(), f.as_deref()), (*given, *family), "{name:?}");
        // The renderer's N uses the same split when the customer has no parts stored.
        let (family_n, given_n) = super::write::name_parts(name, None, None);
        assert_eq!(family_n, family.unwrap_or_default());
        assert_eq!(given_n, given.unwrap_or_default());
    }
}

/// Names in scripts whose characters take 2–4 octets, with combining marks, emoji sequences
/// (ZWJ, skin tones, flags) and right-to-left text with direction marks.
const WORLD_NAMES: &[&str] = &[
    "Zoë 👩🏽‍🔬🧑🏿‍🦱🏳️‍🌈 Müller-Lüdenscheidt 🇩🇪🇯🇵🇧🇷 Øresund-Ångström ☕️🍰",
    "Ame\u{301}lie Nguye\u{302}\u{303}n Pha\u{323}m Tha\u{300}nh Tru\u{31b}\u{300}o\u{31b}\u{300}ng Nguyễn Thị Minh Khai",
    "山田太郎 佐藤花子 鈴木一郎 高橋美咲 田中健太 渡辺直美 伊藤博文 中村俊輔",
    "\u{200f}דוד בן־גוריון ושרה אהרונסון\u{200f} محمد عبد الله الحسيني فاطمة الزهراء",
    "한국어 이름 김민준 이서연 박지후 최수아 정예준 강하은 조도윤 윤서윤",
];

#[test]
fn names_in_every_script_fold_on_character_boundaries_and_round_trip() {
    for name in WORLD_NAMES {
        for version in [VCardVersion::V3, VCardVersion::V4] {
            let mut c = customer();
            c.name = name.to_string();
            c.given_name = None;
            c.family_name = None;
            c.note = Some(format!("{name}; {name}, {name}\n{name}"));
            let text = render(&c, "u-1", None, version);
            for l in physical(&text) {
                assert!(l.len() <= 75, "{} octets: {l:?}", l.len());
            }
            let card = ok(&text);
            assert_eq!(card.fields.name, *name);
            assert_eq!(
                card.fields.note.as_deref(),
                c.note.as_deref(),
                "{version:?}"
            );
        }
    }
}

#[test]
fn every_folding_style_unfolds_to_the_same_card() {
    let name = WORLD_NAMES[0];
    let reference = ok(&minimal("4.0", &format!("NOTE:{name}\n")));
    let line = format!("NOTE:{name}");
    // Fold after every character (the most folds a writer can make) in each style a client
    // uses: CRLF or bare LF, then one space or one tab.
    for (eol, ws) in [("\r\n", ' '), ("\r\n", '\t'), ("\n", ' '), ("\n", '\t')] {
        let mut folded = String::new();
        for (i, ch) in line.chars().enumerate() {
            if i > 0 {
                folded.push_str(eol);
                folded.push(ws);
            }
            folded.push(ch);
        }
        let text = format!("BEGIN:VCARD{eol}VERSION:4.0{eol}UID:u-1{eol}FN:Test Person{eol}{folded}{eol}END:VCARD{eol}");
        let card = ok(&text);
        assert_eq!(card.fields, reference.fields, "{eol:?} {ws:?}");
    }
}

#[test]
fn folds_inside_a_character_are_repaired_not_refused() {
    // An exporter that folds every 75 octets regardless of characters: the fold lands inside
    // multi-byte sequences, so the bytes are not UTF-8 until unfolded.
    let name = WORLD_NAMES[2];
    let logical_line = format!("FN:{name}");
    let bytes = logical_line.as_bytes();
    let mut folded: Vec<u8> = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u-1\r\n".to_vec();
    for (i, chunk) in bytes.chunks(20).enumerate() {
        if i > 0 {
            folded.extend_from_slice(b"\r\n ");
        }
        folded.extend_from_slice(chunk);
    }
    folded.extend_from_slice(b"\r\nEND:VCARD\r\n");
    assert!(
        std::str::from_utf8(&folded).is_err(),
        "the fixture splits a character"
    );
    assert_eq!(parse(&folded), Err(CardError::NotUtf8));
    let repaired = super::refold_octet_folds(&folded).expect("repairable");
    for l in physical(&repaired) {
        assert!(l.len() <= 75);
    }
    assert_eq!(ok(&repaired).fields.name, name);
    // Bytes that are not UTF-8 even unfolded stay refused.
    assert_eq!(super::refold_octet_folds(b"FN:\xff\r\n"), None);
}
