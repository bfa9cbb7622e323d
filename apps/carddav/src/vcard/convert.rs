//! Converting stored cards between 3.0 and 4.0, and `address-data` property selection.

use std::borrow::Cow;

use super::date::{convert_date_value, convert_rev, OMIT_YEAR};
use super::lines::{line_ending, logical_lines};
use super::parse::{parse_line, strip_prefix_ci, LineParts};
use super::write::{escape_text, header, property_line, push_line};
use super::{version_of, Property, VCardVersion};

/// What becomes of one content line.
enum Outcome {
    /// Copied byte for byte.
    Keep,
    /// Left out.
    Drop,
    /// Written again from these properties.
    Replace(Vec<Property>),
}

/// 3.0 properties with no place in 4.0 (RFC 6350 §6: NAME, PROFILE, MAILER, LABEL, CLASS,
/// SORT-STRING and AGENT were removed).
const ONLY_V3: &[&str] = &[
    "NAME",
    "PROFILE",
    "MAILER",
    "LABEL",
    "CLASS",
    "SORT-STRING",
    "AGENT",
];

/// 4.0 properties that 3.0 does not know and that have no common 3.0 spelling.
const ONLY_V4: &[&str] = &[
    "GENDER",
    "LANG",
    "XML",
    "CLIENTPIDMAP",
    "RELATED",
    "BIRTHPLACE",
    "DEATHPLACE",
    "DEATHDATE",
];

/// 4.0 parameters that 3.0 does not know (PREF is mapped to `TYPE=pref` before this applies).
const PARAMS_ONLY_V4: &[&str] = &[
    "PREF",
    "PID",
    "ALTID",
    "CALSCALE",
    "SORT-AS",
    "MEDIATYPE",
    "INDEX",
    "LEVEL",
    "CC",
    "GEO",
    "TZ",
    "LABEL",
];

/// Properties 3.0 allows once; when a 4.0 card has several (ALTID variants), the first is kept.
const SINGLE_IN_V3: &[&str] = &[
    "FN",
    "N",
    "BDAY",
    "X-ANNIVERSARY",
    "REV",
    "UID",
    "PRODID",
    "X-ADDRESSBOOKSERVER-KIND",
];

fn remove_param(p: &mut Property, name: &str) -> Option<Vec<String>> {
    let pos = p.params.iter().position(|(n, _)| n == name)?;
    Some(p.params.remove(pos).1)
}

fn set_param(p: &mut Property, name: &str, values: Vec<String>) {
    match p.params.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = values,
        None => p.params.push((name.to_string(), values)),
    }
}

/// Removes `value` (case-insensitive) from `TYPE`; true if it was there.
fn take_type(p: &mut Property, value: &str) -> bool {
    let Some((_, types)) = p.params.iter_mut().find(|(n, _)| n == "TYPE") else {
        return false;
    };
    let before = types.len();
    types.retain(|t| !t.eq_ignore_ascii_case(value));
    let found = types.len() != before;
    if types.is_empty() {
        remove_param(p, "TYPE");
    }
    found
}

fn add_type(p: &mut Property, value: &str) {
    match p.params.iter_mut().find(|(n, _)| n == "TYPE") {
        Some((_, types)) => {
            if !types.iter().any(|t| t.eq_ignore_ascii_case(value)) {
                types.push(value.to_string());
            }
        }
        None => p.params.push(("TYPE".to_string(), vec![value.to_string()])),
    }
}

/// Rewrites a date property's value for `to`; false when it cannot be written there.
fn convert_date(p: &mut Property, to: VCardVersion) -> bool {
    let omit = p
        .param("X-APPLE-OMIT-YEAR")
        .and_then(|v| v.first())
        .and_then(|y| y.trim().parse::<u32>().ok());
    let is_text = p
        .param("VALUE")
        .is_some_and(|v| v.iter().any(|x| x.eq_ignore_ascii_case("text")));
    if is_text {
        return false;
    }
    let Some((value, needs_omit)) = convert_date_value(&p.value, omit, to) else {
        return false;
    };
    p.value = value;
    remove_param(p, "X-APPLE-OMIT-YEAR");
    remove_param(p, "VALUE");
    if needs_omit {
        p.params
            .push(("X-APPLE-OMIT-YEAR".to_string(), vec![OMIT_YEAR.to_string()]));
    }
    true
}

/// The media type for an inline 3.0 binary (`PHOTO;ENCODING=b;TYPE=JPEG`).
fn media_type(prop: &str, ty: Option<&str>) -> String {
    let Some(ty) = ty.map(str::trim).filter(|t| !t.is_empty()) else {
        return "application/octet-stream".to_string();
    };
    if ty.contains('/') {
        return ty.to_ascii_lowercase();
    }
    let lower = ty.to_ascii_lowercase();
    match (prop, lower.as_str()) {
        ("PHOTO" | "LOGO", "jpg") => "image/jpeg".to_string(),
        ("PHOTO" | "LOGO", _) => format!("image/{lower}"),
        ("SOUND", _) => format!("audio/{lower}"),
        ("KEY", "pgp") => "application/pgp-keys".to_string(),
        ("KEY", "x509") => "application/pkix-cert".to_string(),
        _ => "application/octet-stream".to_string(),
    }
}

fn to_v4(parts: LineParts) -> Outcome {
    let mut p = parts.prop;
    let mut changed = parts.qp;
    if ONLY_V3.contains(&p.name.as_str()) {
        return Outcome::Drop;
    }
    let is_date = matches!(p.name.as_str(), "X-ANNIVERSARY" | "BDAY" | "ANNIVERSARY");
    if is_date && convert_date(&mut p, VCardVersion::V4) {
        if p.name == "X-ANNIVERSARY" {
            p.name = "ANNIVERSARY".to_string();
        }
        changed = true;
    }
    match p.name.as_str() {
        "VERSION" => {
            p.value = VCardVersion::V4.as_str().to_string();
            changed = true;
        }
        "X-ADDRESSBOOKSERVER-KIND" => {
            p.name = "KIND".to_string();
            p.value = p.value.trim().to_ascii_lowercase();
            changed = true;
        }
        "X-ADDRESSBOOKSERVER-MEMBER" => {
            p.name = "MEMBER".to_string();
            changed = true;
        }
        "REV" => {
            if let Some(v) = convert_rev(&p.value, VCardVersion::V4) {
                changed |= v != p.value;
                p.value = v;
            }
        }
        "GEO" => {
            if let Some((lat, lon)) = p.value.split_once(';') {
                p.value = format!("geo:{},{}", lat.trim(), lon.trim());
                changed = true;
            }
        }
        _ => {}
    }
    if remove_param(&mut p, "CHARSET").is_some() {
        changed = true;
    }
    let binary = p.param("ENCODING").is_some_and(|v| {
        v.iter()
            .any(|e| e.eq_ignore_ascii_case("b") || e.eq_ignore_ascii_case("base64"))
    });
    if binary {
        let ty = remove_param(&mut p, "TYPE").and_then(|v| v.into_iter().next());
        remove_param(&mut p, "ENCODING");
        remove_param(&mut p, "VALUE");
        let data: String = p.value.chars().filter(|c| !c.is_whitespace()).collect();
        p.value = format!("data:{};base64,{data}", media_type(&p.name, ty.as_deref()));
        changed = true;
    }
    if take_type(&mut p, "pref") {
        set_param(&mut p, "PREF", vec!["1".to_string()]);
        changed = true;
    }
    if changed {
        Outcome::Replace(vec![p])
    } else {
        Outcome::Keep
    }
}

fn to_v3(parts: LineParts, seen: &mut Vec<String>) -> Outcome {
    let mut p = parts.prop;
    let mut changed = parts.qp;
    let mut extra = Vec::new();
    if ONLY_V4.contains(&p.name.as_str()) {
        return Outcome::Drop;
    }
    match p.name.as_str() {
        "VERSION" => {
            p.value = VCardVersion::V3.as_str().to_string();
            changed = true;
        }
        "KIND" => {
            if !p.value.trim().eq_ignore_ascii_case("group") {
                return Outcome::Drop;
            }
            p.name = "X-ADDRESSBOOKSERVER-KIND".to_string();
            changed = true;
        }
        "MEMBER" => {
            p.name = "X-ADDRESSBOOKSERVER-MEMBER".to_string();
            changed = true;
        }
        "BDAY" | "ANNIVERSARY" => {
            // 3.0 has no text or partial dates: leave out what it cannot hold.
            if !convert_date(&mut p, VCardVersion::V3) {
                return Outcome::Drop;
            }
            if p.name == "ANNIVERSARY" {
                p.name = "X-ANNIVERSARY".to_string();
            }
            changed = true;
        }
        "REV" => {
            if let Some(v) = convert_rev(&p.value, VCardVersion::V3) {
                changed |= v != p.value;
                p.value = v;
            }
        }
        "GEO" => {
            if let Some(uri) = strip_prefix_ci(p.value.trim(), "geo:") {
                let coords = uri.split(';').next().unwrap_or_default();
                let coords = coords.replace("\\,", ",");
                if let Some((lat, lon)) = coords.split_once(',') {
                    p.value = format!("{};{}", lat.trim(), lon.trim());
                    remove_param(&mut p, "VALUE");
                    changed = true;
                }
            }
        }
        "TEL" => {
            if let Some(number) = strip_prefix_ci(p.value.trim_start(), "tel:") {
                p.value = number.to_string();
                remove_param(&mut p, "VALUE");
                changed = true;
            }
        }
        "ADR" => {
            if let Some(label) = p.param("LABEL").map(|v| v.join(",")) {
                let mut l = Property {
                    group: p.group.clone(),
                    name: "LABEL".to_string(),
                    params: Vec::new(),
                    value: escape_text(&label),
                };
                if let Some(types) = p.param("TYPE") {
                    l.params.push(("TYPE".to_string(), types.to_vec()));
                }
                extra.push(l);
            }
        }
        _ => {}
    }
    if SINGLE_IN_V3.contains(&p.name.as_str()) {
        if seen.contains(&p.name) {
            return Outcome::Drop;
        }
        seen.push(p.name.clone());
    }
    let inline = strip_prefix_ci(p.value.trim(), "data:")
        .and_then(|uri| uri.split_once(','))
        .and_then(|(meta, data)| {
            let cut = meta.len().checked_sub(7)?;
            let (mime, enc) = (meta.get(..cut)?, meta.get(cut..)?);
            enc.eq_ignore_ascii_case(";base64")
                .then(|| (mime.to_string(), data.to_string()))
        });
    if let Some((mime, data)) = inline {
        let sub = mime
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        remove_param(&mut p, "VALUE");
        remove_param(&mut p, "MEDIATYPE");
        set_param(&mut p, "ENCODING", vec!["b".to_string()]);
        if !sub.is_empty() {
            set_param(&mut p, "TYPE", vec![sub]);
        }
        p.value = data;
        changed = true;
    }
    if let Some(pref) = p.param("PREF").and_then(|v| v.first()) {
        if pref.trim() == "1" {
            add_type(&mut p, "pref");
        }
    }
    let before = p.params.len();
    p.params
        .retain(|(n, _)| !PARAMS_ONLY_V4.contains(&n.as_str()));
    changed |= p.params.len() != before;
    if changed || !extra.is_empty() {
        let mut out = vec![p];
        out.extend(extra);
        Outcome::Replace(out)
    } else {
        Outcome::Keep
    }
}

/// Converts a stored card for a client that asked for the other version.
///
/// The same version gives the input back, borrowed. Otherwise lines that need no change are
/// copied byte for byte (escaping, folding and parameter spelling preserved) and these are
/// rewritten:
/// - `VERSION`.
/// - Dates (`BDAY`, `ANNIVERSARY` ↔ 3.0 `X-ANNIVERSARY`): 3.0 `YYYY-MM-DD` (a day without a
///   year as `X-APPLE-OMIT-YEAR=1604` + `1604-MM-DD`) ↔ 4.0 `YYYYMMDD` / `--MMDD`; a 4.0
///   text or partial date 3.0 cannot hold is left out. `REV` extended ↔ basic form.
/// - `TYPE=pref` ↔ `PREF=1` (other PREF values are dropped in 3.0).
/// - Inline binaries: 3.0 `PHOTO;ENCODING=b;TYPE=JPEG:…` ↔ 4.0 `PHOTO:data:image/jpeg;base64,…`.
/// - `GEO` `lat;lon` ↔ `geo:lat,lon`; 4.0 `TEL;VALUE=uri:tel:…` → 3.0 text.
/// - Groups (Apple): 4.0 `KIND:group`/`MEMBER` ↔ 3.0 `X-ADDRESSBOOKSERVER-KIND`/`-MEMBER`;
///   other `KIND` values are dropped in 3.0.
/// - Dropped in 4.0: NAME, PROFILE, MAILER, LABEL, CLASS, SORT-STRING, AGENT, `CHARSET`.
///   Dropped in 3.0: GENDER, LANG, XML, CLIENTPIDMAP, RELATED, BIRTHPLACE, DEATHPLACE,
///   DEATHDATE, 4.0-only parameters (PID, ALTID, SORT-AS, …), and repeats of FN, N, BDAY, …
///   (4.0 ALTID variants). An `ADR;LABEL=…` gains a 3.0 `LABEL` property.
/// - Quoted-printable values (old 3.0 exporters) are written decoded.
pub fn convert(text: &str, to: VCardVersion) -> Cow<'_, str> {
    if version_of(text) == to {
        return Cow::Borrowed(text);
    }
    let Ok(lines) = logical_lines(text, None) else {
        return Cow::Borrowed(text);
    };
    let eol = line_ending(text);
    let mut out = String::with_capacity(text.len() + 64);
    let mut seen = Vec::new();
    let mut cursor = 0;
    for line in &lines {
        out.push_str(&text[cursor..line.start]);
        cursor = line.end;
        let raw = &text[line.start..line.end];
        let outcome = match parse_line(&line.content) {
            Err(_) => Outcome::Keep,
            Ok(parts) if matches!(parts.prop.name.as_str(), "BEGIN" | "END") => Outcome::Keep,
            Ok(parts) => match to {
                VCardVersion::V4 => to_v4(parts),
                VCardVersion::V3 => to_v3(parts, &mut seen),
            },
        };
        match outcome {
            Outcome::Keep => out.push_str(raw),
            Outcome::Drop => {}
            Outcome::Replace(props) => {
                for p in &props {
                    push_line(&mut out, &property_line(p), eol);
                }
            }
        }
    }
    out.push_str(&text[cursor..]);
    Cow::Owned(out)
}

/// `address-data` property selection (RFC 6352 §10.4.2): keeps `BEGIN`, `END`, `VERSION` and
/// the properties named in `props` (names compared case-insensitively; `item1.TEL` matches
/// `TEL`), each copied byte for byte — or, when its `novalue` flag is set, with its group and
/// parameters but an empty value. Blank and unreadable lines are left out. An empty `props`
/// keeps only `BEGIN`, `VERSION` and `END`: a caller whose `address-data` names no property
/// should send the whole card instead.
pub fn select(text: &str, props: &[(String, bool)]) -> String {
    let Ok(lines) = logical_lines(text, None) else {
        return String::new();
    };
    let eol = line_ending(text);
    let mut out = String::with_capacity(text.len() / 2);
    for line in &lines {
        let Ok(parts) = parse_line(&line.content) else {
            continue;
        };
        let name = parts.prop.name.as_str();
        let wanted = if matches!(name, "BEGIN" | "END" | "VERSION") {
            Some(false)
        } else {
            props
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, novalue)| *novalue)
        };
        match wanted {
            None => {}
            Some(true) => {
                let head = if parts.qp {
                    format!("{}:", header(&parts.prop))
                } else {
                    line.content[..=parts.colon].to_string()
                };
                push_line(&mut out, &head, eol);
            }
            Some(false) => {
                let raw = &text[line.start..line.end];
                out.push_str(raw);
                if !raw.ends_with('\n') {
                    out.push_str(eol);
                }
            }
        }
    }
    out
}
