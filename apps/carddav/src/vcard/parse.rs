//! Reading content lines and validating client cards.

use super::lines::{logical_lines, RawLine};
use super::{
    date, unescape_text, CardError, CardFields, ParsedCard, Property, VCardVersion, MAX_CARD_BYTES,
    MAX_LINE_BYTES, MAX_PROPERTIES,
};

/// The most distinct parameter names one property may have (real cards use a handful); keeps
/// the merging of repeated parameters linear.
const MAX_PARAMS: usize = 64;

/// A content line read into a [`Property`], with where its value starts.
#[derive(Debug, Clone)]
pub(crate) struct LineParts {
    pub prop: Property,
    /// Index of the ':' ending the header in the logical line.
    pub colon: usize,
    /// The value was quoted-printable and has been decoded.
    pub qp: bool,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn scan_name(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len() && is_name_byte(b[i]) {
        i += 1;
    }
    i
}

/// RFC 6868: `^n` → newline, `^^` → `^`, `^'` → `"`; any other `^x` stays as written.
pub(crate) fn decode_param_value(s: &str) -> String {
    if !s.contains('^') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '^' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('^') => out.push('^'),
            Some('\'') => out.push('"'),
            Some(other) => {
                out.push('^');
                out.push(other);
            }
            None => out.push('^'),
        }
    }
    out
}

fn add_param(params: &mut Vec<(String, Vec<String>)>, name: String, values: Vec<String>) {
    match params.iter_mut().find(|(n, _)| *n == name) {
        Some((_, existing)) => existing.extend(values),
        None => params.push((name, values)),
    }
}

/// The header of a content line: group, name, parameters and the index of the ':' that ends it.
type Header<'a> = (Option<String>, &'a str, Vec<(String, Vec<String>)>, usize);

/// Reads the header of a content line, `[group "."] name *(";" param) ":"`.
fn parse_header(s: &str) -> Result<Header<'_>, String> {
    let b = s.as_bytes();
    if !s.contains(':') {
        return Err("content line has no ':' between name and value".to_string());
    }
    let mut i = scan_name(b, 0);
    if i == 0 {
        return Err("content line does not start with a property name".to_string());
    }
    let mut group = None;
    let mut name = &s[..i];
    if b.get(i) == Some(&b'.') {
        group = Some(name.to_string());
        let start = i + 1;
        i = scan_name(b, start);
        if i == start {
            return Err("no property name after the group".to_string());
        }
        name = &s[start..i];
    }
    let mut params: Vec<(String, Vec<String>)> = Vec::new();
    loop {
        match b.get(i) {
            Some(b':') => break,
            Some(b';') => {
                i = parse_param(s, i + 1, &mut params)?;
                if params.len() > MAX_PARAMS {
                    return Err(format!("more than {MAX_PARAMS} different parameters"));
                }
            }
            Some(_) => {
                return Err(format!(
                    "unexpected character after property name {:?}",
                    &s[..i]
                ))
            }
            None => return Err("content line has no ':' after its parameters".to_string()),
        }
    }
    Ok((group, name, params, i))
}

fn says_quoted_printable(params: &[(String, Vec<String>)]) -> bool {
    params.iter().any(|(n, v)| {
        n == "ENCODING" && v.iter().any(|e| e.eq_ignore_ascii_case("QUOTED-PRINTABLE"))
    })
}

/// True if the header of this (possibly still incomplete) content line declares a
/// quoted-printable value exactly as [`parse_line`] reads it: an `ENCODING=QUOTED-PRINTABLE`
/// parameter or a bare 2.1-style `QUOTED-PRINTABLE` one. Not the word appearing in some other
/// parameter (`X-A=QUOTED-PRINTABLE`): only a real QP value may use `=` soft line breaks.
pub(crate) fn header_is_quoted_printable(s: &str) -> bool {
    parse_header(s).is_ok_and(|(_, _, params, _)| says_quoted_printable(&params))
}

/// Reads one logical content line: `[group "."] name *(";" param) ":" value`.
pub(crate) fn parse_line(s: &str) -> Result<LineParts, String> {
    let (group, name, params, colon) = parse_header(s)?;
    let mut prop = Property {
        group,
        name: name.to_ascii_uppercase(),
        params,
        value: s[colon + 1..].to_string(),
    };
    let qp = says_quoted_printable(&prop.params);
    if qp {
        let charset = prop
            .param("CHARSET")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        prop.value = decode_quoted_printable(&prop.value, &charset)?;
        prop.params
            .retain(|(n, _)| n != "ENCODING" && n != "CHARSET");
    }
    Ok(LineParts { prop, colon, qp })
}

/// Reads one parameter starting at `start` (just after its `;`); returns the index of the `;` or
/// ':' that ends it.
fn parse_param(
    s: &str,
    start: usize,
    params: &mut Vec<(String, Vec<String>)>,
) -> Result<usize, String> {
    let b = s.as_bytes();
    let end = scan_name(b, start);
    if end == start {
        return Err("empty or invalid parameter name".to_string());
    }
    let word = &s[start..end];
    if b.get(end) != Some(&b'=') {
        // A bare vCard 2.1-style parameter such as `TEL;WORK;VOICE:`.
        let upper = word.to_ascii_uppercase();
        let name = match upper.as_str() {
            "QUOTED-PRINTABLE" | "BASE64" | "8BIT" | "7BIT" | "B" => "ENCODING",
            _ => "TYPE",
        };
        add_param(params, name.to_string(), vec![word.to_string()]);
        return Ok(end);
    }
    let name = word.to_ascii_uppercase();
    let mut values = Vec::new();
    let mut i = end + 1;
    loop {
        if b.get(i) == Some(&b'"') {
            let close = s[i + 1..]
                .find('"')
                .map(|off| i + 1 + off)
                .ok_or_else(|| format!("unterminated quoted value of parameter {name}"))?;
            values.push(decode_param_value(&s[i + 1..close]));
            i = close + 1;
        } else {
            let stop = s[i..].find([',', ';', ':']).map_or(s.len(), |off| i + off);
            values.push(decode_param_value(&s[i..stop]));
            i = stop;
        }
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b';') | Some(b':') => break,
            None => return Err(format!("parameter {name} is not followed by ':'")),
            Some(_) => {
                return Err(format!(
                    "unexpected character after the quoted value of parameter {name}"
                ))
            }
        }
    }
    add_param(params, name, values);
    Ok(i)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Windows-1252 differs from ISO-8859-1 in 0x80..=0x9F.
const CP1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}',
    '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
];

/// Decodes a quoted-printable value (soft line breaks already joined) in the given charset
/// (UTF-8 when empty; ISO-8859-1, Windows-1252 and US-ASCII also read). Line breaks in the
/// result are written as the TEXT escape `\n`, so the value reads like any other 3.0 value.
pub(crate) fn decode_quoted_printable(value: &str, charset: &str) -> Result<String, String> {
    let b = value.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            match (b.get(i + 1).copied(), b.get(i + 2).copied()) {
                (Some(h), Some(l)) if hex_val(h).is_some() && hex_val(l).is_some() => {
                    let v = hex_val(h).unwrap_or(0) * 16 + hex_val(l).unwrap_or(0);
                    bytes.push(v);
                    i += 3;
                }
                // A trailing '=' is a soft break the line joiner left in place.
                (None, _) => i += 1,
                // Some exporters leave a literal '=' unencoded; keep it.
                _ => {
                    bytes.push(b'=');
                    i += 1;
                }
            }
        } else {
            bytes.push(b[i]);
            i += 1;
        }
    }
    let cs = charset.trim().to_ascii_uppercase();
    let decoded: String = match cs.as_str() {
        "" | "UTF-8" | "UTF8" => String::from_utf8(bytes)
            .map_err(|_| "quoted-printable value is not valid UTF-8".to_string())?,
        "US-ASCII" | "ASCII" => {
            if !bytes.is_ascii() {
                return Err("quoted-printable value is not ASCII".to_string());
            }
            bytes.iter().map(|&c| c as char).collect()
        }
        "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "LATIN-1" => {
            bytes.iter().map(|&c| c as char).collect()
        }
        "WINDOWS-1252" | "CP1252" => bytes
            .iter()
            .map(|&c| match c {
                0x80..=0x9f => CP1252_HIGH[usize::from(c - 0x80)],
                _ => c as char,
            })
            .collect(),
        other => {
            return Err(format!(
                "unsupported CHARSET {other} in a quoted-printable value"
            ))
        }
    };
    let mut out = String::with_capacity(decoded.len());
    let mut chars = decoded.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\0' => return Err("NUL byte in a quoted-printable value".to_string()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits at every `sep` not preceded by an escaping backslash; parts keep their escapes.
pub(crate) fn split_unescaped(value: &str, sep: u8) -> Vec<&str> {
    let b = value.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == sep {
            parts.push(&value[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&value[start.min(value.len())..]);
    parts
}

fn is_card_marker(p: &Property, name: &str) -> bool {
    p.group.is_none() && p.name == name && p.value.trim().eq_ignore_ascii_case("VCARD")
}

/// Parses the content lines of stored card text, leniently: lines that cannot be read are
/// skipped, the structure (BEGIN/END, VERSION, UID) is not checked. `BEGIN:VCARD` and
/// `END:VCARD` themselves are not returned. Errors only on the size limits
/// ([`CardError::TooLarge`]).
pub fn properties(text: &str) -> Result<Vec<Property>, CardError> {
    if text.len() > MAX_CARD_BYTES {
        return Err(CardError::TooLarge);
    }
    let lines = logical_lines(text, Some(MAX_LINE_BYTES))?;
    let mut out = Vec::new();
    for line in &lines {
        let Ok(parts) = parse_line(&line.content) else {
            continue;
        };
        if is_card_marker(&parts.prop, "BEGIN") || is_card_marker(&parts.prop, "END") {
            continue;
        }
        out.push(parts.prop);
        if out.len() > MAX_PROPERTIES {
            return Err(CardError::TooLarge);
        }
    }
    Ok(out)
}

/// Validates a client's card (for PUT) and projects the modelled fields.
///
/// Checks, in order: size (1 MiB), UTF-8, NUL bytes, line size (256 KiB unfolded), one
/// `BEGIN:VCARD` … `END:VCARD` block with nothing else around it, at most 10,000 properties,
/// `VERSION` 3.0 or 4.0 (2.1, unknown or missing → [`CardError::UnsupportedVersion`], even if
/// other lines are malformed, so the right DAV precondition can be chosen), every content line
/// readable, then `UID` and `FN` present.
///
/// Projection: `FN` (trimmed) → name, or when it is empty "Given Family" from `N`, then `ORG`,
/// `NICKNAME`, the first email, the first phone (all empty → `MissingProperty("FN")`); `N` →
/// family/given; every `EMAIL`/`TEL` in order; `BDAY` normalized to `YYYY-MM-DD` / `--MM-DD`
/// (basic or extended forms, time parts ignored, `X-APPLE-OMIT-YEAR` honoured); first `NOTE`.
pub fn parse(bytes: &[u8]) -> Result<ParsedCard, CardError> {
    if bytes.len() > MAX_CARD_BYTES {
        return Err(CardError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| CardError::NotUtf8)?;
    if let Some(pos) = text.find('\0') {
        let line = text[..pos].bytes().filter(|&b| b == b'\n').count() + 1;
        return Err(CardError::Malformed {
            line,
            reason: "NUL byte".to_string(),
        });
    }
    let lines = logical_lines(text, Some(MAX_LINE_BYTES))?;
    let (properties, first_error) = card_block(&lines)?;

    let mut versions = properties
        .iter()
        .filter(|p| p.name == "VERSION")
        .map(|p| p.value.trim());
    let version = match versions.next() {
        None => return Err(CardError::UnsupportedVersion(String::new())),
        Some(v) => VCardVersion::from_value(v)
            .ok_or_else(|| CardError::UnsupportedVersion(v.to_string()))?,
    };
    if let Some(err) = first_error {
        return Err(err);
    }
    if versions.next().is_some() {
        return Err(CardError::Malformed {
            line: 1,
            reason: "more than one VERSION property".to_string(),
        });
    }

    let uid = properties
        .iter()
        .find(|p| p.name == "UID")
        .map(|p| p.text().trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or(CardError::MissingProperty("UID"))?;
    let fields = project(&properties)?;
    Ok(ParsedCard {
        version,
        uid,
        properties,
        fields,
    })
}

/// Checks the BEGIN/END structure and reads the content lines in between. Returns the
/// properties and the first unreadable line (reported only after the version check).
fn card_block(lines: &[RawLine<'_>]) -> Result<(Vec<Property>, Option<CardError>), CardError> {
    let mut iter = lines.iter();
    let begins = iter
        .next()
        .and_then(|l| parse_line(&l.content).ok())
        .is_some_and(|p| is_card_marker(&p.prop, "BEGIN"));
    if !begins {
        return Err(CardError::NotVCard);
    }
    let mut props = Vec::new();
    let mut first_error = None;
    let mut ended = false;
    for line in iter {
        let parsed = parse_line(&line.content);
        if ended {
            return Err(match parsed {
                Ok(p) if is_card_marker(&p.prop, "BEGIN") => CardError::MultipleCards,
                _ => CardError::NotVCard,
            });
        }
        match parsed {
            Ok(p) if is_card_marker(&p.prop, "END") => ended = true,
            Ok(p) if is_card_marker(&p.prop, "BEGIN") => {
                first_error.get_or_insert(CardError::Malformed {
                    line: line.line_no,
                    reason: "BEGIN:VCARD inside a card (missing END:VCARD?)".to_string(),
                });
            }
            Ok(p) => {
                props.push(p.prop);
                if props.len() > MAX_PROPERTIES {
                    return Err(CardError::TooLarge);
                }
            }
            Err(reason) => {
                first_error.get_or_insert(CardError::Malformed {
                    line: line.line_no,
                    reason,
                });
            }
        }
    }
    if !ended {
        return Err(CardError::NotVCard);
    }
    Ok((props, first_error))
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        None
    } else if t.len() == s.len() {
        Some(s)
    } else {
        Some(t.to_string())
    }
}

/// The email address an `EMAIL` property holds (trimmed; `None` when empty).
pub(crate) fn email_of(p: &Property) -> Option<String> {
    let v = p.text();
    let v = v.trim();
    let v = strip_prefix_ci(v, "mailto:").unwrap_or(v);
    non_empty(v.to_string())
}

/// The phone number a `TEL` property holds (trimmed, a `tel:` prefix removed; `None` when
/// empty).
pub(crate) fn phone_of(p: &Property) -> Option<String> {
    let v = p.text();
    let v = v.trim();
    let v = strip_prefix_ci(v, "tel:").unwrap_or(v);
    non_empty(v.to_string())
}

pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The birthday a `BDAY` property holds, as `YYYY-MM-DD` or `--MM-DD`.
pub(crate) fn birthday_of(p: &Property) -> Option<String> {
    if p.param("VALUE")
        .is_some_and(|v| v.iter().any(|x| x.eq_ignore_ascii_case("text")))
    {
        return None;
    }
    let text = p.text();
    let (mut d, _time) = date::parse_date_time(text.trim())?;
    let omit = p
        .param("X-APPLE-OMIT-YEAR")
        .and_then(|v| v.first())
        .and_then(|y| y.trim().parse::<u32>().ok());
    // Apple's marker year means "no year" even where a client dropped the parameter: no
    // customer of ours was born in 1604 (issue: no client may ever show "born 1604").
    if d.year.is_some() && (d.year == omit || d.year == Some(0) || d.year == Some(date::OMIT_YEAR))
    {
        d.year = None;
    }
    d.customer_form()
}

/// `(family, given)` from an `N` property.
pub(crate) fn n_parts(p: &Property) -> (Option<String>, Option<String>) {
    let comps = p.components();
    let get = |i: usize| comps.get(i).cloned().and_then(non_empty);
    (get(0), get(1))
}

/// Projects the modelled fields from a card's properties.
pub(crate) fn project(props: &[Property]) -> Result<CardFields, CardError> {
    let find = |name: &str| props.iter().find(|p| p.name == name);
    let fn_prop = find("FN").ok_or(CardError::MissingProperty("FN"))?;
    let (family_name, given_name) = find("N").map(n_parts).unwrap_or((None, None));
    let emails: Vec<String> = props
        .iter()
        .filter(|p| p.name == "EMAIL")
        .filter_map(email_of)
        .collect();
    let phones: Vec<String> = props
        .iter()
        .filter(|p| p.name == "TEL")
        .filter_map(phone_of)
        .collect();
    let name = non_empty(fn_prop.text())
        .or_else(|| {
            let joined = [given_name.as_deref(), family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            non_empty(joined)
        })
        .or_else(|| {
            find("ORG")
                .and_then(|o| o.components().into_iter().next())
                .and_then(non_empty)
        })
        .or_else(|| find("NICKNAME").and_then(|n| non_empty(n.text())))
        .or_else(|| emails.first().cloned())
        .or_else(|| phones.first().cloned())
        .ok_or(CardError::MissingProperty("FN"))?;
    Ok(CardFields {
        name,
        given_name,
        family_name,
        emails,
        phones,
        birthday: find("BDAY").and_then(birthday_of),
        note: find("NOTE").map(|p| p.text()).filter(|n| !n.is_empty()),
        categories: categories_of(props),
    })
}

/// Longest category kept as a tag, in bytes, and most categories kept (the host's tag limits).
const MAX_CATEGORY_BYTES: usize = 256;
const MAX_CATEGORIES: usize = 256;

/// Every `CATEGORIES` value (RFC 6350 §6.7.1: a comma-separated TEXT list, possibly on
/// several lines), unescaped and trimmed, in order, without duplicates; values that cannot be
/// tags (empty, control characters, over 256 bytes) are left out. `None` when the card has no
/// `CATEGORIES` line at all.
fn categories_of(props: &[Property]) -> Option<Vec<String>> {
    let mut lines = props.iter().filter(|p| p.name == "CATEGORIES").peekable();
    lines.peek()?;
    let mut out: Vec<String> = Vec::new();
    for p in lines {
        for raw in split_unescaped(&p.value, b',') {
            let v = unescape_text(raw).trim().to_string();
            let usable =
                !v.is_empty() && v.len() <= MAX_CATEGORY_BYTES && !v.chars().any(char::is_control);
            if usable && !out.contains(&v) && out.len() < MAX_CATEGORIES {
                out.push(v);
            }
        }
    }
    Some(out)
}
