//! Sync tokens (RFC 6578 §3.2: a URI, opaque to clients) and CTags.
//!
//! A token names the installation and a position in the organization's change log:
//! `urn:x-portico:sync:{installation}:{seq}`. An initial listing cut short by a client's limit
//! continues with `…:{seq}:{last customer id}`. Tokens survive restarts because the change log
//! does; a token of another installation, a malformed one, or one the log can no longer answer
//! from is refused with `DAV:valid-sync-token`.
use portico_sdk::{CustomerId, InstallationId};

const PREFIX: &str = "urn:x-portico:sync:";

/// A decoded token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncToken {
    /// Change-log position the token was taken at.
    pub seq: u64,
    /// For a continued initial listing: the last customer id already sent.
    pub listing_after: Option<CustomerId>,
}

/// Encodes a token.
pub fn encode(installation: &InstallationId, token: &SyncToken) -> String {
    match &token.listing_after {
        Some(after) => format!("{PREFIX}{installation}:{}:{after}", token.seq),
        None => format!("{PREFIX}{installation}:{}", token.seq),
    }
}

/// Decodes a token issued for `installation`; `None` if malformed or foreign.
pub fn decode(installation: &InstallationId, s: &str) -> Option<SyncToken> {
    let rest = s.trim().strip_prefix(PREFIX)?;
    let rest = rest
        .strip_prefix(installation.as_str())?
        .strip_prefix(':')?;
    let mut parts = rest.splitn(2, ':');
    let seq = parts.next()?.parse::<u64>().ok()?;
    let listing_after = match parts.next() {
        Some(id) => Some(CustomerId::parse(id).ok()?),
        None => None,
    };
    Some(SyncToken { seq, listing_after })
}

/// The CalendarServer `getctag` for a change-log position.
pub fn ctag(seq: u64) -> String {
    format!("\"{seq}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let i = InstallationId::parse("inst1").unwrap();
        let t = SyncToken {
            seq: 42,
            listing_after: None,
        };
        let s = encode(&i, &t);
        assert_eq!(s, "urn:x-portico:sync:inst1:42");
        assert_eq!(decode(&i, &s), Some(t));
        let t2 = SyncToken {
            seq: 7,
            listing_after: Some(CustomerId::parse("c-9").unwrap()),
        };
        assert_eq!(decode(&i, &encode(&i, &t2)), Some(t2));
        let other = InstallationId::parse("inst2").unwrap();
        assert_eq!(decode(&other, &s), None, "foreign token");
        assert_eq!(decode(&i, "urn:x-portico:sync:inst1:x"), None);
        assert_eq!(decode(&i, "http://example.com/sync/1"), None);
        assert_eq!(decode(&i, "urn:x-portico:sync:inst12:1"), None);
    }
}
