//! Writing: escaping, folding, serializing properties and rendering a customer's card.

use portico_sdk::Customer;

use super::date::{customer_birthday, format_rev, Date};
use super::{Property, VCardVersion};

/// The longest physical line, in octets, not counting the line break (RFC 6350 §3.2).
const FOLD_AT: usize = 75;

/// Escapes a TEXT value: `\` → `\\`, `,` → `\,`, `;` → `\;`, a line break (CRLF, LF or CR)
/// → `\n`. ASCII control characters other than tab cannot appear in a vCard and are dropped.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Unescapes a TEXT value: `\n` and `\N` → line feed, `\,` `\;` `\\` → the character. `\:`
/// (written by some exporters, e.g. in URLs) → `:`. Any other backslash is kept as written.
pub fn unescape_text(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') | Some('N') => out.push('\n'),
            Some(c @ (',' | ';' | '\\' | ':')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Folds one logical line into physical lines of at most 75 octets: CRLF plus one space
/// before each continuation, never splitting a UTF-8 character. No line break is added after
/// the last physical line.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 24);
    fold_into(&mut out, line, "\r\n");
    out
}

/// [`fold`] with a chosen line break, appended to `out`.
pub(crate) fn fold_into(out: &mut String, line: &str, eol: &str) {
    let mut rest = line;
    let mut limit = FOLD_AT;
    loop {
        if rest.len() <= limit {
            out.push_str(rest);
            return;
        }
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str(eol);
        out.push(' ');
        rest = &rest[cut..];
        limit = FOLD_AT - 1;
    }
}

/// Appends a folded content line and its line break.
pub(crate) fn push_line(out: &mut String, line: &str, eol: &str) {
    fold_into(out, line, eol);
    out.push_str(eol);
}

/// RFC 6868 encoding of a parameter value, quoted when it holds `,`, `;` or `:`.
fn push_param_value(out: &mut String, v: &str) {
    let mut enc = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '^' => enc.push_str("^^"),
            '"' => enc.push_str("^'"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                enc.push_str("^n");
            }
            '\n' => enc.push_str("^n"),
            c if c.is_ascii_control() && c != '\t' => {}
            c => enc.push(c),
        }
    }
    if enc.contains([',', ';', ':']) {
        out.push('"');
        out.push_str(&enc);
        out.push('"');
    } else {
        out.push_str(&enc);
    }
}

/// `[group.]NAME[;PARAM=v,v…]` for a property.
pub(crate) fn header(p: &Property) -> String {
    let mut out = String::with_capacity(p.name.len() + 16);
    if let Some(g) = &p.group {
        out.push_str(g);
        out.push('.');
    }
    out.push_str(&p.name);
    for (name, values) in &p.params {
        out.push(';');
        out.push_str(name);
        out.push('=');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_param_value(&mut out, v);
        }
    }
    out
}

/// The unfolded content line for a property.
pub(crate) fn property_line(p: &Property) -> String {
    let mut out = header(p);
    out.push(':');
    out.push_str(&p.value);
    out
}

/// `(family, given)` for `N`: the customer's own parts, or — when both are absent — the split
/// of the display name by [`split_full_name`].
pub(crate) fn name_parts(
    name: &str,
    given: Option<&str>,
    family: Option<&str>,
) -> (String, String) {
    if given.is_some() || family.is_some() {
        return (
            family.unwrap_or_default().to_string(),
            given.unwrap_or_default().to_string(),
        );
    }
    let (given, family) = split_full_name(name);
    (family.unwrap_or_default(), given.unwrap_or_default())
}

/// Lower-case words that begin a family name ("Ludwig van Beethoven", "Maria de la Cruz").
const FAMILY_PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "dos", "das",
    "do", "ten", "ter", "bin", "ibn", "al", "el",
];

/// Words that follow a family name ("Martin Luther King Jr.") and stay with it.
const NAME_SUFFIXES: &[&str] = &["jr", "jr.", "sr", "sr.", "ii", "iii", "iv"];

/// `(given, family)` from a display name alone: "Family, Given" when there is one comma;
/// otherwise the last word is the family name, together with the lower-case particles before
/// it and any generational suffix after it; the words before are the given name. One word is
/// a given name ("Kai"). Deterministic, so the split stored once is the split everywhere.
pub fn split_full_name(name: &str) -> (Option<String>, Option<String>) {
    let some = |s: String| (!s.is_empty()).then_some(s);
    if let [family, given] = name.split(',').collect::<Vec<_>>()[..] {
        let (family, given) = (family.trim(), given.trim());
        let suffix = NAME_SUFFIXES.contains(&given.to_lowercase().as_str());
        if !family.is_empty() && !given.is_empty() && !suffix {
            return (Some(given.to_string()), Some(family.to_string()));
        }
    }
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() < 2 {
        return (words.first().map(|w| w.to_string()), None);
    }
    let mut end = words.len();
    while end > 2 && NAME_SUFFIXES.contains(&words[end - 1].to_lowercase().as_str()) {
        end -= 1;
    }
    let mut start = end - 1;
    while start > 1 && FAMILY_PARTICLES.contains(&words[start - 1]) {
        start -= 1;
    }
    (
        some(words[..start].join(" ")),
        some(words[start..].join(" ")),
    )
}

fn group_prefix(group: Option<&str>) -> String {
    group.map(|g| format!("{g}.")).unwrap_or_default()
}

/// An `EMAIL` line as Portico writes it. The primary address carries `TYPE=INTERNET,pref`
/// (3.0) or `PREF=1` (4.0); the others `TYPE=INTERNET` (3.0) or nothing (4.0).
pub(crate) fn email_line(email: &str, primary: bool, version: VCardVersion) -> String {
    let params = match (version, primary) {
        (VCardVersion::V3, true) => ";TYPE=INTERNET,pref",
        (VCardVersion::V3, false) => ";TYPE=INTERNET",
        (VCardVersion::V4, true) => ";PREF=1",
        (VCardVersion::V4, false) => "",
    };
    format!("EMAIL{params}:{}", escape_text(email))
}

/// A `TEL` line as Portico writes it (free text). The primary number carries `TYPE=pref`
/// (3.0) or `PREF=1` (4.0).
pub(crate) fn tel_line(phone: &str, primary: bool, version: VCardVersion) -> String {
    let params = match (version, primary) {
        (VCardVersion::V3, true) => ";TYPE=pref",
        (VCardVersion::V4, true) => ";PREF=1",
        (_, false) => "",
    };
    format!("TEL{params}:{}", escape_text(phone))
}

/// A `BDAY` line: 3.0 `YYYY-MM-DD` (or `X-APPLE-OMIT-YEAR=1604` with `1604-MM-DD` when the
/// year is unknown); 4.0 `YYYYMMDD` or `--MMDD`.
pub(crate) fn bday_line(group: Option<&str>, d: Date, version: VCardVersion) -> Option<String> {
    let g = group_prefix(group);
    match version {
        VCardVersion::V3 => {
            let (value, omit) = d.v3_value()?;
            Some(if omit {
                format!(
                    "{g}BDAY;X-APPLE-OMIT-YEAR={}:{value}",
                    super::date::OMIT_YEAR
                )
            } else {
                format!("{g}BDAY:{value}")
            })
        }
        VCardVersion::V4 => Some(format!("{g}BDAY:{}", d.v4_value()?)),
    }
}

/// The `CATEGORIES` line of a customer's tags (a comma-separated TEXT list, each tag escaped
/// so a comma inside one stays part of it); `None` without tags.
pub(crate) fn categories_line(tags: &[String]) -> Option<String> {
    let values: Vec<String> = tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(escape_text)
        .collect();
    (!values.is_empty()).then(|| format!("CATEGORIES:{}", values.join(",")))
}

/// Renders a contact group card: vCard 3.0 in Apple's form (`X-ADDRESSBOOKSERVER-KIND:group`,
/// one `X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:…` per member), vCard 4.0 in RFC 6350's
/// (`KIND:group` §6.1.4, `MEMBER:urn:uuid:…` §6.6.5). `FN` and `N` carry the group name (Apple
/// reads `N`); members are written in the order given. Deterministic, like [`render`].
pub fn render_group(
    name: &str,
    uid: &str,
    members: &[String],
    rev: portico_sdk::Timestamp,
    version: VCardVersion,
) -> String {
    const EOL: &str = "\r\n";
    let mut out = String::with_capacity(256 + members.len() * 64);
    let mut line = |l: &str| push_line(&mut out, l, EOL);
    line("BEGIN:VCARD");
    line(&format!("VERSION:{}", version.as_str()));
    line("PRODID:-//Portico//CardDAV//EN");
    line(&format!("UID:{}", escape_text(uid)));
    line(&format!("FN:{}", escape_text(name)));
    line(&format!("N:{};;;;", escape_text(name)));
    line(&group_kind_line(version));
    for m in members {
        line(&member_line(m, version));
    }
    line(&format!("REV:{}", format_rev(rev, version)));
    line("END:VCARD");
    out
}

/// The line that marks a group card in `version`.
pub(crate) fn group_kind_line(version: VCardVersion) -> String {
    match version {
        VCardVersion::V3 => "X-ADDRESSBOOKSERVER-KIND:group".into(),
        VCardVersion::V4 => "KIND:group".into(),
    }
}

/// One member line (`urn:uuid:` + the member card's UID) in `version`.
pub(crate) fn member_line(uid: &str, version: VCardVersion) -> String {
    let name = match version {
        VCardVersion::V3 => "X-ADDRESSBOOKSERVER-MEMBER",
        VCardVersion::V4 => "MEMBER",
    };
    format!("{name}:urn:uuid:{}", clean_uri(uid))
}

/// A URI value with anything that could break the line structure removed.
fn clean_uri(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Renders the card of a customer that has no stored card.
///
/// Properties, in this order: `BEGIN`, `VERSION`, `PRODID:-//Portico//CardDAV//EN`, `UID`,
/// `FN`, `N` (family;given;;; — derived from the name when both parts are absent), one `EMAIL`
/// per [`Customer::all_emails`] (the first with `TYPE=INTERNET,pref` in 3.0 or `PREF=1` in
/// 4.0, the others `TYPE=INTERNET` in 3.0 and no parameter in 4.0), one `TEL` per
/// [`Customer::all_phones`] (the first with `TYPE=pref` / `PREF=1`), `BDAY` (skipped when not
/// a valid date), `NOTE`, `CATEGORIES` (the tags, RFC 6350 §6.7.1 / RFC 2426 §3.6.1),
/// `URL` (the admin page, if given), `REV` (from `updated_at`, UTC),
/// `END`. CRLF line breaks, lines folded at 75 octets, TEXT values escaped. Deterministic:
/// the same input gives the same bytes.
pub fn render(
    customer: &Customer,
    uid: &str,
    admin_url: Option<&str>,
    version: VCardVersion,
) -> String {
    const EOL: &str = "\r\n";
    let mut out = String::with_capacity(512);
    let mut line = |l: &str| push_line(&mut out, l, EOL);
    line("BEGIN:VCARD");
    line(&format!("VERSION:{}", version.as_str()));
    line("PRODID:-//Portico//CardDAV//EN");
    line(&format!("UID:{}", escape_text(uid)));
    line(&format!("FN:{}", escape_text(&customer.name)));
    let (family, given) = name_parts(
        &customer.name,
        customer.given_name.as_deref(),
        customer.family_name.as_deref(),
    );
    line(&format!(
        "N:{};{};;;",
        escape_text(&family),
        escape_text(&given)
    ));
    for (i, email) in customer.all_emails().into_iter().enumerate() {
        line(&email_line(email, i == 0, version));
    }
    for (i, phone) in customer.all_phones().into_iter().enumerate() {
        line(&tel_line(phone, i == 0, version));
    }
    if let Some(bday) = customer
        .birthday
        .as_deref()
        .and_then(customer_birthday)
        .and_then(|d| bday_line(None, d, version))
    {
        line(&bday);
    }
    if let Some(note) = customer.note.as_deref().map(escape_text) {
        if !note.is_empty() {
            line(&format!("NOTE:{note}"));
        }
    }
    if let Some(categories) = categories_line(&customer.tags) {
        line(&categories);
    }
    if let Some(url) = admin_url.map(clean_uri) {
        if !url.is_empty() {
            line(&format!("URL:{url}"));
        }
    }
    line(&format!("REV:{}", format_rev(customer.updated_at, version)));
    line("END:VCARD");
    out
}
