//! Property and element names: namespaces, [`PropName`] and the properties this app knows.
//!
//! WebDAV names are *expanded names* — a namespace URI plus a local name (RFC 4918 §17,
//! "XML Extensibility in DAV"). Prefixes are a spelling detail of one document and are never
//! compared: `<A:getetag xmlns:A="DAV:"/>` and `<getetag xmlns="DAV:"/>` are the same property.

use std::fmt;

/// The WebDAV namespace (RFC 4918 §21). Note the URI really is the four characters `DAV:`.
pub const NS_DAV: &str = "DAV:";
/// The CardDAV namespace (RFC 6352 §13).
pub const NS_CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// Apple's CalendarServer namespace (`getctag`, `me-card`, push properties).
pub const NS_CALENDARSERVER: &str = "http://calendarserver.org/ns/";

/// The prefix the writers in this module bind to [`NS_DAV`].
pub const PREFIX_DAV: &str = "d";
/// The prefix the writers in this module bind to [`NS_CARDDAV`].
pub const PREFIX_CARDDAV: &str = "card";
/// The prefix the writers in this module bind to [`NS_CALENDARSERVER`].
pub const PREFIX_CALENDARSERVER: &str = "cs";

/// The `xmlns` declarations every document written by this module carries on its root element,
/// so that preformatted fragments ([`crate::dav::PropValue::Xml`], the constants in
/// [`crate::dav::fragments`]) can use the `d:`, `card:` and `cs:` prefixes.
pub const ROOT_NAMESPACE_DECLS: &str = r#"xmlns:d="DAV:" xmlns:card="urn:ietf:params:xml:ns:carddav" xmlns:cs="http://calendarserver.org/ns/""#;

/// The prefix a writer uses for a namespace, if it is one of the three predeclared ones.
pub fn predeclared_prefix(ns: &str) -> Option<&'static str> {
    match ns {
        NS_DAV => Some(PREFIX_DAV),
        NS_CARDDAV => Some(PREFIX_CARDDAV),
        NS_CALENDARSERVER => Some(PREFIX_CALENDARSERVER),
        _ => None,
    }
}

/// A property (or element) name: namespace URI and local name.
///
/// `ns` is empty for an element in no namespace. Displayed in Clark notation, `{ns}local`
/// (e.g. `{DAV:}getetag`), which is also handy as a map key for dead properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropName {
    /// Namespace URI (`DAV:`, `urn:ietf:params:xml:ns:carddav`, …); empty for no namespace.
    pub ns: String,
    /// Local name, e.g. `getetag`.
    pub local: String,
}

impl PropName {
    /// A name in any namespace.
    pub fn new(ns: impl Into<String>, local: impl Into<String>) -> Self {
        PropName {
            ns: ns.into(),
            local: local.into(),
        }
    }

    /// A name in the `DAV:` namespace.
    pub fn dav(local: &str) -> Self {
        Self::new(NS_DAV, local)
    }

    /// A name in the CardDAV namespace.
    pub fn carddav(local: &str) -> Self {
        Self::new(NS_CARDDAV, local)
    }

    /// A name in the CalendarServer namespace.
    pub fn calendarserver(local: &str) -> Self {
        Self::new(NS_CALENDARSERVER, local)
    }

    /// True if this is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    /// True if this is `{DAV:}local`.
    pub fn is_dav(&self, local: &str) -> bool {
        self.is(NS_DAV, local)
    }

    /// True if this is `{urn:ietf:params:xml:ns:carddav}local`.
    pub fn is_carddav(&self, local: &str) -> bool {
        self.is(NS_CARDDAV, local)
    }

    /// Parses Clark notation `{ns}local` (or a bare `local` for no namespace).
    /// Returns `None` for an empty local name or unbalanced braces.
    pub fn from_clark(s: &str) -> Option<Self> {
        let (ns, local) = match s.strip_prefix('{') {
            Some(rest) => rest.split_once('}')?,
            None => ("", s),
        };
        if local.is_empty() || local.contains(['{', '}']) {
            return None;
        }
        Some(Self::new(ns, local))
    }
}

impl fmt::Display for PropName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}{}", self.ns, self.local)
    }
}

/// The properties this app serves, so the glue can `match` instead of comparing strings.
///
/// `KnownProp::from_name(&name)` recognises a requested [`PropName`]; `prop.name()` gives it back.
/// Anything else a client asks for is unknown and belongs in the 404 propstat
/// (see [`crate::dav::propstats_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownProp {
    // --- DAV: (RFC 4918 §15) ---
    /// `DAV:resourcetype`
    ResourceType,
    /// `DAV:displayname`
    DisplayName,
    /// `DAV:getetag`
    GetEtag,
    /// `DAV:getcontenttype`
    GetContentType,
    /// `DAV:getcontentlength`
    GetContentLength,
    /// `DAV:getlastmodified`
    GetLastModified,
    /// `DAV:creationdate`
    CreationDate,
    /// `DAV:supportedlock`
    SupportedLock,
    /// `DAV:lockdiscovery`
    LockDiscovery,
    // --- DAV: (RFC 5397) ---
    /// `DAV:current-user-principal`
    CurrentUserPrincipal,
    // --- DAV: (RFC 3744 §4, §5) ---
    /// `DAV:principal-URL`
    PrincipalUrl,
    /// `DAV:principal-collection-set`
    PrincipalCollectionSet,
    /// `DAV:owner`
    Owner,
    /// `DAV:current-user-privilege-set`
    CurrentUserPrivilegeSet,
    // --- DAV: (RFC 3253 §3.1.5) ---
    /// `DAV:supported-report-set`
    SupportedReportSet,
    // --- DAV: (RFC 6578 §4) ---
    /// `DAV:sync-token`
    SyncToken,
    // --- DAV: (RFC 4331) ---
    /// `DAV:quota-available-bytes`
    QuotaAvailableBytes,
    /// `DAV:quota-used-bytes`
    QuotaUsedBytes,
    // --- DAV: (RFC 5995) ---
    /// `DAV:add-member`
    AddMember,
    // --- CardDAV (RFC 6352) ---
    /// `card:addressbook-home-set` (§7.1.1)
    AddressbookHomeSet,
    /// `card:principal-address` (§7.1.2)
    PrincipalAddress,
    /// `card:addressbook-description` (§6.2.1)
    AddressbookDescription,
    /// `card:supported-address-data` (§6.2.2)
    SupportedAddressData,
    /// `card:max-resource-size` (§6.2.3)
    MaxResourceSize,
    /// `card:supported-collation-set` (§8.3.1)
    SupportedCollationSet,
    /// `card:address-data` (§10.4), the card itself in REPORT answers.
    AddressData,
    // --- CalendarServer ---
    /// `cs:getctag`, a collection tag that changes whenever a member changes.
    GetCtag,
}

impl KnownProp {
    /// Every known property, in a stable order (useful for `allprop` and `propname`).
    pub const ALL: [KnownProp; 27] = [
        KnownProp::ResourceType,
        KnownProp::DisplayName,
        KnownProp::GetEtag,
        KnownProp::GetContentType,
        KnownProp::GetContentLength,
        KnownProp::GetLastModified,
        KnownProp::CreationDate,
        KnownProp::SupportedLock,
        KnownProp::LockDiscovery,
        KnownProp::CurrentUserPrincipal,
        KnownProp::PrincipalUrl,
        KnownProp::PrincipalCollectionSet,
        KnownProp::Owner,
        KnownProp::CurrentUserPrivilegeSet,
        KnownProp::SupportedReportSet,
        KnownProp::SyncToken,
        KnownProp::QuotaAvailableBytes,
        KnownProp::QuotaUsedBytes,
        KnownProp::AddMember,
        KnownProp::AddressbookHomeSet,
        KnownProp::PrincipalAddress,
        KnownProp::AddressbookDescription,
        KnownProp::SupportedAddressData,
        KnownProp::MaxResourceSize,
        KnownProp::SupportedCollationSet,
        KnownProp::AddressData,
        KnownProp::GetCtag,
    ];

    /// Namespace URI and local name.
    pub fn qualified(self) -> (&'static str, &'static str) {
        use KnownProp::*;
        match self {
            ResourceType => (NS_DAV, "resourcetype"),
            DisplayName => (NS_DAV, "displayname"),
            GetEtag => (NS_DAV, "getetag"),
            GetContentType => (NS_DAV, "getcontenttype"),
            GetContentLength => (NS_DAV, "getcontentlength"),
            GetLastModified => (NS_DAV, "getlastmodified"),
            CreationDate => (NS_DAV, "creationdate"),
            SupportedLock => (NS_DAV, "supportedlock"),
            LockDiscovery => (NS_DAV, "lockdiscovery"),
            CurrentUserPrincipal => (NS_DAV, "current-user-principal"),
            PrincipalUrl => (NS_DAV, "principal-URL"),
            PrincipalCollectionSet => (NS_DAV, "principal-collection-set"),
            Owner => (NS_DAV, "owner"),
            CurrentUserPrivilegeSet => (NS_DAV, "current-user-privilege-set"),
            SupportedReportSet => (NS_DAV, "supported-report-set"),
            SyncToken => (NS_DAV, "sync-token"),
            QuotaAvailableBytes => (NS_DAV, "quota-available-bytes"),
            QuotaUsedBytes => (NS_DAV, "quota-used-bytes"),
            AddMember => (NS_DAV, "add-member"),
            AddressbookHomeSet => (NS_CARDDAV, "addressbook-home-set"),
            PrincipalAddress => (NS_CARDDAV, "principal-address"),
            AddressbookDescription => (NS_CARDDAV, "addressbook-description"),
            SupportedAddressData => (NS_CARDDAV, "supported-address-data"),
            MaxResourceSize => (NS_CARDDAV, "max-resource-size"),
            SupportedCollationSet => (NS_CARDDAV, "supported-collation-set"),
            AddressData => (NS_CARDDAV, "address-data"),
            GetCtag => (NS_CALENDARSERVER, "getctag"),
        }
    }

    /// The property's [`PropName`].
    pub fn name(self) -> PropName {
        let (ns, local) = self.qualified();
        PropName::new(ns, local)
    }

    /// Recognises a known property by namespace and local name (never by prefix).
    pub fn from_name(name: &PropName) -> Option<KnownProp> {
        // Local name first: it tells most of them apart by its length alone (every CardDAV
        // property shares one of two namespaces). Called for each property of each card.
        Self::ALL.iter().copied().find(|p| {
            let (ns, local) = p.qualified();
            local == name.local && ns == name.ns
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_clark_notation() {
        assert_eq!(PropName::dav("getetag").to_string(), "{DAV:}getetag");
        assert_eq!(
            PropName::carddav("address-data").to_string(),
            "{urn:ietf:params:xml:ns:carddav}address-data"
        );
        assert_eq!(PropName::new("", "x").to_string(), "{}x");
    }

    #[test]
    fn clark_round_trip() {
        for p in [
            PropName::dav("getetag"),
            PropName::new("http://example.com/ns/", "color"),
            PropName::new("", "plain"),
        ] {
            assert_eq!(PropName::from_clark(&p.to_string()), Some(p));
        }
        assert_eq!(
            PropName::from_clark("plain"),
            Some(PropName::new("", "plain"))
        );
        assert_eq!(PropName::from_clark("{DAV:"), None);
        assert_eq!(PropName::from_clark("{DAV:}"), None);
    }

    #[test]
    fn known_props_round_trip() {
        for p in KnownProp::ALL {
            assert_eq!(KnownProp::from_name(&p.name()), Some(p));
        }
        assert_eq!(KnownProp::from_name(&PropName::dav("nope")), None);
        // Same local name, other namespace: not the same property.
        assert_eq!(KnownProp::from_name(&PropName::carddav("getetag")), None);
    }
}
