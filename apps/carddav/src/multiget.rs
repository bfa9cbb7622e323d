//! `addressbook-multiget` (RFC 6352 §8.7). DAVx5 and Apple ask for 10–100 cards at a time, but
//! Thunderbird asks for every card of the book in one request on its first sync, so a large
//! multiget is streamed like a listing: the hrefs are answered in order and a chunk is sent
//! whenever [`CHUNK_BYTES`] are buffered, and memory does not grow with the size of the answer.
//! Small ones are answered in one body (with a `Content-Length`), through the same code.
use crate::card::Card;
use crate::dav::{normalize_href, AddressDataRequest, HrefBase, MultistatusWriter, PropRequest};
use crate::listing::CHUNK_BYTES;
use crate::props::{self, Env, StreamEnv};
use crate::report::{card_propstats, load_media};
use crate::respond;
use crate::tree;
use portico_sdk::bytes::Bytes;
use portico_sdk::http::StatusCode;
use portico_sdk::{async_trait, AppError, AppResponse, BodyStream};
use std::collections::{HashSet, VecDeque};

/// Multigets naming more hrefs than this are streamed.
pub const STREAM_ABOVE: usize = 500;

/// Hrefs looked up in one store read. DAVx5's multigets of 100 take two reads; the cards of a
/// batch wait in [`Multiget`]'s queue (without their media pieces) while they are written out.
const LOOKUP_BATCH: usize = 64;

/// A multiget being answered, href by href.
pub struct Multiget {
    stream: StreamEnv,
    /// The installation's base path, decoded once for every href (`None`: no href is inside).
    base: Option<HrefBase>,
    request: PropRequest,
    address_data: Option<AddressDataRequest>,
    /// The requested hrefs, in request order; `next` is the first not yet answered.
    requested: Vec<String>,
    next: usize,
    /// Hrefs looked up but not yet answered, with what they name (`None`: 404).
    pending: VecDeque<(String, Option<Card>)>,
    /// Hrefs already answered: one response per resource, however often (or in how many
    /// spellings) the client names it — duplicate hrefs in a multistatus abort some clients
    /// (Outlook CalDavSynchronizer).
    /// (foldhash: seeded at random per process, so a client cannot pick hrefs that collide,
    /// and several times cheaper than SipHash on hrefs of 60-odd bytes.)
    answered: HashSet<String, foldhash::fast::RandomState>,
    writer: Option<MultistatusWriter>,
}

impl Multiget {
    /// A multiget of `requested` on the book of `env`.
    pub fn new(
        env: &Env<'_>,
        request: PropRequest,
        address_data: Option<AddressDataRequest>,
        requested: Vec<String>,
        base_path: &str,
    ) -> Self {
        Multiget {
            stream: StreamEnv::of(env),
            base: HrefBase::new(base_path),
            request,
            address_data,
            requested,
            next: 0,
            pending: VecDeque::new(),
            answered: HashSet::default(),
            writer: Some(MultistatusWriter::begin()),
        }
    }

    /// The 207 answer: one body for small multigets, a stream for large ones.
    pub async fn into_response(mut self) -> Result<AppResponse, AppError> {
        if self.requested.len() > STREAM_ABOVE {
            return Ok(respond::multistatus(Vec::new()).with_stream(self));
        }
        let Some(mut w) = self.writer.take() else {
            return Ok(respond::multistatus(Vec::new()));
        };
        while !self.answer_some(&mut w).await? {}
        Ok(respond::multistatus(w.finish()))
    }

    /// Answers hrefs until a chunk is buffered or all are answered; true when all are.
    async fn answer_some(&mut self, w: &mut MultistatusWriter) -> Result<bool, AppError> {
        let stream = self.stream.clone();
        let env = stream.env();
        let needs = props::needs_media(&self.request, self.address_data.as_ref());
        loop {
            if self.pending.is_empty() {
                if self.next >= self.requested.len() {
                    return Ok(true);
                }
                self.look_up_batch(&stream).await?;
                w.reserve(self.estimated_len());
            }
            while let Some((raw, found)) = self.pending.pop_front() {
                match found {
                    Some(mut card) => {
                        let href = env.hrefs.card(card.stem());
                        if !self.answered.contains(&href) {
                            if load_media(&env, &mut card, needs, w, &href).await? {
                                let propstats = card_propstats(
                                    &env,
                                    &card,
                                    &self.request,
                                    self.address_data.as_ref(),
                                );
                                w.response(&href, &propstats);
                            }
                            self.answered.insert(href);
                        }
                    }
                    None => {
                        let href = normalize_href(&raw, "/")
                            .map(|p| format!("/{p}"))
                            .unwrap_or(raw);
                        if !self.answered.contains(&href) {
                            w.response_status(&href, StatusCode::NOT_FOUND);
                            self.answered.insert(href);
                        }
                    }
                }
                if w.buffered_len() >= CHUNK_BYTES {
                    return Ok(self.pending.is_empty() && self.next >= self.requested.len());
                }
            }
        }
    }

    /// About how many bytes the responses of `pending` take: the card text (escaped: a CR
    /// becomes five bytes) when `address-data` was asked for, plus the href, properties and
    /// tags around it.
    fn estimated_len(&self) -> usize {
        self.pending
            .iter()
            .map(|(_, card)| match card {
                Some(c) if self.address_data.is_some() => c.full_len() + c.full_len() / 8 + 384,
                Some(_) => 384,
                None => 128,
            })
            .sum()
    }

    /// Looks up the next [`LOOKUP_BATCH`] requested hrefs into `pending`: one store read for
    /// the customers among them, one more for the groups among the rest.
    async fn look_up_batch(&mut self, stream: &StreamEnv) -> Result<(), AppError> {
        let cx = stream.cx();
        let end = (self.next + LOOKUP_BATCH).min(self.requested.len());
        let batch = &mut self.requested[self.next..end];
        self.next = end;
        // Any href outside this book — another installation, another organization, a
        // collection — is answered 404 like a missing card, never with data.
        let stems: Vec<Option<String>> = batch
            .iter()
            .map(|raw| {
                let rel = self.base.as_ref()?.normalize(raw)?;
                tree::card_stem(&rel).map(str::to_owned)
            })
            .collect();
        let names: Vec<&str> = stems.iter().flatten().map(String::as_str).collect();
        // Card records: a stored card is read without the customer's other fields.
        let customers = cx.customers.find_cards_by_resource_name(&names).await?;
        let missing: Vec<&str> = names
            .iter()
            .zip(&customers)
            .filter(|(_, c)| c.is_none())
            .map(|(n, _)| *n)
            .collect();
        let groups = if missing.is_empty() {
            Vec::new()
        } else {
            cx.groups.find_cards_by_resource_name(&missing).await?
        };
        let (mut customers, mut groups) = (customers.into_iter(), groups.into_iter());
        for (raw, stem) in batch.iter_mut().zip(&stems) {
            let found = match stem {
                Some(_) => match customers.next().flatten() {
                    Some(c) => Some(Card::of_record(cx, c)),
                    None => groups.next().flatten().map(|g| Card::of_record(cx, g)),
                },
                None => None,
            };
            self.pending.push_back((std::mem::take(raw), found));
        }
        Ok(())
    }
}

#[async_trait]
impl BodyStream for Multiget {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, AppError> {
        let Some(mut w) = self.writer.take() else {
            return Ok(None);
        };
        if self.answer_some(&mut w).await? {
            Ok(Some(Bytes::from(w.finish())))
        } else {
            let chunk = w.take_chunk();
            self.writer = Some(w);
            Ok(Some(Bytes::from(chunk)))
        }
    }
}
