//! In-memory ports for unit-testing an app without the host (feature `testing`).
//!
//! They follow the same contract as the host's stores (revisions, change log, unique resource
//! names and UIDs), but keep everything in memory and seal secrets without encryption: use them
//! in tests only.
use crate::{
    Account, AppContext, AppError, Change, ChangeBatch, Clock, Customer, CustomerDirectory,
    CustomerDraft, CustomerId, EventSink, HostLinks, Installation, InstallationId,
    InstallationPort, InstallationStatus, OrgId, Organization, Secret, SecretBox, Timestamp,
};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct DirState {
    customers: BTreeMap<CustomerId, Customer>,
    log: Vec<Change>,
    /// Card media pieces by (customer, key).
    media: BTreeMap<(CustomerId, String), String>,
}

impl DirState {
    /// Applies [`crate::plan_card_media`] for a write of `id` over `old`.
    fn plan(
        &self,
        old: Option<&Customer>,
        draft: &mut CustomerDraft,
    ) -> Result<crate::MediaPlan, AppError> {
        crate::plan_card_media(old.and_then(|c| c.card.as_ref()), draft, || {
            CustomerId::random().as_str().to_owned()
        })
        .map_err(AppError::unprocessable)
    }

    fn apply(&mut self, id: &CustomerId, plan: crate::MediaPlan) {
        for k in plan.drop {
            self.media.remove(&(id.clone(), k));
        }
        for (k, v) in plan.put {
            self.media.insert((id.clone(), k), v);
        }
    }
}

/// An in-memory [`CustomerDirectory`] for one organization.
#[derive(Default)]
pub struct MemoryDirectory {
    state: Mutex<DirState>,
    clock: ManualClock,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, DirState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn check_unique(state: &DirState, id: &CustomerId, draft: &CustomerDraft) -> Result<(), AppError> {
    let name = draft
        .card
        .as_ref()
        .map(|c| c.name.as_str())
        .unwrap_or(id.as_str());
    for other in state.customers.values() {
        if &other.id == id {
            continue;
        }
        if other.resource_name() == name {
            return Err(AppError::conflict(format!(
                "resource name '{name}' is taken"
            )));
        }
        if let (Some(a), Some(b)) = (&other.card, &draft.card) {
            if a.uid == b.uid {
                return Err(AppError::conflict(format!("card UID '{}' is taken", b.uid)));
            }
        }
    }
    Ok(())
}

fn push_change(state: &mut DirState, c: &Customer, deleted: bool) {
    let seq = state.log.len() as u64 + 1;
    state.log.push(Change {
        seq,
        customer_id: c.id.clone(),
        resource_name: c.resource_name().to_owned(),
        deleted,
    });
}

#[async_trait]
impl CustomerDirectory for MemoryDirectory {
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, AppError> {
        Ok(self.lock().customers.get(id).cloned())
    }
    async fn find_by_resource_name(&self, name: &str) -> Result<Option<Customer>, AppError> {
        Ok(self
            .lock()
            .customers
            .values()
            .find(|c| c.resource_name() == name)
            .cloned())
    }
    async fn find_by_card_uid(&self, uid: &str) -> Result<Option<Customer>, AppError> {
        Ok(self
            .lock()
            .customers
            .values()
            .find(|c| c.card.as_ref().is_some_and(|k| k.uid == uid))
            .cloned())
    }
    async fn list(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, AppError> {
        let st = self.lock();
        Ok(st
            .customers
            .values()
            .filter(|c| after.is_none_or(|a| &c.id > a))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn count(&self) -> Result<u64, AppError> {
        Ok(self.lock().customers.len() as u64)
    }
    async fn create(&self, mut draft: CustomerDraft) -> Result<Customer, AppError> {
        let mut st = self.lock();
        let id = draft.id.take().unwrap_or_else(CustomerId::random);
        if st.customers.contains_key(&id) {
            return Err(AppError::conflict(format!("customer '{id}' exists")));
        }
        check_unique(&st, &id, &draft)?;
        let plan = st.plan(None, &mut draft)?;
        let c = draft.into_customer(id.clone(), 1, self.clock.now());
        st.apply(&id, plan);
        push_change(&mut st, &c, false);
        st.customers.insert(id, c.clone());
        Ok(c)
    }
    async fn update(
        &self,
        id: &CustomerId,
        mut draft: CustomerDraft,
        expected_revision: Option<u64>,
    ) -> Result<Customer, AppError> {
        let mut st = self.lock();
        let old = st
            .customers
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::not_found(format!("no customer '{id}'")))?;
        if expected_revision.is_some_and(|r| r != old.revision) {
            return Err(AppError::precondition_failed(
                "the customer changed meanwhile",
            ));
        }
        check_unique(&st, id, &draft)?;
        let plan = st.plan(Some(&old), &mut draft)?;
        let c = draft.into_customer(id.clone(), old.revision + 1, self.clock.now());
        st.apply(id, plan);
        push_change(&mut st, &c, false);
        st.customers.insert(id.clone(), c.clone());
        Ok(c)
    }
    async fn delete(
        &self,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<(), AppError> {
        let mut st = self.lock();
        let old = st
            .customers
            .get(id)
            .cloned()
            .ok_or_else(|| AppError::not_found(format!("no customer '{id}'")))?;
        if expected_revision.is_some_and(|r| r != old.revision) {
            return Err(AppError::precondition_failed(
                "the customer changed meanwhile",
            ));
        }
        st.customers.remove(id);
        st.media.retain(|(owner, _), _| owner != id);
        push_change(&mut st, &old, true);
        Ok(())
    }
    async fn current_seq(&self) -> Result<u64, AppError> {
        Ok(self.lock().log.len() as u64)
    }
    async fn changes_since(&self, seq: u64, limit: usize) -> Result<Option<ChangeBatch>, AppError> {
        let st = self.lock();
        let end = st.log.len() as u64;
        if seq > end {
            return Ok(None);
        }
        let mut latest: BTreeMap<CustomerId, Change> = BTreeMap::new();
        let mut next_seq = seq;
        let mut truncated = false;
        for ch in st.log.iter().skip(seq as usize) {
            if !latest.contains_key(&ch.customer_id) && latest.len() >= limit {
                truncated = true;
                break;
            }
            latest.insert(ch.customer_id.clone(), ch.clone());
            next_seq = ch.seq;
        }
        if !truncated {
            next_seq = end;
        }
        let mut changes: Vec<Change> = latest.into_values().collect();
        changes.sort_by_key(|c| c.seq);
        Ok(Some(ChangeBatch {
            changes,
            next_seq,
            truncated,
        }))
    }
    async fn card_media(
        &self,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, AppError> {
        let st = self.lock();
        Ok(keys
            .iter()
            .map(|k| st.media.get(&(id.clone(), k.clone())).cloned())
            .collect())
    }
}

/// A clock that starts at a fixed time and advances one second per reading.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl Default for ManualClock {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z
        ManualClock(AtomicI64::new(1_767_225_600_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.fetch_add(1000, Ordering::Relaxed))
    }
}

/// An in-memory [`InstallationPort`] with revision checks.
pub struct MemoryInstallation(Mutex<Installation>);

impl MemoryInstallation {
    /// Holds `installation`.
    pub fn new(installation: Installation) -> Self {
        MemoryInstallation(Mutex::new(installation))
    }
}

#[async_trait]
impl InstallationPort for MemoryInstallation {
    async fn load(&self) -> Result<Installation, AppError> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
    async fn save(&self, installation: &Installation) -> Result<Installation, AppError> {
        let mut cur = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cur.revision != installation.revision {
            return Err(AppError::precondition_failed(
                "the installation changed meanwhile",
            ));
        }
        let mut next = installation.clone();
        next.revision += 1;
        *cur = next.clone();
        Ok(next)
    }
}

/// A [`SecretBox`] that "seals" by tagging the plaintext with the field name. Not encryption:
/// for tests only. It still refuses to open a value under another field.
#[derive(Debug, Default)]
pub struct PlainSecretBox;

impl SecretBox for PlainSecretBox {
    fn seal(&self, field: &str, plaintext: &str) -> Result<String, AppError> {
        Ok(format!("test:{field}:{plaintext}"))
    }
    fn open(&self, field: &str, sealed: &str) -> Result<Secret<String>, AppError> {
        sealed
            .strip_prefix("test:")
            .and_then(|r| r.strip_prefix(field))
            .and_then(|r| r.strip_prefix(':'))
            .map(|p| Secret::new(p.to_owned()))
            .ok_or_else(|| AppError::internal(format!("sealed value for '{field}' does not open")))
    }
    fn random_token(&self, bytes: usize) -> Secret<String> {
        let id = crate::ids::random_hex_128();
        Secret::new(id.chars().cycle().take(bytes * 4 / 3).collect())
    }
}

/// An [`EventSink`] that keeps what was emitted, for assertions.
#[derive(Default)]
pub struct MemoryEvents(Mutex<Vec<(String, serde_json::Value)>>);

impl MemoryEvents {
    /// The events emitted so far, as (name, payload), oldest first.
    pub fn emitted(&self) -> Vec<(String, serde_json::Value)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl EventSink for MemoryEvents {
    async fn emit(&self, name: &str, payload: serde_json::Value) -> Result<(), AppError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), payload));
        Ok(())
    }
}

/// A ready [`AppContext`] for an organization `acme` (slug `acme`) with a pending installation of
/// `kind`, backed by the in-memory ports above. Fields are public so tests can reach the ports.
pub struct TestContext {
    /// The context to pass to hooks.
    pub cx: AppContext,
    /// The customer directory behind `cx.customers`.
    pub directory: Arc<MemoryDirectory>,
    /// The events emitted through `cx.events`.
    pub events: Arc<MemoryEvents>,
}

impl TestContext {
    /// A context for a fresh installation of `kind`.
    pub fn new(kind: &str) -> Self {
        let org = Organization {
            id: OrgId::parse("acme").unwrap_or_else(|_| OrgId::random()),
            slug: "acme".into(),
            name: "Acme".into(),
        };
        let installation = Installation {
            id: InstallationId::random(),
            org_id: org.id.clone(),
            kind: kind.to_owned(),
            status: InstallationStatus::Pending,
            status_text: None,
            account: None::<Account>,
            data: serde_json::Value::Null,
            revision: 1,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            data_version: 1,
        };
        let directory = Arc::new(MemoryDirectory::new());
        let events = Arc::new(MemoryEvents::default());
        let cx = AppContext {
            org,
            installation: installation.clone(),
            customers: directory.clone(),
            groups: Arc::new(MemoryDirectory::new()),
            installation_store: Arc::new(MemoryInstallation::new(installation)),
            secrets: Arc::new(PlainSecretBox),
            links: HostLinks {
                public_url: "http://portico.test".into(),
                admin_customer_url: Some("http://admin.test/{org}/customers/{customer}".into()),
            },
            clock: Arc::new(ManualClock::default()),
            events: events.clone(),
        };
        TestContext {
            cx,
            directory,
            events,
        }
    }

    /// Replaces the installation in both the context and its store (e.g. after `install`).
    pub fn set_installation(&mut self, installation: Installation) {
        self.cx.installation = installation.clone();
        self.cx.installation_store = Arc::new(MemoryInstallation::new(installation));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str) -> CustomerDraft {
        CustomerDraft {
            name: name.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn directory_revisions_and_log() {
        let d = MemoryDirectory::new();
        let a = d.create(draft("A")).await.unwrap();
        let b = d.create(draft("B")).await.unwrap();
        assert_eq!(d.current_seq().await.unwrap(), 2);
        let err = d.update(&a.id, draft("A2"), Some(7)).await.unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::PreconditionFailed);
        d.update(&a.id, draft("A2"), Some(1)).await.unwrap();
        d.delete(&b.id, None).await.unwrap();
        let batch = d.changes_since(2, 100).await.unwrap().unwrap();
        assert_eq!(batch.changes.len(), 2);
        assert!(batch.changes[1].deleted);
        assert_eq!(batch.next_seq, 4);
        assert!(d.changes_since(9, 100).await.unwrap().is_none());
        let limited = d.changes_since(0, 1).await.unwrap().unwrap();
        assert!(limited.truncated);
        assert_eq!(limited.changes.len(), 1);
    }

    #[tokio::test]
    async fn card_reads_default_to_the_customer_reads() {
        let d = MemoryDirectory::new();
        let plain = d.create(draft("Plain")).await.unwrap();
        let carded = d
            .create(CustomerDraft {
                card: Some(crate::StoredCard {
                    name: "phone-1".into(),
                    uid: "uid-1".into(),
                    text: "BEGIN:VCARD\r\nEND:VCARD\r\n".into(),
                    etag: "\"e\"".into(),
                    media: Vec::new(),
                }),
                ..draft("Carded")
            })
            .await
            .unwrap();
        let cards = d.list_cards(None, 10).await.unwrap();
        let customers = d.list(None, 10).await.unwrap();
        assert_eq!(
            cards,
            customers
                .into_iter()
                .map(crate::CardRecord::from)
                .collect::<Vec<_>>()
        );
        let found = d
            .find_cards_by_resource_name(&["phone-1", plain.id.as_str(), "nobody"])
            .await
            .unwrap();
        let Some(crate::CardRecord::Stored(stored)) = &found[0] else {
            panic!("a stored card: {found:?}");
        };
        assert_eq!(
            (&stored.id, stored.revision, stored.updated_at),
            (&carded.id, carded.revision, carded.updated_at)
        );
        assert_eq!(Some(&stored.card), carded.card.as_ref());
        assert!(matches!(&found[1], Some(crate::CardRecord::Unwritten(c)) if **c == plain));
        assert!(found[2].is_none());
        // The accessors read the same either way.
        let (s, u) = (found[0].clone().unwrap(), found[1].clone().unwrap());
        assert_eq!((s.id(), s.resource_name()), (&carded.id, "phone-1"));
        assert_eq!((u.id(), u.resource_name()), (&plain.id, plain.id.as_str()));
        assert_eq!(s.card(), carded.card.as_ref());
        assert!(u.card().is_none());
        assert_eq!(
            (u.revision(), u.updated_at()),
            (plain.revision, plain.updated_at)
        );
    }
}
