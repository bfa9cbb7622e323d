//! Ports: what the host provides to apps. Each is already scoped to the organization (and, for
//! secrets and installation state, to the installation) the request belongs to, so an app cannot
//! reach another tenant's data by construction.
use crate::{
    AppError, CardRecord, ChangeBatch, Customer, CustomerDraft, CustomerId, Installation, Secret,
    Timestamp,
};
use async_trait::async_trait;

/// The organization's customers. Every write takes the next number in the organization's change
/// log, atomically with the record.
#[async_trait]
pub trait CustomerDirectory: Send + Sync {
    /// One customer, or `None`.
    async fn get(&self, id: &CustomerId) -> Result<Option<Customer>, AppError>;
    /// The customer whose [`Customer::resource_name`] is `name`.
    async fn find_by_resource_name(&self, name: &str) -> Result<Option<Customer>, AppError>;
    /// [`CustomerDirectory::find_by_resource_name`] for several names at once: one entry per
    /// name, in the same order (`None` where no customer has it; a name given twice is answered
    /// twice). The host reads them in one store round trip, so an app answering a batch of
    /// lookups (a CardDAV multiget, say) should prefer this to a loop. The default loops.
    async fn find_many_by_resource_name(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, AppError> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.push(self.find_by_resource_name(name).await?);
        }
        Ok(out)
    }
    /// The customer whose stored card has this UID.
    async fn find_by_card_uid(&self, uid: &str) -> Result<Option<Customer>, AppError>;
    /// Up to `limit` customers in id order, starting after `after`.
    async fn list(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, AppError>;
    /// [`CustomerDirectory::list`] as card records: the same customers in the same order, each
    /// as [`CardRecord::from`] would make it. For serving cards (a CardDAV listing), where the
    /// host reads stored cards without decoding the customers' other fields. The default
    /// converts [`CustomerDirectory::list`].
    async fn list_cards(
        &self,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CardRecord>, AppError> {
        Ok(self
            .list(after, limit)
            .await?
            .into_iter()
            .map(CardRecord::from)
            .collect())
    }
    /// [`CustomerDirectory::find_many_by_resource_name`] as card records (see
    /// [`CustomerDirectory::list_cards`]). The default converts its answer.
    async fn find_cards_by_resource_name(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<CardRecord>>, AppError> {
        Ok(self
            .find_many_by_resource_name(names)
            .await?
            .into_iter()
            .map(|c| c.map(CardRecord::from))
            .collect())
    }
    /// How many customers the organization has.
    async fn count(&self) -> Result<u64, AppError>;
    /// Creates a customer. [`crate::ErrorKind::Conflict`] if the id, the card's resource name or
    /// the card's UID is taken.
    async fn create(&self, draft: CustomerDraft) -> Result<Customer, AppError>;
    /// Replaces a customer's fields. With `expected_revision`, fails with
    /// [`crate::ErrorKind::PreconditionFailed`] unless the stored revision matches.
    /// [`crate::ErrorKind::NotFound`] if it does not exist.
    async fn update(
        &self,
        id: &CustomerId,
        draft: CustomerDraft,
        expected_revision: Option<u64>,
    ) -> Result<Customer, AppError>;
    /// Deletes a customer, leaving a tombstone in the change log. Same preconditions as
    /// [`CustomerDirectory::update`].
    async fn delete(&self, id: &CustomerId, expected_revision: Option<u64>)
        -> Result<(), AppError>;
    /// The last sequence number of the organization's change log (0 when empty).
    async fn current_seq(&self) -> Result<u64, AppError>;
    /// Changes after `seq`, at most `limit` customers. `None` if `seq` is not a position this
    /// log can answer from (in the future, or older than what was pruned).
    async fn changes_since(&self, seq: u64, limit: usize) -> Result<Option<ChangeBatch>, AppError>;
    /// The bytes of customer `id`'s card media pieces named by `keys`
    /// ([`crate::CardMedia::key`]), in the same order; `None` for a piece the store does not
    /// hold (a damaged record: the caller must not serve the card as if it were whole). The only
    /// call that reads media bytes: listings and lookups return records without them.
    async fn card_media(
        &self,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, AppError>;
}

/// The app's own installation record.
#[async_trait]
pub trait InstallationPort: Send + Sync {
    /// Reads the current record (it may have changed since the request started).
    async fn load(&self) -> Result<Installation, AppError>;
    /// Writes the record if its `revision` still matches the stored one
    /// ([`crate::ErrorKind::PreconditionFailed`] otherwise) and returns it with the new revision.
    async fn save(&self, installation: &Installation) -> Result<Installation, AppError>;
}

/// Seals and opens secret values, bound to the current installation and a field name: a value
/// sealed for one installation or field does not open for another.
pub trait SecretBox: Send + Sync {
    /// Encrypts `plaintext` for `field`; the result is printable and safe to store.
    fn seal(&self, field: &str, plaintext: &str) -> Result<String, AppError>;
    /// Decrypts a value sealed for `field`. A wrong key or tampered value is an error
    /// ([`crate::ErrorKind::Internal`]), never garbage.
    fn open(&self, field: &str, sealed: &str) -> Result<Secret<String>, AppError>;
    /// A new random token of `bytes` random bytes from a cryptographic generator, URL-safe
    /// base64 without padding (e.g. 18 bytes → 24 characters, 144 bits).
    fn random_token(&self, bytes: usize) -> Secret<String>;
}

/// The time source (replaceable in tests).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Events out of the host: what an app emits here is delivered to the organization's webhook
/// endpoints (signed, retried, kept in an outbox so a restart loses none). The host prefixes the
/// name with the app kind (`emit("contact_edited", …)` from the CardDAV app is delivered as
/// `carddav.contact_edited`) and adds the organization, installation and time.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Queues an event. Returns once it is in the outbox (delivery happens later).
    async fn emit(&self, name: &str, payload: serde_json::Value) -> Result<(), AppError>;
}
