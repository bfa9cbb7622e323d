//! The host's implementations of the SDK ports, each scoped to one organization (and
//! installation) by construction.
use crate::store::{Outcome, Store, StoreError};
use async_trait::async_trait;
use portico_sdk::{
    AppError, CardRecord, ChangeBatch, Clock, Customer, CustomerDirectory, CustomerDraft,
    CustomerId, Installation, InstallationPort, OrgId,
};
use std::sync::Arc;

/// Store failures as app errors: an outage, a full disk or read-only data is `Unavailable`
/// (503 with Retry-After), anything else `Internal`.
pub fn store_err(e: StoreError) -> AppError {
    match e {
        StoreError::Unavailable(m) => AppError::unavailable(m),
        e @ (StoreError::Full(_) | StoreError::ReadOnly(_)) => {
            tracing::error!(error = %e, "store refused a write");
            AppError::unavailable(crate::error::STORE_CANNOT_WRITE)
        }
        other => AppError::internal(other.to_string()),
    }
}

/// Expected store outcomes as app errors.
pub fn outcome<T>(o: Outcome<T>, what: &str) -> Result<T, AppError> {
    match o {
        Outcome::Done(v) => Ok(v),
        Outcome::NotFound => Err(AppError::not_found(format!("{what} not found"))),
        Outcome::Conflict(m) => Err(AppError::conflict(m)),
        Outcome::PreconditionFailed => Err(AppError::precondition_failed(format!(
            "{what} changed meanwhile"
        ))),
    }
}

/// The organization's customers, for apps and the admin API.
pub struct OrgDirectory {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The organization every call is scoped to.
    pub org: OrgId,
    /// Time source for `updated_at`.
    pub clock: Arc<dyn Clock>,
    /// Set for the directory an app gets: its writes are reported to webhooks as
    /// `customer.changed` (the admin path reports nothing: the platform made the change).
    pub notify: Option<Arc<crate::webhooks::InstallationEvents>>,
}

impl OrgDirectory {
    async fn changed(&self, id: &CustomerId, change: &str) {
        if let Some(n) = &self.notify {
            n.customer_changed(id, change).await;
        }
    }
}

#[async_trait]
impl CustomerDirectory for OrgDirectory {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, AppError> {
        self.store
            .get_customer(&self.org, id)
            .await
            .map_err(store_err)
    }
    async fn find_by_resource_name(&self, name: &str) -> Result<Option<Customer>, AppError> {
        self.store
            .find_customer_by_resource_name(&self.org, name)
            .await
            .map_err(store_err)
    }
    async fn find_many_by_resource_name(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, AppError> {
        self.store
            .find_customers_by_resource_names(&self.org, names)
            .await
            .map_err(store_err)
    }
    async fn find_by_card_uid(&self, uid: &str) -> Result<Option<Customer>, AppError> {
        self.store
            .find_customer_by_card_uid(&self.org, uid)
            .await
            .map_err(store_err)
    }
    async fn list(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, AppError> {
        self.store
            .list_customers(&self.org, after, limit)
            .await
            .map_err(store_err)
    }
    async fn list_cards(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CardRecord>, AppError> {
        self.store
            .list_customer_cards(&self.org, after, limit)
            .await
            .map_err(store_err)
    }
    async fn find_cards_by_resource_name(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<CardRecord>>, AppError> {
        self.store
            .find_customer_cards_by_resource_names(&self.org, names)
            .await
            .map_err(store_err)
    }
    async fn count(&self) -> Result<u64, AppError> {
        self.store
            .count_customers(&self.org)
            .await
            .map_err(store_err)
    }
    async fn create(&self, draft: CustomerDraft) -> Result<Customer, AppError> {
        crate::store::validate_draft(&draft).map_err(AppError::unprocessable)?;
        let o = self
            .store
            .create_customer(&self.org, draft, self.clock.now())
            .await
            .map_err(store_err)?;
        let c = outcome(o, "customer")?;
        self.changed(&c.id, "created").await;
        Ok(c)
    }
    async fn update(
        &self,
        id: &CustomerId,
        draft: CustomerDraft,
        expected_revision: Option<u64>,
    ) -> Result<Customer, AppError> {
        crate::store::validate_draft(&draft).map_err(AppError::unprocessable)?;
        let o = self
            .store
            .update_customer(&self.org, id, draft, expected_revision, self.clock.now())
            .await
            .map_err(store_err)?;
        let c = outcome(o, "customer")?;
        self.changed(&c.id, "updated").await;
        Ok(c)
    }
    async fn delete(
        &self,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<(), AppError> {
        let o = self
            .store
            .delete_customer(&self.org, id, expected_revision)
            .await
            .map_err(store_err)?;
        outcome(o, "customer")?;
        self.changed(id, "deleted").await;
        Ok(())
    }
    async fn current_seq(&self) -> Result<u64, AppError> {
        self.store.current_seq(&self.org).await.map_err(store_err)
    }
    async fn changes_since(&self, seq: u64, limit: usize) -> Result<Option<ChangeBatch>, AppError> {
        self.store
            .changes_since(&self.org, seq, limit)
            .await
            .map_err(store_err)
    }
    async fn card_media(
        &self,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, AppError> {
        let found = self
            .store
            .get_card_media(&self.org, id, keys)
            .await
            .map_err(store_err)?;
        if found.iter().any(Option::is_none) {
            // A record naming a piece the store lacks: damaged (see store::mongo, "Card media
            // pieces"); the app refuses to serve it as whole, the operator hears of it here.
            tracing::error!(org = %self.org, customer = %id, "a card names a media piece the store lacks");
        }
        Ok(found)
    }
}

/// One installation's record.
pub struct InstallationRecord {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The installation (org and id are taken from it).
    pub installation: Installation,
    /// Called after a successful save so caches drop the old revision.
    pub on_change: Arc<dyn Fn(&Installation) + Send + Sync>,
}

#[async_trait]
impl InstallationPort for InstallationRecord {
    async fn load(&self) -> Result<Installation, AppError> {
        let i = &self.installation;
        self.store
            .get_installation(&i.org_id, &i.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| AppError::not_found("installation not found"))
    }
    async fn save(&self, installation: &Installation) -> Result<Installation, AppError> {
        let mut next = installation.clone();
        next.org_id = self.installation.org_id.clone();
        next.id = self.installation.id.clone();
        let saved = outcome(
            self.store
                .update_installation(&next)
                .await
                .map_err(store_err)?,
            "installation",
        )?;
        (self.on_change)(&saved);
        Ok(saved)
    }
}
