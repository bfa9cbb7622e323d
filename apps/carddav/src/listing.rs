//! Streamed listings of the whole book: PROPFIND Depth 1, `addressbook-query` and the initial
//! `sync-collection`. Customers are read a page at a time and each page is written out as it is
//! read, so memory stays flat however large the book (issue: no cap on contacts). Photos are
//! read only for answers that include `address-data`, one card at a time, and a chunk is sent
//! every [`CHUNK_BYTES`], so a book of 10,000 photos never has more than a page of records and
//! about one chunk of photos in memory.
use crate::card::Card;
use crate::dav::{AddressDataRequest, Filter, MultistatusWriter, Precondition, PropRequest};
use crate::props::{self, Env, StreamEnv};
use crate::report::{card_propstats, load_media, Subject};
use crate::respond;
use crate::sync_token::{self, ListingAfter, SyncToken};
use crate::tree::Resource;
use crate::vcard;
use portico_sdk::bytes::Bytes;
use portico_sdk::http::StatusCode;
use portico_sdk::{async_trait, AppError, AppResponse, BodyStream, CardRecord};
use std::collections::VecDeque;

/// Customers read per store round trip.
pub const PAGE: usize = 500;

/// A chunk of the streamed answer is sent once this many bytes are buffered.
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
        /// The group change-log position the listing stands for.
        group_seq: u64,
    },
}

/// A streamed multistatus listing of the book: the customers' cards in id order, then the
/// contact groups ([`crate::groups`]) in id order.
pub struct Listing {
    stream: StreamEnv,
    kind: Kind,
    after: Option<ListingAfter>,
    writer: Option<MultistatusWriter>,
    emitted: usize,
    /// Records read from the store and not yet written (customers, or groups when
    /// `pending_groups`).
    pending: VecDeque<CardRecord>,
    /// Whether `pending` holds group records.
    pending_groups: bool,
    /// The store has no records after the last page read (of the kind being read).
    exhausted: bool,
}

/// What to do after one card.
enum Step {
    Next,
    Skip,
    Done,
}

impl Listing {
    /// A listing whose document already holds `writer`'s content (e.g. the book's own response)
    /// and continues after `after`.
    pub fn start(
        env: &Env<'_>,
        kind: Kind,
        writer: MultistatusWriter,
        after: Option<ListingAfter>,
    ) -> Self {
        Listing {
            stream: StreamEnv::of(env),
            kind,
            after,
            writer: Some(writer),
            emitted: 0,
            pending: VecDeque::new(),
            pending_groups: false,
            exhausted: false,
        }
    }

    /// The 207 response that streams this listing.
    pub fn into_response(self) -> AppResponse {
        respond::multistatus(Vec::new()).with_stream(self)
    }

    fn sync_token(&self, listing_after: Option<ListingAfter>) -> Option<String> {
        match &self.kind {
            Kind::Sync {
                token_seq,
                group_seq,
                ..
            } => Some(sync_token::encode(
                &self.stream.cx().installation.id,
                &SyncToken {
                    seq: *token_seq,
                    group_seq: *group_seq,
                    listing_after,
                },
            )),
            _ => None,
        }
    }

    /// Writes one card per the listing's kind, reading its photos first when the answer
    /// includes them.
    async fn card(
        &mut self,
        env: &Env<'_>,
        w: &mut MultistatusWriter,
        card: &mut Card,
    ) -> Result<Step, AppError> {
        match &self.kind {
            Kind::Propfind { request } => {
                let child = Resource::Card(card.stem().to_owned());
                let href = env.hrefs.of(&child);
                if load_media(env, card, props::needs_media(request, None), w, &href).await? {
                    w.response(
                        &href,
                        &crate::propfind::propstats(env, &child, Some(card), request),
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
                if filter_needs_media(filter) && !load_media(env, card, true, w, &href).await? {
                    return Ok(Step::Skip);
                }
                let parsed = vcard::properties(card.text()).unwrap_or_default();
                if !filter.matches(&Subject(parsed)) {
                    return Ok(Step::Skip);
                }
                if limit.is_some_and(|l| self.emitted >= l) {
                    // RFC 6352 §8.6.1: more matched than the client's limit.
                    w.response_error(
                        &env.hrefs.book(),
                        StatusCode::INSUFFICIENT_STORAGE,
                        &Precondition::NumberOfMatchesWithinLimits,
                    );
                    return Ok(Step::Done);
                }
                let needs = props::needs_media(props, address_data.as_ref());
                if load_media(env, card, needs, w, &href).await? {
                    w.response(
                        &href,
                        &card_propstats(env, card, props, address_data.as_ref()),
                    );
                }
            }
            Kind::Sync {
                props,
                address_data,
                limit,
                ..
            } => {
                if self.emitted >= *limit {
                    // RFC 6578 §3.6: truncated; the token continues the listing.
                    w.response_error(
                        &env.hrefs.book(),
                        StatusCode::INSUFFICIENT_STORAGE,
                        &Precondition::NumberOfMatchesWithinLimits,
                    );
                    if let Some(t) = self.sync_token(self.after.clone()) {
                        w.sync_token(&t);
                    }
                    return Ok(Step::Done);
                }
                let href = env.hrefs.card(card.stem());
                let needs = props::needs_media(props, address_data.as_ref());
                if load_media(env, card, needs, w, &href).await? {
                    w.response(
                        &href,
                        &card_propstats(env, card, props, address_data.as_ref()),
                    );
                }
            }
        }
        self.emitted += 1;
        Ok(Step::Next)
    }

    /// Writes one page; returns true when the listing is complete.
    async fn page(&mut self, w: &mut MultistatusWriter) -> Result<bool, AppError> {
        let stream = self.stream.clone();
        let env = stream.env();
        let cx = stream.cx();
        if self.pending.is_empty() {
            if self.exhausted && !self.pending_groups {
                // The customers are done; the groups follow.
                self.after = Some(ListingAfter::Group(None));
                self.exhausted = false;
                self.pending_groups = true;
            }
            if self.exhausted {
                if let Some(t) = self.sync_token(None) {
                    w.sync_token(&t);
                }
                return Ok(true);
            }
            let (groups, records) = match &self.after {
                None => (false, cx.customers.list_cards(None, PAGE).await?),
                Some(ListingAfter::Customer(id)) => {
                    (false, cx.customers.list_cards(Some(id), PAGE).await?)
                }
                Some(ListingAfter::Group(id)) => {
                    (true, cx.groups.list_cards(id.as_ref(), PAGE).await?)
                }
            };
            self.exhausted = records.len() < PAGE;
            self.pending_groups = groups;
            self.pending = records.into();
        }
        // Cards until the buffer holds a chunk or the page is used up (the next page is read on
        // the next call); with photos in the answer one chunk holds a few cards, not a page.
        while let Some(record) = self.pending.pop_front() {
            let id = record.id().clone();
            let mut card = Card::of_record(cx, record);
            if let Step::Done = self.card(&env, w, &mut card).await? {
                return Ok(true);
            }
            self.after = Some(if self.pending_groups {
                ListingAfter::Group(Some(id))
            } else {
                ListingAfter::Customer(id)
            });
            if w.buffered_len() >= CHUNK_BYTES {
                return Ok(false);
            }
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
