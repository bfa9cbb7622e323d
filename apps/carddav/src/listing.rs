//! Streamed listings of the whole book: PROPFIND Depth 1, `addressbook-query` and the initial
//! `sync-collection`. Customers are read a page at a time and each page is written out as it is
//! read, so memory stays flat however large the book (issue: no cap on contacts).
use crate::book::BookSettings;
use crate::card::Card;
use crate::dav::{AddressDataRequest, Filter, MultistatusWriter, Precondition, PropRequest};
use crate::props::Env;
use crate::report::{card_propstats, Subject};
use crate::respond;
use crate::sync_token::{self, SyncToken};
use crate::tree::{Hrefs, Resource};
use crate::vcard;
use portico_sdk::bytes::Bytes;
use portico_sdk::http::StatusCode;
use portico_sdk::{async_trait, AppContext, AppError, AppResponse, BodyStream, CustomerId};

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
        }
    }

    /// The 207 response that streams this listing.
    pub fn into_response(self) -> AppResponse {
        respond::multistatus(Vec::new()).with_stream(self)
    }

    /// Writes one page; returns true when the listing is complete.
    async fn page(&mut self, w: &mut MultistatusWriter) -> Result<bool, AppError> {
        let env = Env {
            cx: &self.cx,
            hrefs: self.hrefs.clone(),
            book: self.book.clone(),
            seq: self.seq,
            minimal: self.minimal,
        };
        let customers = self.cx.customers.list(self.after.as_ref(), PAGE).await?;
        let last_page = customers.len() < PAGE;
        for customer in customers {
            let id = customer.id.clone();
            let card = Card::of(&self.cx, customer);
            match &self.kind {
                Kind::Propfind { request } => {
                    let child = Resource::Card(card.stem().to_owned());
                    w.response(
                        &env.hrefs.of(&child),
                        &crate::propfind::propstats(&env, &child, Some(&card), request),
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
                    w.response(
                        &env.hrefs.card(card.stem()),
                        &card_propstats(&env, &card, props, address_data.as_ref()),
                    );
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
                    w.response(
                        &env.hrefs.card(card.stem()),
                        &card_propstats(&env, &card, props, address_data.as_ref()),
                    );
                }
            }
            self.emitted += 1;
            self.after = Some(id);
        }
        if last_page {
            if let Kind::Sync { token_seq, .. } = &self.kind {
                let t = SyncToken {
                    seq: *token_seq,
                    listing_after: None,
                };
                w.sync_token(&sync_token::encode(&self.cx.installation.id, &t));
            }
        }
        Ok(last_page)
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
