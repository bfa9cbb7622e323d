//! A customer's card as served: the stored client bytes, or a rendering of the customer for
//! customers no client has written yet.
//!
//! A stored card's large photos live apart from its text ([`crate::vcard::media`]): [`Card::of`]
//! holds the text without them (enough for ETags, lengths, hrefs and filters on other
//! properties), [`Card::load`] reads them from the store and puts them back, for GET and for
//! `address-data`.
use crate::vcard::{self, VCardVersion};
use portico_sdk::{AppContext, AppError, Customer, CustomerId, StoredCard};
use std::borrow::Cow;

/// One card ready to serve.
#[derive(Debug, Clone)]
pub struct Card {
    /// The customer.
    pub customer: Customer,
    /// The text when it is not the stored card's text as it is: a rendering (no client wrote a
    /// card), or the stored text with its media pieces put back. `None` serves the stored text
    /// without copying it.
    own_text: Option<String>,
    /// The ETag of a rendering (a stored card carries its own).
    own_etag: Option<String>,
    /// True when [`Card::text`] is the whole card: it has no media pieces, or they were loaded.
    pub whole: bool,
}

impl Card {
    /// The card of a customer, without loading its media pieces.
    pub fn of(cx: &AppContext, customer: Customer) -> Card {
        match &customer.card {
            Some(stored) => {
                let whole = stored.media.is_empty();
                Card {
                    customer,
                    own_text: None,
                    own_etag: None,
                    whole,
                }
            }
            None => {
                let link = cx.links.customer_link(&cx.org, &customer);
                let text = vcard::render(
                    &customer,
                    customer.id.as_str(),
                    link.as_deref(),
                    VCardVersion::V3,
                );
                let etag = vcard::etag(&text);
                Card {
                    customer,
                    own_text: Some(text),
                    own_etag: Some(etag),
                    whole: true,
                }
            }
        }
    }

    /// The card text as stored (or rendered as vCard 3.0); without its media pieces unless
    /// [`Card::whole`].
    pub fn text(&self) -> &str {
        match (&self.own_text, &self.customer.card) {
            (Some(text), _) => text,
            (None, Some(stored)) => &stored.text,
            (None, None) => "", // not built: `of` renders every card without a stored one
        }
    }

    /// Strong ETag of the whole card (the bytes the client wrote, or of the rendering).
    pub fn etag(&self) -> &str {
        match (&self.own_etag, &self.customer.card) {
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
        let Some(stored) = &self.customer.card else {
            self.whole = true;
            return Ok(());
        };
        let pieces = media_pieces(cx, &self.customer.id, stored).await?;
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
        match &self.customer.card {
            Some(stored) if !self.whole => stored.full_len(),
            _ => self.text().len(),
        }
    }

    /// The resource-name stem (href without `.vcf`).
    pub fn stem(&self) -> &str {
        self.customer.resource_name()
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
        http_date(self.customer.updated_at.as_secs())
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
