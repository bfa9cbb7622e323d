//! Preformatted inner XML for live property values, for [`crate::dav::PropValue::Xml`].
//!
//! All use the `d:` / `card:` prefixes that [`crate::dav::MultistatusWriter`] binds on its root.

use super::filter::Collation;

/// `DAV:resourcetype` of a plain collection (the installation base, the address-book home).
pub const RESOURCETYPE_COLLECTION: &str = "<d:collection/>";

/// `DAV:resourcetype` of an address book (RFC 6352 §5.2).
pub const RESOURCETYPE_ADDRESSBOOK: &str = "<d:collection/><card:addressbook/>";

/// `DAV:resourcetype` of the principal (RFC 3744 §4). The principal URL ends with `/` and
/// answers Depth 1 like a collection, so it is marked as one too, as common servers do.
pub const RESOURCETYPE_PRINCIPAL: &str = "<d:collection/><d:principal/>";

/// `DAV:supported-report-set` of an address book (RFC 3253 §3.1.5): `addressbook-multiget`,
/// `addressbook-query` (RFC 6352 §8) and `sync-collection` (RFC 6578 §3.1).
pub const SUPPORTED_REPORT_SET_ADDRESSBOOK: &str =
    "<d:supported-report><d:report><card:addressbook-multiget/></d:report></d:supported-report>\
<d:supported-report><d:report><card:addressbook-query/></d:report></d:supported-report>\
<d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report>";

/// `card:supported-address-data` (RFC 6352 §6.2.2): vCard 3.0 and 4.0.
pub const SUPPORTED_ADDRESS_DATA: &str =
    "<card:address-data-type content-type=\"text/vcard\" version=\"3.0\"/>\
<card:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>";

/// `card:supported-collation-set` (RFC 6352 §8.3.1): every [`Collation`] the filter implements.
pub fn supported_collation_set() -> String {
    Collation::ALL
        .iter()
        .map(|c| {
            format!(
                "<card:supported-collation>{}</card:supported-collation>",
                c.name()
            )
        })
        .collect()
}

/// A privilege of RFC 3744 §3 (named as in the `DAV:` namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// `DAV:read` (§3.1).
    Read,
    /// `DAV:write` (§3.2): aggregates write-properties, write-content, bind and unbind.
    Write,
    /// `DAV:write-properties` (§3.3).
    WriteProperties,
    /// `DAV:write-content` (§3.4).
    WriteContent,
    /// `DAV:bind` (§3.9): add members to a collection.
    Bind,
    /// `DAV:unbind` (§3.10): remove members from a collection.
    Unbind,
    /// `DAV:read-current-user-privilege-set` (§3.7).
    ReadCurrentUserPrivilegeSet,
}

impl Privilege {
    /// Full access, as the installation's own credentials have: all privileges above.
    pub const READ_WRITE: [Privilege; 7] = [
        Privilege::Read,
        Privilege::Write,
        Privilege::WriteProperties,
        Privilege::WriteContent,
        Privilege::Bind,
        Privilege::Unbind,
        Privilege::ReadCurrentUserPrivilegeSet,
    ];

    /// Read-only access.
    pub const READ_ONLY: [Privilege; 2] = [Privilege::Read, Privilege::ReadCurrentUserPrivilegeSet];

    /// The element's local name in `DAV:`.
    pub fn local_name(self) -> &'static str {
        match self {
            Privilege::Read => "read",
            Privilege::Write => "write",
            Privilege::WriteProperties => "write-properties",
            Privilege::WriteContent => "write-content",
            Privilege::Bind => "bind",
            Privilege::Unbind => "unbind",
            Privilege::ReadCurrentUserPrivilegeSet => "read-current-user-privilege-set",
        }
    }
}

/// `DAV:current-user-privilege-set` (RFC 3744 §5.4): one `<d:privilege>` per privilege.
/// RFC 3744 §5.4 lists aggregates *and* the privileges they contain, which is why
/// [`Privilege::READ_WRITE`] names `write` alongside its parts.
pub fn current_user_privilege_set(privileges: &[Privilege]) -> String {
    privileges
        .iter()
        .map(|p| format!("<d:privilege><d:{}/></d:privilege>", p.local_name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dav::names::{NS_CARDDAV, NS_DAV};

    /// Wraps a fragment as the writer would and parses it.
    fn parse(fragment: &str) -> Vec<String> {
        let doc = format!(
            "<d:x {}>{fragment}</d:x>",
            crate::dav::names::ROOT_NAMESPACE_DECLS
        );
        let parsed = roxmltree::Document::parse(&doc).expect("well-formed");
        parsed
            .root_element()
            .descendants()
            .skip(1)
            .filter(|n| n.is_element())
            .map(|n| crate::dav::xml::element_name(n).to_string())
            .collect()
    }

    #[test]
    fn fragments_are_well_formed_with_the_right_names() {
        assert_eq!(parse(RESOURCETYPE_COLLECTION), ["{DAV:}collection"]);
        assert_eq!(
            parse(RESOURCETYPE_ADDRESSBOOK),
            [
                "{DAV:}collection",
                format!("{{{NS_CARDDAV}}}addressbook").as_str()
            ]
        );
        assert_eq!(
            parse(RESOURCETYPE_PRINCIPAL),
            ["{DAV:}collection", "{DAV:}principal"]
        );
        let reports = parse(SUPPORTED_REPORT_SET_ADDRESSBOOK);
        assert!(reports.contains(&format!("{{{NS_CARDDAV}}}addressbook-multiget")));
        assert!(reports.contains(&format!("{{{NS_CARDDAV}}}addressbook-query")));
        assert!(reports.contains(&format!("{{{NS_DAV}}}sync-collection")));
        assert_eq!(parse(SUPPORTED_ADDRESS_DATA).len(), 2);
        assert_eq!(parse(&supported_collation_set()).len(), 3);
    }

    #[test]
    fn privileges() {
        assert_eq!(
            current_user_privilege_set(&Privilege::READ_ONLY),
            "<d:privilege><d:read/></d:privilege><d:privilege><d:read-current-user-privilege-set/></d:privilege>"
        );
        let names = parse(&current_user_privilege_set(&Privilege::READ_WRITE));
        for p in Privilege::READ_WRITE {
            assert!(names.contains(&format!("{{DAV:}}{}", p.local_name())));
        }
        assert!(supported_collation_set().contains("i;unicode-casemap"));
    }
}
