//! The MongoDB store (production, several Portico processes on one database).
//!
//! ## Layout
//! One document per record, every document carrying `org` (the future shard key) and every
//! query filtering on it (the exceptions are the organization directory itself: listing all
//! organizations and finding one by slug).
//!
//! | collection      | `_id`            | unique indexes                                           |
//! |-----------------|------------------|----------------------------------------------------------|
//! | `organizations` | org id           | `slug` (global: a slug lookup has no org)                |
//! | `installations` | `{org}/{id}`     | `(org, id)`                                              |
//! | `customers`     | `{org}/{id}`     | `(org, id)`, `(org, resource_name)`, `(org, card_uid)` partial (only cards) |
//! | `changes`       | `{org}/{seq:020}`| `(org, seq)`                                             |
//! | `counters`      | org id           | —                                                        |
//! | `host_records`  | `{ns}\0{key}`   | `(ns, key)` — the host's own few records (sessions, tokens, setup links); not per org |
//! | `card_media`    | `{org}/{customer}/{key}` | `(org, customer, key)` — card media pieces (photos cut out of a card) |
//!
//! Ids never contain `/`, so the composite `_id`s are unambiguous. A customer document is the
//! [`Customer`] itself (its stored card inside, byte for byte) plus `org`, `resource_name`,
//! `card_uid` (only when it has a card) and `seq`, the change-log position of its last write.
//! An installation's app `data` is stored as a JSON string: the host never queries inside it,
//! and a string keeps any JSON exactly (numbers beyond 64 bits, keys starting with `$`).
//! Indexes are created at startup; creating an existing index with the same options is a no-op.
//!
//! ## Concurrency
//! Records carry `revision`; a write replaces the document filtered by `{org, _id, revision}`
//! and treats "nothing matched" as a lost race (precondition failed, or re-read and retry when
//! the caller gave no revision). Uniqueness is the indexes' job: a duplicate key (code 11000)
//! becomes [`Outcome::Conflict`], so two processes creating the same slug get one winner and one
//! 409. The per-organization sequence is `counters.findOneAndUpdate({$inc: {seq: 1}}, upsert)`.
//!
//! ## A customer write and its change-log entry
//! Where the deployment supports transactions (replica set, sharded cluster; detected once at
//! startup), the record, the counter and the log entry are written in one transaction, retried
//! on transient errors (write conflicts between concurrent writers of one organization).
//! `store.transactions` overrides the detection: `on` requires them, `off` never uses them. The
//! nx-27017 test server needs `off` under concurrent load: it accepts transactions but runs each
//! as a savepoint on one shared SQLite connection, so two at once break each other ("no such
//! savepoint"); the end-to-end suite therefore runs against it log-first.
//!
//! A standalone `mongod` refuses transactions. There the write is ordered so that a crash
//! between its steps is harmless: take the sequence number, insert the log entry, then write the
//! record (which remembers that number in `seq`). The opposite order could lose a change for
//! good: a crash after the record but before the entry would leave phones that never learn of
//! the write. With the log first, a crash leaves at most an entry whose record is older (or
//! missing, or still present after a logged delete), and a taken number without an entry (a
//! gap). Readers tolerate both:
//! - a client told about a customer fetches it and gets the current state: an entry whose
//!   record is older only costs a re-fetch, and [`Store::changes_since`] reports an entry as a
//!   deletion exactly when the record is missing, so a crashed create reads as a removed member
//!   and a crashed delete as a change;
//! - a concurrent reader must not step past a write that is still in flight (entry written,
//!   record not yet), or its client would never see the record. So without transactions,
//!   [`Store::changes_since`] and [`Store::current_seq`] only report positions that are
//!   *settled*: the entry's record reflects it (or a later write superseded it), or its writer
//!   started more than [`SETTLE_MS`] ago (a crashed write; writers give up before writing a
//!   record later than [`WRITE_DEADLINE_MS`] after they started). The check reads only the log
//!   entries of the last [`SETTLE_MS`], and nothing when the organization had no recent write.
//!
//! ## Card media pieces
//! A card's large photos are stored apart from the record ([`portico_sdk::StoredCard::media`]),
//! one `card_media` document per piece, named by a key the writing attempt draws at random
//! ([`portico_sdk::plan_card_media`]), so two writers never share a piece they are still
//! writing. A customer write (in a transaction, all of this is one transaction):
//! 1. inserts the draft's new pieces, before the log entry and the record;
//! 2. writes the record with its compare-and-set on the revision it read;
//! 3. after the record is written, deletes the pieces the replaced record named and the new one
//!    does not (a delete: every piece the deleted record named).
//!
//! An attempt that does not write its record (lost race, conflict, error) deletes the pieces it
//! inserted in step 1. A reference a draft carries over without bytes must name a piece of the
//! very record the compare-and-set replaces, and only the writer that replaces a record deletes
//! that record's pieces, so a written record never names a piece that is gone; the only thing a
//! crash between the steps leaves is an unreferenced piece (garbage: reads reach pieces only
//! through a record's references, so it is never served; [`Store::count_card_media`] counts it).
use super::{collapse_changes, ChangeLog, Outcome, Store, StoreError};
use crate::config::Transactions;
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use portico_sdk::{
    plan_card_media, Change, ChangeBatch, Customer, CustomerDraft, CustomerId, Installation,
    InstallationId, MediaPlan, OrgId, Organization, Timestamp,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// How long a change-log position may stay unsettled (entry without its record, or a taken
/// number without an entry) before readers treat its writer as crashed and move past it.
pub const SETTLE_MS: i64 = 30_000;
/// Without transactions, a writer that got this far behind its start does not write the record
/// any more (it answers `Unavailable`), so readers never move past a write that still lands.
pub const WRITE_DEADLINE_MS: i64 = 10_000;
/// Default connect and server-selection timeout when the URI sets none: startup against an
/// unreachable server fails after this long, and so does a request during an outage (503).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/readyz`'s ping waits at most.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Attempts of one customer write before giving up (write conflicts, lost races).
const MAX_ATTEMPTS: u32 = 20;
/// Entries read per page while looking for unsettled positions, and at most this many pages.
const SETTLE_PAGE: i64 = 500;
const SETTLE_MAX_PAGES: usize = 8;
/// The counter document a transaction probe reads (never written).
const PROBE_ID: &str = "__portico_txn_probe__";

/// The MongoDB-backed store.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    orgs: Collection<Document>,
    installs: Collection<Document>,
    customers: Collection<Document>,
    changes: Collection<Document>,
    counters: Collection<Document>,
    records: Collection<Document>,
    media: Collection<Document>,
    transactions: bool,
    /// [`SETTLE_MS`] and [`WRITE_DEADLINE_MS`] (shorter in tests).
    settle_ms: i64,
    write_deadline_ms: i64,
}

/// Client options for `uri`: the URI's own settings, plus [`DEFAULT_TIMEOUT`] for connecting
/// and server selection where the URI sets none.
pub async fn client_options(uri: &str) -> Result<ClientOptions, StoreError> {
    // The driver's parse errors do not repeat the URI, so no password leaks into the message.
    let mut opts = ClientOptions::parse(uri)
        .await
        .map_err(|e| StoreError::Backend(format!("invalid MongoDB URI: {e}")))?;
    opts.connect_timeout.get_or_insert(DEFAULT_TIMEOUT);
    opts.server_selection_timeout.get_or_insert(DEFAULT_TIMEOUT);
    opts.app_name.get_or_insert_with(|| "portico".to_owned());
    Ok(opts)
}

fn check_database_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 63
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'))
    {
        return Err(StoreError::Backend(format!(
            "invalid MongoDB database name '{name}' (1 to 63 characters, none of /\\. \"$)"
        )));
    }
    Ok(())
}

impl MongoStore {
    /// Connects, checks the server answers (within the timeouts: an unreachable server, a
    /// malformed URI or refused credentials fail here with a clear message), creates the
    /// indexes and detects whether the deployment supports transactions.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        Self::connect_with(uri, database, Transactions::Auto).await
    }

    /// [`MongoStore::connect`] with a transaction setting (`store.transactions`): `Auto`
    /// detects, `On` fails where the deployment has no transactions, `Off` writes log-first
    /// even where it has.
    pub async fn connect_with(
        uri: &str,
        database: &str,
        mode: Transactions,
    ) -> Result<Self, StoreError> {
        check_database_name(database)?;
        let opts = client_options(uri).await?;
        let hosts = opts
            .hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let client = Client::with_options(opts)
            .map_err(|e| StoreError::Backend(format!("invalid MongoDB options: {e}")))?;
        let db = client.database(database);
        db.run_command(doc! { "ping": 1 }).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot reach MongoDB at {hosts}: {e}"))
        })?;
        let mut store = MongoStore {
            orgs: db.collection("organizations"),
            installs: db.collection("installations"),
            customers: db.collection("customers"),
            changes: db.collection("changes"),
            counters: db.collection("counters"),
            records: db.collection("host_records"),
            media: db.collection("card_media"),
            client,
            db,
            transactions: false,
            settle_ms: SETTLE_MS,
            write_deadline_ms: WRITE_DEADLINE_MS,
        };
        store.create_indexes().await?;
        store.transactions = match mode {
            Transactions::Off => false,
            Transactions::Auto => store.probe_transactions().await?,
            Transactions::On => {
                if !store.probe_transactions().await? {
                    return Err(StoreError::Backend(format!(
                        "store.transactions = \"on\" but the MongoDB deployment at {hosts} does \
                         not support transactions (a standalone server?): use a replica set, or \
                         \"auto\"/\"off\" for log-first writes"
                    )));
                }
                true
            }
        };
        if store.transactions {
            tracing::info!(%hosts, database, "MongoDB store ready (transactions)");
        } else {
            tracing::info!(
                %hosts,
                database,
                ?mode,
                "MongoDB store ready (no transactions: log-first writes)"
            );
        }
        Ok(store)
    }

    /// Whether customer writes use transactions (else the log-first ordering).
    pub fn uses_transactions(&self) -> bool {
        self.transactions
    }

    /// The same store writing without transactions, as on a standalone `mongod` (tests use it to
    /// exercise the log-first ordering against a server that has transactions).
    pub fn without_transactions(mut self) -> Self {
        self.transactions = false;
        self
    }

    async fn create_indexes(&self) -> Result<(), StoreError> {
        let unique = |keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(true).build())
                .build()
        };
        let card_uid = IndexModel::builder()
            .keys(doc! { "org": 1, "card_uid": 1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    // Only customers with a card have the field; a compound `sparse` index would
                    // still index the others (they all have `org`).
                    .partial_filter_expression(doc! { "card_uid": { "$type": "string" } })
                    .build(),
            )
            .build();
        let plan: [(&Collection<Document>, Vec<IndexModel>); 6] = [
            (&self.orgs, vec![unique(doc! { "slug": 1 })]),
            (&self.installs, vec![unique(doc! { "org": 1, "id": 1 })]),
            (
                &self.customers,
                vec![
                    unique(doc! { "org": 1, "id": 1 }),
                    unique(doc! { "org": 1, "resource_name": 1 }),
                    card_uid,
                ],
            ),
            (&self.changes, vec![unique(doc! { "org": 1, "seq": 1 })]),
            (&self.records, vec![unique(doc! { "ns": 1, "key": 1 })]),
            (
                &self.media,
                vec![unique(doc! { "org": 1, "customer": 1, "key": 1 })],
            ),
        ];
        for (coll, models) in plan {
            coll.create_indexes(models).await.map_err(|e| {
                let e = map_err(e);
                match e {
                    StoreError::Backend(m) => StoreError::Backend(format!(
                        "cannot create the indexes of '{}': {m}",
                        coll.name()
                    )),
                    other => other,
                }
            })?;
        }
        Ok(())
    }

    /// Starts a transaction and reads inside it: a standalone `mongod` refuses that
    /// ("Transaction numbers are only allowed on a replica set member or mongos").
    async fn probe_transactions(&self) -> Result<bool, StoreError> {
        let mut s = self.client.start_session().await.map_err(map_err)?;
        if let Err(e) = s.start_transaction().await {
            tracing::debug!(error = %e, "transactions not supported");
            return Ok(false);
        }
        let r = self
            .counters
            .find_one(doc! { "_id": PROBE_ID, "org": PROBE_ID })
            .session(&mut s)
            .await;
        let _ = s.abort_transaction().await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_unavailable(&e) => Err(map_err(e)),
            Err(e) => {
                tracing::debug!(error = %e, "transactions not supported");
                Ok(false)
            }
        }
    }

    /// The same store with a shorter settle window (tests of the log-first ordering).
    #[cfg(all(test, feature = "mongo-tests"))]
    fn with_settle_ms(mut self, ms: i64) -> Self {
        self.settle_ms = ms;
        self.write_deadline_ms = ms / 3;
        self
    }

    /// Drops the whole database (tests).
    #[cfg(all(test, feature = "mongo-tests"))]
    async fn drop_database(&self) {
        let _ = self.db.drop().await;
    }

    async fn counter(&self, org: &OrgId) -> Result<Counter, StoreError> {
        let d = self
            .counters
            .find_one(doc! { "_id": org.as_str(), "org": org.as_str() })
            .await
            .map_err(map_err)?;
        Ok(d.map(|d| Counter::of(&d)).unwrap_or_default())
    }

    /// One attempt of a customer write. In transaction mode every step runs in `tx`'s
    /// transaction; without, the steps are ordered as the module documentation explains.
    async fn attempt(&self, tx: &mut Tx, org: &OrgId, op: &Op) -> Result<Step, Fail> {
        let (id, draft, expected, now) = match op {
            Op::Create { id, draft, now } => (id, Some(draft), None, *now),
            Op::Update {
                id,
                draft,
                expected,
                now,
            } => (id, Some(draft), *expected, *now),
            Op::Delete { id, expected } => (id, None, *expected, Timestamp(0)),
        };
        let key = id_key(org, id.as_str());
        let filter = doc! { "org": org.as_str(), "_id": &key };
        let old = match tx.find_one(&self.customers, filter.clone()).await? {
            Some(d) => Some(decode::<Customer>("customers", d)?),
            None => None,
        };
        let creating = matches!(op, Op::Create { .. });
        match (&old, creating) {
            (Some(_), true) => return Ok(Step::Done(conflict(format!("customer '{id}' exists")))),
            (None, false) => return Ok(Step::Done(Outcome::NotFound)),
            _ => {}
        }
        if let (Some(old), Some(rev)) = (&old, expected) {
            if old.revision != rev {
                return Ok(Step::Done(Outcome::PreconditionFailed));
            }
        }
        let mut plan = MediaPlan::default();
        let new = match (draft, &old) {
            (Some(d), old) => {
                if let Some(why) = self.unique_clash(tx, org, id, d).await? {
                    return Ok(Step::Done(conflict(why)));
                }
                let (rev, now) = match old {
                    Some(o) => (o.revision + 1, now.max(o.updated_at)),
                    None => (1, now),
                };
                let mut d = d.clone();
                let old_card = old.as_ref().and_then(|o| o.card.as_ref());
                plan = match plan_card_media(old_card, &mut d, || {
                    CustomerId::random().as_str().to_owned()
                }) {
                    Ok(p) => p,
                    Err(why) => return Ok(Step::Done(conflict(why))),
                };
                Some(d.into_customer(id.clone(), rev, now))
            }
            (None, old) => {
                plan.drop = old
                    .as_ref()
                    .and_then(|o| o.card.as_ref())
                    .map(|c| c.media.iter().map(|m| m.key.clone()).collect())
                    .unwrap_or_default();
                None
            }
        };
        // Step 1 of the media order (module documentation): the new pieces first.
        if !plan.put.is_empty() {
            let docs = plan
                .put
                .iter()
                .map(|(k, v)| media_doc(org, id, k, v))
                .collect();
            tx.insert_many(&self.media, docs).await?;
        }
        let step = self
            .write_record(tx, org, id, &old, new, expected, &plan)
            .await;
        let written = matches!(step, Ok(Step::Done(Outcome::Done(_))));
        if !written && !tx.in_transaction() && !plan.put.is_empty() {
            // This attempt's pieces are named by no record: remove them (best effort; what a
            // failure leaves is unreferenced garbage, never served).
            let keys: Vec<&str> = plan.put.iter().map(|(k, _)| k.as_str()).collect();
            let f = doc! { "org": org.as_str(), "customer": id.as_str(), "key": { "$in": keys } };
            if let Err(e) = self.media.delete_many(f).await {
                tracing::warn!(error = %e, "could not remove the media pieces of a failed write");
            }
        }
        step
    }

    /// The rest of [`MongoStore::attempt`] once the new media pieces are in: the log entry, the
    /// record, and the replaced record's pieces dropped.
    #[allow(clippy::too_many_arguments)]
    async fn write_record(
        &self,
        tx: &mut Tx,
        org: &OrgId,
        id: &CustomerId,
        old: &Option<Customer>,
        new: Option<Customer>,
        expected: Option<u64>,
        plan: &MediaPlan,
    ) -> Result<Step, Fail> {
        let key = id_key(org, id.as_str());
        let filter = doc! { "org": org.as_str(), "_id": &key };
        // The record the log entry describes: the new state, or the deleted one.
        let Some(logged) = new.as_ref().or(old.as_ref()) else {
            return Ok(Step::Done(Outcome::NotFound));
        };
        // When this writer takes its number: readers judge a position by it, and the record is
        // not written later than `write_deadline_ms` after it.
        let started = Timestamp::now().0;
        let seq = match self.next_seq(tx, org, started).await {
            Ok(s) => s,
            // Two first writes of an organization raced to create its counter.
            Err(Fail::Db(e)) if is_duplicate(&e) => return Ok(Step::Retry),
            Err(e) => return Err(e),
        };
        tx.insert_one(
            &self.changes,
            change_doc(org, seq, logged, new.is_none(), started),
        )
        .await?;
        if !tx.in_transaction() && Timestamp::now().0 - started > self.write_deadline_ms {
            // Readers may already have moved past this position: do not write the record.
            return Err(Fail::Store(StoreError::Unavailable(
                "the database is too slow: write abandoned".into(),
            )));
        }
        let written = match (&new, old) {
            (Some(c), None) => tx
                .insert_one(&self.customers, customer_doc(org, c, seq)?)
                .await
                .map(|()| 1),
            (Some(c), Some(o)) => {
                let mut f = filter;
                f.insert("revision", rev_bson(o.revision));
                tx.replace_one(&self.customers, f, customer_doc(org, c, seq)?)
                    .await
            }
            (None, Some(o)) => {
                let mut f = filter;
                f.insert("revision", rev_bson(o.revision));
                tx.delete_one(&self.customers, f).await
            }
            (None, None) => Ok(0),
        };
        match written {
            Ok(0) if expected.is_some() => Ok(Step::Done(Outcome::PreconditionFailed)),
            // Changed or deleted since it was read: read again.
            Ok(0) => Ok(Step::Retry),
            Ok(_) => {
                // Step 3: the replaced record's pieces the new one does not name.
                if !plan.drop.is_empty() {
                    let keys: Vec<&str> = plan.drop.iter().map(String::as_str).collect();
                    let f = doc! {
                        "org": org.as_str(), "customer": id.as_str(), "key": { "$in": keys }
                    };
                    match tx.delete_many(&self.media, f).await {
                        Ok(_) => {}
                        Err(e) if tx.in_transaction() => return Err(Fail::Db(e)),
                        // The record is written: a piece left behind is only garbage.
                        Err(e) => {
                            tracing::warn!(error = %e, "could not drop replaced media pieces")
                        }
                    }
                }
                Ok(Step::Done(Outcome::Done(new)))
            }
            Err(e) if is_duplicate(&e) => Ok(Step::Done(conflict(format!(
                "customer '{id}', its resource name or its card UID is taken"
            )))),
            Err(e) => Err(Fail::Db(e)),
        }
    }

    /// Whether another customer of `org` holds the resource name or card UID `draft` wants.
    async fn unique_clash(
        &self,
        tx: &mut Tx,
        org: &OrgId,
        id: &CustomerId,
        draft: &CustomerDraft,
    ) -> Result<Option<String>, Fail> {
        let name = draft
            .card
            .as_ref()
            .map(|c| c.name.as_str())
            .unwrap_or(id.as_str());
        let f = doc! { "org": org.as_str(), "resource_name": name };
        if let Some(d) = tx.find_one(&self.customers, f).await? {
            if d.get_str("id").ok() != Some(id.as_str()) {
                return Ok(Some(format!("resource name '{name}' is taken")));
            }
        }
        if let Some(card) = &draft.card {
            let f = doc! { "org": org.as_str(), "card_uid": &card.uid };
            if let Some(d) = tx.find_one(&self.customers, f).await? {
                if d.get_str("id").ok() != Some(id.as_str()) {
                    return Ok(Some(format!("card UID '{}' is taken", card.uid)));
                }
            }
        }
        Ok(None)
    }

    /// Takes the organization's next sequence number.
    async fn next_seq(&self, tx: &mut Tx, org: &OrgId, at: i64) -> Result<u64, Fail> {
        // Upsert: the equality fields of the filter (`_id`, `org`) make the new document.
        let d = tx
            .find_one_and_update(
                &self.counters,
                doc! { "_id": org.as_str(), "org": org.as_str() },
                doc! { "$inc": { "seq": 1_i64 }, "$max": { "at": at } },
            )
            .await?
            .ok_or_else(|| StoreError::Backend("the counter upsert returned nothing".into()))?;
        Ok(Counter::of(&d).seq)
    }

    /// Runs a customer write to completion: in a transaction (retried on transient errors), or
    /// in log-first order (retried when a concurrent writer won the revision race).
    async fn run_write(
        &self,
        org: &OrgId,
        op: Op,
    ) -> Result<Outcome<Option<Customer>>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                let ms = 2 * u64::from(attempt) + rand::random::<u64>() % 8;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let mut tx = Tx::begin(self).await?;
            let step = self.attempt(&mut tx, org, &op).await;
            match step {
                Ok(Step::Done(Outcome::Done(v))) => match tx.commit().await {
                    Ok(()) => return Ok(Outcome::Done(v)),
                    Err(e) if transient(&e) => continue,
                    Err(e) => return Err(map_err(e)),
                },
                Ok(Step::Done(other)) => {
                    tx.abort().await;
                    return Ok(other);
                }
                Ok(Step::Retry) => tx.abort().await,
                Err(Fail::Db(e)) if transient(&e) => tx.abort().await,
                Err(e) => {
                    // During an outage an abort would wait for another server selection: drop
                    // the session instead (the driver aborts in the background, the server times
                    // the transaction out).
                    if !matches!(&e, Fail::Db(d) if is_unavailable(d)) {
                        tx.abort().await;
                    }
                    return Err(e.into());
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "customer write in '{org}' gave up after {MAX_ATTEMPTS} attempts (contention)"
        )))
    }

    /// The customers of `org` with these ids: id → the `seq` of the record's last write (`None`
    /// for records written without one, e.g. copied from another store).
    async fn record_seqs(
        &self,
        org: &OrgId,
        ids: Vec<&str>,
    ) -> Result<HashMap<String, Option<u64>>, StoreError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut cur = self
            .customers
            .find(doc! { "org": org.as_str(), "id": { "$in": ids } })
            .projection(doc! { "id": 1, "seq": 1 })
            .await
            .map_err(map_err)?;
        while cur.advance().await.map_err(map_err)? {
            let d = cur.deserialize_current().map_err(map_err)?;
            if let Ok(id) = d.get_str("id") {
                out.insert(id.to_owned(), get_u64(&d, "seq"));
            }
        }
        Ok(out)
    }

    /// Without transactions: the highest position up to which every position is settled (see
    /// the module documentation). With transactions every committed position is settled.
    async fn settled_end(&self, org: &OrgId, ctr: &Counter) -> Result<u64, StoreError> {
        let now = Timestamp::now().0;
        let young = |at: Option<i64>| at.is_some_and(|at| now - at < self.settle_ms);
        if self.transactions || ctr.seq <= ctr.floor || !young(ctr.at) {
            return Ok(ctr.seq);
        }
        // Walk the log down from the end while its entries are recent.
        let mut recent: Vec<Entry> = Vec::new();
        let mut below = ctr.seq + 1;
        let mut reached_old = false;
        'pages: for _ in 0..SETTLE_MAX_PAGES {
            let mut cur = self
                .changes
                .find(doc! { "org": org.as_str(), "seq": { "$gt": seq_bson(ctr.floor), "$lt": seq_bson(below) } })
                .sort(doc! { "seq": -1 })
                .limit(SETTLE_PAGE)
                .await
                .map_err(map_err)?;
            let mut n = 0;
            while cur.advance().await.map_err(map_err)? {
                n += 1;
                let e = Entry::of(cur.deserialize_current().map_err(map_err)?)?;
                below = e.change.seq;
                let old = !young(e.at);
                recent.push(e);
                if old {
                    reached_old = true;
                    break 'pages;
                }
            }
            if n < SETTLE_PAGE {
                break;
            }
        }
        // `recent` runs from the end down. A missing position is unsettled while the entry
        // above it (taken later) or, at the top, the counter is recent.
        let mut unsettled: Option<u64> = None;
        let mut above_at = ctr.at;
        let mut above_seq = ctr.seq + 1;
        for e in &recent {
            if e.change.seq + 1 < above_seq && young(above_at) {
                unsettled = Some(e.change.seq + 1);
            }
            above_at = e.at;
            above_seq = e.change.seq;
        }
        if !reached_old {
            // Down to the floor (or as far as the walk went) everything was recent: positions
            // below the lowest entry read stay unsettled if that entry is recent.
            let lowest = recent.last().map(|e| e.change.seq).unwrap_or(ctr.seq + 1);
            if lowest > ctr.floor + 1 && young(above_at) {
                unsettled = Some(
                    if recent.len() as i64 >= SETTLE_PAGE * SETTLE_MAX_PAGES as i64 {
                        // Too many recent writes to check: stay behind them.
                        lowest
                    } else {
                        ctr.floor + 1
                    },
                );
            }
        }
        // Recent entries whose record does not reflect them yet (in flight, or crashed), the
        // latest per customer (an earlier one is superseded).
        let mut latest: HashMap<&str, &Entry> = HashMap::new();
        for e in recent.iter().filter(|e| young(e.at)) {
            latest.entry(e.change.customer_id.as_str()).or_insert(e);
        }
        let records = self
            .record_seqs(org, latest.keys().copied().collect())
            .await?;
        for e in latest.values() {
            let rec = records.get(e.change.customer_id.as_str()).copied();
            if !applied(&e.change, rec) {
                let s = e.change.seq;
                unsettled = Some(unsettled.map_or(s, |u| u.min(s)));
            }
        }
        Ok(match unsettled {
            Some(p) => p.saturating_sub(1).max(ctr.floor),
            None => ctr.seq,
        })
    }
}

/// Whether a customer's record reflects log entry `c`. `rec`: `None` if the record is missing,
/// else the `seq` it was last written at (`None`: unknown, taken as current).
fn applied(c: &Change, rec: Option<Option<u64>>) -> bool {
    match (c.deleted, rec) {
        (true, None) => true,
        (true, Some(s)) => s.is_some_and(|s| s > c.seq),
        (false, None) => false,
        (false, Some(s)) => s.is_none_or(|s| s >= c.seq),
    }
}

/// A customer write.
enum Op {
    Create {
        id: CustomerId,
        draft: CustomerDraft,
        now: Timestamp,
    },
    Update {
        id: CustomerId,
        draft: CustomerDraft,
        expected: Option<u64>,
        now: Timestamp,
    },
    Delete {
        id: CustomerId,
        expected: Option<u64>,
    },
}

// One value per attempt, moved once: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Step {
    Done(Outcome<Option<Customer>>),
    Retry,
}

/// A failure inside a write attempt: a driver error (kept whole for its labels) or a store one.
#[derive(Debug)]
enum Fail {
    Db(mongodb::error::Error),
    Store(StoreError),
}

impl From<mongodb::error::Error> for Fail {
    fn from(e: mongodb::error::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Db(e) => map_err(e),
            Fail::Store(e) => e,
        }
    }
}

/// The steps of one write attempt, inside a transaction or not.
struct Tx {
    session: Option<ClientSession>,
}

impl Tx {
    async fn begin(store: &MongoStore) -> Result<Tx, StoreError> {
        if !store.transactions {
            return Ok(Tx { session: None });
        }
        let mut s = store.client.start_session().await.map_err(map_err)?;
        s.start_transaction().await.map_err(map_err)?;
        Ok(Tx { session: Some(s) })
    }

    fn in_transaction(&self) -> bool {
        self.session.is_some()
    }

    async fn commit(&mut self) -> mongodb::error::Result<()> {
        match self.session.as_mut() {
            Some(s) => s.commit_transaction().await,
            None => Ok(()),
        }
    }

    async fn abort(&mut self) {
        if let Some(s) = self.session.as_mut() {
            // The server may have aborted it already (after an error); nothing to do then.
            let _ = s.abort_transaction().await;
        }
    }

    async fn find_one(
        &mut self,
        c: &Collection<Document>,
        filter: Document,
    ) -> mongodb::error::Result<Option<Document>> {
        let a = c.find_one(filter);
        match self.session.as_mut() {
            Some(s) => a.session(s).await,
            None => a.await,
        }
    }

    async fn insert_one(
        &mut self,
        c: &Collection<Document>,
        d: Document,
    ) -> mongodb::error::Result<()> {
        let a = c.insert_one(d);
        match self.session.as_mut() {
            Some(s) => a.session(s).await.map(|_| ()),
            None => a.await.map(|_| ()),
        }
    }

    /// Replaces the matching document; the number matched.
    async fn replace_one(
        &mut self,
        c: &Collection<Document>,
        filter: Document,
        d: Document,
    ) -> mongodb::error::Result<u64> {
        let a = c.replace_one(filter, d);
        match self.session.as_mut() {
            Some(s) => a.session(s).await.map(|r| r.matched_count),
            None => a.await.map(|r| r.matched_count),
        }
    }

    async fn insert_many(
        &mut self,
        c: &Collection<Document>,
        docs: Vec<Document>,
    ) -> mongodb::error::Result<()> {
        let a = c.insert_many(docs);
        match self.session.as_mut() {
            Some(s) => a.session(s).await.map(|_| ()),
            None => a.await.map(|_| ()),
        }
    }

    /// Deletes the matching documents; the number deleted.
    async fn delete_many(
        &mut self,
        c: &Collection<Document>,
        filter: Document,
    ) -> mongodb::error::Result<u64> {
        let a = c.delete_many(filter);
        match self.session.as_mut() {
            Some(s) => a.session(s).await.map(|r| r.deleted_count),
            None => a.await.map(|r| r.deleted_count),
        }
    }

    /// Deletes the matching document; the number deleted.
    async fn delete_one(
        &mut self,
        c: &Collection<Document>,
        filter: Document,
    ) -> mongodb::error::Result<u64> {
        let a = c.delete_one(filter);
        match self.session.as_mut() {
            Some(s) => a.session(s).await.map(|r| r.deleted_count),
            None => a.await.map(|r| r.deleted_count),
        }
    }

    /// An upserting find-one-and-update returning the new document.
    async fn find_one_and_update(
        &mut self,
        c: &Collection<Document>,
        filter: Document,
        update: Document,
    ) -> mongodb::error::Result<Option<Document>> {
        let a = c
            .find_one_and_update(filter, update)
            .upsert(true)
            .return_document(ReturnDocument::After);
        match self.session.as_mut() {
            Some(s) => a.session(s).await,
            None => a.await,
        }
    }
}

/// An organization's counter document.
#[derive(Default)]
struct Counter {
    seq: u64,
    floor: u64,
    /// When the last number was taken (writer's clock, ms).
    at: Option<i64>,
}

impl Counter {
    fn of(d: &Document) -> Counter {
        Counter {
            seq: get_u64(d, "seq").unwrap_or(0),
            floor: get_u64(d, "floor").unwrap_or(0),
            at: get_i64(d, "at"),
        }
    }
}

/// A change-log entry and when its writer started (ms).
struct Entry {
    change: Change,
    at: Option<i64>,
}

impl Entry {
    fn of(d: Document) -> Result<Entry, StoreError> {
        let at = get_i64(&d, "at");
        Ok(Entry {
            change: decode("changes", d)?,
            at,
        })
    }
}

fn id_key(org: &OrgId, id: &str) -> String {
    format!("{org}/{id}")
}

fn seq_bson(seq: u64) -> Bson {
    Bson::Int64(i64::try_from(seq).unwrap_or(i64::MAX))
}

fn rev_bson(rev: u64) -> Bson {
    seq_bson(rev)
}

fn get_i64(d: &Document, field: &str) -> Option<i64> {
    match d.get(field)? {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Double(v) if v.fract() == 0.0 => Some(*v as i64),
        _ => None,
    }
}

fn get_u64(d: &Document, field: &str) -> Option<u64> {
    get_i64(d, field).and_then(|v| u64::try_from(v).ok())
}

fn conflict<T>(why: String) -> Outcome<T> {
    Outcome::Conflict(why)
}

fn to_doc<T: Serialize>(v: &T) -> Result<Document, StoreError> {
    mongodb::bson::to_document(v).map_err(|e| StoreError::Backend(format!("cannot encode: {e}")))
}

/// Decodes a stored document; a document that does not fit (edited by hand, say) is an error
/// for that record alone, naming it.
fn decode<T: DeserializeOwned>(coll: &str, d: Document) -> Result<T, StoreError> {
    let id = d
        .get("_id")
        .map(|v| v.to_string())
        .unwrap_or_else(|| "?".into());
    mongodb::bson::from_document(d)
        .map_err(|e| StoreError::Corrupt(format!("{coll} document {id}: {e}")))
}

fn org_doc(org: &Organization) -> Result<Document, StoreError> {
    let mut d = to_doc(org)?;
    d.insert("_id", org.id.as_str());
    d.insert("org", org.id.as_str());
    Ok(d)
}

fn installation_doc(inst: &Installation) -> Result<Document, StoreError> {
    let data = serde_json::to_string(&inst.data)
        .map_err(|e| StoreError::Backend(format!("cannot encode installation data: {e}")))?;
    // Encode the rest without `data`: BSON has no unsigned 64-bit integer, so a JSON number
    // above i64::MAX would fail here before it became the string below.
    let mut d = to_doc(&Installation {
        data: serde_json::Value::Null,
        ..inst.clone()
    })?;
    d.insert("data", data);
    d.insert("_id", id_key(&inst.org_id, inst.id.as_str()));
    d.insert("org", inst.org_id.as_str());
    Ok(d)
}

fn decode_installation(mut d: Document) -> Result<Installation, StoreError> {
    let data = d.remove("data");
    let id = d.get("_id").map(|v| v.to_string()).unwrap_or_default();
    let mut inst: Installation = decode("installations", d)?;
    inst.data = match data {
        None | Some(Bson::Null) => serde_json::Value::Null,
        Some(Bson::String(s)) => serde_json::from_str(&s)
            .map_err(|e| StoreError::Corrupt(format!("installations document {id}: data: {e}")))?,
        // Edited by hand into a BSON document: take it as JSON.
        Some(other) => other.into_relaxed_extjson(),
    };
    Ok(inst)
}

fn customer_doc(org: &OrgId, c: &Customer, seq: u64) -> Result<Document, StoreError> {
    let mut d = to_doc(c)?;
    d.insert("_id", id_key(org, c.id.as_str()));
    d.insert("org", org.as_str());
    d.insert("resource_name", c.resource_name());
    if let Some(card) = &c.card {
        d.insert("card_uid", card.uid.as_str());
    }
    d.insert("seq", seq_bson(seq));
    Ok(d)
}

/// A card media piece's document.
fn media_doc(org: &OrgId, id: &CustomerId, key: &str, data: &str) -> Document {
    doc! {
        "_id": format!("{org}/{id}/{key}"),
        "org": org.as_str(),
        "customer": id.as_str(),
        "key": key,
        "data": data,
    }
}

fn change_doc(org: &OrgId, seq: u64, c: &Customer, deleted: bool, at: i64) -> Document {
    doc! {
        "_id": format!("{org}/{seq:020}"),
        "org": org.as_str(),
        "seq": seq_bson(seq),
        "customer_id": c.id.as_str(),
        "resource_name": c.resource_name(),
        "deleted": deleted,
        "at": at,
    }
}

/// A duplicate key: a unique index refused the write.
fn is_duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        ErrorKind::InsertMany(ime) => ime
            .write_errors
            .as_ref()
            .is_some_and(|w| w.iter().any(|we| we.code == 11000)),
        _ => false,
    }
}

/// A transaction error worth retrying at once: a write conflict, not an outage (the driver
/// labels network and server-selection errors inside a transaction transient too; retrying
/// those would hold the request for many server-selection timeouts instead of answering 503).
fn transient(e: &mongodb::error::Error) -> bool {
    e.contains_label(TRANSIENT_TRANSACTION_ERROR) && !is_unavailable(e)
}

/// Server codes meaning "not now" (shutting down, stepping down, no primary, network).
const OUTAGE_CODES: [i32; 14] = [
    6, 7, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436, 50,
];

/// Whether the error means the database cannot serve right now (an outage, not a bug).
fn is_unavailable(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Authentication { .. }
        | ErrorKind::Shutdown => true,
        ErrorKind::Command(ce) => OUTAGE_CODES.contains(&ce.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(wc)) => OUTAGE_CODES.contains(&wc.code),
        _ => false,
    }
}

fn map_err(e: mongodb::error::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(format!("MongoDB: {e}"))
    } else {
        StoreError::Backend(format!("MongoDB: {e}"))
    }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(PING_TIMEOUT, self.db.run_command(doc! { "ping": 1 })).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("MongoDB: {e}"))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer a ping within {PING_TIMEOUT:?}"
            ))),
        }
    }

    async fn create_org(&self, org: &Organization) -> Result<Outcome<Organization>, StoreError> {
        if self.get_org(&org.id).await?.is_some() {
            return Ok(conflict(format!("organization id '{}' exists", org.id)));
        }
        match self.orgs.insert_one(org_doc(org)?).await {
            Ok(_) => Ok(Outcome::Done(org.clone())),
            Err(e) if is_duplicate(&e) => {
                // Lost a race (or the slug is taken): say which.
                if self.get_org(&org.id).await?.is_some() {
                    Ok(conflict(format!("organization id '{}' exists", org.id)))
                } else {
                    Ok(conflict(format!("slug '{}' is taken", org.slug)))
                }
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_org(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        let d = self
            .orgs
            .find_one(doc! { "_id": id.as_str(), "org": id.as_str() })
            .await
            .map_err(map_err)?;
        d.map(|d| decode("organizations", d)).transpose()
    }

    async fn find_org_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        let d = self
            .orgs
            .find_one(doc! { "slug": slug })
            .await
            .map_err(map_err)?;
        d.map(|d| decode("organizations", d)).transpose()
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        let mut cur = self
            .orgs
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(map_err)?;
        let mut out = Vec::new();
        while cur.advance().await.map_err(map_err)? {
            out.push(decode(
                "organizations",
                cur.deserialize_current().map_err(map_err)?,
            )?);
        }
        Ok(out)
    }

    async fn insert_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        match self.installs.insert_one(installation_doc(inst)?).await {
            Ok(_) => Ok(Outcome::Done(inst.clone())),
            Err(e) if is_duplicate(&e) => {
                Ok(conflict(format!("installation '{}' exists", inst.id)))
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn get_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Option<Installation>, StoreError> {
        let d = self
            .installs
            .find_one(doc! { "org": org.as_str(), "_id": id_key(org, id.as_str()) })
            .await
            .map_err(map_err)?;
        d.map(decode_installation).transpose()
    }

    async fn list_installations(&self, org: &OrgId) -> Result<Vec<Installation>, StoreError> {
        let mut cur = self
            .installs
            .find(doc! { "org": org.as_str() })
            .sort(doc! { "org": 1, "id": 1 })
            .await
            .map_err(map_err)?;
        let mut out = Vec::new();
        while cur.advance().await.map_err(map_err)? {
            out.push(decode_installation(
                cur.deserialize_current().map_err(map_err)?,
            )?);
        }
        Ok(out)
    }

    async fn update_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        let mut next = inst.clone();
        next.revision = inst.revision + 1;
        let key = id_key(&inst.org_id, inst.id.as_str());
        let filter = doc! {
            "org": inst.org_id.as_str(),
            "_id": &key,
            "revision": rev_bson(inst.revision),
        };
        let r = self
            .installs
            .replace_one(filter, installation_doc(&next)?)
            .await
            .map_err(map_err)?;
        if r.matched_count == 1 {
            return Ok(Outcome::Done(next));
        }
        let exists = self
            .installs
            .find_one(doc! { "org": inst.org_id.as_str(), "_id": &key })
            .await
            .map_err(map_err)?
            .is_some();
        Ok(if exists {
            Outcome::PreconditionFailed
        } else {
            Outcome::NotFound
        })
    }

    async fn delete_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Outcome<()>, StoreError> {
        let r = self
            .installs
            .delete_one(doc! { "org": org.as_str(), "_id": id_key(org, id.as_str()) })
            .await
            .map_err(map_err)?;
        Ok(if r.deleted_count == 1 {
            Outcome::Done(())
        } else {
            Outcome::NotFound
        })
    }

    async fn get_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        let d = self
            .customers
            .find_one(doc! { "org": org.as_str(), "_id": id_key(org, id.as_str()) })
            .await
            .map_err(map_err)?;
        d.map(|d| decode("customers", d)).transpose()
    }

    async fn find_customer_by_resource_name(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let d = self
            .customers
            .find_one(doc! { "org": org.as_str(), "resource_name": name })
            .await
            .map_err(map_err)?;
        d.map(|d| decode("customers", d)).transpose()
    }

    async fn find_customers_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // One query on the (org, resource_name) index for the whole batch, matched back to the
        // names here (MongoDB returns the documents in no particular order).
        let mut cur = self
            .customers
            .find(doc! { "org": org.as_str(), "resource_name": { "$in": names.to_vec() } })
            .await
            .map_err(map_err)?;
        let mut found: HashMap<String, Customer> = HashMap::with_capacity(names.len());
        while cur.advance().await.map_err(map_err)? {
            let c: Customer = decode("customers", cur.deserialize_current().map_err(map_err)?)?;
            found.insert(c.resource_name().to_owned(), c);
        }
        Ok(names.iter().map(|n| found.get(*n).cloned()).collect())
    }

    async fn find_customer_by_card_uid(
        &self,
        org: &OrgId,
        uid: &str,
    ) -> Result<Option<Customer>, StoreError> {
        let d = self
            .customers
            .find_one(doc! { "org": org.as_str(), "card_uid": uid })
            .await
            .map_err(map_err)?;
        d.map(|d| decode("customers", d)).transpose()
    }

    async fn list_customers(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new()); // a MongoDB limit of 0 means "no limit"
        }
        let mut filter = doc! { "org": org.as_str() };
        if let Some(a) = after {
            filter.insert("id", doc! { "$gt": a.as_str() });
        }
        let mut cur = self
            .customers
            .find(filter)
            .sort(doc! { "org": 1, "id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(limit.min(1024));
        while cur.advance().await.map_err(map_err)? {
            out.push(decode(
                "customers",
                cur.deserialize_current().map_err(map_err)?,
            )?);
        }
        Ok(out)
    }

    async fn count_customers(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.customers
            .count_documents(doc! { "org": org.as_str() })
            .await
            .map_err(map_err)
    }

    async fn create_customer(
        &self,
        org: &OrgId,
        mut draft: CustomerDraft,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        let id = draft.id.take().unwrap_or_else(CustomerId::random);
        let out = self.run_write(org, Op::Create { id, draft, now }).await?;
        Ok(with_customer(out))
    }

    async fn update_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        mut draft: CustomerDraft,
        expected_revision: Option<u64>,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        draft.id = None;
        let op = Op::Update {
            id: id.clone(),
            draft,
            expected: expected_revision,
            now,
        };
        Ok(with_customer(self.run_write(org, op).await?))
    }

    async fn delete_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<Outcome<()>, StoreError> {
        let op = Op::Delete {
            id: id.clone(),
            expected: expected_revision,
        };
        Ok(match self.run_write(org, op).await? {
            Outcome::Done(_) => Outcome::Done(()),
            Outcome::NotFound => Outcome::NotFound,
            Outcome::Conflict(m) => Outcome::Conflict(m),
            Outcome::PreconditionFailed => Outcome::PreconditionFailed,
        })
    }

    async fn current_seq(&self, org: &OrgId) -> Result<u64, StoreError> {
        let ctr = self.counter(org).await?;
        self.settled_end(org, &ctr).await
    }

    async fn changes_since(
        &self,
        org: &OrgId,
        seq: u64,
        limit: usize,
    ) -> Result<Option<ChangeBatch>, StoreError> {
        let ctr = self.counter(org).await?;
        if seq > ctr.seq || seq < ctr.floor {
            return Ok(None);
        }
        let end = self.settled_end(org, &ctr).await?;
        if seq >= end {
            return Ok(Some(ChangeBatch {
                changes: Vec::new(),
                next_seq: seq,
                truncated: false,
            }));
        }
        let mut cur = self
            .changes
            .find(doc! { "org": org.as_str(), "seq": { "$gt": seq_bson(seq), "$lte": seq_bson(end) } })
            .sort(doc! { "org": 1, "seq": 1 })
            .await
            .map_err(map_err)?;
        let mut entries = Vec::new();
        while cur.advance().await.map_err(map_err)? {
            entries.push(Entry::of(cur.deserialize_current().map_err(map_err)?)?.change);
        }
        let mut batch = collapse_changes(entries.into_iter(), seq, end, limit);
        if !self.transactions {
            // A settled entry whose record does not reflect it was written by a writer that
            // crashed: report what is there (see the module documentation).
            let ids = batch
                .changes
                .iter()
                .map(|c| c.customer_id.as_str())
                .collect();
            let records = self.record_seqs(org, ids).await?;
            for c in &mut batch.changes {
                let rec = records.get(c.customer_id.as_str()).copied();
                if !applied(c, rec) {
                    c.deleted = rec.is_none();
                }
            }
        }
        Ok(Some(batch))
    }

    async fn prune_changes(&self, org: &OrgId, up_to: u64) -> Result<(), StoreError> {
        let ctr = self.counter(org).await?;
        let up_to = up_to.min(ctr.seq);
        if up_to <= ctr.floor {
            return Ok(());
        }
        // Floor first: a crash before the deletion leaves unreachable entries, which the next
        // prune removes.
        self.counters
            .update_one(
                doc! { "_id": org.as_str(), "org": org.as_str() },
                doc! { "$max": { "floor": seq_bson(up_to) } },
            )
            .await
            .map_err(map_err)?;
        self.changes
            .delete_many(doc! { "org": org.as_str(), "seq": { "$lte": seq_bson(up_to) } })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn export_changes(&self, org: &OrgId) -> Result<ChangeLog, StoreError> {
        let ctr = self.counter(org).await?;
        let mut cur = self
            .changes
            .find(doc! { "org": org.as_str(), "seq": { "$gt": seq_bson(ctr.floor) } })
            .sort(doc! { "org": 1, "seq": 1 })
            .await
            .map_err(map_err)?;
        let mut entries = Vec::new();
        while cur.advance().await.map_err(map_err)? {
            entries.push(Entry::of(cur.deserialize_current().map_err(map_err)?)?.change);
        }
        // An entry whose record does not reflect it was left by a crashed log-first write:
        // copy what `changes_since` reports for it (a deletion exactly when the record is
        // missing). Only each customer's latest entry is ever reported, so only those matter.
        let mut latest: HashMap<&str, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            latest.insert(e.customer_id.as_str(), i);
        }
        let mut fix = Vec::new();
        let ids: Vec<&str> = latest.keys().copied().collect();
        let mut records = HashMap::new();
        for chunk in ids.chunks(1000) {
            records.extend(self.record_seqs(org, chunk.to_vec()).await?);
        }
        for &i in latest.values() {
            let e = &entries[i];
            let rec = records.get(e.customer_id.as_str()).copied();
            if !applied(e, rec) {
                fix.push((i, rec.is_none()));
            }
        }
        for (i, deleted) in fix {
            entries[i].deleted = deleted;
        }
        Ok(ChangeLog {
            seq: ctr.seq,
            floor: ctr.floor,
            entries,
        })
    }

    async fn import_customers(
        &self,
        org: &OrgId,
        customers: &[Customer],
    ) -> Result<Outcome<()>, StoreError> {
        if customers.is_empty() {
            return Ok(Outcome::Done(()));
        }
        let mut docs = Vec::with_capacity(customers.len());
        for c in customers {
            let mut d = customer_doc(org, c, 0)?;
            // No `seq`: the record counts as reflecting every log entry about it (it is the
            // source store's current state).
            d.remove("seq");
            docs.push(d);
        }
        match self.customers.insert_many(docs).await {
            Ok(_) => Ok(Outcome::Done(())),
            Err(e) if is_duplicate(&e) => Ok(conflict(format!(
                "a customer id, resource name or card UID is taken in '{org}'"
            ))),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn import_changes(
        &self,
        org: &OrgId,
        log: &ChangeLog,
    ) -> Result<Outcome<()>, StoreError> {
        log.check().map_err(StoreError::Backend)?;
        let taken = conflict(format!("organization '{org}' already has a change log"));
        let has_entry = self
            .changes
            .find_one(doc! { "org": org.as_str() })
            .await
            .map_err(map_err)?
            .is_some();
        if has_entry {
            return Ok(taken);
        }
        // The counter claims the log (a second import collides on its `_id`). No `at`: the
        // copied positions are settled.
        let ctr = doc! {
            "_id": org.as_str(),
            "org": org.as_str(),
            "seq": seq_bson(log.seq),
            "floor": seq_bson(log.floor),
        };
        match self.counters.insert_one(ctr).await {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Ok(taken),
            Err(e) => return Err(map_err(e)),
        }
        let docs: Vec<Document> = log
            .entries
            .iter()
            .map(|c| {
                doc! {
                    "_id": format!("{org}/{:020}", c.seq),
                    "org": org.as_str(),
                    "seq": seq_bson(c.seq),
                    "customer_id": c.customer_id.as_str(),
                    "resource_name": &c.resource_name,
                    "deleted": c.deleted,
                }
            })
            .collect();
        if !docs.is_empty() {
            self.changes.insert_many(docs).await.map_err(map_err)?;
        }
        Ok(Outcome::Done(()))
    }

    async fn get_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut found: HashMap<String, String> = HashMap::new();
        if !keys.is_empty() {
            let f = doc! { "org": org.as_str(), "customer": id.as_str(), "key": { "$in": keys } };
            let mut cur = self.media.find(f).await.map_err(map_err)?;
            while cur.advance().await.map_err(map_err)? {
                let d = cur.deserialize_current().map_err(map_err)?;
                if let (Ok(k), Ok(v)) = (d.get_str("key"), d.get_str("data")) {
                    found.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn import_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        pieces: &[(String, String)],
    ) -> Result<(), StoreError> {
        for (k, v) in pieces {
            let d = media_doc(org, id, k, v);
            self.media
                .replace_one(doc! { "_id": format!("{org}/{id}/{k}") }, d)
                .upsert(true)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn count_card_media(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.media
            .count_documents(doc! { "org": org.as_str() })
            .await
            .map_err(map_err)
    }

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let id = record_id(namespace, key);
        let d = doc! { "_id": &id, "ns": namespace, "key": key, "value": value.to_string() };
        self.records
            .replace_one(doc! { "_id": &id }, d)
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let d = self
            .records
            .find_one(doc! { "_id": record_id(namespace, key) })
            .await
            .map_err(map_err)?;
        d.map(record_value).transpose()
    }

    async fn list_records(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut cur = self
            .records
            .find(doc! { "ns": namespace })
            .sort(doc! { "key": 1 })
            .await
            .map_err(map_err)?;
        let mut out = Vec::new();
        while cur.advance().await.map_err(map_err)? {
            let d = cur
                .deserialize_current()
                .map_err(|e| StoreError::Corrupt(format!("host_records: {e}")))?;
            let key = d.get_str("key").unwrap_or_default().to_owned();
            out.push((key, record_value(d)?));
        }
        Ok(out)
    }

    async fn take_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let d = self
            .records
            .find_one_and_delete(doc! { "_id": record_id(namespace, key) })
            .await
            .map_err(map_err)?;
        d.map(record_value).transpose()
    }
}

/// `{namespace}\0{key}`: unambiguous, as namespaces never contain NUL.
fn record_id(namespace: &str, key: &str) -> String {
    format!("{namespace}\0{key}")
}

fn record_value(d: Document) -> Result<serde_json::Value, StoreError> {
    let text = d
        .get_str("value")
        .map_err(|e| StoreError::Corrupt(format!("host_records: {e}")))?;
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("host_records: {e}")))
}

fn with_customer(o: Outcome<Option<Customer>>) -> Outcome<Customer> {
    match o {
        Outcome::Done(Some(c)) => Outcome::Done(c),
        Outcome::Done(None) | Outcome::NotFound => Outcome::NotFound,
        Outcome::Conflict(m) => Outcome::Conflict(m),
        Outcome::PreconditionFailed => Outcome::PreconditionFailed,
    }
}

/// Startup checks that need no server.
#[cfg(test)]
mod startup_tests {
    use super::*;

    #[tokio::test]
    async fn timeouts_default_to_five_seconds_unless_the_uri_sets_them() {
        let o = client_options("mongodb://127.0.0.1:1").await.unwrap();
        assert_eq!(o.connect_timeout, Some(DEFAULT_TIMEOUT));
        assert_eq!(o.server_selection_timeout, Some(DEFAULT_TIMEOUT));
        let o = client_options("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=250")
            .await
            .unwrap();
        assert_eq!(o.server_selection_timeout, Some(Duration::from_millis(250)));
    }

    #[tokio::test]
    async fn a_malformed_uri_is_a_clear_error() {
        for uri in ["", "http://db:27017", "mongodb://db:notaport", "mongodb://"] {
            let err = MongoStore::connect(uri, "portico").await.err().unwrap();
            assert!(
                matches!(&err, StoreError::Backend(m) if m.contains("invalid MongoDB URI")),
                "{uri}: {err}"
            );
        }
        let err = MongoStore::connect("mongodb://u:hunter2@db:notaport", "portico")
            .await
            .err()
            .unwrap();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_database_name_is_refused() {
        for name in ["", "a.b", "a/b", "a b", "$x"] {
            let err = MongoStore::connect("mongodb://127.0.0.1:1", name)
                .await
                .err()
                .unwrap();
            assert!(err.to_string().contains("database name"), "{name}: {err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_startup_quickly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = format!(
            "mongodb://u:hunter2@127.0.0.1:{port}/?serverSelectionTimeoutMS=400&connectTimeoutMS=400"
        );
        let t = std::time::Instant::now();
        let err = MongoStore::connect(&uri, "portico").await.err().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("cannot reach MongoDB at 127.0.0.1"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn applied_rules() {
        let ch = |seq, deleted| Change {
            seq,
            customer_id: CustomerId::parse("c").unwrap(),
            resource_name: "c".into(),
            deleted,
        };
        assert!(applied(&ch(5, false), Some(Some(5))));
        assert!(applied(&ch(5, false), Some(Some(9))));
        assert!(
            applied(&ch(5, false), Some(None)),
            "no seq: a copied record"
        );
        assert!(!applied(&ch(5, false), Some(Some(4))), "record older");
        assert!(!applied(&ch(5, false), None), "record missing");
        assert!(applied(&ch(5, true), None));
        assert!(applied(&ch(5, true), Some(Some(6))), "created again later");
        assert!(!applied(&ch(5, true), Some(Some(4))), "delete not applied");
    }
}

/// Tests against a real MongoDB wire-protocol server (`--features mongo-tests`; see
/// `tests/mongo/run.sh`).
#[cfg(all(test, feature = "mongo-tests"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::conformance;
    use portico_sdk::StoredCard;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    const URI_VAR: &str = "PORTICO_TEST_MONGODB_URI";
    const NX_VAR: &str = "PORTICO_TEST_NX27017";
    const HOW: &str = "the MongoDB store tests need a server: run `bash tests/mongo/run.sh` \
        (it installs nx-27017 in a venv, starts it on a free loopback port and runs these tests \
        with PORTICO_TEST_MONGODB_URI and PORTICO_TEST_NX27017 set), or set \
        PORTICO_TEST_MONGODB_URI=mongodb://127.0.0.1:PORT to a running server";

    fn uri() -> String {
        std::env::var(URI_VAR).unwrap_or_else(|_| panic!("{URI_VAR} is not set: {HOW}"))
    }

    fn unique(tag: &str) -> String {
        format!("pt_{tag}_{:08x}", rand::random::<u32>())
    }

    async fn store(tag: &str) -> MongoStore {
        MongoStore::connect(&uri(), &unique(tag))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URI_VAR}: {e}; {HOW}"))
    }

    fn org(id: &str) -> Organization {
        Organization {
            id: OrgId::parse(id).unwrap(),
            slug: id.into(),
            name: id.into(),
        }
    }

    fn draft(name: &str) -> CustomerDraft {
        CustomerDraft {
            name: name.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn conformance_as_detected() {
        let s = store("conf").await;
        conformance::run_all(&s, &unique("p")).await;
        s.drop_database().await;
    }

    #[tokio::test]
    async fn conformance_without_transactions() {
        let s = store("conf_nt").await.without_transactions();
        conformance::run_all(&s, &unique("p")).await;
        s.drop_database().await;
    }

    /// `portico store copy`: embedded → MongoDB → embedded keeps everything, and a sync token
    /// taken before the copy answers the same on every store (MongoDB read log-first too).
    #[tokio::test]
    async fn copy_round_trip_embedded_mongo_embedded() {
        use crate::store::copy::{copy_all, fixture, same_answers, snapshot, CopyError};
        use crate::store::embedded::EmbeddedStore;
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = EmbeddedStore::open(d1.path()).unwrap();
        let tokens = fixture(&src).await;
        let mongo = store("copy").await;
        let report = copy_all(&src, &mongo).await.unwrap();
        assert_eq!((report.organizations, report.customers), (2, 12 + 2));
        let back = EmbeddedStore::open(d2.path()).unwrap();
        assert_eq!(copy_all(&mongo, &back).await.unwrap(), report);

        let original = snapshot(&src).await.unwrap();
        assert_eq!(snapshot(&mongo).await.unwrap(), original);
        assert_eq!(snapshot(&back).await.unwrap(), original);
        let log_first = mongo.clone().without_transactions();
        // Read log-first, a truncated batch may differ: it reports an earlier entry of a
        // customer deleted later as a deletion (its record is missing), where the other stores
        // report the entry as it was; whole batches agree.
        let all: &[usize] = &[1, 2, 100];
        for (s, limits) in [
            (&mongo as &dyn Store, all),
            (&log_first, &[100]),
            (&back, all),
        ] {
            same_answers(&src, s, limits).await;
            for (org, t) in &tokens {
                let before = src.changes_since(org, *t, 100).await.unwrap().unwrap();
                assert_eq!(
                    s.changes_since(org, *t, 100).await.unwrap().unwrap(),
                    before
                );
            }
        }
        // Phones go on syncing: a write after the copy is the next position on the new store.
        let (org, t) = &tokens[0];
        let c = mongo
            .create_customer(org, draft("After"), Timestamp(999))
            .await
            .unwrap()
            .done()
            .unwrap();
        let batch = mongo.changes_since(org, *t, 100).await.unwrap().unwrap();
        assert_eq!(batch.next_seq, 12);
        assert_eq!(batch.changes.last().unwrap().customer_id, c.id);

        let err = copy_all(&src, &mongo).await.unwrap_err();
        assert!(matches!(err, CopyError::TargetNotEmpty(2)), "{err}");
        mongo.drop_database().await;
    }

    #[tokio::test]
    async fn transactions_setting() {
        let db = unique("txmode");
        let off = MongoStore::connect_with(&uri(), &db, Transactions::Off)
            .await
            .unwrap();
        assert!(!off.uses_transactions());
        let auto = MongoStore::connect_with(&uri(), &db, Transactions::Auto)
            .await
            .unwrap();
        let on = MongoStore::connect_with(&uri(), &db, Transactions::On).await;
        if auto.uses_transactions() {
            assert!(on.unwrap().uses_transactions());
        } else {
            let err = on.err().unwrap().to_string();
            assert!(err.contains("does not support transactions"), "{err}");
        }
        off.drop_database().await;
    }

    #[tokio::test]
    async fn the_test_server_supports_transactions() {
        // nx-27017 and replica sets do; a standalone mongod does not (its writes take the
        // log-first path, which `conformance_without_transactions` covers either way).
        let s = store("txn").await;
        if std::env::var(NX_VAR).is_ok() {
            assert!(s.uses_transactions(), "nx-27017 accepts transactions");
        }
        s.drop_database().await;
    }

    /// Writes the change-log entry of a write and stops there, as a crash would.
    async fn log_only(s: &MongoStore, org: &OrgId, c: &Customer, deleted: bool) -> u64 {
        let mut tx = Tx { session: None };
        let at = Timestamp::now().0;
        let seq = s.next_seq(&mut tx, org, at).await.unwrap();
        tx.insert_one(&s.changes, change_doc(org, seq, c, deleted, at))
            .await
            .unwrap();
        seq
    }

    fn ids(b: &ChangeBatch) -> Vec<(String, u64, bool)> {
        b.changes
            .iter()
            .map(|c| (c.customer_id.to_string(), c.seq, c.deleted))
            .collect()
    }

    #[tokio::test]
    async fn a_crash_between_log_entry_and_record_is_harmless() {
        const SETTLE: i64 = 1_500;
        let s = store("crash")
            .await
            .without_transactions()
            .with_settle_ms(SETTLE);
        let o = org("crash");
        let oid = o.id.clone();
        s.create_org(&o).await.unwrap();
        let a = s
            .create_customer(&oid, draft("Ann"), Timestamp(1))
            .await
            .unwrap()
            .done()
            .unwrap();
        let mut bd = draft("Bob");
        bd.card = Some(StoredCard {
            name: "bob-card".into(),
            uid: "uid-b".into(),
            text: "BEGIN:VCARD\r\nUID:uid-b\r\nEND:VCARD\r\n".into(),
            etag: "\"1\"".into(),
            media: Vec::new(),
        });
        let b = s
            .create_customer(&oid, bd, Timestamp(1))
            .await
            .unwrap()
            .done()
            .unwrap();
        let c = s
            .create_customer(&oid, draft("Cy"), Timestamp(1))
            .await
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(s.current_seq(&oid).await.unwrap(), 3);

        // Crashed writes: a create (4), an update of Ann (5), a delete of Cy (6): each logged,
        // its record never written; and a number taken without an entry (7).
        let ghost =
            draft("Ghost").into_customer(CustomerId::parse("ghost").unwrap(), 1, Timestamp(1));
        assert_eq!(log_only(&s, &oid, &ghost, false).await, 4);
        let mut a2 = a.clone();
        a2.name = "Ann 2".into();
        assert_eq!(log_only(&s, &oid, &a2, false).await, 5);
        assert_eq!(log_only(&s, &oid, &c, true).await, 6);
        let mut tx = Tx { session: None };
        assert_eq!(
            s.next_seq(&mut tx, &oid, Timestamp::now().0).await.unwrap(),
            7
        );

        // While they may still be in flight, readers do not step past them...
        assert_eq!(s.current_seq(&oid).await.unwrap(), 3);
        let batch = s.changes_since(&oid, 3, 100).await.unwrap().unwrap();
        assert!(batch.changes.is_empty(), "{batch:?}");
        assert_eq!(batch.next_seq, 3);
        let all = s.changes_since(&oid, 0, 100).await.unwrap().unwrap();
        assert_eq!(all.next_seq, 3);
        assert_eq!(all.changes.len(), 3);
        // ... a write after them lands normally, and reads show the records as they are.
        s.update_customer(&oid, &b.id, draft("Bob 2"), Some(1), Timestamp(2))
            .await
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(s.current_seq(&oid).await.unwrap(), 3);
        assert!(s.get_customer(&oid, &ghost.id).await.unwrap().is_none());
        assert_eq!(s.get_customer(&oid, &a.id).await.unwrap().unwrap(), a);
        assert_eq!(s.get_customer(&oid, &c.id).await.unwrap().unwrap(), c);
        assert_eq!(s.count_customers(&oid).await.unwrap(), 3);
        assert!(s
            .find_customer_by_resource_name(&oid, "ghost")
            .await
            .unwrap()
            .is_none());

        // Once the settle window has passed, those writers count as crashed: the log reports
        // what the records say.
        tokio::time::sleep(Duration::from_millis(SETTLE as u64 + 300)).await;
        assert_eq!(s.current_seq(&oid).await.unwrap(), 8);
        let batch = s.changes_since(&oid, 3, 100).await.unwrap().unwrap();
        assert_eq!(batch.next_seq, 8);
        assert!(!batch.truncated);
        assert_eq!(
            ids(&batch),
            vec![
                ("ghost".into(), 4, true),    // never created: a removed member (404)
                (a.id.to_string(), 5, false), // unchanged: a harmless re-fetch
                (c.id.to_string(), 6, false), // still there: not reported deleted
                (b.id.to_string(), 8, false),
            ]
        );
        // Truncation still works over the reconciled entries.
        let first = s.changes_since(&oid, 3, 1).await.unwrap().unwrap();
        assert!(first.truncated);
        assert_eq!(ids(&first), vec![("ghost".into(), 4, true)]);

        // Nothing is stuck: the crashed records can be written again.
        s.update_customer(&oid, &a.id, draft("Ann 3"), Some(1), Timestamp(3))
            .await
            .unwrap()
            .done()
            .unwrap();
        assert_eq!(
            s.delete_customer(&oid, &c.id, Some(1)).await.unwrap(),
            Outcome::Done(())
        );
        let mut gd = draft("Ghost");
        gd.id = Some(ghost.id.clone());
        s.create_customer(&oid, gd, Timestamp(3))
            .await
            .unwrap()
            .done()
            .unwrap();
        let batch = s.changes_since(&oid, 8, 100).await.unwrap().unwrap();
        assert_eq!(
            ids(&batch),
            vec![
                (a.id.to_string(), 9, false),
                (c.id.to_string(), 10, true),
                ("ghost".into(), 11, false),
            ]
        );
        assert_eq!(batch.next_seq, 11);

        // An in-flight write that completes: readers wait for it, then report it.
        let mut a4 = s.get_customer(&oid, &a.id).await.unwrap().unwrap();
        a4.name = "Ann 4".into();
        a4.revision += 1;
        let seq = log_only(&s, &oid, &a4, false).await;
        assert_eq!(seq, 12);
        assert_eq!(s.current_seq(&oid).await.unwrap(), 11);
        s.customers
            .replace_one(
                doc! { "org": oid.as_str(), "_id": id_key(&oid, a.id.as_str()) },
                customer_doc(&oid, &a4, seq).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(s.current_seq(&oid).await.unwrap(), 12);
        let batch = s.changes_since(&oid, 11, 100).await.unwrap().unwrap();
        assert_eq!(ids(&batch), vec![(a.id.to_string(), 12, false)]);
        assert_eq!(
            s.get_customer(&oid, &a.id).await.unwrap().unwrap().name,
            "Ann 4"
        );
        s.drop_database().await;
    }

    /// nx-27017 runs each session's transaction as a savepoint on one shared SQLite connection:
    /// sequential transactions work, concurrent ones break each other ("no such savepoint").
    async fn is_nx(s: &MongoStore) -> bool {
        let info = s.db.run_command(doc! { "buildInfo": 1 }).await.unwrap();
        info.get_str("process").ok() == Some("nx_27017")
    }

    #[tokio::test]
    async fn an_aborted_transaction_leaves_no_log_entry() {
        let s = store("abort").await;
        if !s.uses_transactions() {
            return; // a standalone mongod: nothing to check here
        }
        let o = org("abort");
        s.create_org(&o).await.unwrap();
        s.create_customer(&o.id, draft("A"), Timestamp(1))
            .await
            .unwrap();
        let c = draft("B").into_customer(CustomerId::parse("b").unwrap(), 1, Timestamp(1));
        let mut tx = Tx::begin(&s).await.unwrap();
        let seq = s.next_seq(&mut tx, &o.id, 1).await.unwrap();
        assert_eq!(seq, 2);
        tx.insert_one(&s.changes, change_doc(&o.id, seq, &c, false, 1))
            .await
            .unwrap();
        tx.abort().await;
        assert_eq!(s.current_seq(&o.id).await.unwrap(), 1);
        let batch = s.changes_since(&o.id, 0, 10).await.unwrap().unwrap();
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.next_seq, 1);
        s.drop_database().await;
    }

    #[tokio::test]
    async fn concurrent_writers_and_a_slug_race() {
        for transactions in [true, false] {
            let tag = if transactions { "race_t" } else { "race_n" };
            let db = unique(tag);
            let connect = || async {
                let s = MongoStore::connect(&uri(), &db).await.unwrap();
                if transactions {
                    s
                } else {
                    s.without_transactions()
                }
            };
            // Two "processes": two clients on one database.
            let (p1, p2) = (connect().await, connect().await);
            if transactions && p1.uses_transactions() && is_nx(&p1).await {
                // Concurrent transactions are beyond nx-27017 (see `is_nx`); a real replica set
                // runs this part.
                continue;
            }
            let mut x = org("race-x");
            let mut y = org("race-y");
            x.slug = "same".into();
            y.slug = "same".into();
            let (rx, ry) = tokio::join!(p1.create_org(&x), p2.create_org(&y));
            let outcomes = [rx.unwrap(), ry.unwrap()];
            assert_eq!(
                outcomes
                    .iter()
                    .filter(|o| matches!(o, Outcome::Done(_)))
                    .count(),
                1,
                "{outcomes:?}"
            );
            assert_eq!(
                outcomes
                    .iter()
                    .filter(|o| matches!(o, Outcome::Conflict(_)))
                    .count(),
                1,
                "{outcomes:?}"
            );
            let oid = x.id.clone();
            let c = p1
                .create_customer(&oid, draft("C"), Timestamp(1))
                .await
                .unwrap()
                .done()
                .unwrap();
            const N: usize = 8;
            let mut tasks = Vec::new();
            for i in 0..N {
                let s = if i % 2 == 0 { p1.clone() } else { p2.clone() };
                let (oid, cid) = (oid.clone(), c.id.clone());
                tasks.push(tokio::spawn(async move {
                    s.update_customer(&oid, &cid, draft(&format!("C{i}")), None, Timestamp(2))
                        .await
                }));
            }
            for t in tasks {
                assert!(matches!(t.await.unwrap().unwrap(), Outcome::Done(_)));
            }
            let now = p2.get_customer(&oid, &c.id).await.unwrap().unwrap();
            assert_eq!(now.revision, 1 + N as u64, "every update applied once");
            let seq = p1.current_seq(&oid).await.unwrap();
            if transactions && p1.uses_transactions() {
                assert_eq!(seq, 1 + N as u64, "one log entry per write");
            } else {
                assert!(seq > N as u64, "lost races may leave spare entries");
            }
            let batch = p2.changes_since(&oid, 0, 100).await.unwrap().unwrap();
            assert_eq!(batch.changes.len(), 1);
            assert_eq!(batch.next_seq, seq);
            p1.drop_database().await;
        }
    }

    #[tokio::test]
    async fn a_hand_edited_document_fails_alone() {
        let s = store("corrupt").await;
        let o = org("corrupt");
        s.create_org(&o).await.unwrap();
        let good = s
            .create_customer(&o.id, draft("Good"), Timestamp(1))
            .await
            .unwrap()
            .done()
            .unwrap();
        s.customers
            .insert_one(doc! {
                "_id": "corrupt/bad", "org": "corrupt", "id": "bad", "resource_name": "bad",
                "name": 42, "revision": 1_i64, "updated_at": 1_i64,
            })
            .await
            .unwrap();
        let err = s
            .get_customer(&o.id, &CustomerId::parse("bad").unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("corrupt/bad")),
            "{err}"
        );
        assert_eq!(s.get_customer(&o.id, &good.id).await.unwrap(), Some(good));
        s.drop_database().await;
    }

    /// An nx-27017 process of our own (the outage test stops and restarts it).
    struct Nx {
        child: Option<Child>,
        port: u16,
        dir: tempfile::TempDir,
    }

    impl Nx {
        fn start(port: u16, dir: tempfile::TempDir) -> Nx {
            let exe = std::env::var(NX_VAR)
                .unwrap_or_else(|_| panic!("{NX_VAR} (the nx-27017 executable) is not set: {HOW}"));
            let p = dir.path();
            let log = std::fs::File::create(p.join("out.log")).unwrap();
            let child = Command::new(&exe)
                .args(["--host", "127.0.0.1", "-p", &port.to_string(), "--data-dir"])
                .arg(p.join("data"))
                .arg("--log-file")
                .arg(p.join("nx.log"))
                .arg("--pid-file")
                .arg(p.join("nx.pid"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
            let mut nx = Nx {
                child: Some(child),
                port,
                dir,
            };
            let t = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = nx.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    let out = std::fs::read_to_string(nx.dir.path().join("out.log"));
                    panic!("nx-27017 exited ({status}): {out:?}");
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "nx-27017 did not listen"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            nx
        }

        fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for Nx {
        fn drop(&mut self) {
            self.stop();
        }
    }

    #[tokio::test]
    async fn an_outage_is_unavailable_and_service_resumes() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nx = Nx::start(port, tempfile::tempdir().unwrap());
        let uri = format!("mongodb://127.0.0.1:{}", nx.port);
        let s = MongoStore::connect(&uri, "outage").await.unwrap();
        s.ping().await.unwrap();
        let o = org("outage");
        s.create_org(&o).await.unwrap();

        nx.stop();
        let t = Instant::now();
        let err = s.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        let t = Instant::now();
        let err = s.get_org(&o.id).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
        let t = Instant::now();
        let err = s
            .create_customer(&o.id, draft("x"), Timestamp(1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

        // Same port, same data: the same store recovers by itself.
        let dir = std::mem::replace(&mut nx.dir, tempfile::tempdir().unwrap());
        let _nx = Nx::start(port, dir);
        let t = Instant::now();
        loop {
            match s.ping().await {
                Ok(()) => break,
                Err(e) => assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "no recovery in 30 s: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(s.get_org(&o.id).await.unwrap(), Some(o));
    }
}
