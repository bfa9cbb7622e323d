//! Writes to cards: PUT (RFC 6352 §6.3.2, RFC 4918 §9.7, RFC 7232 preconditions) and DELETE.
use crate::card::Card;
use crate::dav::Precondition;
use crate::props::{Env, MAX_RESOURCE_SIZE};
use crate::respond;
use crate::vcard::{self, CardError, ParsedCard};
use portico_sdk::http::StatusCode;
use portico_sdk::{
    AppError, AppRequest, AppResponse, CardMedia, Customer, CustomerDraft, CustomerId, ErrorKind,
    StoredCard,
};

/// The result of evaluating `If-Match` / `If-None-Match` against the current ETag.
#[derive(Debug, PartialEq, Eq)]
pub enum Preconditions {
    /// Go ahead.
    Pass,
    /// 412 Precondition Failed.
    Failed,
    /// 304 Not Modified (GET/HEAD with a matching `If-None-Match`).
    NotModified,
}

fn etag_list_matches(header: &str, current: Option<&str>) -> bool {
    let Some(current) = current else { return false };
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == current)
}

/// RFC 7232 §6: If-Match first, then If-None-Match. `current` is the ETag of the existing
/// resource, `None` if it does not exist. Strong comparison for If-Match (§3.1); for
/// If-None-Match the weak comparison, which equals strong for our strong tags. A WebDAV `If`
/// header that does not hold fails the request too (RFC 4918 §10.4.3).
pub fn evaluate(req: &AppRequest, current: Option<&str>, safe_method: bool) -> Preconditions {
    if let Some(h) = req.header("if") {
        let target = req.segments.join("/");
        let is_target = |tag: &str| {
            crate::dav::normalize_href(tag, &req.base_path)
                .is_some_and(|p| p.trim_end_matches('/') == target)
        };
        if if_header_holds(h, current, is_target) != Some(true) {
            return Preconditions::Failed;
        }
    }
    if let Some(im) = req.header("if-match") {
        if !etag_list_matches(im, current) {
            return Preconditions::Failed;
        }
    }
    if let Some(inm) = req.header("if-none-match") {
        let any = inm.trim() == "*" && current.is_some();
        let weak_current = current.map(|c| c.trim_start_matches("W/"));
        let matched = any
            || inm
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| Some(t) == weak_current);
        if matched {
            return if safe_method {
                Preconditions::NotModified
            } else {
                Preconditions::Failed
            };
        }
    }
    Preconditions::Pass
}

/// Evaluates a WebDAV `If` header (RFC 4918 §10.4) against the request resource, whose ETag is
/// `current`; `is_target` tells whether a tagged list's resource tag names it. The header holds
/// if any list holds; a list holds if all its conditions do (§10.4.3). This server grants no
/// locks, so a state token never matches the resource's state (`Not <token>` holds); an entity
/// tag matches the request resource's current ETag (strong comparison) and nothing else.
/// `None` if the header is malformed — the caller refuses the request as if it did not hold.
pub fn if_header_holds(
    header: &str,
    current: Option<&str>,
    is_target: impl Fn(&str) -> bool,
) -> Option<bool> {
    let mut rest = header.trim_start();
    let mut holds = false;
    let mut applies = true; // untagged lists apply to the request resource
    let mut lists = 0usize;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('<') {
            let end = r.find('>')?;
            applies = is_target(r.get(..end)?);
            rest = r.get(end + 1..)?.trim_start();
            if !rest.starts_with('(') {
                return None;
            }
            continue;
        }
        let mut r = rest.strip_prefix('(')?.trim_start();
        let mut all = true;
        let mut conditions = 0usize;
        loop {
            if let Some(after) = r.strip_prefix(')') {
                r = after;
                break;
            }
            let negate = r.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("not"));
            if negate {
                r = r.get(3..)?.trim_start();
            }
            let matched = if let Some(t) = r.strip_prefix('<') {
                let end = t.find('>')?;
                r = t.get(end + 1..)?;
                false
            } else if let Some(t) = r.strip_prefix('[') {
                let quoted = t.strip_prefix("W/").unwrap_or(t);
                let close = quoted.strip_prefix('"')?.find('"')? + 2;
                let tag_len = (t.len() - quoted.len()) + close;
                let tag = t.get(..tag_len)?;
                r = t.get(tag_len..)?.strip_prefix(']')?;
                applies && current == Some(tag)
            } else {
                return None;
            };
            all &= matched != negate;
            conditions += 1;
            r = r.trim_start();
        }
        if conditions == 0 {
            return None;
        }
        holds |= all;
        lists += 1;
        rest = r.trim_start();
    }
    (lists > 0).then_some(holds)
}

/// Is the request body declared as a vCard? A missing Content-Type is accepted (some clients
/// omit it); `text/x-vcard` is the pre-RFC 6350 name.
fn acceptable_media_type(req: &AppRequest) -> bool {
    match req.header("content-type") {
        None => true,
        Some(ct) => {
            let media = ct.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/vcard") || media.eq_ignore_ascii_case("text/x-vcard")
        }
    }
}

/// The customer fields a card carries, applied over `base` (fields the card cannot carry are
/// kept; tags are kept unless the card has `CATEGORIES`).
pub fn project(parsed: &ParsedCard, base: Option<&Customer>) -> CustomerDraft {
    let mut d = base.map(CustomerDraft::from_customer).unwrap_or_default();
    let f = &parsed.fields;
    d.name = f.name.clone();
    d.given_name = f.given_name.clone();
    d.family_name = f.family_name.clone();
    let mut emails = f.emails.iter().cloned();
    d.email = emails.next();
    d.known_emails = emails.collect();
    let mut phones = f.phones.iter().cloned();
    d.phone = phones.next();
    d.known_phones = phones.collect();
    d.birthday = f.birthday.clone();
    d.note = f.note.clone();
    // Clients that edit categories edit the tags (crate::groups); no CATEGORIES: kept.
    if let Some(tags) = &f.categories {
        d.tags = tags.clone();
    }
    d
}

/// The stored form of a card: its text without the large photos, references to them (keys to
/// be assigned by the store) and the photos' bytes in the same order.
fn into_stored(
    name: String,
    uid: String,
    split: vcard::media::SplitCard,
    etag: String,
) -> (StoredCard, Vec<String>) {
    let mut media = Vec::with_capacity(split.pieces.len());
    let mut pieces = Vec::with_capacity(split.pieces.len());
    for (offset, piece) in split.pieces {
        media.push(CardMedia {
            offset: offset as u64,
            len: piece.len() as u64,
            key: String::new(),
        });
        pieces.push(piece);
    }
    let card = StoredCard {
        name,
        uid,
        text: split.text,
        etag,
        media,
    };
    (card, pieces)
}

/// [`into_stored`] for a whole card `text` (with its ETag).
pub fn stored_card(
    name: String,
    uid: String,
    text: &str,
    etag: String,
) -> Result<(StoredCard, Vec<String>), CardError> {
    Ok(into_stored(name, uid, vcard::media::split(text)?, etag))
}

fn card_error(e: &CardError) -> AppResponse {
    let p = match e {
        CardError::UnsupportedVersion(_) => Precondition::SupportedAddressData,
        CardError::TooLarge => Precondition::MaxResourceSize,
        _ => Precondition::ValidAddressData,
    };
    respond::precondition(p)
}

/// The UID a card of `c` has for clients.
fn uid_of(c: &Customer) -> &str {
    c.card
        .as_ref()
        .map(|k| k.uid.as_str())
        .unwrap_or(c.id.as_str())
}

/// PUT of a card at `stem`.
pub async fn put(env: &Env<'_>, stem: &str, req: &AppRequest) -> Result<AppResponse, AppError> {
    let dir = &env.cx.customers;
    if !acceptable_media_type(req) {
        return Ok(respond::precondition(Precondition::SupportedAddressData));
    }
    if req.body.len() > MAX_RESOURCE_SIZE {
        return Ok(respond::precondition(Precondition::MaxResourceSize));
    }
    // A card folded in the middle of a UTF-8 character is repaired (refolded on character
    // boundaries); then the stored bytes differ from the request's, so no ETag is returned
    // (RFC 6352 §6.3.2.3: an ETag promises the client's own bytes).
    let repaired = match std::str::from_utf8(&req.body) {
        Ok(_) => None,
        Err(_) => match vcard::refold_octet_folds(&req.body) {
            Some(t) => Some(t),
            None => return Ok(card_error(&CardError::NotUtf8)),
        },
    };
    let text: &str = match &repaired {
        Some(t) => t,
        None => match std::str::from_utf8(&req.body) {
            Ok(t) => t,
            Err(_) => return Ok(card_error(&CardError::NotUtf8)),
        },
    };
    // Photos are cut out first (each within its own limit) and the rest is validated: the
    // parser's line limit is for text, not for a photo's base64.
    let split = match vcard::media::split(text) {
        Ok(s) => s,
        Err(e) => return Ok(card_error(&e)),
    };
    let parsed = match vcard::parse(split.text.as_bytes()) {
        Ok(p) => p,
        Err(e) => return Ok(card_error(&e)),
    };
    // Group cards are stored apart; contact cards never take a group's href or UID.
    if let Some(resp) = crate::groups::intercept_put(env, stem, req, &parsed).await? {
        return Ok(resp);
    }
    let existing = dir.find_by_resource_name(stem).await?;
    let current = existing.clone().map(|c| Card::of(env.cx, c));
    if evaluate(req, current.as_ref().map(|c| c.etag()), false) != Preconditions::Pass {
        return Ok(respond::status(
            StatusCode::PRECONDITION_FAILED,
            "precondition failed",
        ));
    }
    // RFC 6352 §6.3.2.1 no-uid-conflict: the UID must not be used by another card of the book.
    // We also refuse to change the UID of an existing card (the RFC lets a server do either).
    let uid_owner = match dir.find_by_card_uid(&parsed.uid).await? {
        Some(c) => Some(c),
        None => match CustomerId::parse(&parsed.uid) {
            Ok(id) => dir.get(&id).await?.filter(|c| c.card.is_none()),
            Err(_) => None,
        },
    };
    if let Some(owner) = &uid_owner {
        if existing.as_ref().map(|e| &e.id) != Some(&owner.id) {
            return Ok(respond::precondition(Precondition::NoUidConflict(Some(
                env.hrefs.card(owner.resource_name()),
            ))));
        }
    }
    if let Some(e) = &existing {
        if uid_of(e) != parsed.uid {
            return Ok(respond::precondition(Precondition::NoUidConflict(Some(
                env.hrefs.card(stem),
            ))));
        }
    }
    // The ETag is over the bytes stored, photos included (RFC 6352 §6.3.2.3: a GET returns
    // them unchanged): the client's own bytes unless a fold had to be repaired.
    let etag = vcard::etag(text);
    let mut draft = project(&parsed, existing.as_ref());
    let (card, pieces) = into_stored(stem.to_owned(), parsed.uid.clone(), split, etag.clone());
    draft.card = Some(card);
    // New bytes, new pieces: the store drops the replaced card's (plan_card_media).
    draft.card_media = Some(pieces);
    let result = match &existing {
        Some(e) => dir
            .update(&e.id, draft, Some(e.revision))
            .await
            .map(|c| (StatusCode::NO_CONTENT, c)),
        None => dir.create(draft).await.map(|c| (StatusCode::CREATED, c)),
    };
    match result {
        Ok((status, stored)) => {
            // Tags edited as CATEGORIES move the contact between groups.
            crate::groups::customer_written(env.cx, existing, stored).await?;
            if repaired.is_some() {
                // Stored bytes differ from the request's (a repaired fold): no ETag.
                return Ok(AppResponse::new(status));
            }
            Ok(AppResponse::new(status).with_header("etag", &etag))
        }
        // Someone else wrote in between: their change wins, this client must re-read.
        Err(e) if e.kind == ErrorKind::PreconditionFailed => Ok(respond::status(
            StatusCode::PRECONDITION_FAILED,
            "the card changed meanwhile",
        )),
        Err(e) if e.kind == ErrorKind::Conflict => {
            // A concurrent create took the name or UID.
            Ok(respond::status(
                StatusCode::PRECONDITION_FAILED,
                "the card was created meanwhile",
            ))
        }
        Err(e) => Err(e),
    }
}

/// DELETE of the card at `stem`.
pub async fn delete(env: &Env<'_>, stem: &str, req: &AppRequest) -> Result<AppResponse, AppError> {
    let dir = &env.cx.customers;
    let Some(existing) = dir.find_by_resource_name(stem).await? else {
        return Ok(respond::status(StatusCode::NOT_FOUND, "no such card"));
    };
    let card = Card::of(env.cx, existing);
    if evaluate(req, Some(card.etag()), false) != Preconditions::Pass {
        return Ok(respond::status(
            StatusCode::PRECONDITION_FAILED,
            "precondition failed",
        ));
    }
    match dir.delete(card.id(), Some(card.revision())).await {
        Ok(()) => Ok(AppResponse::new(StatusCode::NO_CONTENT)),
        Err(e) if e.kind == ErrorKind::PreconditionFailed => Ok(respond::status(
            StatusCode::PRECONDITION_FAILED,
            "the card changed meanwhile",
        )),
        Err(e) if e.kind == ErrorKind::NotFound => {
            Ok(respond::status(StatusCode::NOT_FOUND, "no such card"))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_sdk::http::Method;

    fn req(h: &[(&str, &str)]) -> AppRequest {
        let mut r = AppRequest::new(Method::PUT, "/b/", "x.vcf");
        for (k, v) in h {
            r = r.with_header(k, v);
        }
        r
    }

    #[test]
    fn if_header() {
        let here = |t: &str| t == "/b/x.vcf";
        let lock = "<urn:uuid:181d4fae-7d8c-11d0-a765-00a0c91e6bf2>";
        assert_eq!(
            if_header_holds(&format!("({lock})"), Some("\"a\""), here),
            Some(false)
        );
        assert_eq!(
            if_header_holds(&format!("(Not {lock})"), Some("\"a\""), here),
            Some(true)
        );
        assert_eq!(
            if_header_holds("([\"a\"])", Some("\"a\""), here),
            Some(true)
        );
        assert_eq!(
            if_header_holds("([\"b\"])", Some("\"a\""), here),
            Some(false)
        );
        assert_eq!(
            if_header_holds(&format!("({lock}) ([\"a\"])"), Some("\"a\""), here),
            Some(true),
            "lists are alternatives"
        );
        assert_eq!(
            if_header_holds(&format!("(not {lock} [\"a\"])"), Some("\"a\""), here),
            Some(true)
        );
        assert_eq!(
            if_header_holds("</b/x.vcf> ([\"a\"])", Some("\"a\""), here),
            Some(true)
        );
        assert_eq!(
            if_header_holds("</b/y.vcf> ([\"a\"])", Some("\"a\""), here),
            Some(false),
            "another resource's tag"
        );
        assert_eq!(
            if_header_holds("([W/\"a\"])", Some("\"a\""), here),
            Some(false)
        );
        for bad in ["", "()", "(<x>", "[\"a\"]", "(\"a\")", "</b/x.vcf>"] {
            assert_eq!(if_header_holds(bad, Some("\"a\""), here), None, "{bad}");
        }
        let r = req(&[("if", &format!("({lock})"))]);
        assert_eq!(evaluate(&r, Some("\"a\""), false), Preconditions::Failed);
        let r = req(&[("if", "([\"a\"])")]);
        assert_eq!(evaluate(&r, Some("\"a\""), false), Preconditions::Pass);
    }

    #[test]
    fn precondition_table() {
        assert_eq!(evaluate(&req(&[]), None, false), Preconditions::Pass);
        assert_eq!(
            evaluate(&req(&[("if-none-match", "*")]), None, false),
            Preconditions::Pass
        );
        assert_eq!(
            evaluate(&req(&[("if-none-match", "*")]), Some("\"a\""), false),
            Preconditions::Failed
        );
        assert_eq!(
            evaluate(&req(&[("if-match", "\"a\"")]), Some("\"a\""), false),
            Preconditions::Pass
        );
        assert_eq!(
            evaluate(&req(&[("if-match", "\"b\", \"a\"")]), Some("\"a\""), false),
            Preconditions::Pass
        );
        assert_eq!(
            evaluate(&req(&[("if-match", "\"b\"")]), Some("\"a\""), false),
            Preconditions::Failed
        );
        assert_eq!(
            evaluate(&req(&[("if-match", "*")]), None, false),
            Preconditions::Failed
        );
        assert_eq!(
            evaluate(&req(&[("if-match", "W/\"a\"")]), Some("\"a\""), false),
            Preconditions::Failed,
            "If-Match compares strongly"
        );
        assert_eq!(
            evaluate(&req(&[("if-none-match", "\"a\"")]), Some("\"a\""), true),
            Preconditions::NotModified
        );
        assert_eq!(
            evaluate(&req(&[("if-none-match", "W/\"a\"")]), Some("\"a\""), true),
            Preconditions::NotModified
        );
        assert_eq!(
            evaluate(&req(&[("if-none-match", "\"b\"")]), Some("\"a\""), true),
            Preconditions::Pass
        );
    }
}
