//! Streamed listings of the whole book: PROPFIND Depth 1, `addressbook-query` and the initial
//! `sync-collection`. Customers are read a page at a time and each page is written out as it is
//! read, so memory stays flat however large the book (issue: no cap on contacts).
use crate::book::BookSettings;
use crate::card::Card;
use crate::dav::{AddressDataRequest, Filter, MultistatusWriter, Precondition, PropRequest};
use crate::props::Env;
use crate::report::{card_propstats, Subject};
use crate::respond;
use crate::sync_token::{self, ListingAfter, SyncToken};
use crate::tree::{Hrefs, Resource};
use crate::vcard;
use portico_sdk::bytes::Bytes;
use portico_sdk::http::StatusCode;
use portico_sdk::{async_trait, AppContext, AppError, AppResponse, BodyStream};

/// Customers read per store round trip.
pub const PAGE: usize = 500;

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
    cx: AppContext,
    hrefs: Hrefs,
    book: BookSettings,
    seq: u64,
    group_seq: u64,
    kind: Kind,
    after: Option<ListingAfter>,
    writer: Option<MultistatusWriter>,
    emitted: usize,
    minimal: bool,
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
            cx: env.cx.clone(),
            hrefs: env.hrefs.clone(),
            book: env.book.clone(),
            seq: env.seq,
            group_seq: env.group_seq,
            kind,
            after,
            writer: Some(writer),
            emitted: 0,
            minimal: env.minimal,
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
                &self.cx.installation.id,
                &SyncToken {
                    seq: *token_seq,
                    group_seq: *group_seq,
                    listing_after,
                },
            )),
            _ => None,
        }
    }

    /// Writes one card per the listing's kind.
    fn card(&mut self, env: &Env<'_>, w: &mut MultistatusWriter, card: &Card) -> Step {
        match &self.kind {
            Kind::Propfind { request } => {
                let child = Resource::Card(card.stem().to_owned());
                w.response(
                    &env.hrefs.of(&child),
                    &crate::propfind::propstats(env, &child, Some(card), request),
                );
            }
            Kind::Query {
                props,
                address_data,
                filter,
                limit,
            } => {
                let parsed = vcard::properties(&card.text).unwrap_or_default();
                if !filter.matches(&Subject(parsed)) {
                    return Step::Skip;
                }
                if limit.is_some_and(|l| self.emitted >= l) {
                    // RFC 6352 §8.6.1: more matched than the client's limit.
                    w.response_error(
                        &env.hrefs.book(),
                        StatusCode::INSUFFICIENT_STORAGE,
                        &Precondition::NumberOfMatchesWithinLimits,
                    );
                    return Step::Done;
                }
                w.response(
                    &env.hrefs.card(card.stem()),
                    &card_propstats(env, card, props, address_data.as_ref()),
                );
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
                    return Step::Done;
                }
                w.response(
                    &env.hrefs.card(card.stem()),
                    &card_propstats(env, card, props, address_data.as_ref()),
                );
            }
        }
        self.emitted += 1;
        Step::Next
    }

    /// Writes one page; returns true when the listing is complete.
    async fn page(&mut self, w: &mut MultistatusWriter) -> Result<bool, AppError> {
        let cx = self.cx.clone();
        let env = Env {
            cx: &cx,
            hrefs: self.hrefs.clone(),
            book: self.book.clone(),
            seq: self.seq,
            group_seq: self.group_seq,
            minimal: self.minimal,
        };
        let (groups, records) = match &self.after {
            None => (false, cx.customers.list(None, PAGE).await?),
            Some(ListingAfter::Customer(id)) => (false, cx.customers.list(Some(id), PAGE).await?),
            Some(ListingAfter::Group(id)) => (true, cx.groups.list(id.as_ref(), PAGE).await?),
        };
        let last_page = records.len() < PAGE;
        for record in records {
            let id = record.id.clone();
            let card = Card::of(&cx, record);
            if let Step::Done = self.card(&env, w, &card) {
                return Ok(true);
            }
            self.after = Some(if groups {
                ListingAfter::Group(Some(id))
            } else {
                ListingAfter::Customer(id)
            });
        }
        if !last_page {
            return Ok(false);
        }
        if !groups {
            // The customers are done; the groups follow.
            self.after = Some(ListingAfter::Group(None));
            return Ok(false);
        }
        if let Some(t) = self.sync_token(None) {
            w.sync_token(&t);
        }
        Ok(true)
    }
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
