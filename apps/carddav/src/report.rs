//! REPORT on the address book: `addressbook-multiget` and `addressbook-query` (RFC 6352 §8.6,
//! §8.7) and `sync-collection` (RFC 6578).
use crate::card::Card;
use crate::dav::{
    parse_report, propstats_for, AddressDataRequest, DavError, FilterProperty, FilterSubject,
    MultistatusWriter, Precondition, PropRequest, Propstat, QueryRequest, ReportRequest,
    SyncRequest,
};
use crate::listing::{Kind, Listing};
use crate::propfind::propstats;
use crate::props::{self, Env};
use crate::respond;
use crate::sync_token::{self, SyncToken};
use crate::tree::Resource;
use crate::vcard::Property;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppError, AppRequest, AppResponse, ErrorKind};

/// Most hrefs accepted in one multiget. DAVx5 sends batches of 10–100, but Thunderbird asks for
/// every card of the book in one multiget on its first sync; the 16 MB body limit allows about
/// 140,000 hrefs.
pub const MAX_MULTIGET_HREFS: usize = 100_000;

/// Largest `sync-collection` answer when the client sets no limit: the rest follows with the
/// continuation token (RFC 6578 §3.6).
pub const SYNC_PAGE: usize = 100_000;

/// Answers a REPORT whose target resource is `r`.
pub async fn report(
    env: &Env<'_>,
    r: &Resource,
    req: &AppRequest,
) -> Result<AppResponse, AppError> {
    let parsed = match parse_report(&req.body) {
        Ok(p) => p,
        Err(e) => return Ok(respond::dav_error(&e)),
    };
    if let ReportRequest::Unsupported(name) = parsed {
        return Ok(respond::dav_error(&DavError::UnsupportedReport(name)));
    }
    // RFC 6352 §8.6/§8.7 and RFC 6578 §3: these reports apply to the address book collection.
    if *r != Resource::Book {
        return Ok(respond::precondition(Precondition::SupportedReport));
    }
    match parsed {
        ReportRequest::Multiget(m) => {
            multiget(env, &m.props, m.address_data.as_ref(), &m.hrefs, req).await
        }
        ReportRequest::Query(q) => query(env, &q).await,
        ReportRequest::SyncCollection(s) => sync_collection(env, &s).await,
        ReportRequest::Unsupported(_) => Ok(respond::precondition(Precondition::SupportedReport)),
    }
}

/// Reads `card`'s media pieces when `needed` (see [`props::needs_media`]). A damaged card (a
/// piece missing from the store) is answered with a 500 response for `href` — the rest of the
/// multistatus goes on — and `false` is returned; other failures (the store unavailable) fail
/// the request.
pub(crate) async fn load_media(
    env: &Env<'_>,
    card: &mut Card,
    needed: bool,
    w: &mut MultistatusWriter,
    href: &str,
) -> Result<bool, AppError> {
    if !needed || card.whole {
        return Ok(true);
    }
    match card.complete(env.cx).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind == ErrorKind::Internal => {
            w.response_status(href, StatusCode::INTERNAL_SERVER_ERROR);
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The propstats of a card for a report's `DAV:prop` (with `address-data` honoured).
pub(crate) fn card_propstats(
    env: &Env<'_>,
    card: &Card,
    request: &PropRequest,
    address_data: Option<&AddressDataRequest>,
) -> Vec<Propstat> {
    let r = Resource::Card(card.stem().to_owned());
    match request {
        PropRequest::Prop(names) => props::trim_for(
            env,
            propstats_for(names, |n| {
                props::value(env, &r, Some(card), n, address_data)
            }),
        ),
        other => propstats(env, &r, Some(card), other),
    }
}

async fn multiget(
    env: &Env<'_>,
    request: &PropRequest,
    address_data: Option<&AddressDataRequest>,
    hrefs: &[String],
    req: &AppRequest,
) -> Result<AppResponse, AppError> {
    if hrefs.len() > MAX_MULTIGET_HREFS {
        return Ok(respond::status(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {MAX_MULTIGET_HREFS} hrefs per multiget"),
        ));
    }
    crate::multiget::Multiget::new(
        env,
        request.clone(),
        address_data.cloned(),
        hrefs.to_vec(),
        &req.base_path,
    )
    .into_response()
    .await
}

/// A parsed card seen by query filters.
pub(crate) struct Subject(pub(crate) Vec<Property>);

impl FilterSubject for Subject {
    fn properties(&self, name: &str) -> Vec<FilterProperty> {
        self.0
            .iter()
            .filter(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| FilterProperty {
                value: p.text(),
                params: p
                    .params
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
                    .collect(),
            })
            .collect()
    }
}

async fn query(env: &Env<'_>, q: &QueryRequest) -> Result<AppResponse, AppError> {
    let kind = Kind::Query {
        props: q.props.clone(),
        address_data: q.address_data.clone(),
        filter: q.filter.clone(),
        limit: q.limit.map(|l| l as usize),
    };
    Ok(Listing::start(env, kind, MultistatusWriter::begin(), None).into_response())
}

async fn sync_collection(env: &Env<'_>, s: &SyncRequest) -> Result<AppResponse, AppError> {
    let inst = &env.cx.installation.id;
    let limit = s.limit.map(|l| (l as usize).max(1)).unwrap_or(SYNC_PAGE);
    let token = match &s.sync_token {
        None => None,
        Some(t) => match sync_token::decode(inst, t) {
            Some(t) => Some(t),
            None => return Ok(respond::precondition(Precondition::ValidSyncToken)),
        },
    };
    let mut w = MultistatusWriter::begin();
    let next = match token {
        // Initial sync (or the continuation of one): list members in id order. The position is
        // taken before listing, so a change made during the listing is reported again next time.
        None
        | Some(SyncToken {
            listing_after: Some(_),
            ..
        }) => {
            let (seq, group_seq, after) = match token {
                Some(t) => {
                    if env.cx.customers.changes_since(t.seq, 1).await?.is_none()
                        || env.cx.groups.changes_since(t.group_seq, 1).await?.is_none()
                    {
                        return Ok(respond::precondition(Precondition::ValidSyncToken));
                    }
                    (t.seq, t.group_seq, t.listing_after)
                }
                None => (env.seq, env.group_seq, None),
            };
            let kind = Kind::Sync {
                props: s.props.clone(),
                address_data: s.address_data.clone(),
                limit,
                token_seq: seq,
                group_seq,
            };
            return Ok(Listing::start(env, kind, w, after).into_response());
        }
        Some(SyncToken {
            seq,
            group_seq,
            listing_after: None,
        }) => {
            let Some(batch) = env.cx.customers.changes_since(seq, limit).await? else {
                return Ok(respond::precondition(Precondition::ValidSyncToken));
            };
            // Groups changed since the token (their own log; see crate::groups), within what
            // the limit leaves; none left: they follow with the next token.
            let room = limit.saturating_sub(batch.changes.len());
            let groups = if room == 0 {
                portico_sdk::ChangeBatch {
                    changes: Vec::new(),
                    next_seq: group_seq,
                    truncated: env.cx.groups.current_seq().await? > group_seq,
                }
            } else {
                match env.cx.groups.changes_since(group_seq, room).await? {
                    Some(g) => g,
                    None => return Ok(respond::precondition(Precondition::ValidSyncToken)),
                }
            };
            // The log holds one entry per customer, but two customers can share a name over
            // time (a card deleted and created again under the same href): each href is
            // reported once, with its current state (RFC 6578 §3.5: one response per member;
            // duplicate hrefs abort some clients). Live entries go first so they win.
            let mut emitted: std::collections::HashSet<String> = std::collections::HashSet::new();
            let (live, gone): (Vec<_>, Vec<_>) = batch.changes.iter().partition(|c| !c.deleted);
            for change in live.into_iter().chain(gone) {
                let current = if change.deleted {
                    None
                } else {
                    env.cx.customers.get(&change.customer_id).await?
                };
                let href = match &current {
                    Some(customer) => env.hrefs.card(customer.resource_name()),
                    None => env.hrefs.card(&change.resource_name),
                };
                if !emitted.insert(href.clone()) {
                    continue;
                }
                match current {
                    Some(customer) => {
                        let mut card = Card::of(env.cx, customer);
                        let ad = s.address_data.as_ref();
                        let needs = props::needs_media(&s.props, ad);
                        if load_media(env, &mut card, needs, &mut w, &href).await? {
                            w.response(&href, &card_propstats(env, &card, &s.props, ad));
                        }
                    }
                    // RFC 6578 §3.5.2: a removed member is a response with a 404 status and no
                    // propstat.
                    None => w.response_status(&href, StatusCode::NOT_FOUND),
                }
            }
            crate::groups::write_delta(env, &mut w, &groups, &s.props, s.address_data.as_ref())
                .await?;
            if batch.truncated || groups.truncated {
                w.response_error(
                    &env.hrefs.book(),
                    StatusCode::INSUFFICIENT_STORAGE,
                    &Precondition::NumberOfMatchesWithinLimits,
                );
            }
            SyncToken {
                seq: batch.next_seq,
                group_seq: groups.next_seq,
                listing_after: None,
            }
        }
    };
    w.sync_token(&sync_token::encode(inst, &next));
    Ok(respond::multistatus(w.finish()))
}
