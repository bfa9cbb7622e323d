//! The app registry: app kind → the registered app.
use dashmap::DashMap;
use portico_sdk::{AppManifest, ExternalApp};
use std::sync::Arc;

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Two apps claimed one kind.
    #[error("app kind '{0}' is registered twice")]
    Duplicate(String),
    /// The kind is not lowercase letters, digits and '-'.
    #[error("app kind '{0}' is invalid (use lowercase letters, digits and '-')")]
    InvalidKind(String),
}

/// A registered app with its manifest, read once at registration.
#[derive(Clone)]
pub struct Registered {
    /// The app.
    pub app: Arc<dyn ExternalApp>,
    /// Its manifest.
    pub manifest: AppManifest,
}

/// Apps by kind.
#[derive(Default, Clone)]
pub struct Registry {
    apps: Arc<DashMap<String, Registered>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an app under its manifest's kind.
    pub fn register(&self, app: Arc<dyn ExternalApp>) -> Result<(), RegistryError> {
        let manifest = app.manifest();
        let kind = manifest.kind.clone();
        if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(RegistryError::InvalidKind(kind));
        }
        match self.apps.entry(kind.clone()) {
            dashmap::mapref::entry::Entry::Occupied(_) => Err(RegistryError::Duplicate(kind)),
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(Registered { app, manifest });
                Ok(())
            }
        }
    }

    /// The app for a kind.
    pub fn get(&self, kind: &str) -> Option<Registered> {
        self.apps.get(kind).map(|r| r.clone())
    }

    /// All manifests, sorted by kind.
    pub fn manifests(&self) -> Vec<AppManifest> {
        let mut v: Vec<AppManifest> = self.apps.iter().map(|r| r.manifest.clone()).collect();
        v.sort_by(|a, b| a.kind.cmp(&b.kind));
        v
    }
}

/// The registry with every app this build ships: one line per app.
pub fn builtin() -> Result<Registry, RegistryError> {
    let r = Registry::new();
    r.register(Arc::new(portico_example_hello::HelloApp))?;
    r.register(Arc::new(portico_example_webdav::WebdavScratchApp::new()))?;
    r.register(Arc::new(portico_carddav::CardDavApp::new()))?;
    Ok(r)
}
