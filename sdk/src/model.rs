use crate::ids::{CustomerId, InstallationId, OrgId};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time from the system clock.
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
    /// Whole seconds since the epoch.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

/// An organization: the tenant every other record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// Stable id.
    pub id: OrgId,
    /// Unique, URL-safe short name (lowercase letters, digits, `-`), e.g. the CardDAV username.
    pub slug: String,
    /// Display name.
    pub name: String,
}

/// The lifecycle state of an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationStatus {
    /// Created, not yet connected.
    Pending,
    /// Working.
    Connected,
    /// Installed but failing; see the status text.
    Error,
    /// Turned off by an operator; requests get 404.
    Disabled,
}

/// How a user connects to an installation (e.g. the CardDAV account to type into a phone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Account {
    /// The username to sign in with.
    pub username: String,
    /// The URL to give to the client.
    pub server_url: String,
}

/// The installed-app record: one app kind installed for one organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installation {
    /// Random, URL-safe id; the `{appId}` segment of the gateway path.
    pub id: InstallationId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// The app kind (see [`crate::AppManifest::kind`]).
    pub kind: String,
    /// Lifecycle state.
    pub status: InstallationStatus,
    /// A human-readable explanation of the status, if any.
    #[serde(default)]
    pub status_text: Option<String>,
    /// Connection details shown to the organization.
    #[serde(default)]
    pub account: Option<Account>,
    /// The app's own JSON data. Secret fields are stored sealed (see [`crate::SecretBox`]).
    #[serde(default)]
    pub data: serde_json::Value,
    /// Incremented by the store on every write; used for optimistic concurrency and caching.
    pub revision: u64,
    /// When the installation was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The version of the app's data layout this record was written with
    /// ([`crate::AppManifest::data_version`]; records from before versions existed read as 1).
    /// The host runs [`crate::ExternalApp::migrate`] at startup for records older than the app.
    #[serde(default = "first_data_version")]
    pub data_version: u32,
}

fn first_data_version() -> u32 {
    1
}

/// A customer's card as last written, kept byte for byte by the host (which never parses it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCard {
    /// The resource name a client chose (without extension), kept so its href stays the same.
    /// Unique inside the organization.
    pub name: String,
    /// The card's UID. Unique inside the organization.
    pub uid: String,
    /// The card text (vCards are UTF-8).
    pub text: String,
    /// A strong entity tag for the card as the client wrote it, including the quotes: over
    /// `text` with every piece of [`StoredCard::media`] put back.
    pub etag: String,
    /// Pieces of the card kept apart from `text` (large photos and logos), in text order. The
    /// card a client wrote is `text` with each piece's bytes inserted at its
    /// [`CardMedia::offset`]; the bytes are read with
    /// [`crate::CustomerDirectory::card_media`], so a listing of records never loads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<CardMedia>,
}

impl StoredCard {
    /// The length in bytes of the card as the client wrote it (`text` plus every media piece).
    pub fn full_len(&self) -> usize {
        self.text.len() + self.media.iter().map(|m| m.len as usize).sum::<usize>()
    }
}

/// One piece of a stored card kept apart from the card text (see [`StoredCard::media`]). The
/// host never interprets the bytes; the app that cut them out puts them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardMedia {
    /// Where the piece goes back: a byte offset into [`StoredCard::text`] (pieces are in
    /// ascending offset order; two pieces may share an offset and then go back in list order).
    pub offset: u64,
    /// The piece's length in bytes.
    pub len: u64,
    /// The store's name for the bytes, unique per customer and per write that brought them
    /// (assigned by the store; see [`CustomerDraft::card_media`]).
    pub key: String,
}

/// The marker year Apple Contacts writes for a birthday without a year (`1604-MM-DD` with
/// `X-APPLE-OMIT-YEAR=1604` in vCard 3.0). Nobody we serve was born then, so a customer
/// birthday in that year is read as "year unknown".
pub const APPLE_OMIT_YEAR: u32 = 1604;

/// Why [`normalize_birthday`] refused a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BirthdayError {
    /// A time of day or zone was given: a birthday is a calendar date, and reading a
    /// timestamp's date would shift it by a time zone for some readers.
    #[error("a birthday is a date without a time of day: use YYYY-MM-DD, or --MM-DD when the year is unknown")]
    HasTime,
    /// Not one of the accepted spellings.
    #[error(
        "a birthday is YYYY-MM-DD (or YYYYMMDD), or --MM-DD (or --MMDD) when the year is unknown"
    )]
    Format,
    /// The month or day does not exist (e.g. `--02-30`, or `1900-02-29`).
    #[error("that day does not exist")]
    NoSuchDay,
}

/// Reads a birthday as platforms send it and returns the stored form: `YYYY-MM-DD`, or
/// `--MM-DD` when the year is unknown. Accepts the basic forms `YYYYMMDD` and `--MMDD` too.
/// A date in [`APPLE_OMIT_YEAR`] becomes year-less, so no client is ever told "born 1604".
/// February 29 is a valid year-less birthday.
///
/// ```
/// use portico_sdk::normalize_birthday;
/// assert_eq!(normalize_birthday("19850412").unwrap(), "1985-04-12");
/// assert_eq!(normalize_birthday("--0229").unwrap(), "--02-29");
/// assert_eq!(normalize_birthday("1604-04-12").unwrap(), "--04-12");
/// assert!(normalize_birthday("1985-04-11T22:00:00Z").is_err());
/// ```
pub fn normalize_birthday(value: &str) -> Result<String, BirthdayError> {
    let s = value.trim();
    if s.contains(['T', 't', ':', 'Z']) {
        return Err(BirthdayError::HasTime);
    }
    let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let (year, md) = if let Some(md) = s.strip_prefix("--") {
        (None, md)
    } else if s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
        (Some(&s[..4]), &s[5..])
    } else if s.len() == 8 && all_digits(s) {
        (Some(&s[..4]), &s[4..])
    } else {
        return Err(BirthdayError::Format);
    };
    let (m, d) = match md.len() {
        5 if md.as_bytes()[2] == b'-' => (&md[..2], &md[3..]),
        4 => (&md[..2], &md[2..]),
        _ => return Err(BirthdayError::Format),
    };
    if !year.is_none_or(all_digits) || !all_digits(m) || !all_digits(d) {
        return Err(BirthdayError::Format);
    }
    let num = |x: &str| x.parse::<u32>().map_err(|_| BirthdayError::Format);
    let year = match year.map(num).transpose()? {
        Some(APPLE_OMIT_YEAR) | Some(0) => None,
        y => y,
    };
    let (m, d) = (num(m)?, num(d)?);
    let leap = |y: u32| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_some_and(|y| !leap(y)) => 28,
        2 => 29,
        _ => return Err(BirthdayError::NoSuchDay),
    };
    if d == 0 || d > days {
        return Err(BirthdayError::NoSuchDay);
    }
    Ok(match year {
        Some(y) => format!("{y:04}-{m:02}-{d:02}"),
        None => format!("--{m:02}-{d:02}"),
    })
}

/// A customer of an organization, as the platform models it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Id, unique inside the organization.
    pub id: CustomerId,
    /// Full display name.
    pub name: String,
    /// Given (first) name, if known separately.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family (last) name, if known separately.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Primary email.
    #[serde(default)]
    pub email: Option<String>,
    /// Primary phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// Further emails, in order (the primary one not repeated).
    #[serde(default)]
    pub known_emails: Vec<String>,
    /// Further phones, in order (the primary one not repeated).
    #[serde(default)]
    pub known_phones: Vec<String>,
    /// Birthday as `YYYY-MM-DD`, or `--MM-DD` when the year is unknown.
    #[serde(default)]
    pub birthday: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
    /// Tags set by the platform.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The card last written by a client or patched by an app, if any.
    #[serde(default)]
    pub card: Option<StoredCard>,
    /// When the record last changed (set by the store).
    pub updated_at: Timestamp,
    /// Incremented by the store on every write.
    pub revision: u64,
}

impl Customer {
    /// All emails, primary first, without duplicates.
    pub fn all_emails(&self) -> Vec<&str> {
        dedup_chain(self.email.as_deref(), &self.known_emails)
    }
    /// All phones, primary first, without duplicates.
    pub fn all_phones(&self) -> Vec<&str> {
        dedup_chain(self.phone.as_deref(), &self.known_phones)
    }
    /// The resource name clients see for this customer: the stored card's name, or the id.
    pub fn resource_name(&self) -> &str {
        match &self.card {
            Some(card) => &card.name,
            None => self.id.as_str(),
        }
    }
}

/// A customer as a card listing or lookup needs it ([`crate::CustomerDirectory::list_cards`],
/// [`crate::CustomerDirectory::find_cards_by_resource_name`]): when a client has written the
/// card, only the card and the record's identity, so a store can skip decoding the customer's
/// other fields; otherwise the whole customer, from which the app renders the card.
#[derive(Debug, Clone, PartialEq)]
pub enum CardRecord {
    /// The customer has a stored card.
    Stored(StoredCardRecord),
    /// No client has written a card: the whole record (boxed: it is the larger variant by far).
    Unwritten(Box<Customer>),
}

/// A customer's stored card with what identifies the record (see [`CardRecord::Stored`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCardRecord {
    /// The customer's id.
    pub id: CustomerId,
    /// The card as last written.
    pub card: StoredCard,
    /// When the record last changed ([`Customer::updated_at`]).
    pub updated_at: Timestamp,
    /// The record's revision ([`Customer::revision`]).
    pub revision: u64,
}

impl From<Customer> for CardRecord {
    fn from(c: Customer) -> Self {
        match c.card {
            Some(card) => CardRecord::Stored(StoredCardRecord {
                id: c.id,
                card,
                updated_at: c.updated_at,
                revision: c.revision,
            }),
            None => CardRecord::Unwritten(Box::new(c)),
        }
    }
}

impl CardRecord {
    /// The customer's id.
    pub fn id(&self) -> &CustomerId {
        match self {
            CardRecord::Stored(s) => &s.id,
            CardRecord::Unwritten(c) => &c.id,
        }
    }
    /// The resource name clients see ([`Customer::resource_name`]).
    pub fn resource_name(&self) -> &str {
        match self {
            CardRecord::Stored(s) => &s.card.name,
            CardRecord::Unwritten(c) => c.id.as_str(),
        }
    }
    /// The stored card, if a client wrote one.
    pub fn card(&self) -> Option<&StoredCard> {
        match self {
            CardRecord::Stored(s) => Some(&s.card),
            CardRecord::Unwritten(_) => None,
        }
    }
    /// When the record last changed.
    pub fn updated_at(&self) -> Timestamp {
        match self {
            CardRecord::Stored(s) => s.updated_at,
            CardRecord::Unwritten(c) => c.updated_at,
        }
    }
    /// The record's revision.
    pub fn revision(&self) -> u64 {
        match self {
            CardRecord::Stored(s) => s.revision,
            CardRecord::Unwritten(c) => c.revision,
        }
    }
}

fn dedup_chain<'a>(first: Option<&'a str>, rest: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::with_capacity(rest.len() + 1);
    for v in first.into_iter().chain(rest.iter().map(String::as_str)) {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The fields of a customer a caller sets; the store fills in id (if absent), revision and time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerDraft {
    /// Id to use; a random one if `None`.
    #[serde(default)]
    pub id: Option<CustomerId>,
    /// Full display name (required, non-empty).
    pub name: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Primary email.
    #[serde(default)]
    pub email: Option<String>,
    /// Primary phone.
    #[serde(default)]
    pub phone: Option<String>,
    /// Further emails.
    #[serde(default)]
    pub known_emails: Vec<String>,
    /// Further phones.
    #[serde(default)]
    pub known_phones: Vec<String>,
    /// `YYYY-MM-DD` or `--MM-DD`.
    #[serde(default)]
    pub birthday: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A card to store with the customer.
    #[serde(default)]
    pub card: Option<StoredCard>,
    /// The bytes of the card's media pieces when they are new: `Some(pieces)` with one entry
    /// per [`StoredCard::media`] reference, in order (each `len` must match); the store gives
    /// them fresh keys, stores them with the record and drops the customer's previous pieces.
    /// `None` keeps pieces already stored: every reference must then name a piece of the record
    /// being replaced (keys as read), and pieces the new card no longer names are dropped.
    /// Never serialized (the bytes travel only inside the process).
    #[serde(skip)]
    pub card_media: Option<Vec<String>>,
}

impl CustomerDraft {
    /// Builds a draft that writes `c`'s fields (used to update an existing customer).
    pub fn from_customer(c: &Customer) -> Self {
        CustomerDraft {
            id: Some(c.id.clone()),
            name: c.name.clone(),
            given_name: c.given_name.clone(),
            family_name: c.family_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            known_emails: c.known_emails.clone(),
            known_phones: c.known_phones.clone(),
            birthday: c.birthday.clone(),
            note: c.note.clone(),
            tags: c.tags.clone(),
            card: c.card.clone(),
            card_media: None,
        }
    }

    /// Turns the draft into a customer with the given id, revision and time.
    pub fn into_customer(self, id: CustomerId, revision: u64, now: Timestamp) -> Customer {
        Customer {
            id,
            name: self.name,
            given_name: self.given_name,
            family_name: self.family_name,
            email: self.email,
            phone: self.phone,
            known_emails: self.known_emails,
            known_phones: self.known_phones,
            birthday: self.birthday,
            note: self.note,
            tags: self.tags,
            card: self.card,
            updated_at: now,
            revision,
        }
    }
}

/// One entry of an organization's change log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The position in the organization's sequence (strictly increasing, starting at 1).
    pub seq: u64,
    /// The customer that changed.
    pub customer_id: CustomerId,
    /// The customer's resource name at the time (see [`Customer::resource_name`]).
    pub resource_name: String,
    /// True if the customer was deleted (a tombstone).
    pub deleted: bool,
}

/// The changes after a sequence number, as returned by [`crate::CustomerDirectory::changes_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// The changes, in sequence order, at most one per customer (the latest).
    pub changes: Vec<Change>,
    /// The sequence number to ask from next time: the last one included, or the current end of
    /// the log when everything was returned.
    pub next_seq: u64,
    /// True if the limit cut the batch short (more changes follow `next_seq`).
    pub truncated: bool,
}

/// What a customer write does to the card's media pieces ([`plan_card_media`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaPlan {
    /// Pieces to store: (key, bytes).
    pub put: Vec<(String, String)>,
    /// Keys of the replaced record's pieces the new record no longer names (to delete once the
    /// record is written).
    pub drop: Vec<String>,
}

/// The media rule every store applies to a write of customer `draft` over the record `old`
/// (`None` for a create), shared so the backends agree. With [`CustomerDraft::card_media`] set,
/// its pieces get fresh keys from `new_key` (written into the draft's references) and every
/// piece of `old` is dropped; without it, every reference must name a piece of `old` (its key
/// and length as stored) and the pieces of `old` not named any more are dropped. `Err` says why
/// the draft is refused (nothing may be written then).
pub fn plan_card_media(
    old: Option<&StoredCard>,
    draft: &mut CustomerDraft,
    mut new_key: impl FnMut() -> String,
) -> Result<MediaPlan, String> {
    let old_media: &[CardMedia] = old.map(|c| c.media.as_slice()).unwrap_or(&[]);
    let pieces = draft.card_media.take();
    let refs: &mut [CardMedia] = match draft.card.as_mut() {
        Some(c) => &mut c.media,
        None => &mut [],
    };
    let mut plan = MediaPlan::default();
    let mut last = 0u64;
    for r in refs.iter() {
        if r.offset < last {
            return Err("card media references are not in text order".into());
        }
        last = r.offset;
    }
    if let Some(card) = draft.card.as_ref() {
        if card
            .media
            .last()
            .is_some_and(|m| m.offset as usize > card.text.len())
        {
            return Err("a card media reference points past the end of the text".into());
        }
    }
    let refs: &mut [CardMedia] = match draft.card.as_mut() {
        Some(c) => &mut c.media,
        None => &mut [],
    };
    match pieces {
        Some(pieces) => {
            if pieces.len() != refs.len() {
                return Err(format!(
                    "{} media pieces for {} references",
                    pieces.len(),
                    refs.len()
                ));
            }
            for (r, bytes) in refs.iter_mut().zip(pieces) {
                if bytes.len() as u64 != r.len {
                    return Err("a media piece's length does not match its reference".into());
                }
                r.key = new_key();
                plan.put.push((r.key.clone(), bytes));
            }
            plan.drop = old_media.iter().map(|m| m.key.clone()).collect();
        }
        None => {
            for r in refs.iter() {
                if !old_media.iter().any(|m| m.key == r.key && m.len == r.len) {
                    return Err(format!(
                        "card media '{}' is not a piece of the stored card (new pieces need \
                         their bytes)",
                        r.key
                    ));
                }
            }
            plan.drop = old_media
                .iter()
                .filter(|m| !refs.iter().any(|r| r.key == m.key))
                .map(|m| m.key.clone())
                .collect();
        }
    }
    plan.drop.sort();
    plan.drop.dedup();
    Ok(plan)
}

#[cfg(test)]
mod birthday_tests {
    use super::*;

    #[test]
    fn birthdays_are_dates_in_one_form() {
        let ok = [
            ("1985-04-12", "1985-04-12"),
            ("19850412", "1985-04-12"),
            (" --04-12 ", "--04-12"),
            ("--0412", "--04-12"),
            ("--02-29", "--02-29"),
            ("2000-02-29", "2000-02-29"),
            ("1604-04-12", "--04-12"),
            ("16040412", "--04-12"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_birthday(input).as_deref(), Ok(want), "{input}");
        }
        let refused = [
            ("1985-04-11T22:00:00Z", BirthdayError::HasTime),
            ("1985-04-12T00:00", BirthdayError::HasTime),
            ("1985-02-30", BirthdayError::NoSuchDay),
            ("1900-02-29", BirthdayError::NoSuchDay),
            ("--13-01", BirthdayError::NoSuchDay),
            ("--04-00", BirthdayError::NoSuchDay),
            ("12.04.1985", BirthdayError::Format),
            ("1985-4-12", BirthdayError::Format),
            ("", BirthdayError::Format),
            ("１９８５-04-12", BirthdayError::Format),
        ];
        for (input, want) in refused {
            assert_eq!(normalize_birthday(input), Err(want), "{input}");
        }
    }
}
