//! Contact groups from customer tags.
//!
//! Every distinct tag of an organization's customers is a contact group in the one address
//! book (Apple Contacts shows groups only from the default book, so there is no second book).
//! A group is a card: vCard 3.0 `X-ADDRESSBOOKSERVER-KIND:group` with one
//! `X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:{member UID}` per member (Apple's form, stored by
//! default), or — for a client asking for 4.0 — RFC 6350 `KIND:group` (§6.1.4) and `MEMBER`
//! (§6.6.5), through the ordinary [`crate::vcard::convert`]. Member cards carry their tags as
//! `CATEGORIES` (rendered, and patched by the admin-edit path like any modelled field).
//!
//! ## Where group state lives
//! Group cards are records of a second customer directory, [`AppContext::groups`], kept by
//! the host under the organization's [`portico_sdk::OrgId::group_space`]. So groups get,
//! from the same store code on both backends: a change log of their own (a group whose ETag
//! changed appears in the next `sync-collection` delta; a removed group leaves a tombstone,
//! reported 404), revision checks, and unique ids, resource names and card UIDs. A sync token
//! holds one position in each log ([`crate::sync_token`]); an incremental sync reads the
//! changes after both positions, never the whole book. A group record is a [`Customer`]
//! whose `name` is the tag, whose `id` is derived from the tag ([`group_id`]), whose `card` is
//! the group card as served (byte for byte what a client PUT, or what Portico rendered), and
//! whose `note` marks a card written by a client (kept even when it has no members). The
//! member list is the card's own member lines: there is no second copy to disagree with.
//!
//! Groups Portico renders get a stable UID derived from the organization and tag and the href
//! `portico-group-{hash of the tag}.vcf`; contact cards may not be written under that prefix,
//! and a group's href or UID is never given to a contact (both are checked on every PUT).
//!
//! ## Keeping groups in step with tags
//! The truth is the customers' tags. After every customer write that changes tags (admin
//! API and imports through [`portico_sdk::ExternalApp::customers_changed`]; a phone deleting
//! a contact; a phone's group edit changing members' tags), [`reconcile`] brings the group
//! record of each tag that changed in step: it re-reads each touched customer *after* the
//! write and sets that customer's membership to what the customer now carries, then writes the
//! group conditionally on the revision it read, retrying on a conflict. Concurrent writes are
//! therefore safe: a reconcile never applies a remembered delta, it copies current state, and
//! every customer write is followed by its own reconcile, so the last reconcile to run for a
//! customer reads that customer's last write; revision checks make the group writes of
//! concurrent reconciles serialize instead of overwriting each other. A reconcile that
//! finds the group already right writes nothing (so no spurious ETag change or delta entry).
//! The one window is a process dying between a customer write and its reconcile: the group
//! then lags until that customer's tags change again.
//!
//! Conditional writes that lose a race are retried with jittered backoff (see [`ATTEMPTS`]):
//! without it, 24 concurrent admin edits of one tag on MongoDB starved some reconciles.
//! [`backfill`] builds every group once from a scan of the book: at install, and when an
//! installation from before groups is migrated (data version 2).
//!
//! A phone's group card (PUT with `X-ADDRESSBOOKSERVER-KIND:group` or `KIND:group`) is stored
//! byte for byte; then the customers its members name (by card UID) get the tag, and former
//! members lose it (member UIDs naming no customer — subgroups, cards elsewhere — stay in the
//! bytes and change nothing). Renaming a group on the phone renames the tag (same href and
//! UID); a second group with the name of an existing one is refused (409), so a tag never has
//! two cards. An admin tag change patches only the member lines of a client's group card
//! ([`crate::vcard::patch_members`]); a group Portico rendered that loses its last member is
//! removed. DELETE of a group removes its tag from the members it lists. A client that edits
//! `CATEGORIES` on a contact edits its tags (a card without `CATEGORIES` leaves them alone).
//!
//! Limits: a group card is one stored record, so a tag carried by more than about 200,000
//! customers would exceed MongoDB's 16 MB document; a phone cannot PUT a group card over the
//! advertised `max-resource-size`.
use crate::card::Card;
use crate::dav::Precondition;
use crate::props::Env;
use crate::respond;
use crate::vcard::{self, ParsedCard, VCardVersion};
use crate::write::{evaluate, Preconditions};
use portico_sdk::http::StatusCode;
use portico_sdk::{
    AppContext, AppError, AppRequest, AppResponse, Customer, CustomerDraft, CustomerId,
    CustomerWritten, ErrorKind, StoredCard,
};
use sha2::Digest as _;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Resource-name prefix of the groups Portico renders; contact cards may not use it.
pub const STEM_PREFIX: &str = "portico-group-";

/// `note` of a group record whose card a client wrote.
const CLIENT_WRITTEN: &str = "group card written by a client";

/// Conditional writes tried before giving up under constant contention. Each failed attempt
/// waits a random 0..2^k ms (k the attempt, capped at 64 ms), so many writers to one group
/// spread out: at most about 3 s in all.
const ATTEMPTS: u32 = 64;

/// Waits before retry `attempt` (see [`ATTEMPTS`]).
async fn backoff(attempt: u32) {
    use std::hash::{BuildHasher, Hasher};
    let cap_ms = 1u64 << attempt.min(6);
    let jitter = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % (cap_ms + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

/// Customers touched per tag: id and the member UID to remove if the customer is gone.
type Touched = BTreeMap<String, Vec<(CustomerId, String)>>;

fn digest_hex(parts: &[&str]) -> String {
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The group record id of a tag (stable; the groups directory is per organization).
pub fn group_id(tag: &str) -> Result<CustomerId, AppError> {
    CustomerId::parse(&format!("g{}", digest_hex(&["portico-group", tag])))
        .map_err(|e| AppError::internal(e.to_string()))
}

/// The href stem of a group Portico renders for `tag`.
pub fn generated_stem(tag: &str) -> String {
    format!("{STEM_PREFIX}{}", digest_hex(&["portico-group-href", tag]))
}

/// The UID of a group Portico renders: a UUID (RFC 9562 layout, version 8) derived from the
/// organization and the tag, so it is the same in every process and every sync.
pub fn generated_uid(org: &str, tag: &str) -> String {
    let mut hex: Vec<char> = digest_hex(&["portico-group-uid", org, tag])
        .chars()
        .collect();
    hex[12] = '8';
    hex[16] = match hex[16] {
        '0' | '4' | '8' | 'c' => '8',
        '1' | '5' | '9' | 'd' => '9',
        '2' | '6' | 'a' | 'e' => 'a',
        _ => 'b',
    };
    let s: String = hex.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &s[..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..]
    )
}

/// The UID a customer's card has for clients.
pub fn customer_uid(c: &Customer) -> &str {
    c.card
        .as_ref()
        .map(|k| k.uid.as_str())
        .unwrap_or(c.id.as_str())
}

/// A customer's tags, trimmed, without empty ones.
pub fn tags_of(c: &Customer) -> BTreeSet<String> {
    c.tags
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The member UIDs a group record's card lists. An unreadable card is an error, never an
/// empty list (which would drop every member on the next write).
fn members_of(record: &Customer) -> Result<Vec<String>, AppError> {
    match &record.card {
        Some(c) => vcard::stored_group_members(&c.text)
            .map_err(|e| AppError::internal(format!("group card {}: {e}", record.id))),
        None => Ok(Vec::new()),
    }
}

fn is_client_written(record: &Customer) -> bool {
    record.note.as_deref() == Some(CLIENT_WRITTEN)
}

/// Is this a retryable outcome of a conditional write?
fn lost_race(e: &AppError) -> bool {
    matches!(
        e.kind,
        ErrorKind::PreconditionFailed | ErrorKind::Conflict | ErrorKind::NotFound
    )
}

/// The customer whose card has `uid` (a customer without a stored card answers to its id).
async fn customer_by_uid(cx: &AppContext, uid: &str) -> Result<Option<Customer>, AppError> {
    if let Some(c) = cx.customers.find_by_card_uid(uid).await? {
        return Ok(Some(c));
    }
    match CustomerId::parse(uid) {
        Ok(id) => Ok(cx.customers.get(&id).await?.filter(|c| c.card.is_none())),
        Err(_) => Ok(None),
    }
}

/// The group card of `stem`, if a group lives there.
pub async fn find(cx: &AppContext, stem: &str) -> Result<Option<Card>, AppError> {
    Ok(cx
        .groups
        .find_by_resource_name(stem)
        .await?
        .map(|g| Card::of(cx, g)))
}

/// Brings the groups of the tags that changed in `changes` in step (see the module doc).
pub async fn customers_changed(
    cx: &AppContext,
    changes: &[CustomerWritten],
) -> Result<(), AppError> {
    let mut touched = Touched::new();
    for w in changes {
        let before = w.before.as_ref().map(tags_of).unwrap_or_default();
        let after = w.after.as_ref().map(tags_of).unwrap_or_default();
        let Some(c) = w.after.as_ref().or(w.before.as_ref()) else {
            continue;
        };
        for tag in before.symmetric_difference(&after) {
            touched
                .entry(tag.clone())
                .or_default()
                .push((c.id.clone(), customer_uid(c).to_owned()));
        }
    }
    reconcile(cx, &touched).await
}

/// After a client wrote a contact card: groups follow tags it changed through `CATEGORIES`.
pub async fn customer_written(
    cx: &AppContext,
    before: Option<Customer>,
    after: Customer,
) -> Result<(), AppError> {
    customers_changed(
        cx,
        &[CustomerWritten {
            before,
            after: Some(after),
        }],
    )
    .await
}

/// After a client deleted the contact `gone`: it leaves its groups.
pub async fn customer_deleted(cx: &AppContext, gone: &Customer) -> Result<(), AppError> {
    customers_changed(
        cx,
        &[CustomerWritten {
            before: Some(gone.clone()),
            after: None,
        }],
    )
    .await
}

/// Reconciles the group of every tag in `touched` with the current tags of its customers.
pub async fn reconcile(cx: &AppContext, touched: &Touched) -> Result<(), AppError> {
    for (tag, customers) in touched {
        reconcile_tag(cx, tag, customers).await?;
    }
    Ok(())
}

async fn reconcile_tag(
    cx: &AppContext,
    tag: &str,
    customers: &[(CustomerId, String)],
) -> Result<(), AppError> {
    let gid = group_id(tag)?;
    for attempt in 0..ATTEMPTS {
        // Current state after the write(s), never a remembered delta.
        let mut want_in: Vec<String> = Vec::new();
        let mut want_out: HashSet<String> = HashSet::new();
        for (id, uid_hint) in customers {
            match cx.customers.get(id).await? {
                Some(c) if tags_of(&c).contains(tag) => want_in.push(customer_uid(&c).to_owned()),
                Some(c) => {
                    want_out.insert(customer_uid(&c).to_owned());
                }
                None => {
                    want_out.insert(uid_hint.clone());
                }
            }
        }
        let now = cx.clock.now();
        let written = match cx.groups.get(&gid).await? {
            None if want_in.is_empty() => return Ok(()),
            None => {
                let uid = generated_uid(cx.org.id.as_str(), tag);
                let text = vcard::render_group(tag, &uid, &want_in, now, VCardVersion::V3);
                let draft = group_draft(&gid, tag, generated_stem(tag), uid, text, false);
                cx.groups.create(draft).await.map(|_| ())
            }
            Some(record) => {
                let current = members_of(&record)?;
                let mut next: Vec<String> = current
                    .iter()
                    .filter(|m| !want_out.contains(*m))
                    .cloned()
                    .collect();
                let mut present: HashSet<String> = next.iter().cloned().collect();
                for m in want_in {
                    if present.insert(m.clone()) {
                        next.push(m);
                    }
                }
                if next == current {
                    return Ok(());
                }
                if next.is_empty() && !is_client_written(&record) {
                    // A tag no customer carries any more: the group goes (a tombstone).
                    cx.groups.delete(&record.id, Some(record.revision)).await
                } else {
                    let Some(stored) = record.card.clone() else {
                        return Err(AppError::internal("a group record without its card"));
                    };
                    let text = vcard::patch_members(&stored.text, &next, now);
                    let mut draft = CustomerDraft::from_customer(&record);
                    draft.card = Some(StoredCard {
                        etag: vcard::etag(&text),
                        text,
                        ..stored
                    });
                    cx.groups
                        .update(&record.id, draft, Some(record.revision))
                        .await
                        .map(|_| ())
                }
            }
        };
        match written {
            Ok(()) => return Ok(()),
            Err(e) if lost_race(&e) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(AppError::unavailable(format!(
        "the group '{tag}' kept changing; try again"
    )))
}

fn group_draft(
    id: &CustomerId,
    tag: &str,
    stem: String,
    uid: String,
    text: String,
    client: bool,
) -> CustomerDraft {
    CustomerDraft {
        id: Some(id.clone()),
        name: tag.to_owned(),
        note: client.then(|| CLIENT_WRITTEN.to_owned()),
        card: Some(StoredCard {
            name: stem,
            uid,
            etag: vcard::etag(&text),
            text,
            media: Vec::new(),
        }),
        ..CustomerDraft::default()
    }
}

/// Adds (`add`) or removes a tag on a customer, patching its stored card's `CATEGORIES` the
/// way an admin edit would; conditional on the revision read, retried on a conflict.
async fn set_tag(cx: &AppContext, id: &CustomerId, tag: &str, add: bool) -> Result<(), AppError> {
    for attempt in 0..ATTEMPTS {
        let Some(before) = cx.customers.get(id).await? else {
            return Ok(());
        };
        let has = tags_of(&before).contains(tag);
        if has == add {
            return Ok(());
        }
        let mut draft = CustomerDraft::from_customer(&before);
        if add {
            draft.tags.push(tag.to_owned());
        } else {
            draft.tags.retain(|t| t.trim() != tag);
        }
        if let Some(stored) = draft.card.clone() {
            let text = vcard::patch(&stored.text, &before, &draft, cx.clock.now());
            if text != stored.text {
                draft.card = Some(StoredCard {
                    etag: vcard::etag(&text),
                    text,
                    ..stored
                });
            }
        }
        match cx.customers.update(id, draft, Some(before.revision)).await {
            Ok(_) => return Ok(()),
            Err(e) if lost_race(&e) => backoff(attempt).await,
            Err(e) => return Err(e),
        }
    }
    Err(AppError::unavailable(format!(
        "the contact {id} kept changing; try again"
    )))
}

/// Gives `tag` to the customers named by `add` and takes it from those named by `remove`
/// (member UIDs; UIDs that name no customer — other groups, cards elsewhere — are left alone),
/// then reconciles the group (a no-op when the client's card already says the same).
async fn apply_members(
    cx: &AppContext,
    tag: &str,
    add: &[String],
    remove: &[String],
) -> Result<(), AppError> {
    let mut touched = Touched::new();
    for (uids, adding) in [(add, true), (remove, false)] {
        for uid in uids {
            if let Some(c) = customer_by_uid(cx, uid).await? {
                set_tag(cx, &c.id, tag, adding).await?;
                touched
                    .entry(tag.to_owned())
                    .or_default()
                    .push((c.id.clone(), uid.clone()));
            }
        }
    }
    reconcile(cx, &touched).await
}

/// Called by PUT for every parsed card before it is stored as a contact: answers a group card
/// (stored here) and refuses a contact card that would take a group's href or UID. `None`:
/// go on with the contact.
pub async fn intercept_put(
    env: &Env<'_>,
    stem: &str,
    req: &AppRequest,
    parsed: &ParsedCard,
) -> Result<Option<AppResponse>, AppError> {
    let cx = env.cx;
    if let Some(facts) = vcard::group_facts(&parsed.properties) {
        return put_group(env, stem, req, parsed, facts).await.map(Some);
    }
    if stem.starts_with(STEM_PREFIX) || cx.groups.find_by_resource_name(stem).await?.is_some() {
        return Ok(Some(respond::status(
            StatusCode::CONFLICT,
            "a contact group lives at this href; a contact card cannot replace it",
        )));
    }
    if let Some(g) = cx.groups.find_by_card_uid(&parsed.uid).await? {
        return Ok(Some(respond::precondition(Precondition::NoUidConflict(
            Some(env.hrefs.card(g.resource_name())),
        ))));
    }
    Ok(None)
}

fn precondition_failed() -> AppResponse {
    respond::status(StatusCode::PRECONDITION_FAILED, "precondition failed")
}

/// PUT of a group card: stored byte for byte; its members' tags follow.
async fn put_group(
    env: &Env<'_>,
    stem: &str,
    req: &AppRequest,
    parsed: &ParsedCard,
    facts: vcard::GroupFacts,
) -> Result<AppResponse, AppError> {
    let cx = env.cx;
    let tag = facts.name.trim().to_owned();
    if tag.is_empty() {
        // RFC 6352 §6.3.2.1: the group needs a name to become a tag.
        return Ok(respond::precondition(Precondition::ValidAddressData));
    }
    if cx.customers.find_by_resource_name(stem).await?.is_some() {
        return Ok(respond::status(
            StatusCode::CONFLICT,
            "a contact lives at this href; a group card cannot replace it",
        ));
    }
    let existing = cx.groups.find_by_resource_name(stem).await?;
    let current = existing.as_ref().and_then(|g| g.card.as_ref());
    if evaluate(req, current.map(|c| c.etag.as_str()), false) != Preconditions::Pass {
        return Ok(precondition_failed());
    }
    // RFC 6352 §6.3.2.1 no-uid-conflict, across contacts and groups; the UID of an existing
    // group does not change.
    if let Some(k) = current {
        if k.uid != parsed.uid {
            return Ok(respond::precondition(Precondition::NoUidConflict(Some(
                env.hrefs.card(stem),
            ))));
        }
    }
    if let Some(c) = customer_by_uid(cx, &parsed.uid).await? {
        return Ok(respond::precondition(Precondition::NoUidConflict(Some(
            env.hrefs.card(c.resource_name()),
        ))));
    }
    if let Some(g) = cx.groups.find_by_card_uid(&parsed.uid).await? {
        if g.resource_name() != stem {
            return Ok(respond::precondition(Precondition::NoUidConflict(Some(
                env.hrefs.card(g.resource_name()),
            ))));
        }
    }
    let gid = group_id(&tag)?;
    if let Some(other) = cx.groups.get(&gid).await? {
        if other.resource_name() != stem {
            return Ok(respond::status(
                StatusCode::CONFLICT,
                &format!(
                    "a group named '{tag}' already exists at {}",
                    env.hrefs.card(other.resource_name())
                ),
            ));
        }
    }
    let Ok(text) = String::from_utf8(req.body.to_vec()) else {
        return Ok(respond::precondition(Precondition::ValidAddressData));
    };
    let draft = group_draft(&gid, &tag, stem.to_owned(), parsed.uid.clone(), text, true);
    let etag = draft
        .card
        .as_ref()
        .map(|c| c.etag.clone())
        .unwrap_or_default();
    let written = match &existing {
        None => cx.groups.create(draft).await.map(|_| StatusCode::CREATED),
        Some(old) if old.id == gid => cx
            .groups
            .update(&old.id, draft, Some(old.revision))
            .await
            .map(|_| StatusCode::NO_CONTENT),
        // Renamed on the phone: the tag (and so the record id) changes, the href and UID stay.
        Some(old) => match cx.groups.delete(&old.id, Some(old.revision)).await {
            Ok(()) => cx
                .groups
                .create(draft)
                .await
                .map(|_| StatusCode::NO_CONTENT),
            Err(e) => Err(e),
        },
    };
    let status = match written {
        Ok(s) => s,
        Err(e) if lost_race(&e) => {
            return Ok(respond::status(
                StatusCode::PRECONDITION_FAILED,
                "the group changed meanwhile",
            ))
        }
        Err(e) => return Err(e),
    };
    // The members' tags follow the card.
    let new_members: HashSet<&String> = facts.members.iter().collect();
    match &existing {
        Some(old) if old.name.trim() != tag => {
            let old_tag = old.name.trim().to_owned();
            apply_members(cx, &old_tag, &[], &members_of(old)?).await?;
            apply_members(cx, &tag, &facts.members, &[]).await?;
        }
        _ => {
            let before = match &existing {
                Some(old) => members_of(old)?,
                None => Vec::new(),
            };
            let former: Vec<String> = before
                .into_iter()
                .filter(|m| !new_members.contains(m))
                .collect();
            apply_members(cx, &tag, &facts.members, &former).await?;
        }
    }
    Ok(AppResponse::new(status).with_header("etag", &etag))
}

/// DELETE of a group card: the group goes and its members lose the tag.
pub async fn delete(
    env: &Env<'_>,
    group: &Card,
    req: &AppRequest,
) -> Result<AppResponse, AppError> {
    let cx = env.cx;
    if evaluate(req, Some(group.etag()), false) != Preconditions::Pass {
        return Ok(precondition_failed());
    }
    let Some(record) = group.customer() else {
        return Err(AppError::internal(
            "a group card was read without its record",
        ));
    };
    match cx.groups.delete(&record.id, Some(record.revision)).await {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Ok(respond::status(StatusCode::NOT_FOUND, "no such card"))
        }
        Err(e) if lost_race(&e) => {
            return Ok(respond::status(
                StatusCode::PRECONDITION_FAILED,
                "the group changed meanwhile",
            ))
        }
        Err(e) => return Err(e),
    }
    apply_members(cx, record.name.trim(), &[], &members_of(record)?).await?;
    Ok(AppResponse::new(StatusCode::NO_CONTENT))
}

/// Customers read per page by [`backfill`].
const BACKFILL_PAGE: usize = 1000;

/// Builds every group from the customers' current tags, once: at install (tags set before the
/// app was there) and when an installation from before groups is migrated. Existing group
/// records get exactly the members the scan found (a group Portico rendered with none left
/// goes); tags without a record get one. A snapshot: a write racing with it is reconciled by
/// its own hook, or at the next change of that customer. Memory is one UID per tagged
/// membership. Returns how many group records were written.
pub async fn backfill(cx: &AppContext) -> Result<usize, AppError> {
    let mut truth: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut after: Option<CustomerId> = None;
    loop {
        let page = cx.customers.list(after.as_ref(), BACKFILL_PAGE).await?;
        for c in &page {
            for t in tags_of(c) {
                truth.entry(t).or_default().push(customer_uid(c).to_owned());
            }
        }
        match page.last() {
            Some(last) if page.len() == BACKFILL_PAGE => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let now = cx.clock.now();
    let mut written = 0;
    let mut after: Option<CustomerId> = None;
    loop {
        let page = cx.groups.list(after.as_ref(), 100).await?;
        for record in &page {
            let tag = record.name.trim().to_owned();
            let members = truth.remove(&tag).unwrap_or_default();
            let Some(stored) = record.card.clone() else {
                continue;
            };
            let outcome = if members.is_empty() && !is_client_written(record) {
                cx.groups.delete(&record.id, Some(record.revision)).await
            } else {
                let text = vcard::patch_members(&stored.text, &members, now);
                if text == stored.text {
                    continue;
                }
                let mut draft = CustomerDraft::from_customer(record);
                draft.card = Some(StoredCard {
                    etag: vcard::etag(&text),
                    text,
                    ..stored
                });
                cx.groups
                    .update(&record.id, draft, Some(record.revision))
                    .await
                    .map(|_| ())
            };
            match outcome {
                Ok(()) => written += 1,
                // Changed meanwhile by a live write: its own reconcile is more recent.
                Err(e) if lost_race(&e) => {}
                Err(e) => return Err(e),
            }
        }
        match page.last() {
            Some(last) if page.len() == 100 => after = Some(last.id.clone()),
            _ => break,
        }
    }
    for (tag, members) in truth {
        let uid = generated_uid(cx.org.id.as_str(), &tag);
        let text = vcard::render_group(&tag, &uid, &members, now, VCardVersion::V3);
        let draft = group_draft(
            &group_id(&tag)?,
            &tag,
            generated_stem(&tag),
            uid,
            text,
            false,
        );
        match cx.groups.create(draft).await {
            Ok(_) => written += 1,
            Err(e) if lost_race(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Writes the group part of an incremental `sync-collection` answer: each group changed in
/// `batch` with the requested properties, or a 404 response if it is gone (RFC 6578 §3.5.2).
/// One response per href: a group renamed on a phone (a tombstone under the old tag's record
/// and a new record at the same href) is reported once, as it is now.
pub async fn write_delta(
    env: &Env<'_>,
    w: &mut crate::dav::MultistatusWriter,
    batch: &portico_sdk::ChangeBatch,
    props: &crate::dav::PropRequest,
    address_data: Option<&crate::dav::AddressDataRequest>,
) -> Result<(), AppError> {
    let mut by_href: BTreeMap<String, Option<Card>> = BTreeMap::new();
    for change in &batch.changes {
        let current = if change.deleted {
            None
        } else {
            env.cx.groups.get(&change.customer_id).await?
        };
        match current {
            Some(g) => {
                let card = Card::of(env.cx, g);
                by_href.insert(card.stem().to_owned(), Some(card));
            }
            None => {
                by_href.entry(change.resource_name.clone()).or_insert(None);
            }
        }
    }
    for (stem, card) in by_href {
        match card {
            Some(card) => w.response(
                &env.hrefs.card(&stem),
                &crate::report::card_propstats(env, &card, props, address_data),
            ),
            None => w.response_status(&env.hrefs.card(&stem), StatusCode::NOT_FOUND),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_sdk::Timestamp;

    use portico_sdk::testing::TestContext;

    fn person(name: &str, tags: &[&str]) -> CustomerDraft {
        CustomerDraft {
            name: name.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..CustomerDraft::default()
        }
    }

    async fn members_named(cx: &AppContext, tag: &str) -> Option<(Vec<String>, bool)> {
        let g = cx.groups.get(&group_id(tag).unwrap()).await.unwrap()?;
        let mut m = members_of(&g).unwrap();
        m.sort();
        Some((m, is_client_written(&g)))
    }

    #[tokio::test]
    async fn backfill_builds_groups_and_corrects_stale_ones() {
        let t = TestContext::new("carddav");
        let cx = &t.cx;
        let ann = cx.customers.create(person("Ann", &["VIP"])).await.unwrap();
        let bob = cx
            .customers
            .create(person("Bob", &["VIP", "Friends"]))
            .await
            .unwrap();
        // A stale rendered group nobody carries any more, and a client's group listing a
        // former member and an unknown card.
        let uid = generated_uid("acme", "Old");
        let text = vcard::render_group(
            "Old",
            &uid,
            &["gone".into()],
            Timestamp(0),
            VCardVersion::V3,
        );
        let draft = group_draft(
            &group_id("Old").unwrap(),
            "Old",
            generated_stem("Old"),
            uid,
            text,
            false,
        );
        cx.groups.create(draft).await.unwrap();
        let text = vcard::render_group(
            "Friends",
            "F-1",
            &[ann.id.to_string()],
            Timestamp(0),
            VCardVersion::V4,
        );
        let draft = group_draft(
            &group_id("Friends").unwrap(),
            "Friends",
            "f1".into(),
            "F-1".into(),
            text,
            true,
        );
        cx.groups.create(draft).await.unwrap();

        assert_eq!(backfill(cx).await.unwrap(), 3);
        let mut vip = vec![ann.id.to_string(), bob.id.to_string()];
        vip.sort();
        assert_eq!(members_named(cx, "VIP").await, Some((vip, false)));
        assert_eq!(
            members_named(cx, "Friends").await,
            Some((vec![bob.id.to_string()], true)),
            "the client's group keeps its card, with the right members"
        );
        assert_eq!(
            members_named(cx, "Old").await,
            None,
            "a tag nobody carries is gone"
        );
        // Run again: nothing to write.
        assert_eq!(backfill(cx).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn reconcile_copies_current_tags_not_deltas() {
        let t = TestContext::new("carddav");
        let cx = &t.cx;
        let ann = cx.customers.create(person("Ann", &["VIP"])).await.unwrap();
        let touched: Touched = [(
            "VIP".to_string(),
            vec![(ann.id.clone(), ann.id.to_string())],
        )]
        .into();
        reconcile(cx, &touched).await.unwrap();
        assert_eq!(
            members_named(cx, "VIP").await,
            Some((vec![ann.id.to_string()], false))
        );
        let before = cx
            .groups
            .get(&group_id("VIP").unwrap())
            .await
            .unwrap()
            .unwrap();
        // A second reconcile of the same state writes nothing (no new ETag, no delta entry).
        reconcile(cx, &touched).await.unwrap();
        let again = cx
            .groups
            .get(&group_id("VIP").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(before.revision, again.revision);
        // The tag is gone from the record by the time the (late) reconcile runs: removed.
        let mut d = CustomerDraft::from_customer(&ann);
        d.tags.clear();
        cx.customers.update(&ann.id, d, None).await.unwrap();
        reconcile(cx, &touched).await.unwrap();
        assert_eq!(members_named(cx, "VIP").await, None);
    }

    #[test]
    fn derived_names_are_stable_and_distinct() {
        assert_eq!(group_id("VIP").unwrap(), group_id("VIP").unwrap());
        assert_ne!(group_id("VIP").unwrap(), group_id("vip").unwrap());
        assert_eq!(generated_stem("VIP"), generated_stem("VIP"));
        assert!(generated_stem("VIP").starts_with(STEM_PREFIX));
        let u = generated_uid("org1", "VIP");
        assert_eq!(u, generated_uid("org1", "VIP"));
        assert_ne!(u, generated_uid("org2", "VIP"), "per organization");
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'8', "version nibble");
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
    }
}
