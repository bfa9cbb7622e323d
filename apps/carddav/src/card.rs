//! A customer's card as served: the stored client bytes, or a rendering of the customer for
//! customers no client has written yet.
//!
//! A stored card's large photos live apart from its text ([`crate::vcard::media`]): [`Card::of`]
//! holds the text without them (enough for ETags, lengths, hrefs and filters on other
//! properties), [`Card::load`] reads them from the store and puts them back, for GET and for
//! `address-data`.
use crate::vcard::{self, VCardVersion};
use portico_sdk::{
    AppContext, AppError, CardRecord, Customer, CustomerId, StoredCard, StoredCardRecord,
};
use std::borrow::Cow;

/// One card ready to serve.
#[derive(Debug, Clone)]
pub struct Card {
    /// The record the card is served from.
    record: Record,
    /// The text when it is not the stored card's text as it is: a rendering (no client wrote a
    /// card), or the stored text with its media pieces put back. `None` serves the stored text
    /// without copying it.
    own_text: Option<String>,
    /// The ETag of a rendering (a stored card carries its own).
    own_etag: Option<String>,
    /// True when [`Card::text`] is the whole card: it has no media pieces, or they were loaded.
    pub whole: bool,
}

/// Where a card comes from: a whole customer record (single-resource requests, which may go
/// on to write it), or a card record from a listing or multiget, which holds only the stored
/// card of a customer that has one.
#[derive(Debug, Clone)]
enum Record {
    Customer(Box<Customer>),
    Stored(StoredCardRecord),
}

impl Card {
    /// The card of a customer, without loading its media pieces.
    pub fn of(cx: &AppContext, customer: Customer) -> Card {
        Card::build(cx, Record::Customer(Box::new(customer)))
    }

    /// The card of a card record ([`portico_sdk::CustomerDirectory::list_cards`]), without
    /// loading its media pieces.
    pub fn of_record(cx: &AppContext, record: CardRecord) -> Card {
        match record {
            CardRecord::Unwritten(customer) => Card::build(cx, Record::Customer(customer)),
            CardRecord::Stored(stored) => Card::build(cx, Record::Stored(stored)),
        }
    }

    fn build(cx: &AppContext, record: Record) -> Card {
        let unwritten = match &record {
            Record::Customer(c) if c.card.is_none() => Some(c),
            _ => None,
        };
        match unwritten {
            None => {
                let mut card = Card {
                    record,
                    own_text: None,
                    own_etag: None,
                    whole: false,
                };
                card.whole = card.stored().is_none_or(|s| s.media.is_empty());
                card
            }
            Some(customer) => {
                let link = cx.links.customer_link(&cx.org, customer);
                let text = vcard::render(
                    customer,
                    customer.id.as_str(),
                    link.as_deref(),
                    VCardVersion::V3,
                );
                let etag = vcard::etag(&text);
                Card {
                    record,
                    own_text: Some(text),
                    own_etag: Some(etag),
                    whole: true,
                }
            }
        }
    }

    /// The stored card, if a client wrote one.
    fn stored(&self) -> Option<&StoredCard> {
        match &self.record {
            Record::Customer(c) => c.card.as_ref(),
            Record::Stored(r) => Some(&r.card),
        }
    }

    /// The whole customer record, for a card built by [`Card::of`] (a card record from a
    /// listing holds only the card).
    pub fn customer(&self) -> Option<&Customer> {
        match &self.record {
            Record::Customer(c) => Some(c),
            Record::Stored(_) => None,
        }
    }

    /// The customer's id.
    pub fn id(&self) -> &CustomerId {
        match &self.record {
            Record::Customer(c) => &c.id,
            Record::Stored(r) => &r.id,
        }
    }

    /// The record's revision (for writes conditional on it).
    pub fn revision(&self) -> u64 {
        match &self.record {
            Record::Customer(c) => c.revision,
            Record::Stored(r) => r.revision,
        }
    }

    /// The card text as stored (or rendered as vCard 3.0); without its media pieces unless
    /// [`Card::whole`].
    pub fn text(&self) -> &str {
        match (&self.own_text, self.stored()) {
            (Some(text), _) => text,
            (None, Some(stored)) => &stored.text,
            (None, None) => "", // not built: `build` renders every card without a stored one
        }
    }

    /// Strong ETag of the whole card (the bytes the client wrote, or of the rendering).
    pub fn etag(&self) -> &str {
        match (&self.own_etag, self.stored()) {
            (Some(etag), _) => etag,
            (None, Some(stored)) => &stored.etag,
            (None, None) => "",
        }
    }

    /// Reads the media pieces of a card built by [`Card::of`] (nothing when already whole).
    pub async fn complete(&mut self, cx: &AppContext) -> Result<(), AppError> {
        if self.whole {
            return Ok(());
        }
        let Some(stored) = self.stored() else {
            self.whole = true;
            return Ok(());
        };
        let pieces = media_pieces(cx, self.id(), stored).await?;
        let text = vcard::media::reassemble(
            &stored.text,
            stored
                .media
                .iter()
                .zip(&pieces)
                .map(|(m, p)| (m.offset as usize, p.as_str())),
        )
        .ok_or_else(|| damaged(stored))?;
        self.own_text = Some(text);
        self.whole = true;
        Ok(())
    }

    /// The length in bytes of the whole card (without loading its media pieces).
    pub fn full_len(&self) -> usize {
        match self.stored() {
            Some(stored) if !self.whole => stored.full_len(),
            _ => self.text().len(),
        }
    }

    /// The resource-name stem (href without `.vcf`).
    pub fn stem(&self) -> &str {
        match &self.record {
            Record::Customer(c) => c.resource_name(),
            Record::Stored(r) => &r.card.name,
        }
    }

    /// The text in the requested version, with the ETag of exactly those bytes.
    pub fn in_version(&self, version: Option<VCardVersion>) -> (Cow<'_, str>, Cow<'_, str>) {
        match version {
            Some(v) if v != vcard::version_of(self.text()) => {
                let converted = vcard::convert(self.text(), v).into_owned();
                let etag = vcard::etag(&converted);
                (Cow::Owned(converted), Cow::Owned(etag))
            }
            _ => (Cow::Borrowed(self.text()), Cow::Borrowed(self.etag())),
        }
    }

    /// `Last-Modified` / `getlastmodified` value (RFC 1123 date).
    pub fn last_modified(&self) -> String {
        let at = match &self.record {
            Record::Customer(c) => c.updated_at,
            Record::Stored(r) => r.updated_at,
        };
        http_date(at.as_secs())
    }
}

fn damaged(stored: &StoredCard) -> AppError {
    AppError::internal(format!(
        "the card '{}' is damaged: a photo it names is missing from the store",
        stored.name
    ))
}

/// The bytes of a stored card's media pieces, in order. A piece the store lacks (or whose
/// length differs from the reference) is an [`portico_sdk::ErrorKind::Internal`] error naming
/// the card.
pub async fn media_pieces(
    cx: &AppContext,
    id: &CustomerId,
    stored: &StoredCard,
) -> Result<Vec<String>, AppError> {
    if stored.media.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = stored.media.iter().map(|m| m.key.clone()).collect();
    let found = cx.customers.card_media(id, &keys).await?;
    if found.len() != stored.media.len() {
        return Err(damaged(stored));
    }
    stored
        .media
        .iter()
        .zip(found)
        .map(|(m, piece)| match piece {
            Some(p) if p.len() as u64 == m.len => Ok(p),
            _ => Err(damaged(stored)),
        })
        .collect()
}

/// An RFC 1123 / IMF-fixdate for seconds since the epoch.
pub fn http_date(secs: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// The version a client asks for: `address-data version="4.0"` or `Accept: text/vcard;
/// version=4.0` (RFC 6352 §6.3.2 / §10.4). `None` means "as stored".
pub fn requested_version(version_attr: Option<&str>) -> Option<VCardVersion> {
    version_attr.and_then(VCardVersion::from_value)
}

/// Reads the `version` parameter of `text/vcard` in an `Accept` header. If the client lists
/// several, the first acceptable one wins.
pub fn version_from_accept(accept: Option<&str>) -> Option<VCardVersion> {
    let accept = accept?;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !media.eq_ignore_ascii_case("text/vcard") {
            continue;
        }
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                if k.trim().eq_ignore_ascii_case("version") {
                    if let Some(v) = VCardVersion::from_value(v.trim().trim_matches('"')) {
                        return Some(v);
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_versions() {
        assert_eq!(
            version_from_accept(Some("text/vcard; version=4.0")),
            Some(VCardVersion::V4)
        );
        assert_eq!(
            version_from_accept(Some("text/vcard;version=\"3.0\", text/vcard;version=4.0")),
            Some(VCardVersion::V3)
        );
        assert_eq!(version_from_accept(Some("*/*")), None);
        assert_eq!(version_from_accept(None), None);
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
