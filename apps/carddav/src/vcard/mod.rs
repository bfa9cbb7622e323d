//! vCard (RFC 6350 / RFC 2426) reading and writing.
//!
//! Everything here is a pure function over strings; nothing does I/O.
//!
//! - [`parse`] validates a card a client PUTs and projects the fields Portico models
//!   ([`CardFields`]). [`properties`] is its lenient sibling for cards already stored.
//! - [`render`] writes a card for a customer that has none yet.
//! - [`patch`] applies an admin edit to a stored card, touching only the changed properties.
//! - [`convert`] turns a stored card into the other version (3.0 ↔ 4.0) for a client that asked
//!   for it; [`select`] keeps only the properties an `address-data` element names.
//! - [`media::split`] cuts large photos out of a card for storing them apart, and
//!   [`media::reassemble`] puts them back byte for byte.
//! - [`etag`], [`version_of`], [`fold`], [`escape_text`], [`unescape_text`] are small helpers.
//!
//! Accepted input is what real clients write, not only what the RFCs allow: bare LF line ends,
//! tab continuations, lowercase names and parameters, `type=a;type=b` as well as `TYPE=a,b`,
//! bare vCard 2.1-style parameters (`TEL;WORK:`), RFC 6868 `^`-encoding in parameter values and
//! quoted-printable values in 3.0 cards written by old exporters. The work is bounded
//! ([`MAX_CARD_BYTES`], [`MAX_PROPERTIES`], [`MAX_LINE_BYTES`]) and linear in the input size.

mod convert;
mod date;
mod lines;
pub mod media;
mod parse;
mod patch;
mod write;

#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod tests;

use base64::Engine as _;
use sha2::Digest as _;

pub use convert::{convert, select};
pub(crate) use lines::refold_octet_folds;
pub use parse::{parse, properties};
pub use patch::{member_uid, patch, patch_members};
pub use write::{escape_text, fold, render, render_group, split_full_name, unescape_text};

/// The group facts of a card (RFC 6350 §6.1.4 `KIND:group`, or Apple's vCard 3.0
/// `X-ADDRESSBOOKSERVER-KIND:group`), or `None` for an individual's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupFacts {
    /// The group's name: `FN`, else the first component of `N` (trimmed).
    pub name: String,
    /// The member UIDs (`MEMBER` / `X-ADDRESSBOOKSERVER-MEMBER` values without `urn:uuid:`),
    /// in card order, without duplicates.
    pub members: Vec<String>,
}

/// The member UIDs of a stored group card, in card order, without duplicates. Unlike
/// [`properties`] this applies no size limit (a group Portico keeps for a tag may list more
/// members than a client could PUT); `Err` only if the text has no readable line structure.
pub fn stored_group_members(text: &str) -> Result<Vec<String>, CardError> {
    let lines = lines::logical_lines(text, None)?;
    let mut members = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in &lines {
        let Ok(parts) = parse::parse_line(&line.content) else {
            continue;
        };
        if parts.prop.name == "MEMBER" || parts.prop.name == "X-ADDRESSBOOKSERVER-MEMBER" {
            let uid = member_uid(&parts.prop.value);
            if !uid.is_empty() && seen.insert(uid.clone()) {
                members.push(uid);
            }
        }
    }
    Ok(members)
}

/// Reads the group facts of a card's properties; `None` unless the card says it is a group.
pub fn group_facts(props: &[Property]) -> Option<GroupFacts> {
    let is_group = props.iter().any(|p| {
        (p.name == "KIND" || p.name == "X-ADDRESSBOOKSERVER-KIND")
            && p.text().trim().eq_ignore_ascii_case("group")
    });
    if !is_group {
        return None;
    }
    let fn_name = props
        .iter()
        .find(|p| p.name == "FN")
        .map(|p| p.text().trim().to_string())
        .filter(|n| !n.is_empty());
    let name = fn_name
        .or_else(|| {
            props
                .iter()
                .find(|p| p.name == "N")
                .and_then(|p| p.components().into_iter().next())
                .map(|n| n.trim().to_string())
        })
        .unwrap_or_default();
    let mut members: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in props {
        if p.name == "MEMBER" || p.name == "X-ADDRESSBOOKSERVER-MEMBER" {
            let uid = member_uid(&p.value);
            if !uid.is_empty() && seen.insert(uid.clone()) {
                members.push(uid);
            }
        }
    }
    Some(GroupFacts { name, members })
}

/// The largest card [`parse`] and [`properties`] accept, in bytes (1 MiB).
pub const MAX_CARD_BYTES: usize = 1 << 20;
/// The most content lines a card may have (BEGIN and END not counted).
pub const MAX_PROPERTIES: usize = 10_000;
/// The longest content line after unfolding, in bytes (256 KiB).
pub const MAX_LINE_BYTES: usize = 256 << 10;

/// The vCard versions Portico reads and writes. vCard 2.1 is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VCardVersion {
    /// vCard 3.0 (RFC 2426): what Apple Contacts, Google and Evolution speak.
    V3,
    /// vCard 4.0 (RFC 6350).
    V4,
}

impl VCardVersion {
    /// The value of the `VERSION` property: `"3.0"` or `"4.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            VCardVersion::V3 => "3.0",
            VCardVersion::V4 => "4.0",
        }
    }

    /// Parses a `VERSION` value (`"3.0"`, `"4.0"`; surrounding whitespace ignored).
    pub fn from_value(value: &str) -> Option<Self> {
        match value.trim() {
            "3.0" => Some(VCardVersion::V3),
            "4.0" => Some(VCardVersion::V4),
            _ => None,
        }
    }
}

/// Why a card was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CardError {
    /// The bytes are not UTF-8.
    #[error("the card is not valid UTF-8")]
    NotUtf8,
    /// No `BEGIN:VCARD` … `END:VCARD` block, or something outside it.
    #[error(
        "not a vCard: expected a single BEGIN:VCARD … END:VCARD block with nothing outside it"
    )]
    NotVCard,
    /// vCard 2.1, an unknown version, or no `VERSION` at all (empty string).
    #[error("{}", unsupported_version_message(.0))]
    UnsupportedVersion(String),
    /// A content line that cannot be read.
    #[error("malformed vCard at line {line}: {reason}")]
    Malformed {
        /// The 1-based physical line where the bad content line starts.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A required property is absent (`"UID"` or `"FN"`).
    #[error("the card has no {0} property, which is required")]
    MissingProperty(&'static str),
    /// More than one card in one body.
    #[error("the body holds more than one vCard; store one card per resource")]
    MultipleCards,
    /// Over a size limit: 1 MiB, 10,000 properties, or a 256 KiB unfolded line.
    #[error("the card is too large (limits: 1 MiB, 10,000 properties, 256 KiB per unfolded line)")]
    TooLarge,
}

fn unsupported_version_message(v: &str) -> String {
    if v.is_empty() {
        "the card has no VERSION property; only vCard 3.0 and 4.0 are supported".to_string()
    } else {
        format!("unsupported vCard version {v:?}; only 3.0 and 4.0 are supported")
    }
}

impl CardError {
    /// True when the card was refused for its version: the DAV precondition is then
    /// `CARDDAV:supported-address-data` rather than `CARDDAV:valid-address-data`.
    pub fn is_unsupported_version(&self) -> bool {
        matches!(self, CardError::UnsupportedVersion(_))
    }
}

/// One content line of a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The group prefix as written (`item1` in `item1.TEL`), if any.
    pub group: Option<String>,
    /// The property name, uppercased (`TEL`, `X-ABLABEL`).
    pub name: String,
    /// Parameters in order of first appearance: uppercased name and values. Values are RFC 6868
    /// decoded, without quotes, and comma lists are split (outside quotes). A parameter written
    /// several times (`type=WORK;type=pref`) is merged into one entry. A bare 2.1-style parameter
    /// (`TEL;WORK:`) is read as a `TYPE` value (`ENCODING` for `QUOTED-PRINTABLE`/`BASE64`).
    pub params: Vec<(String, Vec<String>)>,
    /// The value as written (still escaped), after unfolding. A quoted-printable value is
    /// decoded (its line breaks written as `\n`) and its `ENCODING`/`CHARSET` parameters removed.
    pub value: String,
}

impl Property {
    /// The value unescaped as a TEXT value (`\n`, `\N`, `\,`, `\;`, `\\`).
    pub fn text(&self) -> String {
        unescape_text(&self.value)
    }

    /// The values of a parameter (name compared case-insensitively), if present.
    pub fn param(&self, name: &str) -> Option<&[String]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// True if the `TYPE` parameter holds `ty` (case-insensitive).
    pub fn has_type(&self, ty: &str) -> bool {
        self.param("TYPE")
            .is_some_and(|v| v.iter().any(|t| t.eq_ignore_ascii_case(ty)))
    }

    /// The components of a structured value (`N`, `ADR`, `ORG`), split at unescaped `;` and
    /// each unescaped as TEXT.
    pub fn components(&self) -> Vec<String> {
        parse::split_unescaped(&self.value, b';')
            .into_iter()
            .map(unescape_text)
            .collect()
    }
}

/// The fields of a card that Portico models, projected from a client's card.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardFields {
    /// `FN`; when empty, "Given Family" from `N` (then `ORG`, `NICKNAME`, the first email or phone).
    pub name: String,
    /// The given-name component of `N`.
    pub given_name: Option<String>,
    /// The family-name component of `N`.
    pub family_name: Option<String>,
    /// Every non-empty `EMAIL`, in card order (trimmed, a `mailto:` prefix removed).
    pub emails: Vec<String>,
    /// Every non-empty `TEL`, in card order (a `tel:` URI prefix removed).
    pub phones: Vec<String>,
    /// `BDAY` as `YYYY-MM-DD`, or `--MM-DD` when the year is unknown; `None` when absent or not
    /// a calendar day (text, year only, invalid date).
    pub birthday: Option<String>,
    /// The first `NOTE`, unescaped; `None` when absent or empty.
    pub note: Option<String>,
    /// The `CATEGORIES` values (the customer's tags, for clients that edit categories), in
    /// order without duplicates; `None` when the card has no `CATEGORIES` line, so a client
    /// that does not know the property leaves the tags alone.
    pub categories: Option<Vec<String>>,
}

/// A validated client card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCard {
    /// The card's version.
    pub version: VCardVersion,
    /// The `UID` value (unescaped, trimmed, never empty).
    pub uid: String,
    /// Every content line between `BEGIN:VCARD` and `END:VCARD`, in order (VERSION included).
    pub properties: Vec<Property>,
    /// The modelled fields.
    pub fields: CardFields,
}

/// The version of a stored card, from its `VERSION` line; `V3` when absent or unknown.
pub fn version_of(text: &str) -> VCardVersion {
    for line in text.split('\n').take(MAX_PROPERTIES) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line
            .get(..7)
            .is_some_and(|h| h.eq_ignore_ascii_case("VERSION"))
        {
            continue;
        }
        // VERSION may carry parameters like any property (RFC 6350 §6.7.9, `VERSION-param =
        // any-param`); `parse` accepts `VERSION;X-P=v:4.0`, so read it the same way.
        let value = match line.as_bytes().get(7) {
            Some(b':') => &line[8..],
            Some(b';') => match lines::colon_index(line) {
                Some(i) => &line[i + 1..],
                None => continue,
            },
            _ => continue,
        };
        return VCardVersion::from_value(value).unwrap_or(VCardVersion::V3);
    }
    VCardVersion::V3
}

/// A strong entity tag for card text, quotes included: the first 16 bytes of the SHA-256 of the
/// bytes, URL-safe base64 without padding (24 characters in all).
pub fn etag(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    format!("\"{b64}\"")
}
