//! Property values of each resource (RFC 4918 §15, RFC 5397, RFC 6352 §6.2/§7, RFC 6578 §4,
//! CalendarServer `getctag`).
use crate::book::BookSettings;
use crate::card::Card;
use crate::dav::fragments;
use crate::dav::{AddressDataRequest, KnownProp, PropName, PropRequest, PropValue};
use crate::sync_token::{self, SyncToken};
use crate::tree::{Hrefs, Resource};
use crate::vcard;
use portico_sdk::AppContext;

/// The largest card accepted by PUT, advertised as `max-resource-size` (RFC 6352 §6.2.3): the
/// text limit plus the photo limit ([`vcard::media`]). A card under it can still be refused with
/// the same precondition when its text alone or its photos alone exceed their part.
pub const MAX_RESOURCE_SIZE: usize = vcard::media::MAX_RESOURCE_BYTES;

/// Whether answering `request` (with `address_data`) needs a card's media pieces: it asks for
/// `address-data`, and for the whole card or a selection naming `PHOTO` or `LOGO`. Everything
/// else (ETags, lengths, a selection of other properties) is answered from the stored text.
pub fn needs_media(request: &PropRequest, address_data: Option<&AddressDataRequest>) -> bool {
    let names: &[PropName] = match request {
        PropRequest::Prop(names) => names,
        PropRequest::AllProp { include } => include,
        PropRequest::PropName => return false,
    };
    let asks = names
        .iter()
        .any(|n| KnownProp::from_name(n) == Some(KnownProp::AddressData));
    asks && address_data.is_none_or(|a| {
        a.all_props
            || a.props
                .iter()
                .any(|(p, _)| vcard::media::MEDIA_PROPERTIES.contains(&p.as_str()))
    })
}

/// What property lookups need about the request.
pub struct Env<'a> {
    /// The app context.
    pub cx: &'a AppContext,
    /// Hrefs below the base path.
    pub hrefs: Hrefs,
    /// Book settings.
    pub book: BookSettings,
    /// The change-log position (for `sync-token` and `getctag`).
    pub seq: u64,
    /// The group change-log position (see [`crate::groups`]).
    pub group_seq: u64,
    /// The client asked for a minimal answer (`Prefer: return=minimal` or `Brief: t`):
    /// 404 propstats are left out (RFC 8144 §2.1).
    pub minimal: bool,
}

/// An [`Env`] kept beyond the request, by answers streamed after the handler returned.
#[derive(Clone)]
pub struct StreamEnv {
    cx: AppContext,
    hrefs: Hrefs,
    book: BookSettings,
    seq: u64,
    group_seq: u64,
    minimal: bool,
}

impl StreamEnv {
    /// A copy of `env` that owns its context.
    pub fn of(env: &Env<'_>) -> Self {
        StreamEnv {
            cx: env.cx.clone(),
            hrefs: env.hrefs.clone(),
            book: env.book.clone(),
            seq: env.seq,
            group_seq: env.group_seq,
            minimal: env.minimal,
        }
    }

    /// The context.
    pub fn cx(&self) -> &AppContext {
        &self.cx
    }

    /// The [`Env`] for writing a piece of the answer.
    pub fn env(&self) -> Env<'_> {
        Env {
            cx: &self.cx,
            hrefs: self.hrefs.clone(),
            book: self.book.clone(),
            seq: self.seq,
            group_seq: self.group_seq,
            minimal: self.minimal,
        }
    }
}

/// Does the request ask for minimal multistatus answers? `Prefer: return=minimal` (RFC 7240,
/// RFC 8144 §2.1), the older `return-minimal` spelling, or Microsoft's `Brief: t` that Apple and
/// DAVx5-era clients still send.
pub fn wants_minimal(req: &portico_sdk::AppRequest) -> bool {
    let prefer = req
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',').any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "return=minimal" || p == "return-minimal"
            })
        });
    prefer
        || req
            .header("brief")
            .is_some_and(|b| b.trim().eq_ignore_ascii_case("t"))
}

/// Drops 404 propstats when the client asked for a minimal answer.
pub fn trim_for(
    env: &Env<'_>,
    mut propstats: Vec<crate::dav::Propstat>,
) -> Vec<crate::dav::Propstat> {
    if env.minimal {
        propstats.retain(|p| p.status != portico_sdk::http::StatusCode::NOT_FOUND);
    }
    propstats
}

impl Env<'_> {
    /// The current sync token.
    pub fn sync_token(&self) -> String {
        sync_token::encode(
            &self.cx.installation.id,
            &SyncToken {
                seq: self.seq,
                group_seq: self.group_seq,
                listing_after: None,
            },
        )
    }
}

/// The live properties a resource has (what `propname` lists).
pub fn live_props(r: &Resource) -> &'static [KnownProp] {
    use KnownProp::*;
    match r {
        Resource::Root => &[
            ResourceType,
            DisplayName,
            CurrentUserPrincipal,
            PrincipalCollectionSet,
            CurrentUserPrivilegeSet,
            SupportedReportSet,
        ],
        Resource::Principal => &[
            ResourceType,
            DisplayName,
            CurrentUserPrincipal,
            PrincipalUrl,
            PrincipalCollectionSet,
            AddressbookHomeSet,
            PrincipalAddress,
            CurrentUserPrivilegeSet,
            SupportedReportSet,
        ],
        Resource::Home => &[
            ResourceType,
            DisplayName,
            CurrentUserPrincipal,
            Owner,
            CurrentUserPrivilegeSet,
            SupportedReportSet,
        ],
        Resource::Book => &[
            ResourceType,
            DisplayName,
            AddressbookDescription,
            CurrentUserPrincipal,
            Owner,
            CurrentUserPrivilegeSet,
            SupportedReportSet,
            SupportedAddressData,
            SupportedCollationSet,
            MaxResourceSize,
            SyncToken,
            GetCtag,
        ],
        Resource::Card(_) => &[
            ResourceType,
            GetEtag,
            GetContentType,
            GetContentLength,
            GetLastModified,
            CurrentUserPrincipal,
            Owner,
            CurrentUserPrivilegeSet,
        ],
        Resource::BadCardName | Resource::Missing => &[],
    }
}

/// What `allprop` returns besides dead properties: the RFC 4918 properties that are cheap
/// (RFC 4918 §9.1: allprop need not return expensive or non-RFC 4918 live properties).
pub fn allprop_props(r: &Resource) -> Vec<PropName> {
    use KnownProp::*;
    let list: &[KnownProp] = match r {
        Resource::Card(_) => &[
            ResourceType,
            GetEtag,
            GetContentType,
            GetContentLength,
            GetLastModified,
        ],
        Resource::BadCardName | Resource::Missing => &[],
        _ => &[ResourceType, DisplayName],
    };
    list.iter().map(|k| k.name()).collect()
}

fn hrefs(v: String) -> PropValue {
    PropValue::Hrefs(vec![v])
}

/// The value of `name` on `r`, or `None` if the resource does not have it.
pub fn value(
    env: &Env<'_>,
    r: &Resource,
    card: Option<&Card>,
    name: &PropName,
    address_data: Option<&AddressDataRequest>,
) -> Option<PropValue> {
    let Some(known) = KnownProp::from_name(name) else {
        if matches!(r, Resource::Book) {
            // Dead properties are stored whole (element, attributes, xml:lang; RFC 4918 §4.3).
            return env
                .book
                .dead
                .get(&name.to_string())
                .map(|xml| PropValue::Raw(xml.clone()));
        }
        return None;
    };
    if !live_props(r).contains(&known) && known != KnownProp::AddressData {
        return None;
    }
    let org = &env.cx.org;
    use KnownProp::*;
    Some(match known {
        ResourceType => PropValue::Xml(
            match r {
                Resource::Principal => fragments::RESOURCETYPE_PRINCIPAL,
                Resource::Book => fragments::RESOURCETYPE_ADDRESSBOOK,
                Resource::Card(_) => "",
                _ => fragments::RESOURCETYPE_COLLECTION,
            }
            .to_owned(),
        ),
        DisplayName => PropValue::Text(match r {
            Resource::Book => env.book.displayname(&org.name),
            Resource::Home => format!("{} address books", org.name),
            _ => org.name.clone(),
        }),
        CurrentUserPrincipal => PropValue::Href(env.hrefs.principal()),
        PrincipalUrl | Owner => PropValue::Href(env.hrefs.principal()),
        PrincipalCollectionSet => hrefs(env.hrefs.root()),
        AddressbookHomeSet => hrefs(env.hrefs.home()),
        // RFC 6352 §7.1.2: the principal's own card; we have none, so the property is empty.
        PrincipalAddress => PropValue::Empty,
        // RFC 3744 §5.4: the privileges of the credential this request came with.
        CurrentUserPrivilegeSet => PropValue::Xml(fragments::current_user_privilege_set(
            crate::privileges::current(r, env.book.read_only),
        )),
        SupportedReportSet => PropValue::Xml(match r {
            Resource::Book => fragments::SUPPORTED_REPORT_SET_ADDRESSBOOK.to_owned(),
            _ => String::new(),
        }),
        AddressbookDescription => match &env.book.description {
            Some(d) => PropValue::Text(d.clone()),
            None => return None,
        },
        SupportedAddressData => PropValue::Xml(fragments::SUPPORTED_ADDRESS_DATA.to_owned()),
        SupportedCollationSet => PropValue::Xml(fragments::supported_collation_set()),
        MaxResourceSize => PropValue::Text(MAX_RESOURCE_SIZE.to_string()),
        SyncToken => PropValue::Text(env.sync_token()),
        GetCtag => PropValue::Text(sync_token::ctag(env.seq, env.group_seq)),
        GetEtag => PropValue::Text(card?.etag().to_owned()),
        GetContentType => PropValue::Text("text/vcard; charset=utf-8".to_owned()),
        GetContentLength => PropValue::Text(card?.full_len().to_string()),
        GetLastModified => PropValue::Text(card?.last_modified()),
        AddressData => {
            let card = card?;
            if !card.whole && needs_media(&PropRequest::Prop(vec![name.clone()]), address_data) {
                // The caller did not load the media pieces ([`needs_media`] tells it to):
                // never serve a card without its photos as if it were whole.
                return None;
            }
            let req = address_data.cloned().unwrap_or(AddressDataRequest {
                all_props: true,
                ..Default::default()
            });
            let (text, _) = card.in_version(crate::card::requested_version(req.version.as_deref()));
            let text = if req.all_props {
                text.into_owned()
            } else {
                vcard::select(&text, &req.props)
            };
            PropValue::Text(text)
        }
        _ => return None,
    })
}
