//! The store contract: every method is scoped by organization; expected outcomes (not found,
//! conflict, precondition failed, an unanswerable change-log position) are values, and
//! infrastructure failures are [`StoreError`].
pub mod conformance;
pub mod copy;
pub mod embedded;
pub mod metered;
pub mod mongo;

use async_trait::async_trait;
use portico_sdk::{
    CardRecord, ChangeBatch, Customer, CustomerDraft, CustomerId, Installation, InstallationId,
    OrgId, Organization, Timestamp,
};

/// An infrastructure failure: the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, database error).
    #[error("store backend failed: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The store is not reachable right now.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A write was refused for lack of space (no space left, a quota or file-size limit);
    /// nothing was written, reads still work, and writes work again once space returns.
    #[error("store is out of space: {0}")]
    Full(String),
    /// A write was refused because the data is read-only or not writable; nothing was
    /// written, reads still work.
    #[error("store is read-only: {0}")]
    ReadOnly(String),
}

/// The expected outcomes of a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// Written; here is the stored value.
    Done(T),
    /// The record does not exist (in this organization).
    NotFound,
    /// A uniqueness rule was violated; the text says which.
    Conflict(String),
    /// The expected revision did not match.
    PreconditionFailed,
}

impl<T> Outcome<T> {
    /// The stored value, if the write happened.
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(v) => Some(v),
            _ => None,
        }
    }
}

/// The behavioural contract every backend meets (checked by [`conformance`]).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds if the store can serve requests.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates an organization; `Conflict` if the id or slug is taken.
    async fn create_org(&self, org: &Organization) -> Result<Outcome<Organization>, StoreError>;
    /// An organization by id.
    async fn get_org(&self, id: &OrgId) -> Result<Option<Organization>, StoreError>;
    /// An organization by slug.
    async fn find_org_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError>;
    /// All organizations in id order.
    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError>;

    /// Stores a new installation (revision taken from the record, normally 1); `Conflict` if the
    /// id exists.
    async fn insert_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError>;
    /// One installation of one organization.
    async fn get_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Option<Installation>, StoreError>;
    /// All installations of an organization.
    async fn list_installations(&self, org: &OrgId) -> Result<Vec<Installation>, StoreError>;
    /// Replaces an installation if `inst.revision` matches the stored one; the stored record gets
    /// revision + 1.
    async fn update_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError>;
    /// Deletes an installation.
    async fn delete_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Outcome<()>, StoreError>;

    /// One customer.
    async fn get_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError>;
    /// The customer with this resource name (stored card name, else id).
    async fn find_customer_by_resource_name(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<Option<Customer>, StoreError>;
    /// [`Store::find_customer_by_resource_name`] for each of `names`, in order, in one read
    /// (one transaction, one query) where the store can. The default loops.
    async fn find_customers_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, StoreError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.find_customer_by_resource_name(org, name).await?);
        }
        Ok(out)
    }
    /// The customer whose stored card has this UID.
    async fn find_customer_by_card_uid(
        &self,
        org: &OrgId,
        uid: &str,
    ) -> Result<Option<Customer>, StoreError>;
    /// Customers in id order after `after`.
    async fn list_customers(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError>;
    /// [`Store::list_customers`] as card records ([`CardRecord::from`] of each). The embedded
    /// store decodes only the card of a record that has one; the default converts.
    async fn list_customer_cards(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CardRecord>, StoreError> {
        Ok(self
            .list_customers(org, after, limit)
            .await?
            .into_iter()
            .map(CardRecord::from)
            .collect())
    }
    /// [`Store::find_customers_by_resource_names`] as card records (see
    /// [`Store::list_customer_cards`]).
    async fn find_customer_cards_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<CardRecord>>, StoreError> {
        Ok(self
            .find_customers_by_resource_names(org, names)
            .await?
            .into_iter()
            .map(|c| c.map(CardRecord::from))
            .collect())
    }
    /// Number of customers.
    async fn count_customers(&self, org: &OrgId) -> Result<u64, StoreError>;
    /// Creates a customer and its change-log entry atomically.
    async fn create_customer(
        &self,
        org: &OrgId,
        draft: CustomerDraft,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError>;
    /// Creates several customers (bulk import). Each draft gets its own outcome, in order; a
    /// refused draft (conflict) changes nothing and does not stop the others. Backends may write
    /// the batch in one transaction; the default creates them one by one.
    async fn create_customers(
        &self,
        org: &OrgId,
        drafts: Vec<CustomerDraft>,
        now: Timestamp,
    ) -> Result<Vec<Outcome<Customer>>, StoreError> {
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            out.push(self.create_customer(org, d, now).await?);
        }
        Ok(out)
    }
    /// Replaces a customer (optionally only at `expected_revision`) and logs the change,
    /// atomically.
    async fn update_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        draft: CustomerDraft,
        expected_revision: Option<u64>,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError>;
    /// Deletes a customer and logs a tombstone, atomically.
    async fn delete_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<Outcome<()>, StoreError>;
    /// The last sequence number of the organization's change log.
    async fn current_seq(&self, org: &OrgId) -> Result<u64, StoreError>;
    /// Changes after `seq` (at most `limit` distinct customers); `None` if `seq` is in the
    /// future or older than the pruned part of the log (an expired token).
    async fn changes_since(
        &self,
        org: &OrgId,
        seq: u64,
        limit: usize,
    ) -> Result<Option<ChangeBatch>, StoreError>;
    /// Drops change-log entries up to and including `up_to`; positions before it then answer
    /// `None` from [`Store::changes_since`].
    async fn prune_changes(&self, org: &OrgId, up_to: u64) -> Result<(), StoreError>;

    /// The organization's whole change log as stored, for copying it to another store
    /// ([`copy`]): the last sequence number, the prune floor and every entry above the floor in
    /// sequence order. Gaps (numbers taken by writes that never logged) stay gaps. Meant for a
    /// store nobody writes to meanwhile.
    async fn export_changes(&self, org: &OrgId) -> Result<ChangeLog, StoreError>;
    /// Stores customers exactly as given (id, revision, timestamps, stored card), writing no
    /// change-log entry: the log is copied separately with [`Store::import_changes`].
    /// `Conflict` if an id, resource name or card UID is taken (the embedded store then writes
    /// none of them; MongoDB may have written the ones before the clash).
    async fn import_customers(
        &self,
        org: &OrgId,
        customers: &[Customer],
    ) -> Result<Outcome<()>, StoreError>;
    /// Sets an organization's change log to `log` (same sequence numbers, same floor), so that
    /// positions handed out by the source store answer the same here. `Conflict` if the
    /// organization already has a log (a number taken or an entry written).
    async fn import_changes(&self, org: &OrgId, log: &ChangeLog)
        -> Result<Outcome<()>, StoreError>;

    /// The bytes of customer `id`'s card media pieces named by `keys` (see
    /// [`portico_sdk::StoredCard::media`]), in the same order; `None` for a piece the store does
    /// not hold. Pieces are written and dropped only by the customer writes themselves
    /// ([`portico_sdk::plan_card_media`]): a create or update stores the draft's new pieces with
    /// the record, an update or delete drops the pieces the record no longer names.
    async fn get_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError>;
    /// Stores media pieces of customer `id` exactly as given, (key, bytes), replacing a piece
    /// with the same key; for [`copy`], after [`Store::import_customers`] stored the records
    /// that name them.
    async fn import_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        pieces: &[(String, String)],
    ) -> Result<(), StoreError>;
    /// How many media pieces the organization's customers have in the store, referenced or
    /// not (a piece nobody references is garbage a crash left behind; it is never served).
    async fn count_card_media(&self, org: &OrgId) -> Result<u64, StoreError>;

    /// Stores a host record: a small JSON value under (`namespace`, `key`), replacing any value
    /// there. Host records hold what the host itself keeps across processes (admin sessions,
    /// organization tokens, one-time setup links); they are few and looked up by key.
    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError>;
    /// A host record.
    async fn get_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Every record of a namespace, in key order.
    async fn list_records(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    /// Deletes a record and returns what it held, atomically: of two processes taking the same
    /// record, exactly one gets the value (one-time links rely on it).
    async fn take_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
}

/// An organization's change log as stored ([`Store::export_changes`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeLog {
    /// The last sequence number taken.
    pub seq: u64,
    /// Entries up to and including this were pruned.
    pub floor: u64,
    /// The entries above the floor, in sequence order.
    pub entries: Vec<portico_sdk::Change>,
}

impl ChangeLog {
    /// Checks the log is consistent: entries strictly increasing, above the floor, at most
    /// `seq`, and `floor <= seq`.
    pub fn check(&self) -> Result<(), String> {
        if self.floor > self.seq {
            return Err(format!("floor {} above seq {}", self.floor, self.seq));
        }
        let mut last = self.floor;
        for e in &self.entries {
            if e.seq <= last || e.seq > self.seq {
                return Err(format!(
                    "entry {} out of order (after {last}, floor {}, seq {})",
                    e.seq, self.floor, self.seq
                ));
            }
            last = e.seq;
        }
        Ok(())
    }
}

/// Most tags one customer may carry.
pub const MAX_TAGS: usize = 256;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 256;

/// Checks a draft before any backend sees it.
pub fn validate_draft(draft: &CustomerDraft) -> Result<(), String> {
    if let Some(b) = &draft.birthday {
        // Stored birthdays are in the one normal form (see `normalize_draft`).
        if portico_sdk::normalize_birthday(b).as_deref() != Ok(b.as_str()) {
            return Err(format!(
                "birthday '{b}': a birthday is YYYY-MM-DD, or --MM-DD when the year is unknown"
            ));
        }
    }
    if draft.name.trim().is_empty() {
        return Err("a customer needs a non-empty name".into());
    }
    // Tags name contact groups (CardDAV): printable text, bounded.
    if draft.tags.len() > MAX_TAGS {
        return Err(format!("a customer may have at most {MAX_TAGS} tags"));
    }
    for t in &draft.tags {
        if t.trim().is_empty() || t.len() > MAX_TAG_BYTES || t.chars().any(char::is_control) {
            return Err(format!(
                "a tag must be 1 to {MAX_TAG_BYTES} bytes of text without control characters: {:?}",
                t.chars().take(40).collect::<String>()
            ));
        }
    }
    if let Some(card) = &draft.card {
        if card.name.is_empty() || card.name.len() > 255 || card.name.contains('/') {
            return Err("a card name must be 1 to 255 bytes without '/'".into());
        }
        if card.uid.is_empty() {
            return Err("a card needs a UID".into());
        }
    }
    Ok(())
}

/// Brings a draft's fields into their stored forms (today the birthday, see
/// [`portico_sdk::normalize_birthday`]) and then checks it like [`validate_draft`]. The admin
/// API and imports call this before app hooks run, so apps see normal forms.
pub fn normalize_draft(draft: &mut CustomerDraft) -> Result<(), String> {
    if let Some(b) = &draft.birthday {
        match portico_sdk::normalize_birthday(b) {
            Ok(n) => draft.birthday = Some(n),
            Err(e) => return Err(format!("birthday '{b}': {e}")),
        }
    }
    validate_draft(draft)
}

/// Reduces a scan of log entries to at most `limit` customers, latest entry each, in sequence
/// order. Shared by the backends so they agree on truncation and `next_seq`.
pub(crate) fn collapse_changes(
    entries: impl Iterator<Item = portico_sdk::Change>,
    from: u64,
    end: u64,
    limit: usize,
) -> ChangeBatch {
    use std::collections::HashMap;
    let mut latest: HashMap<CustomerId, portico_sdk::Change> = HashMap::new();
    let mut next_seq = from;
    let mut truncated = false;
    for ch in entries {
        if !latest.contains_key(&ch.customer_id) && latest.len() >= limit {
            truncated = true;
            break;
        }
        next_seq = ch.seq;
        latest.insert(ch.customer_id.clone(), ch);
    }
    if !truncated {
        next_seq = end;
    }
    let mut changes: Vec<portico_sdk::Change> = latest.into_values().collect();
    changes.sort_by_key(|c| c.seq);
    ChangeBatch {
        changes,
        next_seq,
        truncated,
    }
}
