use crate::{
    AppError, AppRequest, AppResponse, Clock, Customer, CustomerDirectory, CustomerDraft,
    ErrorKind, EventSink, Installation, InstallationPort, InstallationStatus, Organization, Secret,
    SecretBox,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What an app is: its kind, name and the actions it accepts. Returned by
/// [`ExternalApp::manifest`]; the host reads it once at registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppManifest {
    /// The app kind, unique in a host: lowercase letters, digits and `-` (e.g. `"carddav"`).
    pub kind: String,
    /// Display name.
    pub name: String,
    /// One-sentence description for the admin page.
    pub description: String,
    /// The app's version.
    pub version: String,
    /// Actions accepted by [`ExternalApp::action`], with a description each.
    pub actions: Vec<ActionSpec>,
    /// Names under `/.well-known/` this app answers for (e.g. `"carddav"`); see
    /// [`ExternalApp::well_known`].
    pub well_known: Vec<String>,
    /// The settings an installation takes (its install `config`), described so the admin page
    /// can render a form and the host can refuse invalid input before the app sees it (see
    /// [`ConfigField::check`]). Empty: the app takes no configuration (any `config` other
    /// than `null` or `{}` is refused).
    #[serde(default)]
    pub config: Vec<ConfigField>,
    /// The version of the app's per-installation data layout, starting at 1. Raise it when a
    /// release changes what [`Installation::data`] holds, and implement
    /// [`ExternalApp::migrate`]; the host then migrates older records at startup, once each,
    /// and refuses to start if a record is newer than the code.
    #[serde(default = "one")]
    pub data_version: u32,
}

fn one() -> u32 {
    1
}

/// One setting of an app's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigField {
    /// The key in the `config` object.
    pub name: String,
    /// The form label.
    pub label: String,
    /// Help text under the field.
    #[serde(default)]
    pub help: String,
    /// The value's type and limits.
    pub kind: ConfigKind,
    /// Whether the value must be given (a field with a default is never missing).
    #[serde(default)]
    pub required: bool,
    /// The value used when none is given.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
}

/// The type of a [`ConfigField`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ConfigKind {
    /// A string of at most `max_len` characters.
    Text {
        /// The longest accepted value, in characters.
        max_len: usize,
    },
    /// An integer in `min..=max`.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// `true` or `false`.
    Boolean,
    /// One of the listed strings.
    Choice {
        /// The accepted values.
        options: Vec<String>,
    },
}

impl ConfigField {
    /// A field (builder style: chain [`ConfigField::required`], [`ConfigField::with_default`],
    /// [`ConfigField::with_help`]).
    pub fn new(name: &str, label: &str, kind: ConfigKind) -> Self {
        ConfigField {
            name: name.to_owned(),
            label: label.to_owned(),
            help: String::new(),
            kind,
            required: false,
            default: None,
        }
    }
    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Sets the default value.
    pub fn with_default(mut self, value: serde_json::Value) -> Self {
        self.default = Some(value);
        self
    }
    /// Sets the help text.
    pub fn with_help(mut self, help: &str) -> Self {
        self.help = help.to_owned();
        self
    }

    fn check_value(&self, v: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value;
        let name = &self.name;
        match (&self.kind, v) {
            (ConfigKind::Text { max_len }, Value::String(s)) => {
                if s.chars().count() > *max_len {
                    return Err(format!("'{name}' is longer than {max_len} characters"));
                }
            }
            (ConfigKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(i) if (*min..=*max).contains(&i) => {}
                _ => {
                    return Err(format!(
                        "'{name}' must be a whole number from {min} to {max}"
                    ))
                }
            },
            (ConfigKind::Boolean, Value::Bool(_)) => {}
            (ConfigKind::Choice { options }, Value::String(s)) if options.contains(s) => {}
            (ConfigKind::Choice { options }, _) => {
                return Err(format!("'{name}' must be one of: {}", options.join(", ")))
            }
            (kind, _) => {
                let want = match kind {
                    ConfigKind::Text { .. } => "text",
                    ConfigKind::Integer { .. } => "a whole number",
                    ConfigKind::Boolean => "true or false",
                    ConfigKind::Choice { .. } => "a choice",
                };
                return Err(format!("'{name}' must be {want}"));
            }
        }
        Ok(())
    }

    /// Checks an install `config` against `fields`: an object (or `null`, read as `{}`) with
    /// only known keys, every value of its field's type and within its limits, every required
    /// field present. Returns the config with defaults filled in. The host runs this before
    /// [`ExternalApp::validate`] and [`ExternalApp::install`], so apps see only valid input.
    pub fn check(
        fields: &[ConfigField],
        config: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        use serde_json::{Map, Value};
        let given = match config {
            Value::Null => Map::new(),
            Value::Object(m) => m.clone(),
            _ => return Err("config must be a JSON object".into()),
        };
        if let Some(unknown) = given.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
            return Err(if fields.is_empty() {
                format!("this app takes no configuration (got '{unknown}')")
            } else {
                format!(
                    "unknown setting '{unknown}' (known: {})",
                    fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        let mut out = Map::new();
        for f in fields {
            match given.get(&f.name).filter(|v| !v.is_null()) {
                Some(v) => {
                    f.check_value(v)?;
                    out.insert(f.name.clone(), v.clone());
                }
                None => match &f.default {
                    Some(d) => {
                        out.insert(f.name.clone(), d.clone());
                    }
                    None if f.required => return Err(format!("'{}' is required", f.name)),
                    None => {}
                },
            }
        }
        Ok(Value::Object(out))
    }
}

/// An action an app accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpec {
    /// The action name used in the admin API.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The action answers with a file ([`ActionOutcome::file`]), e.g. a device configuration
    /// profile: the admin page offers it as a download and as a one-time link (a QR code) that
    /// works without signing in. File actions must not change the installation.
    #[serde(default)]
    pub file: bool,
}

impl AppManifest {
    /// A manifest with no actions and no well-known names, version `0.1.0`.
    pub fn new(kind: &str, name: &str, description: &str) -> Self {
        AppManifest {
            kind: kind.to_owned(),
            name: name.to_owned(),
            description: description.to_owned(),
            version: "0.1.0".to_owned(),
            actions: Vec::new(),
            well_known: Vec::new(),
            config: Vec::new(),
            data_version: 1,
        }
    }
    /// Adds a configuration setting (builder style).
    pub fn with_config_field(mut self, field: ConfigField) -> Self {
        self.config.push(field);
        self
    }
    /// Sets the data version (builder style); see [`AppManifest::data_version`].
    pub fn with_data_version(mut self, version: u32) -> Self {
        self.data_version = version;
        self
    }
    /// Adds an action (builder style).
    pub fn with_action(mut self, name: &str, description: &str) -> Self {
        self.actions.push(ActionSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            file: false,
        });
        self
    }
    /// Adds a file action (builder style): see [`ActionSpec::file`].
    pub fn with_file_action(mut self, name: &str, description: &str) -> Self {
        self.actions.push(ActionSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            file: true,
        });
        self
    }
    /// Sets the version (builder style).
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }
    /// Claims a `/.well-known/{name}` entry point (builder style).
    pub fn with_well_known(mut self, name: &str) -> Self {
        self.well_known.push(name.to_owned());
        self
    }
}

/// Links the host gives apps for building URLs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostLinks {
    /// The public origin clients use, without a trailing slash (e.g. `https://portico.example`).
    pub public_url: String,
    /// A template for a link to a customer in the platform's admin, with `{org}` and
    /// `{customer}` placeholders; `None` if not configured.
    pub admin_customer_url: Option<String>,
}

impl HostLinks {
    /// The admin link for a customer, if a template is configured.
    pub fn customer_link(&self, org: &Organization, customer: &Customer) -> Option<String> {
        self.admin_customer_url.as_ref().map(|t| {
            t.replace("{org}", org.id.as_str())
                .replace("{customer}", customer.id.as_str())
        })
    }
}

/// Everything an app may use while serving one hook call. Built by the host per call; cheap to
/// clone. New host capabilities arrive as new fields here, not as new hook parameters.
#[derive(Clone)]
pub struct AppContext {
    /// The organization the call belongs to.
    pub org: Organization,
    /// The installation record as loaded at the start of the call.
    pub installation: Installation,
    /// The organization's customers.
    pub customers: Arc<dyn CustomerDirectory>,
    /// The organization's contact groups, kept as records of a second directory with its own
    /// change log (ids, resource names and card UIDs unique among groups; the same revision
    /// checks and tombstones as customers). Scoped to [`OrgId::group_space`] of the
    /// organization, so no other organization's data is reachable through it.
    ///
    /// [`OrgId::group_space`]: crate::OrgId::group_space
    pub groups: Arc<dyn CustomerDirectory>,
    /// The installation's own record, for writes made while handling requests.
    pub installation_store: Arc<dyn InstallationPort>,
    /// Sealing and opening of this installation's secrets.
    pub secrets: Arc<dyn SecretBox>,
    /// URLs.
    pub links: HostLinks,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Events to the organization's webhooks (see [`EventSink`]).
    pub events: Arc<dyn EventSink>,
}

impl AppContext {
    /// The public URL of this installation's base, ending with `/`.
    pub fn base_url(&self) -> String {
        format!(
            "{}/api/apps/{}/{}/",
            self.links.public_url, self.org.id, self.installation.id
        )
    }
}

/// Input to [`ExternalApp::install`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InstallInput {
    /// App-specific configuration (JSON object or null).
    #[serde(default)]
    pub config: serde_json::Value,
    /// Secret values carried over from an older system (e.g. an existing CardDAV password), so
    /// clients already configured keep working. Apps name the fields they accept.
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret<String>>,
}

/// What [`ExternalApp::install`] returns.
#[derive(Debug, Clone)]
pub struct InstallOutcome {
    /// The installation as it should be stored (status, account, data).
    pub installation: Installation,
    /// Shown once to the caller (e.g. a generated password). Never stored by the host.
    pub reveal: serde_json::Value,
}

impl InstallOutcome {
    /// The installation marked connected, with nothing to reveal.
    pub fn connected(mut installation: Installation) -> Self {
        installation.status = InstallationStatus::Connected;
        InstallOutcome {
            installation,
            reveal: serde_json::Value::Null,
        }
    }
}

/// What [`ExternalApp::action`] returns.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// A new version of the installation to store, if the action changed it.
    pub installation: Option<Installation>,
    /// The result shown to the caller.
    pub result: serde_json::Value,
    /// The file a file action answers with (see [`ActionSpec::file`]); `None` otherwise.
    pub file: Option<ActionFile>,
}

impl ActionOutcome {
    /// An outcome that only reports `result` (the installation is unchanged).
    pub fn result(result: serde_json::Value) -> Self {
        ActionOutcome {
            installation: None,
            result,
            file: None,
        }
    }
    /// An outcome that stores a new version of the installation and reports `result`.
    pub fn changed(installation: Installation, result: serde_json::Value) -> Self {
        ActionOutcome {
            installation: Some(installation),
            result,
            file: None,
        }
    }
    /// The outcome of a file action.
    pub fn file(file: ActionFile) -> Self {
        ActionOutcome {
            installation: None,
            result: serde_json::Value::Null,
            file: Some(file),
        }
    }
}

/// A file handed to the user by a file action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionFile {
    /// The suggested file name (e.g. `acme-contacts.mobileconfig`): letters, digits, `.-_`.
    pub filename: String,
    /// The media type (e.g. `application/x-apple-aspen-config`).
    pub content_type: String,
    /// The bytes.
    pub content: bytes::Bytes,
}

/// What [`ExternalApp::status`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The state.
    pub status: InstallationStatus,
    /// Explanation, if any.
    pub text: Option<String>,
    /// App-specific figures (e.g. number of contacts, last sync time).
    pub details: serde_json::Value,
}

impl AppStatus {
    /// The status stored on the installation, without details.
    pub fn from_installation(installation: &Installation) -> Self {
        AppStatus {
            status: installation.status,
            text: installation.status_text.clone(),
            details: serde_json::Value::Null,
        }
    }
}

/// A customer write the host is about to store, offered to each installed app of the
/// organization through [`ExternalApp::customer_changing`].
#[derive(Debug)]
pub struct CustomerChange<'a> {
    /// The stored record before the write (`None` for a create).
    pub before: Option<&'a Customer>,
    /// The fields about to be written. An app may adjust them (e.g. patch the stored card).
    pub draft: &'a mut CustomerDraft,
}

/// A connected app. The host holds each registered app as an `Arc<dyn ExternalApp>` for its whole
/// life and calls the hooks concurrently from many tasks, so implementations keep shared state
/// behind `Arc`/locks.
///
/// Every hook gets an [`AppContext`] scoped to one organization and installation.
#[async_trait]
pub trait ExternalApp: Send + Sync + 'static {
    /// The app's manifest. Called once, when the app is registered.
    fn manifest(&self) -> AppManifest;

    /// Called when an organization installs the app. `cx.installation` is a fresh record
    /// (status `pending`, empty data) that is stored only if this returns `Ok`. Set status,
    /// account and data on the returned installation; put anything to show once (a generated
    /// password) in `reveal`. If the app kind is already installed, the host does not call this
    /// again: it returns the existing installation's account.
    async fn install(
        &self,
        cx: &AppContext,
        input: InstallInput,
    ) -> Result<InstallOutcome, AppError>;

    /// Checks install input before anything is stored: e.g. an app that connects to a remote
    /// service tests the credentials here. An error is shown to the caller (a
    /// [`crate::ErrorKind::Unprocessable`] error as 422 with its message) and nothing is
    /// written. `input.config` has already passed the manifest's [`ConfigField::check`], with
    /// defaults filled in. The default accepts everything.
    async fn validate(&self, cx: &AppContext, input: &InstallInput) -> Result<(), AppError> {
        let _ = (cx, input);
        Ok(())
    }

    /// Brings an installation's data from `from_version` to the manifest's
    /// [`AppManifest::data_version`]; returns the record to store (the host sets
    /// `data_version` and writes it with the revision check). Called at startup, once per
    /// outdated record. The default returns the record unchanged.
    async fn migrate(&self, cx: &AppContext, from_version: u32) -> Result<Installation, AppError> {
        let _ = from_version;
        Ok(cx.installation.clone())
    }

    /// Reports the installation's health and figures for the admin.
    async fn status(&self, cx: &AppContext) -> Result<AppStatus, AppError>;

    /// Runs a named action from the manifest with a JSON argument. The default refuses every
    /// action.
    async fn action(
        &self,
        cx: &AppContext,
        name: &str,
        input: serde_json::Value,
    ) -> Result<ActionOutcome, AppError> {
        let _ = (cx, input);
        Err(AppError::new(
            ErrorKind::NotFound,
            format!("unknown action '{name}'"),
        ))
    }

    /// Called before the installation record is deleted; release anything held outside it.
    /// After this the installation's URLs answer 404.
    async fn uninstall(&self, cx: &AppContext) -> Result<(), AppError> {
        let _ = cx;
        Ok(())
    }

    /// Answers a request under the installation's base path (any method).
    async fn handle(&self, cx: &AppContext, req: AppRequest) -> Result<AppResponse, AppError>;

    /// Answers `/.well-known/{name}` for a name in the manifest. The host finds the installation
    /// from the request's Basic credentials (username = organization slug) and calls this; the
    /// app must check the password itself. The default answers 404.
    async fn well_known(
        &self,
        cx: &AppContext,
        name: &str,
        req: AppRequest,
    ) -> Result<AppResponse, AppError> {
        let _ = (cx, req);
        Err(AppError::not_found(format!("no /.well-known/{name} here")))
    }

    /// Called before the host stores a customer change made outside this app (the admin API,
    /// an import), so the app can keep derived data in step in the same write — e.g. the CardDAV
    /// app patches the stored card. The default does nothing.
    async fn customer_changing(
        &self,
        cx: &AppContext,
        change: CustomerChange<'_>,
    ) -> Result<(), AppError> {
        let _ = (cx, change);
        Ok(())
    }

    /// Called after the host stored customer changes made outside this app (the admin API, an
    /// import): each entry is the record before and after one write (`None` for a create or a
    /// delete). Imports pass a batch at once. Data an app derives from several customers (e.g.
    /// the CardDAV app's contact groups) is brought in step here. An error is logged by the
    /// host; the customer writes stand. The default does nothing.
    async fn customers_changed(
        &self,
        cx: &AppContext,
        changes: &[CustomerWritten],
    ) -> Result<(), AppError> {
        let _ = (cx, changes);
        Ok(())
    }
}

/// One stored customer write, as [`ExternalApp::customers_changed`] sees it.
#[derive(Debug, Clone)]
pub struct CustomerWritten {
    /// The record before the write (`None` for a create).
    pub before: Option<Customer>,
    /// The record after the write (`None` for a delete).
    pub after: Option<Customer>,
}
