//! The host's operations, shared by the admin API, the gateway and the CLI: organizations,
//! installations (with the app hooks), customers (with the `customer_changing` hook).
use crate::error::HostError;
use crate::ports::{outcome, InstallationRecord, OrgDirectory};
use crate::registry::{Registered, Registry};
use crate::secrets::{InstallationSecrets, Sealer};
use crate::store::Store;
use dashmap::DashMap;
use portico_sdk::{
    AppContext, AppError, AppStatus, Clock, Customer, CustomerChange, CustomerDirectory,
    CustomerDraft, CustomerId, ErrorKind, HostLinks, InstallInput, Installation, InstallationId,
    InstallationStatus, OrgId, Organization, SystemClock,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a resolved installation is trusted before it is read again. Other processes sharing
/// the store see a change (a new password, an uninstall) within this time.
pub const RESOLVE_TTL: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Resolved {
    at: Instant,
    found: Option<(Organization, Installation)>,
}

/// The running host's state.
pub struct Portico {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The registered apps.
    pub registry: Registry,
    /// The master key.
    pub sealer: Sealer,
    /// URLs for apps.
    pub links: HostLinks,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Failed-authentication counters (gateway and admin API).
    pub limiter: crate::limits::FailureLimiter,
    /// The operator's app settings (disabled kinds, rate limits, request-log size).
    pub apps: crate::operations::AppsConfig,
    /// Per-installation request rate limits.
    pub rate_limiter: crate::operations::RateLimiter,
    /// Per-installation recent requests.
    pub request_log: crate::operations::RequestLog,
    /// Metrics for `/metrics`.
    pub metrics: Arc<crate::operations::Metrics>,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::Webhooks,
    cache: DashMap<(String, String), Resolved>,
}

/// The slug rule, as error messages state it.
pub const SLUG_RULE: &str =
    "slug must be 1-63 lowercase letters, digits or '-', not starting or ending with '-'";

/// Checks an organization slug: 1–63 of `a-z 0-9 -`, not starting or ending with `-`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// The result of an install request.
#[derive(Debug, Clone, Serialize)]
pub struct Installed {
    /// The stored installation.
    pub installation: InstallationView,
    /// Shown once (e.g. the generated password); null when the app was already installed.
    pub reveal: serde_json::Value,
    /// False if the app was already installed and this returned the existing record.
    pub created: bool,
}

/// An installation as the admin API shows it: no app data (it may hold sealed secrets).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct InstallationView {
    /// Id.
    #[schema(value_type = String)]
    pub id: InstallationId,
    /// Organization.
    #[schema(value_type = String)]
    pub org_id: OrgId,
    /// App kind.
    pub kind: String,
    /// State: `pending`, `connected`, `error` or `disabled`.
    #[schema(value_type = String)]
    pub status: InstallationStatus,
    /// Explanation.
    pub status_text: Option<String>,
    /// Connection details.
    #[schema(value_type = Option<Object>)]
    pub account: Option<portico_sdk::Account>,
    /// The gateway URL of the installation.
    pub url: String,
    /// Revision.
    pub revision: u64,
}

/// A partial update of a customer through the admin API: absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// Refuse the update (412) unless the stored revision is this one.
    #[serde(default)]
    pub expected_revision: Option<u64>,
    /// Name.
    pub name: Option<String>,
    /// Given name (null clears).
    #[serde(default, with = "double_option")]
    pub given_name: Option<Option<String>>,
    /// Family name (null clears).
    #[serde(default, with = "double_option")]
    pub family_name: Option<Option<String>>,
    /// Primary email (null clears).
    #[serde(default, with = "double_option")]
    pub email: Option<Option<String>>,
    /// Primary phone (null clears).
    #[serde(default, with = "double_option")]
    pub phone: Option<Option<String>>,
    /// Further emails.
    pub known_emails: Option<Vec<String>>,
    /// Further phones.
    pub known_phones: Option<Vec<String>>,
    /// Birthday (null clears).
    #[serde(default, with = "double_option")]
    pub birthday: Option<Option<String>>,
    /// Note (null clears).
    #[serde(default, with = "double_option")]
    pub note: Option<Option<String>>,
    /// Tags.
    pub tags: Option<Vec<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

impl CustomerPatch {
    /// The draft that results from applying this patch to `c`.
    pub fn apply(self, c: &Customer) -> CustomerDraft {
        let mut d = CustomerDraft::from_customer(c);
        if let Some(v) = self.name {
            d.name = v;
        }
        if let Some(v) = self.given_name {
            d.given_name = v;
        }
        if let Some(v) = self.family_name {
            d.family_name = v;
        }
        if let Some(v) = self.email {
            d.email = v;
        }
        if let Some(v) = self.phone {
            d.phone = v;
        }
        if let Some(v) = self.known_emails {
            d.known_emails = v;
        }
        if let Some(v) = self.known_phones {
            d.known_phones = v;
        }
        if let Some(v) = self.birthday {
            d.birthday = v;
        }
        if let Some(v) = self.note {
            d.note = v;
        }
        if let Some(v) = self.tags {
            d.tags = v;
        }
        d
    }
}

/// What an action did: its result, and the file of a file action.
#[derive(Debug, Clone)]
pub struct ActionDone {
    /// The result shown to the caller.
    pub result: serde_json::Value,
    /// The file, for file actions.
    pub file: Option<portico_sdk::ActionFile>,
    /// Whether the action changed the installation (e.g. a new password).
    pub changed: bool,
}

/// What a bulk import did.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct ImportReport {
    /// Customers created.
    pub created: usize,
    /// Customers updated (the line named an existing id).
    pub updated: usize,
    /// Lines refused, with line number and reason. Refused lines change nothing.
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<(usize, String)>,
}

impl Portico {
    /// A host over a store with the given apps.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        sealer: Sealer,
        links: HostLinks,
    ) -> Self {
        Portico {
            store,
            registry,
            sealer,
            links,
            clock: Arc::new(SystemClock),
            limiter: crate::limits::FailureLimiter::new(),
            apps: crate::operations::AppsConfig::default(),
            rate_limiter: crate::operations::RateLimiter::default(),
            request_log: crate::operations::RequestLog::default(),
            metrics: Arc::new(crate::operations::Metrics::new()),
            webhooks: crate::webhooks::Webhooks::new(Default::default()),
            cache: DashMap::new(),
        }
    }

    /// Applies the `[apps]` and `[webhooks]` settings (builder style).
    pub fn with_operations(
        mut self,
        apps: crate::operations::AppsConfig,
        webhooks: crate::webhooks::WebhooksConfig,
    ) -> Self {
        self.apps = apps;
        self.webhooks = crate::webhooks::Webhooks::new(webhooks);
        self
    }

    /// Uses `metrics` (shared with a [`crate::store::metered::MeteredStore`]) (builder style).
    pub fn with_metrics(mut self, metrics: Arc<crate::operations::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether the operator switched this app kind off.
    pub fn kind_disabled(&self, kind: &str) -> bool {
        self.apps.disabled.iter().any(|k| k == kind)
    }

    /// Runs the apps' data migrations: every installation whose `data_version` is older than
    /// its app's gets [`portico_sdk::ExternalApp::migrate`], once (the new version is stored
    /// with the record); a record newer than its app stops the startup. Returns how many
    /// records were migrated.
    pub async fn migrate_installations(self: &Arc<Self>) -> Result<usize, HostError> {
        let mut migrated = 0;
        let orgs = self.store.list_orgs().await?;
        let mut outdated = Vec::new();
        for org in &orgs {
            for inst in self.store.list_installations(&org.id).await? {
                let Some(reg) = self.registry.get(&inst.kind) else {
                    continue;
                };
                let want = reg.manifest.data_version;
                if inst.data_version > want {
                    return Err(HostError::kind(
                        ErrorKind::Internal,
                        format!(
                            "installation {} of {} has '{}' data version {}, newer than this build's {want}: run the newer Portico (or restore a backup)",
                            inst.id, org.id, inst.kind, inst.data_version
                        ),
                    ));
                }
                if inst.data_version < want {
                    outdated.push((org.clone(), inst, reg));
                }
            }
        }
        let total = outdated.len();
        for (org, inst, reg) in outdated {
            let from = inst.data_version;
            let want = reg.manifest.data_version;
            let cx = self.context(&org, &inst);
            let mut next = reg.app.migrate(&cx, from).await.map_err(|e| {
                HostError::kind(
                    ErrorKind::Internal,
                    format!(
                        "migrating installation {} ('{}' data {from} -> {want}): {}",
                        inst.id, inst.kind, e.message
                    ),
                )
            })?;
            next.id = inst.id.clone();
            next.org_id = inst.org_id.clone();
            next.kind = inst.kind.clone();
            next.revision = inst.revision;
            next.data_version = want;
            next.updated_at = self.clock.now();
            match self.store.update_installation(&next).await? {
                crate::store::Outcome::Done(_) => {
                    migrated += 1;
                    self.invalidate(&inst.org_id, &inst.id);
                    tracing::info!(
                        installation = %inst.id, kind = %inst.kind, from, to = want,
                        progress = format!("{migrated}/{total}"), "migrated installation data"
                    );
                }
                // Another process migrated (or changed) it meanwhile: it is that one's job.
                crate::store::Outcome::PreconditionFailed | crate::store::Outcome::NotFound => {}
                crate::store::Outcome::Conflict(m) => {
                    return Err(HostError::kind(ErrorKind::Internal, m));
                }
            }
        }
        Ok(migrated)
    }

    /// The public gateway URL of an installation.
    pub fn installation_url(&self, inst: &Installation) -> String {
        format!(
            "{}/api/apps/{}/{}/",
            self.links.public_url, inst.org_id, inst.id
        )
    }

    fn view(&self, inst: &Installation) -> InstallationView {
        InstallationView {
            id: inst.id.clone(),
            org_id: inst.org_id.clone(),
            kind: inst.kind.clone(),
            status: inst.status,
            status_text: inst.status_text.clone(),
            account: inst.account.clone(),
            url: self.installation_url(inst),
            revision: inst.revision,
        }
    }

    /// Drops cached lookups of an installation (after this process changed it).
    pub fn invalidate(&self, org: &OrgId, id: &InstallationId) {
        self.cache.remove(&(org.to_string(), id.to_string()));
    }

    /// The context an app gets for one call.
    pub fn context(self: &Arc<Self>, org: &Organization, inst: &Installation) -> AppContext {
        let me = Arc::downgrade(self);
        let events = crate::webhooks::InstallationEvents {
            portico: Arc::downgrade(self),
            org: org.id.clone(),
            installation: inst.id.clone(),
            kind: inst.kind.clone(),
        };
        let mut customers = self.directory(&org.id);
        // Changes an app makes (a contact edited on a phone) are reported to webhooks.
        customers.notify = Some(Arc::new(crate::webhooks::InstallationEvents {
            portico: Arc::downgrade(self),
            org: org.id.clone(),
            installation: inst.id.clone(),
            kind: inst.kind.clone(),
        }));
        AppContext {
            org: org.clone(),
            installation: inst.clone(),
            customers: Arc::new(customers),
            // The groups directory reports nothing to webhooks: group records are the app's
            // own derived data (the customers they change are reported).
            groups: Arc::new(self.directory(&org.id.group_space())),
            installation_store: Arc::new(InstallationRecord {
                store: self.store.clone(),
                installation: inst.clone(),
                on_change: Arc::new(move |i: &Installation| {
                    if let Some(p) = me.upgrade() {
                        p.invalidate(&i.org_id, &i.id);
                    }
                }),
            }),
            secrets: Arc::new(InstallationSecrets {
                sealer: self.sealer.clone(),
                installation: inst.id.clone(),
            }),
            links: self.links.clone(),
            clock: self.clock.clone(),
            events: Arc::new(events),
        }
    }

    /// The organization's customers.
    pub fn directory(&self, org: &OrgId) -> OrgDirectory {
        OrgDirectory {
            store: self.store.clone(),
            org: org.clone(),
            clock: self.clock.clone(),
            notify: None,
        }
    }

    /// Resolves `{org}/{installation}` from the gateway path, scoped to the organization.
    /// Unknown, foreign, malformed and disabled all give `None`.
    pub async fn resolve(
        &self,
        org: &str,
        id: &str,
    ) -> Result<Option<(Organization, Installation, Registered)>, HostError> {
        let (Ok(org_id), Ok(inst_id)) = (OrgId::parse(org), InstallationId::parse(id)) else {
            return Ok(None);
        };
        let key = (org.to_owned(), id.to_owned());
        let cached = self
            .cache
            .get(&key)
            .filter(|r| r.at.elapsed() < RESOLVE_TTL)
            .map(|r| r.clone());
        self.metrics.cache_lookup(cached.is_some());
        let found = match cached {
            Some(r) => r.found,
            None => {
                let found = match self.store.get_org(&org_id).await? {
                    None => None,
                    Some(o) => self
                        .store
                        .get_installation(&org_id, &inst_id)
                        .await?
                        .map(|i| (o, i)),
                };
                if self.cache.len() > 100_000 {
                    self.cache.clear();
                }
                self.cache.insert(
                    key,
                    Resolved {
                        at: Instant::now(),
                        found: found.clone(),
                    },
                );
                found
            }
        };
        Ok(found.and_then(|(o, i)| {
            if i.status == InstallationStatus::Disabled {
                return None;
            }
            self.registry.get(&i.kind).map(|r| (o, i, r))
        }))
    }

    // ----- organizations -----

    /// Creates an organization.
    pub async fn create_org(
        &self,
        slug: &str,
        name: &str,
        id: Option<OrgId>,
    ) -> Result<Organization, HostError> {
        if !valid_slug(slug) {
            return Err(HostError::kind(ErrorKind::Unprocessable, SLUG_RULE));
        }
        if name.trim().is_empty() {
            return Err(HostError::kind(
                ErrorKind::Unprocessable,
                "name must not be empty",
            ));
        }
        let org = Organization {
            id: id.unwrap_or_else(OrgId::random),
            slug: slug.to_owned(),
            name: name.trim().to_owned(),
        };
        Ok(outcome(self.store.create_org(&org).await?, "organization")?)
    }

    /// An organization, or 404.
    pub async fn org(&self, id: &OrgId) -> Result<Organization, HostError> {
        self.store
            .get_org(id)
            .await?
            .ok_or_else(|| HostError::kind(ErrorKind::NotFound, "organization not found"))
    }

    // ----- installations -----

    fn app(&self, kind: &str) -> Result<Registered, HostError> {
        self.registry
            .get(kind)
            .ok_or_else(|| HostError::kind(ErrorKind::NotFound, format!("no app kind '{kind}'")))
    }

    async fn installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Installation, HostError> {
        self.store
            .get_installation(org, id)
            .await?
            .ok_or_else(|| HostError::kind(ErrorKind::NotFound, "installation not found"))
    }

    /// Installs an app kind for an organization, or returns the existing installation of that
    /// kind. `id` lets a migration keep the installation id (and so the URL) of an older system.
    pub async fn install(
        self: &Arc<Self>,
        org_id: &OrgId,
        kind: &str,
        input: InstallInput,
        id: Option<InstallationId>,
    ) -> Result<Installed, HostError> {
        let org = self.org(org_id).await?;
        let reg = self.app(kind)?;
        let existing = self.store.list_installations(org_id).await?;
        if let Some(found) = existing.iter().find(|i| i.kind == kind) {
            if id.as_ref().is_some_and(|want| want != &found.id) {
                return Err(HostError::kind(
                    ErrorKind::Conflict,
                    format!("'{kind}' is already installed with another id"),
                ));
            }
            return Ok(Installed {
                installation: self.view(found),
                reveal: serde_json::Value::Null,
                created: false,
            });
        }
        let mut input = input;
        input.config = portico_sdk::ConfigField::check(&reg.manifest.config, &input.config)
            .map_err(|why| HostError::kind(ErrorKind::Unprocessable, why))?;
        let now = self.clock.now();
        let fresh = Installation {
            id: id.unwrap_or_else(InstallationId::random),
            org_id: org_id.clone(),
            kind: kind.to_owned(),
            status: InstallationStatus::Pending,
            status_text: None,
            account: None,
            data: serde_json::Value::Null,
            revision: 1,
            created_at: now,
            updated_at: now,
            data_version: reg.manifest.data_version,
        };
        let cx = self.context(&org, &fresh);
        reg.app.validate(&cx, &input).await?;
        let out = reg.app.install(&cx, input).await?;
        let mut inst = out.installation;
        inst.id = fresh.id.clone();
        inst.org_id = fresh.org_id.clone();
        inst.kind = fresh.kind.clone();
        inst.revision = 1;
        inst.created_at = now;
        inst.updated_at = now;
        inst.data_version = reg.manifest.data_version;
        let stored = outcome(self.store.insert_installation(&inst).await?, "installation")?;
        self.invalidate(org_id, &stored.id);
        tracing::info!(org = %org_id, installation = %stored.id, kind, "installed");
        crate::webhooks::emit_logged(
            self,
            org_id,
            Some(&stored.id),
            "installation.installed",
            serde_json::json!({ "kind": kind }),
        )
        .await;
        Ok(Installed {
            installation: self.view(&stored),
            reveal: out.reveal,
            created: true,
        })
    }

    /// The installations of an organization.
    pub async fn installations(&self, org: &OrgId) -> Result<Vec<InstallationView>, HostError> {
        self.org(org).await?;
        Ok(self
            .store
            .list_installations(org)
            .await?
            .iter()
            .map(|i| self.view(i))
            .collect())
    }

    /// The installation with the status its app reports.
    pub async fn status(
        self: &Arc<Self>,
        org_id: &OrgId,
        id: &InstallationId,
    ) -> Result<(InstallationView, AppStatus), HostError> {
        let org = self.org(org_id).await?;
        let inst = self.installation(org_id, id).await?;
        let reg = self.app(&inst.kind)?;
        let status = reg.app.status(&self.context(&org, &inst)).await?;
        Ok((self.view(&inst), status))
    }

    /// Runs an app action.
    pub async fn action(
        self: &Arc<Self>,
        org_id: &OrgId,
        id: &InstallationId,
        name: &str,
        input: serde_json::Value,
    ) -> Result<ActionDone, HostError> {
        let org = self.org(org_id).await?;
        let inst = self.installation(org_id, id).await?;
        let reg = self.app(&inst.kind)?;
        if !reg.manifest.actions.iter().any(|a| a.name == name) {
            return Err(HostError::kind(
                ErrorKind::NotFound,
                format!("unknown action '{name}'"),
            ));
        }
        let out = reg
            .app
            .action(&self.context(&org, &inst), name, input)
            .await?;
        let changed = out.installation.is_some();
        if let Some(mut next) = out.installation {
            next.id = inst.id.clone();
            next.org_id = inst.org_id.clone();
            next.kind = inst.kind.clone();
            next.revision = inst.revision;
            next.updated_at = self.clock.now();
            outcome(self.store.update_installation(&next).await?, "installation")?;
            self.invalidate(org_id, id);
            crate::webhooks::emit_logged(
                self,
                org_id,
                Some(id),
                "installation.action",
                serde_json::json!({ "kind": inst.kind, "action": name }),
            )
            .await;
        }
        tracing::info!(org = %org_id, installation = %id, action = name, "action run");
        Ok(ActionDone {
            result: out.result,
            file: out.file,
            changed,
        })
    }

    /// Uninstalls: the app's hook runs, then the record is deleted and its URLs answer 404.
    pub async fn uninstall(
        self: &Arc<Self>,
        org_id: &OrgId,
        id: &InstallationId,
    ) -> Result<(), HostError> {
        let org = self.org(org_id).await?;
        let inst = self.installation(org_id, id).await?;
        if let Some(reg) = self.registry.get(&inst.kind) {
            reg.app.uninstall(&self.context(&org, &inst)).await?;
        }
        outcome(
            self.store.delete_installation(org_id, id).await?,
            "installation",
        )?;
        self.invalidate(org_id, id);
        self.request_log.forget(id);
        tracing::info!(org = %org_id, installation = %id, "uninstalled");
        crate::webhooks::emit_logged(
            self,
            org_id,
            Some(id),
            "installation.uninstalled",
            serde_json::json!({ "kind": inst.kind }),
        )
        .await;
        Ok(())
    }

    // ----- customers -----

    /// Lets every installed app of the organization adjust a customer write before it is stored.
    async fn run_customer_hooks(
        self: &Arc<Self>,
        org: &Organization,
        before: Option<&Customer>,
        draft: &mut CustomerDraft,
    ) -> Result<(), HostError> {
        for inst in self.store.list_installations(&org.id).await? {
            if inst.status == InstallationStatus::Disabled {
                continue;
            }
            if let Some(reg) = self.registry.get(&inst.kind) {
                let cx = self.context(org, &inst);
                reg.app
                    .customer_changing(&cx, CustomerChange { before, draft })
                    .await?;
            }
        }
        Ok(())
    }

    /// Tells every installed app of the organization about stored customer writes (after the
    /// fact; see [`portico_sdk::ExternalApp::customers_changed`]). A failing app is logged:
    /// the writes stand.
    async fn run_customers_changed(
        self: &Arc<Self>,
        org: &Organization,
        changes: &[portico_sdk::CustomerWritten],
    ) {
        if changes.is_empty() {
            return;
        }
        let installations = match self.store.list_installations(&org.id).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(org = %org.id, error = %e, "customers_changed hooks skipped");
                return;
            }
        };
        for inst in installations {
            if inst.status == InstallationStatus::Disabled {
                continue;
            }
            if let Some(reg) = self.registry.get(&inst.kind) {
                let cx = self.context(org, &inst);
                if let Err(e) = reg.app.customers_changed(&cx, changes).await {
                    tracing::warn!(
                        org = %org.id, installation = %inst.id, kind = %inst.kind,
                        error = %e.message, "customers_changed hook failed"
                    );
                }
            }
        }
    }

    /// Creates a customer through the admin path.
    pub async fn create_customer(
        self: &Arc<Self>,
        org_id: &OrgId,
        mut draft: CustomerDraft,
    ) -> Result<Customer, HostError> {
        let org = self.org(org_id).await?;
        // The id is fixed before the hooks run, so what they derive from it (a card's UID)
        // matches the stored record.
        draft.id.get_or_insert_with(CustomerId::random);
        crate::store::normalize_draft(&mut draft)
            .map_err(|why| HostError::kind(ErrorKind::Unprocessable, &why))?;
        self.run_customer_hooks(&org, None, &mut draft).await?;
        let created = self.directory(org_id).create(draft).await?;
        let written = portico_sdk::CustomerWritten {
            before: None,
            after: Some(created.clone()),
        };
        self.run_customers_changed(&org, &[written]).await;
        Ok(created)
    }

    /// Updates a customer through the admin path.
    pub async fn update_customer(
        self: &Arc<Self>,
        org_id: &OrgId,
        id: &CustomerId,
        patch: CustomerPatch,
    ) -> Result<Customer, HostError> {
        let org = self.org(org_id).await?;
        let dir = self.directory(org_id);
        let before = dir
            .get(id)
            .await?
            .ok_or_else(|| HostError::kind(ErrorKind::NotFound, "customer not found"))?;
        if patch
            .expected_revision
            .is_some_and(|r| r != before.revision)
        {
            return Err(AppError::precondition_failed("the customer changed meanwhile").into());
        }
        let expected = Some(before.revision);
        let mut draft = patch.apply(&before);
        crate::store::normalize_draft(&mut draft)
            .map_err(|why| HostError::kind(ErrorKind::Unprocessable, &why))?;
        self.run_customer_hooks(&org, Some(&before), &mut draft)
            .await?;
        // The write is conditional on the revision the hooks saw, so a concurrent change is
        // never overwritten with a card patched from stale data.
        let after = dir.update(id, draft, expected).await?;
        let written = portico_sdk::CustomerWritten {
            before: Some(before),
            after: Some(after.clone()),
        };
        self.run_customers_changed(&org, &[written]).await;
        Ok(after)
    }

    /// Deletes a customer.
    pub async fn delete_customer(
        self: &Arc<Self>,
        org_id: &OrgId,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<(), HostError> {
        let org = self.org(org_id).await?;
        let dir = self.directory(org_id);
        let before = dir.get(id).await?;
        dir.delete(id, expected_revision).await?;
        let written = portico_sdk::CustomerWritten {
            before,
            after: None,
        };
        self.run_customers_changed(&org, &[written]).await;
        Ok(())
    }

    /// Imports JSON lines (one customer draft per line); a line with an existing id updates it.
    /// New customers are written in batches (one store transaction each where the backend
    /// supports it); a refused line changes nothing and is reported with its number, and the
    /// other lines are imported (the CLI and demo path; the admin API uses
    /// [`Portico::import_file`], which is all-or-nothing).
    pub async fn import_customers(
        self: &Arc<Self>,
        org_id: &OrgId,
        text: &str,
    ) -> Result<ImportReport, HostError> {
        let parsed = crate::imports::parse(crate::imports::Format::Jsonl, text);
        let mut report = self.import_drafts(org_id, parsed.drafts).await?;
        report.errors.extend(parsed.errors);
        report.errors.sort_by_key(|(n, _)| *n);
        Ok(report)
    }

    /// Imports a file all-or-nothing: every row is parsed and checked first; if any is bad,
    /// nothing is written and the report lists every bad row (`Ok(Err(report))`).
    pub async fn import_file(
        self: &Arc<Self>,
        org_id: &OrgId,
        format: crate::imports::Format,
        text: &str,
    ) -> Result<Result<ImportReport, ImportReport>, HostError> {
        self.org(org_id).await?;
        let parsed = crate::imports::parse(format, text);
        if !parsed.errors.is_empty() {
            return Ok(Err(ImportReport {
                errors: parsed.errors,
                ..ImportReport::default()
            }));
        }
        Ok(Ok(self.import_drafts(org_id, parsed.drafts).await?))
    }

    /// Writes checked drafts: an existing id updates, others are created in batches.
    async fn import_drafts(
        self: &Arc<Self>,
        org_id: &OrgId,
        drafts: Vec<(usize, CustomerDraft)>,
    ) -> Result<ImportReport, HostError> {
        const BATCH: usize = 1000;
        const HOOK_BATCH: usize = 10_000;
        let org = self.org(org_id).await?;
        let dir = self.directory(org_id);
        let mut report = ImportReport::default();
        let mut batch: Vec<(usize, CustomerDraft)> = Vec::new();
        let mut written: Vec<portico_sdk::CustomerWritten> = Vec::new();
        for (n, mut draft) in drafts {
            let before = match &draft.id {
                Some(id) => dir.get(id).await?,
                None => None,
            };
            draft.id.get_or_insert_with(CustomerId::random);
            self.run_customer_hooks(&org, before.as_ref(), &mut draft)
                .await?;
            match &before {
                Some(b) => match dir.update(&b.id, draft, Some(b.revision)).await {
                    Ok(after) => {
                        report.updated += 1;
                        written.push(portico_sdk::CustomerWritten {
                            before: before.clone(),
                            after: Some(after),
                        });
                    }
                    Err(e) if matches!(e.kind, ErrorKind::Internal | ErrorKind::Unavailable) => {
                        return Err(e.into())
                    }
                    Err(e) => report.errors.push((n, e.message)),
                },
                None => {
                    batch.push((n, draft));
                    if batch.len() >= BATCH {
                        self.flush_import(org_id, &mut batch, &mut report, &mut written)
                            .await?;
                    }
                }
            }
            // Apps see the writes in batches: fewer, larger derived writes (CardDAV writes
            // each touched group once per batch).
            if written.len() >= HOOK_BATCH {
                self.run_customers_changed(&org, &std::mem::take(&mut written))
                    .await;
            }
        }
        self.flush_import(org_id, &mut batch, &mut report, &mut written)
            .await?;
        self.run_customers_changed(&org, &written).await;
        Ok(report)
    }

    /// Customers whose name, emails or phones contain `q` (case-insensitive), in id order after
    /// `after`, at most `limit`; the scan reads the book in pages, so memory stays bounded.
    pub async fn search_customers(
        &self,
        org_id: &OrgId,
        q: &str,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, HostError> {
        const PAGE: usize = 1000;
        self.org(org_id).await?;
        let needle = q.trim().to_lowercase();
        let mut out = Vec::new();
        let mut cursor = after.cloned();
        loop {
            let page = self
                .store
                .list_customers(org_id, cursor.as_ref(), PAGE)
                .await?;
            let full = page.len() == PAGE;
            cursor = page.last().map(|c| c.id.clone());
            for c in page {
                if needle.is_empty() || customer_matches(&c, &needle) {
                    out.push(c);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn flush_import(
        &self,
        org_id: &OrgId,
        batch: &mut Vec<(usize, CustomerDraft)>,
        report: &mut ImportReport,
        written: &mut Vec<portico_sdk::CustomerWritten>,
    ) -> Result<(), HostError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (lines, drafts): (Vec<usize>, Vec<CustomerDraft>) =
            std::mem::take(batch).into_iter().unzip();
        let outcomes = self
            .store
            .create_customers(org_id, drafts, self.clock.now())
            .await?;
        for (line, o) in lines.into_iter().zip(outcomes) {
            match o {
                crate::store::Outcome::Done(c) => {
                    report.created += 1;
                    written.push(portico_sdk::CustomerWritten {
                        before: None,
                        after: Some(c),
                    });
                }
                crate::store::Outcome::Conflict(m) => report.errors.push((line, m)),
                other => report.errors.push((line, format!("{other:?}"))),
            }
        }
        Ok(())
    }
}

fn customer_matches(c: &Customer, needle: &str) -> bool {
    let hit = |s: &str| s.to_lowercase().contains(needle);
    hit(&c.name)
        || c.email.as_deref().is_some_and(hit)
        || c.phone.as_deref().is_some_and(hit)
        || c.known_emails.iter().any(|e| hit(e))
        || c.known_phones.iter().any(|p| hit(p))
}
