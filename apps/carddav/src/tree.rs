//! The resource tree under an installation's base URL:
//!
//! ```text
//! /                              root: points at the principal
//! principal/                     the organization's principal (RFC 5397 current-user-principal)
//! addressbook/                   the address book home (RFC 6352 §7.1.1)
//! addressbook/customers/         the one address book
//! addressbook/customers/{n}.vcf  one customer's card
//! ```

/// A resource addressed by a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The installation base.
    Root,
    /// The principal.
    Principal,
    /// The address book home.
    Home,
    /// The address book.
    Book,
    /// A card inside the book, by the stem of its resource name (without `.vcf`).
    Card(String),
    /// A member of the book whose name does not end in `.vcf`: no such card can exist.
    BadCardName,
    /// Anything else.
    Missing,
}

/// Path segments (decoded) of each collection.
pub const PRINCIPAL: &str = "principal";
/// The home segment.
pub const HOME: &str = "addressbook";
/// The book segment below the home.
pub const BOOK: &str = "customers";
/// The card extension.
pub const CARD_EXT: &str = ".vcf";

/// Resolves decoded path segments.
pub fn resolve(segments: &[String]) -> Resource {
    match segments {
        [] => Resource::Root,
        [p] if p == PRINCIPAL => Resource::Principal,
        [h] if h == HOME => Resource::Home,
        [h, b] if h == HOME && b == BOOK => Resource::Book,
        [h, b, card] if h == HOME && b == BOOK => match card.strip_suffix(CARD_EXT) {
            Some(stem) if !stem.is_empty() => Resource::Card(stem.to_owned()),
            _ => Resource::BadCardName,
        },
        _ => Resource::Missing,
    }
}

/// The stem of the card `rel` names (a decoded path relative to the installation base), if it
/// names one: the fast form of `resolve` giving [`Resource::Card`], without splitting into owned
/// segments.
pub fn card_stem(rel: &str) -> Option<&str> {
    let mut parts = rel.split('/');
    let (h, b, card) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h != HOME || b != BOOK {
        return None;
    }
    card.strip_suffix(CARD_EXT).filter(|stem| !stem.is_empty())
}

/// Hrefs (decoded absolute paths) below one installation base path.
#[derive(Debug, Clone)]
pub struct Hrefs {
    base: String,
}

impl Hrefs {
    /// For a base path ending with `/`.
    pub fn new(base_path: &str) -> Self {
        let mut base = base_path.to_owned();
        if !base.ends_with('/') {
            base.push('/');
        }
        Hrefs { base }
    }
    /// The base itself.
    pub fn root(&self) -> String {
        self.base.clone()
    }
    /// The principal.
    pub fn principal(&self) -> String {
        format!("{}{PRINCIPAL}/", self.base)
    }
    /// The home.
    pub fn home(&self) -> String {
        format!("{}{HOME}/", self.base)
    }
    /// The book.
    pub fn book(&self) -> String {
        format!("{}{HOME}/{BOOK}/", self.base)
    }
    /// A card by resource-name stem.
    pub fn card(&self, stem: &str) -> String {
        // Once per card of every listing: built without the formatting machinery.
        let mut href = String::with_capacity(
            self.base.len() + HOME.len() + BOOK.len() + stem.len() + CARD_EXT.len() + 2,
        );
        for part in [self.base.as_str(), HOME, "/", BOOK, "/", stem, CARD_EXT] {
            href.push_str(part);
        }
        href
    }
    /// The href of a resource.
    pub fn of(&self, r: &Resource) -> String {
        match r {
            Resource::Root => self.root(),
            Resource::Principal => self.principal(),
            Resource::Home => self.home(),
            Resource::Book => self.book(),
            Resource::Card(stem) => self.card(stem),
            Resource::BadCardName | Resource::Missing => self.root(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn card_stem_is_resolve_of_a_card() {
        for rel in [
            "addressbook/customers/a b.vcf",
            "addressbook/customers/x.vcf/",
            "addressbook/customers/.vcf",
            "addressbook/customers/x.txt",
            "addressbook//customers/x.vcf",
            "addressbook/customers/",
            "addressbook/customers",
            "addressbook/other/x.vcf",
            "principal/x.vcf",
            "x.vcf",
            "",
            "addressbook/customers/a.vcf.vcf",
            "addressbook/customers/ü/x.vcf",
        ] {
            // What the multiget did before: every '/'-separated part a segment, empty ones too.
            let segments: Vec<String> = rel.split('/').map(str::to_owned).collect();
            let expected = match resolve(&segments) {
                Resource::Card(stem) => Some(stem),
                _ => None,
            };
            assert_eq!(card_stem(rel).map(str::to_owned), expected, "{rel:?}");
        }
        assert_eq!(card_stem("addressbook/customers/a.vcf.vcf"), Some("a.vcf"));
    }

    #[test]
    fn resolves_the_tree() {
        assert_eq!(resolve(&segs("")), Resource::Root);
        assert_eq!(resolve(&segs("principal/")), Resource::Principal);
        assert_eq!(resolve(&segs("addressbook")), Resource::Home);
        assert_eq!(resolve(&segs("addressbook/customers/")), Resource::Book);
        assert_eq!(
            resolve(&segs("addressbook/customers/a b.vcf")),
            Resource::Card("a b".into())
        );
        assert_eq!(
            resolve(&segs("addressbook/customers/x.txt")),
            Resource::BadCardName
        );
        assert_eq!(
            resolve(&segs("addressbook/customers/.vcf")),
            Resource::BadCardName
        );
        assert_eq!(resolve(&segs("addressbook/other/")), Resource::Missing);
        assert_eq!(resolve(&segs("principal/x")), Resource::Missing);
    }

    #[test]
    fn hrefs() {
        let h = Hrefs::new("/api/apps/o/i/");
        assert_eq!(h.book(), "/api/apps/o/i/addressbook/customers/");
        assert_eq!(h.card("x"), "/api/apps/o/i/addressbook/customers/x.vcf");
        assert_eq!(h.of(&Resource::Principal), "/api/apps/o/i/principal/");
    }
}
