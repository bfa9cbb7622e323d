//! The CardDAV app: install hooks, actions, and request dispatch by resource and method.
use crate::auth::{self, Credentials, PASSWORD_FIELD};
use crate::book::{BookSettings, LAST_SYNC_FIELD};
use crate::card::{self, Card};
use crate::devices::{self, Access};
use crate::props::Env;
use crate::respond::{self, DAV_HEADER};
use crate::tree::{Hrefs, Resource};
use crate::{device_actions, privileges, profile, propfind, proppatch, report, vcard, write};
use dashmap::DashMap;
use portico_sdk::http::{Method, StatusCode};
use portico_sdk::{
    async_trait, Account, ActionFile, ActionOutcome, AppContext, AppError, AppManifest, AppRequest,
    AppResponse, AppStatus, ConfigField, ConfigKind, CustomerChange, CustomerWritten, ExternalApp,
    InstallInput, InstallOutcome, InstallationId, InstallationStatus, StoredCard, Timestamp,
};
use serde_json::{json, Value};

/// The version of the installation data this build writes (see `migrate`).
pub const DATA_VERSION: u32 = 2;

/// Bytes of randomness in a generated password: 18 bytes, 144 bits, 24 URL-safe characters.
pub const PASSWORD_BYTES: usize = 18;

/// How often the last-sync time is written back to the installation record.
const LAST_SYNC_WRITE_EVERY_MS: i64 = 60_000;

/// The CardDAV app (kind `carddav`).
#[derive(Default)]
pub struct CardDavApp {
    credentials: Credentials,
    last_sync: DashMap<InstallationId, Timestamp>,
}

impl CardDavApp {
    /// A new app instance; register it once with the host.
    pub fn new() -> Self {
        Self::default()
    }

    fn env<'a>(
        &self,
        cx: &'a AppContext,
        req: &AppRequest,
        seq: (u64, u64),
        access: &Access,
    ) -> Env<'a> {
        let mut book = BookSettings::from_data(&cx.installation.data);
        book.read_only = access.read_only;
        Env {
            cx,
            hrefs: Hrefs::new(&req.base_path),
            book,
            seq: seq.0,
            group_seq: seq.1,
            minimal: crate::props::wants_minimal(req),
        }
    }

    /// Notes a client sync; persisted at most once a minute per installation.
    async fn record_sync(&self, cx: &AppContext) {
        let now = cx.clock.now();
        let stored = cx.installation.data[LAST_SYNC_FIELD].as_i64().unwrap_or(0);
        self.last_sync.insert(cx.installation.id.clone(), now);
        if now.0 - stored < LAST_SYNC_WRITE_EVERY_MS {
            return;
        }
        let mut inst = cx.installation.clone();
        if !inst.data.is_object() {
            return;
        }
        inst.data[LAST_SYNC_FIELD] = json!(now.0);
        // Losing this race to another write is harmless: the time is informational.
        let _ = cx.installation_store.save(&inst).await;
    }
}

/// The methods a resource supports (RFC 9110 §10.2.1), whatever the credential: a read-only
/// credential learns what it may do from `current-user-privilege-set` (see [`privileges`]).
fn allow(r: &Resource) -> &'static str {
    match r {
        Resource::Card(_) => "OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, REPORT",
        Resource::Book => "OPTIONS, GET, HEAD, PROPFIND, PROPPATCH, REPORT",
        Resource::BadCardName => "OPTIONS",
        _ => "OPTIONS, GET, HEAD, PROPFIND, REPORT",
    }
}

fn connection_info(cx: &AppContext, password: &str) -> Value {
    json!({ "url": cx.base_url(), "username": cx.org.slug, "password": password })
}

/// The installation's current password, opened.
fn current_password(cx: &AppContext) -> Result<portico_sdk::Secret<String>, AppError> {
    let sealed = cx.installation.data[PASSWORD_FIELD]
        .as_str()
        .ok_or_else(|| AppError::internal("the installation has no password"))?;
    cx.secrets.open(PASSWORD_FIELD, sealed)
}

/// The installation with a new install password. Everything else in the data (device passwords,
/// settings) is kept: regenerating replaces only this one password.
fn with_password(cx: &AppContext, password: &str) -> Result<portico_sdk::Installation, AppError> {
    let mut inst = cx.installation.clone();
    if !inst.data.is_object() {
        inst.data = json!({});
    }
    inst.data[PASSWORD_FIELD] = Value::String(cx.secrets.seal(PASSWORD_FIELD, password)?);
    inst.status = InstallationStatus::Connected;
    inst.status_text = None;
    inst.account = Some(Account {
        username: cx.org.slug.clone(),
        server_url: cx.base_url(),
    });
    Ok(inst)
}

#[async_trait]
impl ExternalApp for CardDavApp {
    fn manifest(&self) -> AppManifest {
        AppManifest::new(
            "carddav",
            "CardDAV contacts",
            "Your customers as an address book on phones and computers (Apple Contacts, DAVx5, Thunderbird)",
        )
        .with_action(
            "regenerate-password",
            "Replace the install password; devices using it must enter the new one (device passwords keep working)",
        )
        .with_action("credentials", "Show the address book URL, username and password")
        .with_file_action(
            "apple-profile",
            "Configuration profile that adds the address book to an iPhone, iPad or Mac in one tap",
        )
        .with_action(
            "create-device",
            "Create a password for one device: {label, read_only?}; the password is shown once",
        )
        .with_action("list-devices", "List the passwords with label, creation and last use (never the passwords)")
        .with_action("revoke-device", "Revoke one device password: {id}; the others keep working")
        .with_action(
            "set-read-only",
            "Make the address book read-only for every password, or writable again: {read_only}",
        )
        .with_config_field(
            ConfigField::new(devices::READ_ONLY_FIELD, "Read-only address book", ConfigKind::Boolean)
                .with_default(json!(false))
                .with_help(
                    "Phones and computers can read the contacts but not change them. Can be changed later.",
                ),
        )
        .with_well_known("carddav")
        // 2: contact groups from tags (built once for installations from before).
        .with_data_version(DATA_VERSION)
    }

    async fn migrate(
        &self,
        cx: &AppContext,
        from_version: u32,
    ) -> Result<portico_sdk::Installation, AppError> {
        if from_version < 2 {
            // The host logs the migration; the count is not needed here.
            crate::groups::backfill(cx).await?;
        }
        Ok(cx.installation.clone())
    }

    async fn install(
        &self,
        cx: &AppContext,
        input: InstallInput,
    ) -> Result<InstallOutcome, AppError> {
        let password = match input.secrets.get("password") {
            Some(p) if p.expose().chars().count() >= 8 && !p.expose().contains(':') => {
                p.expose().clone()
            }
            Some(_) => {
                return Err(AppError::unprocessable(
                    "an imported password must be at least 8 characters and contain no ':'",
                ))
            }
            None => cx.secrets.random_token(PASSWORD_BYTES).into_inner(),
        };
        let mut inst = with_password(cx, &password)?;
        let read_only = input.config[devices::READ_ONLY_FIELD]
            .as_bool()
            .unwrap_or(false);
        inst.data[devices::READ_ONLY_FIELD] = Value::Bool(read_only);
        // Customers tagged before the app was installed: their groups, now.
        crate::groups::backfill(cx).await?;
        Ok(InstallOutcome {
            installation: inst,
            reveal: connection_info(cx, &password),
        })
    }

    async fn status(&self, cx: &AppContext) -> Result<AppStatus, AppError> {
        let mut s = AppStatus::from_installation(&cx.installation);
        let contacts = cx.customers.count().await;
        if contacts.is_err() {
            s.status = InstallationStatus::Error;
            s.text = Some("the customer store is unavailable".into());
        }
        let last = self
            .last_sync
            .get(&cx.installation.id)
            .map(|t| t.0)
            .or_else(|| cx.installation.data[LAST_SYNC_FIELD].as_i64());
        s.details = json!({
            "contacts": contacts.ok(),
            "last_sync": last.map(|ms| card::http_date(ms / 1000)),
            "url": cx.base_url(),
            "username": cx.org.slug,
            "devices": devices::devices_of(&cx.installation.data).len(),
            "read_only": devices::read_only_of(&cx.installation.data),
        });
        Ok(s)
    }

    async fn action(
        &self,
        cx: &AppContext,
        name: &str,
        input: Value,
    ) -> Result<ActionOutcome, AppError> {
        match name {
            "regenerate-password" => {
                let password = cx.secrets.random_token(PASSWORD_BYTES).into_inner();
                let inst = with_password(cx, &password)?;
                // Webhook receivers learn that connected devices will ask for the new one.
                cx.events
                    .emit("password_regenerated", json!({ "username": cx.org.slug }))
                    .await?;
                Ok(ActionOutcome::changed(inst, connection_info(cx, &password)))
            }
            "credentials" => {
                let password = current_password(cx)?;
                Ok(ActionOutcome::result(connection_info(
                    cx,
                    password.expose(),
                )))
            }
            "apple-profile" => {
                let include = match &input {
                    Value::Null => false,
                    Value::Object(m) => match m.get("include_password") {
                        None | Some(Value::Null) => false,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => {
                            return Err(AppError::bad_request(
                                "include_password must be true or false",
                            ))
                        }
                    },
                    _ => return Err(AppError::bad_request("the input must be an object")),
                };
                let url = cx.base_url();
                let location = profile::AccountLocation::from_url(&url).ok_or_else(|| {
                    AppError::internal(format!("the public URL {url} is not http(s)"))
                })?;
                let password = if include {
                    Some(current_password(cx)?)
                } else {
                    None
                };
                let description = format!("{} customers", cx.org.name);
                let text = profile::mobileconfig(&profile::ProfileInput {
                    location: &location,
                    username: &cx.org.slug,
                    password: password.as_ref().map(|p| p.expose().as_str()),
                    description: &description,
                    account_id: cx.installation.id.as_str(),
                });
                Ok(ActionOutcome::file(ActionFile {
                    filename: format!("{}-contacts.mobileconfig", cx.org.slug),
                    content_type: "application/x-apple-aspen-config".into(),
                    content: text.into(),
                }))
            }
            "create-device" => device_actions::create(cx, &input, PASSWORD_BYTES),
            "list-devices" => Ok(ActionOutcome::result(device_actions::list(
                cx,
                &self.credentials,
            ))),
            "revoke-device" => device_actions::revoke(cx, &self.credentials, &input),
            "set-read-only" => device_actions::set_read_only(cx, &input),
            other => Err(AppError::not_found(format!("unknown action '{other}'"))),
        }
    }

    async fn uninstall(&self, cx: &AppContext) -> Result<(), AppError> {
        self.credentials.forget(&cx.installation.id);
        self.last_sync.remove(&cx.installation.id);
        Ok(())
    }

    async fn customer_changing(
        &self,
        cx: &AppContext,
        change: CustomerChange<'_>,
    ) -> Result<(), AppError> {
        let now = cx.clock.now();
        store_name_split(change.before, change.draft);
        match (change.before, change.draft.card.clone()) {
            // Keep a stored card in step with an admin edit: patch only what changed, so every
            // other property stays as the client wrote it.
            (Some(before), Some(stored)) if stored.media.is_empty() => {
                let text = vcard::patch(&stored.text, before, change.draft, now);
                if text != stored.text {
                    let etag = vcard::etag(&text);
                    change.draft.card = Some(StoredCard {
                        text,
                        etag,
                        ..stored
                    });
                }
            }
            // A card with photos stored apart: patch the whole card (the photos are properties
            // like any other, so they stay as the client wrote them), then cut them out again.
            (Some(before), Some(stored)) => {
                // Pieces the draft brings itself (another hook, a draft with new photos) are
                // used as they are; otherwise the stored ones are read.
                let given = change.draft.card_media.take();
                let old_pieces = match &given {
                    Some(p) => p.clone(),
                    None => card::media_pieces(cx, &before.id, &stored).await?,
                };
                let whole = vcard::media::reassemble(
                    &stored.text,
                    stored
                        .media
                        .iter()
                        .zip(&old_pieces)
                        .map(|(m, p)| (m.offset as usize, p.as_str())),
                )
                .ok_or_else(|| AppError::internal("a stored card's photo offsets are damaged"))?;
                let text = vcard::patch(&whole, before, change.draft, now);
                if text != whole {
                    let etag = vcard::etag(&text);
                    let (mut card, pieces) =
                        write::stored_card(stored.name.clone(), stored.uid.clone(), &text, etag)
                            .map_err(|e| {
                                AppError::unprocessable(format!("the edited card: {e}"))
                            })?;
                    if given.is_none() && pieces == old_pieces {
                        // Same photos: the new text names the stored pieces (no bytes move).
                        for (m, old) in card.media.iter_mut().zip(&stored.media) {
                            m.key = old.key.clone();
                        }
                        change.draft.card_media = None;
                    } else {
                        change.draft.card_media = Some(pieces);
                    }
                    change.draft.card = Some(card);
                } else {
                    change.draft.card_media = given;
                }
            }
            // No card yet: render one now, so reads copy bytes instead of rendering.
            (_, None) => {
                let Some(id) = change
                    .draft
                    .id
                    .clone()
                    .or_else(|| change.before.map(|b| b.id.clone()))
                else {
                    return Ok(());
                };
                let customer = change.draft.clone().into_customer(id.clone(), 0, now);
                let link = cx.links.customer_link(&cx.org, &customer);
                let text = vcard::render(
                    &customer,
                    id.as_str(),
                    link.as_deref(),
                    vcard::VCardVersion::V3,
                );
                let etag = vcard::etag(&text);
                change.draft.card = Some(StoredCard {
                    name: id.to_string(),
                    uid: id.to_string(),
                    text,
                    etag,
                    media: Vec::new(),
                });
            }
            (None, Some(_)) => {}
        }
        Ok(())
    }

    async fn customers_changed(
        &self,
        cx: &AppContext,
        changes: &[CustomerWritten],
    ) -> Result<(), AppError> {
        crate::groups::customers_changed(cx, changes).await
    }

    async fn well_known(
        &self,
        cx: &AppContext,
        _name: &str,
        req: AppRequest,
    ) -> Result<AppResponse, AppError> {
        let Some(access) = self.credentials.authenticate(cx, &req)? else {
            return Ok(auth::challenge());
        };
        self.credentials.note_use(cx, &access).await;
        // RFC 6764 §5: redirect the client to the context path of the service.
        Ok(AppResponse::new(StatusCode::MOVED_PERMANENTLY).with_header("location", &req.base_path))
    }

    async fn handle(&self, cx: &AppContext, req: AppRequest) -> Result<AppResponse, AppError> {
        let Some(access) = self.credentials.authenticate(cx, &req)? else {
            return Ok(auth::challenge());
        };
        let r = crate::tree::resolve(&req.segments);
        let resp = self.dispatch(cx, &r, &req, &access).await;
        // After the request's own writes (PROPPATCH, the last sync), never racing them.
        self.credentials.note_use(cx, &access).await;
        let mut resp = resp?;
        let listing = matches!(req.method.as_str(), "PROPFIND" | "REPORT");
        if listing && resp.status == StatusCode::MULTI_STATUS && crate::props::wants_minimal(&req) {
            // RFC 7240 §3: say that the preference was honoured.
            resp.headers.insert(
                "preference-applied",
                portico_sdk::http::HeaderValue::from_static("return=minimal"),
            );
        }
        resp.headers.insert(
            "dav",
            portico_sdk::http::HeaderValue::from_static(DAV_HEADER),
        );
        Ok(resp)
    }
}

impl CardDavApp {
    async fn dispatch(
        &self,
        cx: &AppContext,
        r: &Resource,
        req: &AppRequest,
        access: &Access,
    ) -> Result<AppResponse, AppError> {
        let method = req.method.as_str();
        // A card must exist for every method but PUT (and OPTIONS).
        let mut group = None;
        let card = match r {
            Resource::Card(stem) if method != "PUT" && method != "OPTIONS" => {
                match cx.customers.find_by_resource_name(stem).await? {
                    Some(c) => Some(Card::of(cx, c)),
                    // Contact groups share the book's namespace (crate::groups).
                    None => match crate::groups::find(cx, stem).await? {
                        Some(g) => {
                            group = Some(g.clone());
                            Some(g)
                        }
                        None => return Ok(respond::status(StatusCode::NOT_FOUND, "no such card")),
                    },
                }
            }
            // RFC 4918 §9.3.1: MKCOL on an unmapped URL where collections may not be created
            // is 403 (this server has exactly one address book per organization).
            Resource::Missing | Resource::BadCardName if method == "MKCOL" => {
                return Ok(respond::status(
                    StatusCode::FORBIDDEN,
                    "this server has exactly one address book; new collections cannot be created",
                ))
            }
            // Card resources are named *.vcf; a PUT elsewhere in the book cannot create one.
            Resource::BadCardName if method == "PUT" => {
                return Ok(respond::status(
                    StatusCode::FORBIDDEN,
                    "card resources are named *.vcf",
                ))
            }
            Resource::Missing => return Ok(respond::status(StatusCode::NOT_FOUND, "not found")),
            Resource::BadCardName if method != "OPTIONS" => {
                return Ok(respond::status(
                    StatusCode::NOT_FOUND,
                    "card resources are named *.vcf",
                ))
            }
            _ => None,
        };
        let seq = match r {
            // Any listing may show the book's getctag / sync-token (e.g. the home at Depth 1).
            _ if method == "PROPFIND" || method == "REPORT" => (
                cx.customers.current_seq().await?,
                cx.groups.current_seq().await?,
            ),
            _ => (0, 0),
        };
        let env = self.env(cx, req, seq, access);
        if access.read_only {
            // RFC 3744 §7.1.1: refuse before anything is parsed or changed.
            let exists = match (method, r) {
                ("PUT", Resource::Card(stem)) => {
                    cx.customers.find_by_resource_name(stem).await?.is_some()
                }
                _ => card.is_some(),
            };
            if let Some(p) = privileges::write_needs(&env.hrefs, r, method, exists) {
                return Ok(respond::precondition(p));
            }
        }
        match req.method.clone() {
            Method::OPTIONS => Ok(AppResponse::new(StatusCode::OK).with_header("allow", allow(r))),
            Method::GET | Method::HEAD => {
                let mut card = card;
                if let Some(c) = card.as_mut() {
                    // The bytes the client wrote: photos read back in (vcard::media).
                    c.complete(cx).await?;
                }
                Ok(get(r, card.as_ref(), req))
            }
            Method::PUT => match r {
                Resource::Card(stem) => write::put(&env, stem, req).await,
                _ => Ok(respond::precondition(
                    crate::dav::Precondition::AddressbookCollectionLocationOk,
                )),
            },
            Method::DELETE => match (r, &group, &card) {
                (Resource::Card(_), Some(g), _) => crate::groups::delete(&env, g, req).await,
                (Resource::Card(stem), None, Some(c)) => {
                    let resp = write::delete(&env, stem, req).await?;
                    if resp.status == StatusCode::NO_CONTENT {
                        // The contact leaves its groups.
                        // `c` was read whole above (`Card::of`), so it has its customer.
                        if let Some(gone) = c.customer() {
                            crate::groups::customer_deleted(cx, gone).await?;
                        }
                    }
                    Ok(resp)
                }
                (Resource::Card(stem), None, None) => write::delete(&env, stem, req).await,
                _ => Ok(respond::status(
                    StatusCode::FORBIDDEN,
                    "collections cannot be deleted",
                )),
            },
            m if m.as_str() == "PROPFIND" => {
                let resp = propfind::propfind(&env, r, card.as_ref(), req).await?;
                if *r == Resource::Book && req.header("depth") == Some("1") {
                    self.record_sync(cx).await;
                }
                Ok(resp)
            }
            m if m.as_str() == "REPORT" => {
                let resp = report::report(&env, r, req).await?;
                if resp.status == StatusCode::MULTI_STATUS {
                    self.record_sync(cx).await;
                }
                Ok(resp)
            }
            m if m.as_str() == "PROPPATCH" => proppatch::proppatch(&env, r, req).await,
            // One address book per organization: no new collections (RFC 4918 §9.3, RFC 5689).
            // RFC 4918 §9.3.1: MKCOL on an existing resource is 405.
            m if m.as_str() == "MKCOL" => Ok(respond::method_not_allowed(allow(r))),
            m if m.as_str() == "COPY" || m.as_str() == "MOVE" => Ok(respond::status(
                StatusCode::FORBIDDEN,
                "cards cannot be copied or moved; PUT a new card instead",
            )),
            _ => Ok(respond::method_not_allowed(allow(r))),
        }
    }
}

/// Stores the split of the display name into given and family names when neither is known,
/// so `N` is derived once and every later reader (cards, the admin, exports) sees the same
/// parts. A stored split that is still exactly what [`vcard::split_full_name`] makes of the old
/// name follows a renamed customer; parts anyone set differently are never touched.
fn store_name_split(
    before: Option<&portico_sdk::Customer>,
    draft: &mut portico_sdk::CustomerDraft,
) {
    let neither = draft.given_name.is_none() && draft.family_name.is_none();
    let follows_rename = before.is_some_and(|b| {
        b.name != draft.name
            && b.given_name == draft.given_name
            && b.family_name == draft.family_name
            && vcard::split_full_name(&b.name) == (b.given_name.clone(), b.family_name.clone())
    });
    if neither || follows_rename {
        let (given, family) = vcard::split_full_name(&draft.name);
        draft.given_name = given;
        draft.family_name = family;
    }
}

/// GET/HEAD: cards get their bytes (RFC 6352 §6.3.2 content negotiation by `Accept`);
/// collections a short text for people who paste the URL into a browser.
fn get(r: &Resource, card: Option<&Card>, req: &AppRequest) -> AppResponse {
    let Some(card) = card else {
        let text = match r {
            Resource::Book => "CardDAV address book. Add this server to a contacts app to use it.",
            _ => "Portico CardDAV. Add this URL to a contacts app (Apple Contacts, DAVx5, Thunderbird).",
        };
        return AppResponse::text(StatusCode::OK, text);
    };
    let version = card::version_from_accept(req.header("accept"));
    let (text, etag) = card.in_version(version);
    match write::evaluate(req, Some(&etag), true) {
        write::Preconditions::NotModified => {
            return AppResponse::new(StatusCode::NOT_MODIFIED).with_header("etag", &etag)
        }
        write::Preconditions::Failed => {
            return respond::status(StatusCode::PRECONDITION_FAILED, "precondition failed")
        }
        write::Preconditions::Pass => {}
    }
    AppResponse::new(StatusCode::OK)
        .with_header("content-type", "text/vcard; charset=utf-8")
        .with_header("etag", &etag)
        .with_header("last-modified", &card.last_modified())
        .with_body(text.into_owned())
}
