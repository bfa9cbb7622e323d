//! A [`Store`] that times every operation into the host's metrics
//! (`portico_store_operation_duration_seconds{op}`), delegating to the real backend.
use super::{ChangeLog, Outcome, Store, StoreError};
use crate::operations::Metrics;
use async_trait::async_trait;
use portico_sdk::{
    CardRecord, ChangeBatch, Customer, CustomerDraft, CustomerId, Installation, InstallationId,
    OrgId, Organization, Timestamp,
};
use std::sync::Arc;
use std::time::Instant;

/// Times the inner store's operations.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        MeteredStore { inner, metrics }
    }
}

#[async_trait]
impl Store for MeteredStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let t = Instant::now();
        let r = self.inner.ping().await;
        self.metrics.store_op("ping", t.elapsed());
        r
    }
    async fn create_org(&self, org: &Organization) -> Result<Outcome<Organization>, StoreError> {
        let t = Instant::now();
        let r = self.inner.create_org(org).await;
        self.metrics.store_op("create_org", t.elapsed());
        r
    }
    async fn get_org(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        let t = Instant::now();
        let r = self.inner.get_org(id).await;
        self.metrics.store_op("get_org", t.elapsed());
        r
    }
    async fn find_org_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        let t = Instant::now();
        let r = self.inner.find_org_by_slug(slug).await;
        self.metrics.store_op("find_org_by_slug", t.elapsed());
        r
    }
    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        let t = Instant::now();
        let r = self.inner.list_orgs().await;
        self.metrics.store_op("list_orgs", t.elapsed());
        r
    }
    async fn insert_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        let t = Instant::now();
        let r = self.inner.insert_installation(inst).await;
        self.metrics.store_op("insert_installation", t.elapsed());
        r
    }
    async fn get_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Option<Installation>, StoreError> {
        let t = Instant::now();
        let r = self.inner.get_installation(org, id).await;
        self.metrics.store_op("get_installation", t.elapsed());
        r
    }
    async fn list_installations(&self, org: &OrgId) -> Result<Vec<Installation>, StoreError> {
        let t = Instant::now();
        let r = self.inner.list_installations(org).await;
        self.metrics.store_op("list_installations", t.elapsed());
        r
    }
    async fn update_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        let t = Instant::now();
        let r = self.inner.update_installation(inst).await;
        self.metrics.store_op("update_installation", t.elapsed());
        r
    }
    async fn delete_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Outcome<()>, StoreError> {
        let t = Instant::now();
        let r = self.inner.delete_installation(org, id).await;
        self.metrics.store_op("delete_installation", t.elapsed());
        r
    }
    async fn get_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        let t = Instant::now();
        let r = self.inner.get_customer(org, id).await;
        self.metrics.store_op("get_customer", t.elapsed());
        r
    }
    async fn find_customer_by_resource_name(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let t = Instant::now();
        let r = self.inner.find_customer_by_resource_name(org, name).await;
        self.metrics
            .store_op("find_customer_by_resource_name", t.elapsed());
        r
    }
    async fn find_customers_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, StoreError> {
        let t = Instant::now();
        let r = self
            .inner
            .find_customers_by_resource_names(org, names)
            .await;
        self.metrics
            .store_op("find_customers_by_resource_names", t.elapsed());
        r
    }
    async fn find_customer_by_card_uid(
        &self,
        org: &OrgId,
        uid: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let t = Instant::now();
        let r = self.inner.find_customer_by_card_uid(org, uid).await;
        self.metrics
            .store_op("find_customer_by_card_uid", t.elapsed());
        r
    }
    async fn list_customers(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        let t = Instant::now();
        let r = self.inner.list_customers(org, after, limit).await;
        self.metrics.store_op("list_customers", t.elapsed());
        r
    }
    async fn list_customer_cards(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CardRecord>, StoreError> {
        let t = Instant::now();
        let r = self.inner.list_customer_cards(org, after, limit).await;
        self.metrics.store_op("list_customer_cards", t.elapsed());
        r
    }
    async fn find_customer_cards_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<CardRecord>>, StoreError> {
        let t = Instant::now();
        let r = self
            .inner
            .find_customer_cards_by_resource_names(org, names)
            .await;
        self.metrics
            .store_op("find_customer_cards_by_resource_names", t.elapsed());
        r
    }
    async fn count_customers(&self, org: &OrgId) -> Result<u64, StoreError> {
        let t = Instant::now();
        let r = self.inner.count_customers(org).await;
        self.metrics.store_op("count_customers", t.elapsed());
        r
    }
    async fn create_customer(
        &self,
        org: &OrgId,
        draft: CustomerDraft,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        let t = Instant::now();
        let r = self.inner.create_customer(org, draft, now).await;
        self.metrics.store_op("create_customer", t.elapsed());
        r
    }
    async fn create_customers(
        &self,
        org: &OrgId,
        drafts: Vec<CustomerDraft>,
        now: Timestamp,
    ) -> Result<Vec<Outcome<Customer>>, StoreError> {
        let t = Instant::now();
        let r = self.inner.create_customers(org, drafts, now).await;
        self.metrics.store_op("create_customers", t.elapsed());
        r
    }
    async fn update_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        draft: CustomerDraft,
        expected_revision: Option<u64>,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        let t = Instant::now();
        let r = self
            .inner
            .update_customer(org, id, draft, expected_revision, now)
            .await;
        self.metrics.store_op("update_customer", t.elapsed());
        r
    }
    async fn delete_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<Outcome<()>, StoreError> {
        let t = Instant::now();
        let r = self.inner.delete_customer(org, id, expected_revision).await;
        self.metrics.store_op("delete_customer", t.elapsed());
        r
    }
    async fn current_seq(&self, org: &OrgId) -> Result<u64, StoreError> {
        let t = Instant::now();
        let r = self.inner.current_seq(org).await;
        self.metrics.store_op("current_seq", t.elapsed());
        r
    }
    async fn changes_since(
        &self,
        org: &OrgId,
        seq: u64,
        limit: usize,
    ) -> Result<Option<ChangeBatch>, StoreError> {
        let t = Instant::now();
        let r = self.inner.changes_since(org, seq, limit).await;
        self.metrics.store_op("changes_since", t.elapsed());
        r
    }
    async fn prune_changes(&self, org: &OrgId, up_to: u64) -> Result<(), StoreError> {
        let t = Instant::now();
        let r = self.inner.prune_changes(org, up_to).await;
        self.metrics.store_op("prune_changes", t.elapsed());
        r
    }
    async fn export_changes(&self, org: &OrgId) -> Result<ChangeLog, StoreError> {
        let t = Instant::now();
        let r = self.inner.export_changes(org).await;
        self.metrics.store_op("export_changes", t.elapsed());
        r
    }
    async fn import_customers(
        &self,
        org: &OrgId,
        customers: &[Customer],
    ) -> Result<Outcome<()>, StoreError> {
        let t = Instant::now();
        let r = self.inner.import_customers(org, customers).await;
        self.metrics.store_op("import_customers", t.elapsed());
        r
    }
    async fn import_changes(
        &self,
        org: &OrgId,
        log: &ChangeLog,
    ) -> Result<Outcome<()>, StoreError> {
        let t = Instant::now();
        let r = self.inner.import_changes(org, log).await;
        self.metrics.store_op("import_changes", t.elapsed());
        r
    }
    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let t = Instant::now();
        let r = self.inner.put_record(namespace, key, value).await;
        self.metrics.store_op("put_record", t.elapsed());
        r
    }
    async fn get_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let t = Instant::now();
        let r = self.inner.get_record(namespace, key).await;
        self.metrics.store_op("get_record", t.elapsed());
        r
    }
    async fn list_records(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let t = Instant::now();
        let r = self.inner.list_records(namespace).await;
        self.metrics.store_op("list_records", t.elapsed());
        r
    }
    async fn take_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let t = Instant::now();
        let r = self.inner.take_record(namespace, key).await;
        self.metrics.store_op("take_record", t.elapsed());
        r
    }
    async fn get_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let t = Instant::now();
        let r = self.inner.get_card_media(org, id, keys).await;
        self.metrics.store_op("get_card_media", t.elapsed());
        r
    }
    async fn import_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        pieces: &[(String, String)],
    ) -> Result<(), StoreError> {
        let t = Instant::now();
        let r = self.inner.import_card_media(org, id, pieces).await;
        self.metrics.store_op("import_card_media", t.elapsed());
        r
    }
    async fn count_card_media(&self, org: &OrgId) -> Result<u64, StoreError> {
        let t = Instant::now();
        let r = self.inner.count_card_media(org).await;
        self.metrics.store_op("count_card_media", t.elapsed());
        r
    }
}
