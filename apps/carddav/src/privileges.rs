//! Honest privileges (RFC 3744): what a credential may do, advertised in
//! `DAV:current-user-privilege-set` (§5.4) and enforced with `DAV:need-privileges` (§7.1.1).
//!
//! A read-only credential (the install's `read_only` setting, or a device password created
//! read-only) holds `DAV:read` and `DAV:read-current-user-privilege-set` on the book and its
//! cards; a writable one holds the full set. Clients that read the privilege set (Apple
//! Contacts, DAVx5) then never offer an edit the server would refuse, and a client that tries
//! anyway gets 403 with the missing privilege, before anything is parsed or changed.
//!
//! `Allow` on OPTIONS keeps listing the methods each resource supports, whatever the
//! credential: RFC 9110 §10.2.1 describes the methods the *resource* supports, while what this
//! user may do is the privilege set's job (RFC 3744 §5.4).
use crate::dav::fragments::Privilege;
use crate::dav::Precondition;
use crate::tree::{Hrefs, Resource};

/// The privileges a credential holds on `r` (RFC 3744 §5.4). Only the book and its cards can
/// change; the other resources are read-only for everyone.
pub fn current(r: &Resource, read_only: bool) -> &'static [Privilege] {
    match r {
        Resource::Book | Resource::Card(_) if !read_only => &Privilege::READ_WRITE,
        _ => &Privilege::READ_ONLY,
    }
}

/// The privilege a write method needs that a read-only credential lacks, with the resource it
/// is needed on (RFC 3744 Appendix B): PUT over an existing card needs `DAV:write-content` on
/// it, PUT of a new card `DAV:bind` on the book, DELETE `DAV:unbind` on the book, PROPPATCH
/// `DAV:write-properties` on the target. `None`: the method does not write (or is refused on
/// this resource for other reasons before privileges matter, as PUT outside the book is).
pub fn write_needs(
    hrefs: &Hrefs,
    r: &Resource,
    method: &str,
    card_exists: bool,
) -> Option<Precondition> {
    let need = match (method, r) {
        ("PUT", Resource::Card(stem)) if card_exists => (hrefs.card(stem), Privilege::WriteContent),
        ("PUT", Resource::Card(_)) => (hrefs.book(), Privilege::Bind),
        ("DELETE", Resource::Card(_)) => (hrefs.book(), Privilege::Unbind),
        ("PROPPATCH", Resource::BadCardName | Resource::Missing) => return None,
        ("PROPPATCH", r) => (hrefs.of(r), Privilege::WriteProperties),
        _ => return None,
    };
    Some(Precondition::NeedPrivileges(vec![need]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_sets_per_credential() {
        let card = Resource::Card("a".into());
        assert_eq!(current(&Resource::Book, false), &Privilege::READ_WRITE);
        assert_eq!(current(&card, false), &Privilege::READ_WRITE);
        assert_eq!(current(&Resource::Book, true), &Privilege::READ_ONLY);
        assert_eq!(current(&card, true), &Privilege::READ_ONLY);
        for r in [Resource::Root, Resource::Principal, Resource::Home] {
            assert_eq!(current(&r, false), &Privilege::READ_ONLY, "{r:?}");
        }
        let ro = current(&card, true);
        assert!(!ro.iter().any(|p| matches!(
            p,
            Privilege::Write
                | Privilege::WriteContent
                | Privilege::WriteProperties
                | Privilege::Bind
                | Privilege::Unbind
        )));
    }

    #[test]
    fn write_methods_name_the_missing_privilege() {
        let h = Hrefs::new("/api/apps/o/i/");
        let card = Resource::Card("a".into());
        let one = |p: Option<Precondition>| match p {
            Some(Precondition::NeedPrivileges(v)) if v.len() == 1 => v[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            one(write_needs(&h, &card, "PUT", true)),
            (h.card("a"), Privilege::WriteContent)
        );
        assert_eq!(
            one(write_needs(&h, &card, "PUT", false)),
            (h.book(), Privilege::Bind)
        );
        assert_eq!(
            one(write_needs(&h, &card, "DELETE", true)),
            (h.book(), Privilege::Unbind)
        );
        assert_eq!(
            one(write_needs(&h, &Resource::Book, "PROPPATCH", false)),
            (h.book(), Privilege::WriteProperties)
        );
        for m in ["GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"] {
            assert!(write_needs(&h, &card, m, true).is_none(), "{m}");
            assert!(write_needs(&h, &Resource::Book, m, true).is_none(), "{m}");
        }
        assert!(write_needs(&h, &Resource::Book, "PUT", false).is_none());
        assert!(write_needs(&h, &Resource::Missing, "PROPPATCH", false).is_none());
    }
}
