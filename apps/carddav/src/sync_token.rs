//! Sync tokens (RFC 6578 §3.2: a URI, opaque to clients) and CTags.
//!
//! A token names the installation and a position in two change logs — the organization's
//! customers and its contact groups ([`crate::groups`]):
//! `urn:x-portico:sync:{installation}:{seq}.{group seq}`. Tokens issued before groups existed
//! (`…:{seq}`) read as group position 0, so their next delta lists every group once. An
//! initial listing cut short by a client's limit continues with `…:{seq}.{group seq}:{last
//! customer id}`, or `…:~{last group id}` (`…:~` alone) once it has reached the groups; `~` is
//! never part of an id. Tokens survive restarts because the change logs do; a token of another
//! installation, a malformed one, or one a log can no longer answer from is refused with
//! `DAV:valid-sync-token`.
use portico_sdk::{CustomerId, InstallationId};

const PREFIX: &str = "urn:x-portico:sync:";

/// Where a continued initial listing resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListingAfter {
    /// After this customer (customers come first, in id order).
    Customer(CustomerId),
    /// In the groups, after this group record (`None`: from the first group).
    Group(Option<CustomerId>),
}

/// A decoded token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    /// Customer change-log position the token was taken at.
    pub seq: u64,
    /// Group change-log position the token was taken at.
    pub group_seq: u64,
    /// For a continued initial listing: what was already sent.
    pub listing_after: Option<ListingAfter>,
}

/// Encodes a token.
pub fn encode(installation: &InstallationId, token: &SyncToken) -> String {
    let pos = format!("{PREFIX}{installation}:{}.{}", token.seq, token.group_seq);
    match &token.listing_after {
        Some(ListingAfter::Customer(after)) => format!("{pos}:{after}"),
        Some(ListingAfter::Group(Some(after))) => format!("{pos}:~{after}"),
        Some(ListingAfter::Group(None)) => format!("{pos}:~"),
        None => pos,
    }
}

/// Decodes a token issued for `installation`; `None` if malformed or foreign.
pub fn decode(installation: &InstallationId, s: &str) -> Option<SyncToken> {
    let rest = s.trim().strip_prefix(PREFIX)?;
    let rest = rest
        .strip_prefix(installation.as_str())?
        .strip_prefix(':')?;
    let mut parts = rest.splitn(2, ':');
    let position = parts.next()?;
    let (seq, group_seq) = match position.split_once('.') {
        Some((s, g)) => (s.parse::<u64>().ok()?, g.parse::<u64>().ok()?),
        None => (position.parse::<u64>().ok()?, 0),
    };
    let listing_after = match parts.next() {
        Some("~") => Some(ListingAfter::Group(None)),
        Some(id) => match id.strip_prefix('~') {
            Some(g) => Some(ListingAfter::Group(Some(CustomerId::parse(g).ok()?))),
            None => Some(ListingAfter::Customer(CustomerId::parse(id).ok()?)),
        },
        None => None,
    };
    Some(SyncToken {
        seq,
        group_seq,
        listing_after,
    })
}

/// The CalendarServer `getctag` for a pair of change-log positions.
pub fn ctag(seq: u64, group_seq: u64) -> String {
    format!("\"{seq}.{group_seq}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let i = InstallationId::parse("inst1").unwrap();
        let t = SyncToken {
            seq: 42,
            group_seq: 3,
            listing_after: None,
        };
        let s = encode(&i, &t);
        assert_eq!(s, "urn:x-portico:sync:inst1:42.3");
        assert_eq!(decode(&i, &s), Some(t));
        let t2 = SyncToken {
            seq: 7,
            group_seq: 0,
            listing_after: Some(ListingAfter::Customer(CustomerId::parse("c-9").unwrap())),
        };
        assert_eq!(decode(&i, &encode(&i, &t2)), Some(t2));
        for after in [
            ListingAfter::Group(None),
            ListingAfter::Group(Some(CustomerId::parse("g1").unwrap())),
        ] {
            let t3 = SyncToken {
                seq: 7,
                group_seq: 9,
                listing_after: Some(after),
            };
            assert_eq!(decode(&i, &encode(&i, &t3)), Some(t3));
        }
        let other = InstallationId::parse("inst2").unwrap();
        assert_eq!(decode(&other, &s), None, "foreign token");
        assert_eq!(decode(&i, "urn:x-portico:sync:inst1:x"), None);
        assert_eq!(decode(&i, "urn:x-portico:sync:inst1:1.x"), None);
        assert_eq!(decode(&i, "urn:x-portico:sync:inst1:1:~a/b"), None);
        assert_eq!(decode(&i, "http://example.com/sync/1"), None);
        assert_eq!(decode(&i, "urn:x-portico:sync:inst12:1"), None);
    }

    #[test]
    fn tokens_from_before_groups_read_as_group_position_zero() {
        let i = InstallationId::parse("inst1").unwrap();
        assert_eq!(
            decode(&i, "urn:x-portico:sync:inst1:42"),
            Some(SyncToken {
                seq: 42,
                group_seq: 0,
                listing_after: None
            })
        );
        assert_eq!(
            decode(&i, "urn:x-portico:sync:inst1:42:c-9"),
            Some(SyncToken {
                seq: 42,
                group_seq: 0,
                listing_after: Some(ListingAfter::Customer(CustomerId::parse("c-9").unwrap()))
            })
        );
    }
}
