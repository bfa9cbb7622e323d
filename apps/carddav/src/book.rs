//! The address book's own settings, kept in the installation data: display name, description,
//! dead properties set by clients, and the time of the last client sync.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the one address book.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BookSettings {
    /// `DAV:displayname`; `None` shows the default.
    #[serde(default)]
    pub displayname: Option<String>,
    /// `CARDDAV:addressbook-description`.
    #[serde(default)]
    pub description: Option<String>,
    /// Dead properties by Clark name (`{ns}local`): the whole property element as
    /// self-contained XML (attributes and `xml:lang` kept).
    #[serde(default)]
    pub dead: BTreeMap<String, String>,
    /// The book is read-only for the credential of this request (the install's `read_only`
    /// setting or a read-only device password; see [`crate::devices`]). Never stored here:
    /// set per request from the authenticated credential.
    #[serde(skip)]
    pub read_only: bool,
}

/// The key of the settings in the installation data.
pub const BOOK_FIELD: &str = "book";
/// The key of the last sync time (milliseconds) in the installation data.
pub const LAST_SYNC_FIELD: &str = "last_sync";

impl BookSettings {
    /// Reads the settings from installation data (defaults if absent or unreadable).
    pub fn from_data(data: &serde_json::Value) -> Self {
        data.get(BOOK_FIELD)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The display name shown to clients.
    pub fn displayname(&self, org_name: &str) -> String {
        self.displayname
            .clone()
            .unwrap_or_else(|| format!("{org_name} customers"))
    }
}
