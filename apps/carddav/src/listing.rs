//! Streamed listings of the whole book: PROPFIND Depth 1, `addressbook-query` and the initial
//! `sync-collection`. Customers are read a page at a time and each page is written out as it is
//! read, so memory stays flat however large the book (issue: no cap on contacts). Photos are
//! read only for answers that include `address-data`, one card at a time, and a chunk is sent
//! every [`CHUNK_BYTES`], so a book of 10,000 photos never has more than a page of records and
//! about one chunk of photos in memory.
use crate::book::BookSettings;
use crate::card::Card;
use crate::dav::{AddressDataRequest, Filter, MultistatusWriter, Precondition, PropRequest};
use crate::props;
use crate::props::Env;
use crate::report::{card_propstats, load_media, Subject};
use crate::respond;
use crate::sync_token::{self, SyncToken};
use crate::tree::{Hrefs, Resource};
use crate::vcard;
use portico_sdk::bytes::Bytes;
use portico_sdk::http::StatusCode;
use portico_sdk::{
    async_trait, AppContext, AppError, AppResponse, BodyStream, Customer, CustomerId,
};
use std::collections::VecDeque;

/// Customers read per store round trip.
pub const PAGE: usize = 500;
/// A chunk is sent once this many bytes are buffered (cards with photos make large responses).
pub const CHUNK_BYTES: usize = 256 << 10;

/// What is being listed.
pub enum Kind {
    /// PROPFIND Depth 1 on the book: every card with the requested properties.
    Propfind {
        /// The PROPFIND request.
        request: PropRequest,
    },
    /// `addressbook-query`: the cards matching a filter, at most `limit`.
    Query {
        /// Requested properties.
        props: PropRequest,
        /// `address-data` selection.
        address_data: Option<AddressDataRequest>,
        /// The filter.
        filter: Filter,
        /// `nresults`.
        limit: Option<usize>,
    },
    /// Initial `sync-collection` (or its continuation), at most `limit` cards.
    Sync {
        /// Requested properties.
        props: PropRequest,
        /// `address-data` selection.
        address_data: Option<AddressDataRequest>,
        /// Most cards in this answer.
        limit: usize,
        /// The change-log position the listing stands for.
        token_seq: u64,
    },
}

/// A streamed multistatus listing of the book.
pub struct Listing {
    cx: AppContext,
    hrefs: Hrefs,
    book: BookSettings,
    seq: u64,
    kind: Kind,
    after: Option<CustomerId>,
    writer: Option<MultistatusWriter>,
    emitted: usize,
    minimal: bool,
    /// Customers read from the store and not yet written.
    pending: VecDeque<Customer>,
    /// The store has no customers after the last page read.
    exhausted: bool,
}

impl Listing {
    /// A listing whose document already holds `writer`'s content (e.g. the book's own response)
    /// and continues after customer `after`.
    pub fn start(
        env: &Env<'_>,
        kind: Kind,
        writer: MultistatusWriter,
        after: Option<CustomerId>,
    ) -> Self {
        Listing {
            cx: env.cx.clone(),
            hrefs: env.hrefs.clone(),
            book: env.book.clone(),
            seq: env.seq,
            kind,
            after,
            writer: Some(writer),
            emitted: 0,
            minimal: env.minimal,
            pending: VecDeque::new(),
            exhausted: false,
        }
    }

    /// The 207 response that streams this listing.
    pub fn into_response(self) -> AppResponse {
        respond::multistatus(Vec::new()).with_stream(self)
    }

    /// Writes the sync token that ends a complete listing.
    fn finish_listing(&self, w: &mut MultistatusWriter) {
        if let Kind::Sync { token_seq, .. } = &self.kind {
            let t = SyncToken {
                seq: *token_seq,
                listing_after: None,
            };
            w.sync_token(&sync_token::encode(&self.cx.installation.id, &t));
        }
    }

    /// Writes cards until the buffer holds [`CHUNK_BYTES`] or the page read from the store is
    /// used up (then the next page is read on the next call); returns true when the listing is
    /// complete. With photos in the answer, one chunk holds a few cards, not a page of them.
    async fn page(&mut self, w: &mut MultistatusWriter) -> Result<bool, AppError> {
        let env = Env {
            cx: &self.cx,
            hrefs: self.hrefs.clone(),
            book: self.book.clone(),
            seq: self.seq,
            minimal: self.minimal,
        };
        if self.pending.is_empty() {
            if self.exhausted {
                self.finish_listing(w);
                return Ok(true);
            }
            let customers = self.cx.customers.list(self.after.as_ref(), PAGE).await?;
            self.exhausted = customers.len() < PAGE;
            self.pending = customers.into();
        }
        while let Some(customer) = self.pending.pop_front() {
            let id = customer.id.clone();
            let mut card = Card::of(&self.cx, customer);
            match &self.kind {
                Kind::Propfind { request } => {
                    let child = Resource::Card(card.stem().to_owned());
                    let href = env.hrefs.of(&child);
                    if load_media(&env, &mut card, props::needs_media(request, None), w, &href)
                        .await?
                    {
                        w.response(
                            &href,
                            &crate::propfind::propstats(&env, &child, Some(&card), request),
                        );
                    }
                }
                Kind::Query {
                    props,
                    address_data,
                    filter,
                    limit,
                } => {
                    let href = env.hrefs.card(card.stem());
                    if filter_needs_media(filter)
                        && !load_media(&env, &mut card, true, w, &href).await?
                    {
                        self.after = Some(id);
                        continue;
                    }
                    let parsed = vcard::properties(&card.text).unwrap_or_default();
                    if !filter.matches(&Subject(parsed)) {
                        self.after = Some(id);
                        continue;
                    }
                    if limit.is_some_and(|l| self.emitted >= l) {
                        // RFC 6352 §8.6.1: more matched than the client's limit.
                        w.response_error(
                            &env.hrefs.book(),
                            StatusCode::INSUFFICIENT_STORAGE,
                            &Precondition::NumberOfMatchesWithinLimits,
                        );
                        return Ok(true);
                    }
                    let needs = props::needs_media(props, address_data.as_ref());
                    if load_media(&env, &mut card, needs, w, &href).await? {
                        w.response(
                            &href,
                            &card_propstats(&env, &card, props, address_data.as_ref()),
                        );
                    }
                }
                Kind::Sync {
                    props,
                    address_data,
                    limit,
                    token_seq,
                } => {
                    if self.emitted >= *limit {
                        // RFC 6578 §3.6: truncated; the token continues the listing.
                        w.response_error(
                            &env.hrefs.book(),
                            StatusCode::INSUFFICIENT_STORAGE,
                            &Precondition::NumberOfMatchesWithinLimits,
                        );
                        let t = SyncToken {
                            seq: *token_seq,
                            listing_after: self.after.clone(),
                        };
                        w.sync_token(&sync_token::encode(&self.cx.installation.id, &t));
                        return Ok(true);
                    }
                    let href = env.hrefs.card(card.stem());
                    let needs = props::needs_media(props, address_data.as_ref());
                    if load_media(&env, &mut card, needs, w, &href).await? {
                        w.response(
                            &href,
                            &card_propstats(&env, &card, props, address_data.as_ref()),
                        );
                    }
                }
            }
            self.emitted += 1;
            self.after = Some(id);
            if w.buffered_len() >= CHUNK_BYTES {
                return Ok(false);
            }
        }
        if self.exhausted {
            self.finish_listing(w);
            return Ok(true);
        }
        Ok(false)
    }
}

/// Whether a filter looks at `PHOTO` or `LOGO`, whose large values are stored apart.
fn filter_needs_media(filter: &Filter) -> bool {
    filter.prop_filters.iter().any(|f| {
        let name = f.name.rsplit('.').next().unwrap_or(&f.name);
        vcard::media::MEDIA_PROPERTIES.contains(&name)
    })
}

#[async_trait]
impl BodyStream for Listing {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        let Some(mut w) = self.writer.take() else {
            return Ok(None);
        };
        let done = self.page(&mut w).await?;
        if done {
            Ok(Some(Bytes::from(w.finish())))
        } else {
            let chunk = w.take_chunk();
            self.writer = Some(w);
            Ok(Some(Bytes::from(chunk)))
        }
    }
}
