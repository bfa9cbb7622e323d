//! Precondition / postcondition codes and their `DAV:error` bodies (RFC 4918 §16).
//!
//! A failed precondition is answered with an error status (usually 403 or 409) and a body
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8"?>
//! <d:error xmlns:d="DAV:" …><card:supported-filter/></d:error>
//! ```
//!
//! naming the condition, so a client can tell *why* the request failed.
//! [`Precondition::status`] is the status servers usually pair with each code; the caller may
//! choose another where the situation calls for it.

use portico_sdk::http::StatusCode;

use super::fragments::Privilege;
use super::href::encode_href;
use super::names::{NS_CARDDAV, NS_DAV, ROOT_NAMESPACE_DECLS};
use super::xml::escape_text;

/// A named pre- or postcondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `DAV:propfind-finite-depth` — PROPFIND with `Depth: infinity` refused
    /// (RFC 4918 §9.1, §16). 403.
    PropfindFiniteDepth,
    /// `DAV:cannot-modify-protected-property` — PROPPATCH of a live, protected property
    /// (RFC 4918 §9.2, §16). 403, usually inside a propstat rather than as a whole-request error.
    CannotModifyProtectedProperty,
    /// `DAV:resource-must-be-null` — MKCOL (or extended MKCOL, RFC 5689 §3) where a resource
    /// already exists. 405 (RFC 4918 §9.3.1).
    ResourceMustBeNull,
    /// `DAV:no-external-entities` — the body declared an external entity (RFC 4918 §16). 403.
    NoExternalEntities,
    /// `DAV:lock-token-submitted` — a locked resource was modified without its lock token; the
    /// hrefs name the locked resources (RFC 4918 §16). 423.
    LockTokenSubmitted(Vec<String>),
    /// `DAV:valid-sync-token` — the sync-token of a `sync-collection` report is unknown, from
    /// another collection or too old (RFC 6578 §3.2, §5). 403; the client then syncs afresh.
    ValidSyncToken,
    /// `DAV:number-of-matches-within-limits` — more results than the server (or the client's
    /// `limit`) allows; RFC 6578 §3.6 and RFC 5323 §5.17. 507.
    NumberOfMatchesWithinLimits,
    /// `DAV:supported-report` — the REPORT is not supported on this resource (RFC 3253 §3.6).
    /// 403.
    SupportedReport,
    /// `card:supported-address-data` — the media type of a PUT card or the `address-data`
    /// `content-type`/`version` asked for is not supported (RFC 6352 §6.3.2.1, §8.7). 403.
    SupportedAddressData,
    /// `card:supported-address-data-conversion` — the server cannot convert the card to the
    /// requested `address-data` type (RFC 6352 §8.7). 403.
    SupportedAddressDataConversion,
    /// `card:valid-address-data` — a PUT body is not a valid vCard (RFC 6352 §6.3.2.1). 403.
    ValidAddressData,
    /// `card:no-uid-conflict` — another card in the book already has this UID; the href, if
    /// given, names it (decoded absolute path; encoded on write) (RFC 6352 §6.3.2.1). 409.
    NoUidConflict(Option<String>),
    /// `card:max-resource-size` — the card is larger than `card:max-resource-size`
    /// (RFC 6352 §6.3.2.1). 403.
    MaxResourceSize,
    /// `card:addressbook-collection-location-ok` — the destination of a PUT/COPY/MOVE is not an
    /// address book, or an address book cannot be created there (RFC 6352 §6.3.1, §6.3.2.1). 403.
    AddressbookCollectionLocationOk,
    /// `card:supported-filter` — the query filter names a property, parameter or element the
    /// server does not support (RFC 6352 §8.6). 403.
    SupportedFilter,
    /// `card:supported-collation` — an unknown `collation` in a `text-match`
    /// (RFC 6352 §8.3, §8.6). 403.
    SupportedCollation,
    /// `DAV:need-privileges` — the credential lacks a privilege the method needs; one
    /// `(href, privilege)` per resource and missing privilege (decoded absolute path; encoded
    /// on write) (RFC 3744 §7.1.1). 403.
    NeedPrivileges(Vec<(String, Privilege)>),
}

impl Precondition {
    /// Namespace URI and local name of the condition's element.
    pub fn qualified(&self) -> (&'static str, &'static str) {
        use Precondition::*;
        match self {
            PropfindFiniteDepth => (NS_DAV, "propfind-finite-depth"),
            CannotModifyProtectedProperty => (NS_DAV, "cannot-modify-protected-property"),
            ResourceMustBeNull => (NS_DAV, "resource-must-be-null"),
            NoExternalEntities => (NS_DAV, "no-external-entities"),
            LockTokenSubmitted(_) => (NS_DAV, "lock-token-submitted"),
            ValidSyncToken => (NS_DAV, "valid-sync-token"),
            NumberOfMatchesWithinLimits => (NS_DAV, "number-of-matches-within-limits"),
            SupportedReport => (NS_DAV, "supported-report"),
            SupportedAddressData => (NS_CARDDAV, "supported-address-data"),
            SupportedAddressDataConversion => (NS_CARDDAV, "supported-address-data-conversion"),
            ValidAddressData => (NS_CARDDAV, "valid-address-data"),
            NoUidConflict(_) => (NS_CARDDAV, "no-uid-conflict"),
            MaxResourceSize => (NS_CARDDAV, "max-resource-size"),
            AddressbookCollectionLocationOk => (NS_CARDDAV, "addressbook-collection-location-ok"),
            SupportedFilter => (NS_CARDDAV, "supported-filter"),
            SupportedCollation => (NS_CARDDAV, "supported-collation"),
            NeedPrivileges(_) => (NS_DAV, "need-privileges"),
        }
    }

    /// The status usually sent with this condition.
    pub fn status(&self) -> StatusCode {
        use Precondition::*;
        match self {
            ResourceMustBeNull => StatusCode::METHOD_NOT_ALLOWED,
            LockTokenSubmitted(_) => StatusCode::LOCKED,
            NumberOfMatchesWithinLimits => StatusCode::INSUFFICIENT_STORAGE,
            NoUidConflict(_) => StatusCode::CONFLICT,
            PropfindFiniteDepth
            | CannotModifyProtectedProperty
            | NoExternalEntities
            | ValidSyncToken
            | SupportedReport
            | SupportedAddressData
            | SupportedAddressDataConversion
            | ValidAddressData
            | MaxResourceSize
            | AddressbookCollectionLocationOk
            | SupportedFilter
            | SupportedCollation
            | NeedPrivileges(_) => StatusCode::FORBIDDEN,
        }
    }

    /// The condition element alone, using the `d:`/`card:` prefixes (e.g.
    /// `<card:no-uid-conflict><d:href>/…/a.vcf</d:href></card:no-uid-conflict>`), for embedding
    /// in a `DAV:error` inside a multistatus.
    pub fn element_xml(&self) -> String {
        let (ns, local) = self.qualified();
        let prefix = if ns == NS_DAV { "d" } else { "card" };
        if let Precondition::NeedPrivileges(missing) = self {
            // RFC 3744 §7.1.1: one DAV:resource (href + privilege) per missing privilege.
            let mut out = String::from("<d:need-privileges>");
            for (href, privilege) in missing {
                out.push_str("<d:resource><d:href>");
                escape_text(&encode_href(href), &mut out);
                out.push_str("</d:href><d:privilege><d:");
                out.push_str(privilege.local_name());
                out.push_str("/></d:privilege></d:resource>");
            }
            out.push_str("</d:need-privileges>");
            return out;
        }
        let hrefs: &[String] = match self {
            Precondition::LockTokenSubmitted(hrefs) => hrefs,
            Precondition::NoUidConflict(Some(href)) => std::slice::from_ref(href),
            _ => &[],
        };
        if hrefs.is_empty() {
            return format!("<{prefix}:{local}/>");
        }
        let mut out = format!("<{prefix}:{local}>");
        for h in hrefs {
            out.push_str("<d:href>");
            escape_text(&encode_href(h), &mut out);
            out.push_str("</d:href>");
        }
        out.push_str(&format!("</{prefix}:{local}>"));
        out
    }
}

/// A complete `DAV:error` response body for a failed condition (RFC 4918 §16), with the XML
/// declaration; send it as `application/xml; charset=utf-8` with [`Precondition::status`].
pub fn error_body(precondition: &Precondition) -> String {
    error_body_with(precondition, None)
}

/// Like [`error_body`], with extra preformatted XML (using the `d:`/`card:`/`cs:` prefixes)
/// appended inside `DAV:error` after the condition element, e.g. a `d:responsedescription`.
pub fn error_body_with(precondition: &Precondition, extra: Option<&str>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error ");
    out.push_str(ROOT_NAMESPACE_DECLS);
    out.push('>');
    out.push_str(&precondition.element_xml());
    if let Some(extra) = extra {
        out.push_str(extra);
    }
    out.push_str("</d:error>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:error xmlns:d=\"DAV:\" xmlns:card=\"urn:ietf:params:xml:ns:carddav\" xmlns:cs=\"http://calendarserver.org/ns/\">";

    #[test]
    fn simple_bodies() {
        let cases = [
            (
                Precondition::PropfindFiniteDepth,
                "<d:propfind-finite-depth/>",
                403,
            ),
            (
                Precondition::SupportedAddressData,
                "<card:supported-address-data/>",
                403,
            ),
            (
                Precondition::ValidAddressData,
                "<card:valid-address-data/>",
                403,
            ),
            (
                Precondition::MaxResourceSize,
                "<card:max-resource-size/>",
                403,
            ),
            (
                Precondition::AddressbookCollectionLocationOk,
                "<card:addressbook-collection-location-ok/>",
                403,
            ),
            (Precondition::ValidSyncToken, "<d:valid-sync-token/>", 403),
            (Precondition::SupportedReport, "<d:supported-report/>", 403),
            (
                Precondition::SupportedFilter,
                "<card:supported-filter/>",
                403,
            ),
            (
                Precondition::SupportedCollation,
                "<card:supported-collation/>",
                403,
            ),
            (
                Precondition::NumberOfMatchesWithinLimits,
                "<d:number-of-matches-within-limits/>",
                507,
            ),
            (
                Precondition::CannotModifyProtectedProperty,
                "<d:cannot-modify-protected-property/>",
                403,
            ),
            (
                Precondition::ResourceMustBeNull,
                "<d:resource-must-be-null/>",
                405,
            ),
            (
                Precondition::NoUidConflict(None),
                "<card:no-uid-conflict/>",
                409,
            ),
        ];
        for (p, inner, status) in cases {
            assert_eq!(error_body(&p), format!("{HEAD}{inner}</d:error>"));
            assert_eq!(p.status().as_u16(), status, "{p:?}");
        }
    }

    #[test]
    fn uid_conflict_names_the_existing_card() {
        let p = Precondition::NoUidConflict(Some(
            "/api/apps/o/i/addressbook/customers/a b&c.vcf".into(),
        ));
        assert_eq!(
            error_body(&p),
            format!(
                "{HEAD}<card:no-uid-conflict><d:href>/api/apps/o/i/addressbook/customers/a%20b&amp;c.vcf</d:href></card:no-uid-conflict></d:error>"
            )
        );
        let body = error_body(&p);
        let doc = roxmltree::Document::parse(&body).expect("well-formed");
        let el = doc
            .root_element()
            .first_element_child()
            .expect("condition element");
        assert!(el.has_tag_name((NS_CARDDAV, "no-uid-conflict")));
    }

    #[test]
    fn need_privileges_names_resource_and_privilege() {
        let p = Precondition::NeedPrivileges(vec![(
            "/api/apps/o/i/addressbook/customers/a b.vcf".into(),
            Privilege::WriteContent,
        )]);
        assert_eq!(p.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            error_body(&p),
            format!(
                "{HEAD}<d:need-privileges><d:resource><d:href>/api/apps/o/i/addressbook/customers/a%20b.vcf</d:href><d:privilege><d:write-content/></d:privilege></d:resource></d:need-privileges></d:error>"
            )
        );
        let body = error_body(&p);
        let doc = roxmltree::Document::parse(&body).expect("well-formed");
        let el = doc.root_element().first_element_child().expect("condition");
        assert!(el.has_tag_name((NS_DAV, "need-privileges")));
    }

    #[test]
    fn extra_content_is_appended() {
        let body = error_body_with(
            &Precondition::ValidAddressData,
            Some("<d:responsedescription>missing FN</d:responsedescription>"),
        );
        assert!(body.ends_with(
            "<card:valid-address-data/><d:responsedescription>missing FN</d:responsedescription></d:error>"
        ));
    }
}
