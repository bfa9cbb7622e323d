//! The embedded store: one redb file in the data directory. redb is ACID with fsync on commit
//! (`Durability::Immediate` is its default), so a write acknowledged to a caller survives a crash
//! or a `kill -9`. Writes run on the blocking pool; redb serializes write transactions, which
//! also makes the per-organization change sequence and the uniqueness checks race-free.
//!
//! A write the file system refuses (no space, a quota or file-size limit, a read-only or
//! unwritable data directory) fails as [`StoreError::Full`] / [`StoreError::ReadOnly`] and
//! writes nothing (the transaction never commits). redb then refuses every operation, reads
//! included, until the database is reopened, so the store reopens it right away: reads keep
//! working, and writes work again once space returns.
//!
//! Card media pieces (large photos cut out of a card, see [`portico_sdk::StoredCard::media`])
//! live in their own table under (organization, customer, key), written and dropped in the same
//! transaction as the customer record: a reader never sees a record naming a piece that is not
//! there, and no write, crash or concurrent write leaves a piece nobody names.
use super::{collapse_changes, ChangeLog, Outcome, Store, StoreError};
use async_trait::async_trait;
use portico_sdk::{
    CardMedia, CardRecord, Change, ChangeBatch, Customer, CustomerDraft, CustomerId, Installation,
    InstallationId, OrgId, Organization, StoredCard, StoredCardRecord, Timestamp,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

type Table = TableDefinition<'static, &'static str, &'static [u8]>;
const ORGS: Table = TableDefinition::new("orgs");
const ORG_SLUGS: Table = TableDefinition::new("org_slugs");
const INSTALLS: Table = TableDefinition::new("installations");
const CUSTOMERS: Table = TableDefinition::new("customers");
const NAMES: Table = TableDefinition::new("customer_names");
const UIDS: Table = TableDefinition::new("customer_uids");
const CHANGES: Table = TableDefinition::new("changes");
const RECORDS: Table = TableDefinition::new("host_records");
/// Card media pieces: `{org}␟{customer}␟{key}` → the piece's bytes.
const MEDIA: Table = TableDefinition::new("card_media");
const SEQS: TableDefinition<'static, &'static str, (u64, u64)> = TableDefinition::new("seqs");

/// The most memory redb may use for its page cache.
pub const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Separator between the organization and the rest of a key. Ids never contain it.
const SEP: char = '\u{1f}';

fn key(org: &OrgId, rest: &str) -> String {
    let mut k = String::with_capacity(org.as_str().len() + 1 + rest.len());
    k.push_str(org.as_str());
    k.push(SEP);
    k.push_str(rest);
    k
}

/// The half-open key range holding every key of `org`.
fn org_range(org: &OrgId) -> (String, String) {
    (format!("{org}{SEP}"), format!("{org}\u{20}"))
}

fn seq_key(org: &OrgId, seq: u64) -> String {
    key(org, &format!("{seq:020}"))
}

fn be<E: Into<redb::Error>>(e: E) -> StoreError {
    use std::io::ErrorKind as K;
    let e: redb::Error = e.into();
    match &e {
        redb::Error::Io(io) => match io.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => StoreError::Full(e.to_string()),
            K::ReadOnlyFilesystem | K::PermissionDenied => StoreError::ReadOnly(e.to_string()),
            // Any other I/O failure also stops redb until it is reopened (which `write` does).
            _ => StoreError::Unavailable(format!("store I/O failed: {e}")),
        },
        redb::Error::PreviousIo => {
            StoreError::Unavailable("the store is reopening after an I/O failure".into())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Whether `e` came from an I/O failure, after which redb must be reopened.
fn io_failed(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Full(_) | StoreError::ReadOnly(_) | StoreError::Unavailable(_)
    )
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// First byte of a framed customer record (a JSON record starts with `{`): the card's head,
/// then the customer's, then the card text (see [`enc_customer`]).
const RECORD_FRAME: u8 = 1;

/// First byte of the records of the first framing (one head of every field), still read.
const RECORD_FRAME_ONE_HEAD: u8 = 0;

/// The first head of a framed customer record: what serving the card needs (see
/// [`dec_card_record`]). Heads are postcard, which is positional: a change of fields needs a
/// new [`RECORD_FRAME`] value. [`enc_customer`] and [`dec_customer`] take `Customer` and
/// `StoredCard` apart field by field and build them whole, so a field added to either fails to
/// compile until it is handled here.
#[derive(Serialize, serde::Deserialize)]
struct CardHead {
    id: CustomerId,
    card_name: String,
    card_uid: String,
    card_etag: String,
    card_media: Vec<CardMedia>,
    updated_at: Timestamp,
    revision: u64,
}

/// The second head of a framed customer record: the customer's own fields.
#[derive(Serialize, serde::Deserialize)]
struct CustomerHead {
    name: String,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    known_emails: Vec<String>,
    known_phones: Vec<String>,
    birthday: Option<String>,
    note: Option<String>,
    tags: Vec<String>,
}

/// The one head of a [`RECORD_FRAME_ONE_HEAD`] record.
#[derive(Serialize, serde::Deserialize)]
struct OneHead {
    id: CustomerId,
    name: String,
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    known_emails: Vec<String>,
    known_phones: Vec<String>,
    birthday: Option<String>,
    note: Option<String>,
    tags: Vec<String>,
    card_name: String,
    card_uid: String,
    card_etag: String,
    card_media: Vec<CardMedia>,
    updated_at: Timestamp,
    revision: u64,
}

/// Encodes a customer record. A record with a card is framed: [`RECORD_FRAME`]; the
/// [`CardHead`] and then the [`CustomerHead`], each after its length as 4 little-endian bytes;
/// then the card text as it is. Card texts are the bulk of a record and full of CR LF, which
/// JSON would escape on every write and unescape on every read; framed, a read copies them, the
/// heads decode at a fraction of JSON's cost, and a read of the card alone (a CardDAV listing
/// or multiget) skips the customer's head. A record without a card is plain JSON, as every
/// record was before framing (every form is read).
fn enc_customer(c: &Customer) -> Result<Vec<u8>, StoreError> {
    let Customer {
        id,
        name,
        given_name,
        family_name,
        email,
        phone,
        known_emails,
        known_phones,
        birthday,
        note,
        tags,
        card,
        updated_at,
        revision,
    } = c;
    let Some(StoredCard {
        name: card_name,
        uid: card_uid,
        text,
        etag: card_etag,
        media: card_media,
    }) = card
    else {
        return enc(c);
    };
    let card_head = postcard_head(&CardHead {
        id: id.clone(),
        card_name: card_name.clone(),
        card_uid: card_uid.clone(),
        card_etag: card_etag.clone(),
        card_media: card_media.clone(),
        updated_at: *updated_at,
        revision: *revision,
    })?;
    let customer_head = postcard_head(&CustomerHead {
        name: name.clone(),
        given_name: given_name.clone(),
        family_name: family_name.clone(),
        email: email.clone(),
        phone: phone.clone(),
        known_emails: known_emails.clone(),
        known_phones: known_phones.clone(),
        birthday: birthday.clone(),
        note: note.clone(),
        tags: tags.clone(),
    })?;
    let mut out = Vec::with_capacity(9 + card_head.len() + customer_head.len() + text.len());
    out.push(RECORD_FRAME);
    for head in [&card_head, &customer_head] {
        let len = u32::try_from(head.len())
            .map_err(|_| StoreError::Corrupt("customer record head over 4 GiB".into()))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(head);
    }
    out.extend_from_slice(text.as_bytes());
    Ok(out)
}

fn postcard_head<T: Serialize>(head: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(head).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn cut_short() -> StoreError {
    StoreError::Corrupt("framed customer record is cut short".into())
}

/// Splits a length-prefixed head off the front of `b`.
fn take_head(b: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let (len, rest) = b.split_first_chunk::<4>().ok_or_else(cut_short)?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| cut_short())?;
    rest.split_at_checked(len).ok_or_else(cut_short)
}

/// Decodes a head that must fill `b` exactly.
fn dec_head<T: DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    let (head, unread) = postcard::take_from_bytes::<T>(b)
        .map_err(|e| StoreError::Corrupt(format!("customer record head: {e}")))?;
    if !unread.is_empty() {
        return Err(StoreError::Corrupt(
            "customer record head has trailing bytes".into(),
        ));
    }
    Ok(head)
}

/// The card text of a framed record, checked as UTF-8.
fn card_text(b: &[u8]) -> Result<String, StoreError> {
    // simdutf8 checks a card of a kilobyte several times faster than `str::from_utf8`; on
    // failure the standard check says where.
    match simdutf8::basic::from_utf8(b) {
        Ok(t) => Ok(t.to_owned()),
        Err(_) => {
            let e = std::str::from_utf8(b).err();
            Err(StoreError::Corrupt(format!(
                "card text is not UTF-8: {}",
                e.map_or_else(|| "invalid".to_owned(), |e| e.to_string())
            )))
        }
    }
}

/// A [`RECORD_FRAME`] record's card head, the bytes of its customer head, and its card text.
fn split_framed(rest: &[u8]) -> Result<(CardHead, &[u8], String), StoreError> {
    let (card_head, rest) = take_head(rest)?;
    let (customer_head, text) = take_head(rest)?;
    Ok((dec_head(card_head)?, customer_head, card_text(text)?))
}

/// Decodes what [`enc_customer`] wrote, a [`RECORD_FRAME_ONE_HEAD`] record or a plain JSON
/// record.
fn dec_customer(b: &[u8]) -> Result<Customer, StoreError> {
    match b.split_first() {
        Some((&RECORD_FRAME, rest)) => {
            let (card, customer, text) = split_framed(rest)?;
            Ok(whole_customer(card, dec_head(customer)?, text))
        }
        Some((&RECORD_FRAME_ONE_HEAD, rest)) => {
            let (head, text) = take_head(rest)?;
            let OneHead {
                id,
                name,
                given_name,
                family_name,
                email,
                phone,
                known_emails,
                known_phones,
                birthday,
                note,
                tags,
                card_name,
                card_uid,
                card_etag,
                card_media,
                updated_at,
                revision,
            } = dec_head(head)?;
            let card = CardHead {
                id,
                card_name,
                card_uid,
                card_etag,
                card_media,
                updated_at,
                revision,
            };
            let customer = CustomerHead {
                name,
                given_name,
                family_name,
                email,
                phone,
                known_emails,
                known_phones,
                birthday,
                note,
                tags,
            };
            Ok(whole_customer(card, customer, card_text(text)?))
        }
        _ => dec(b),
    }
}

/// A record as a card listing reads it ([`Store::list_customer_cards`]): of a
/// [`RECORD_FRAME`] record only the card head and text are decoded.
fn dec_card_record(b: &[u8]) -> Result<CardRecord, StoreError> {
    match b.split_first() {
        Some((&RECORD_FRAME, rest)) => {
            let (head, _, text) = split_framed(rest)?;
            let CardHead {
                id,
                card_name,
                card_uid,
                card_etag,
                card_media,
                updated_at,
                revision,
            } = head;
            Ok(CardRecord::Stored(StoredCardRecord {
                id,
                card: StoredCard {
                    name: card_name,
                    uid: card_uid,
                    text,
                    etag: card_etag,
                    media: card_media,
                },
                updated_at,
                revision,
            }))
        }
        _ => dec_customer(b).map(CardRecord::from),
    }
}

fn whole_customer(card: CardHead, customer: CustomerHead, text: String) -> Customer {
    let CardHead {
        id,
        card_name,
        card_uid,
        card_etag,
        card_media,
        updated_at,
        revision,
    } = card;
    let CustomerHead {
        name,
        given_name,
        family_name,
        email,
        phone,
        known_emails,
        known_phones,
        birthday,
        note,
        tags,
    } = customer;
    Customer {
        id,
        name,
        given_name,
        family_name,
        email,
        phone,
        known_emails,
        known_phones,
        birthday,
        note,
        tags,
        card: Some(StoredCard {
            name: card_name,
            uid: card_uid,
            text,
            etag: card_etag,
            media: card_media,
        }),
        updated_at,
        revision,
    }
}

fn get_customer_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    k: &str,
) -> Result<Option<Customer>, StoreError> {
    match t.get(k).map_err(be)? {
        Some(v) => Ok(Some(dec_customer(v.value())?)),
        None => Ok(None),
    }
}

/// Up to `limit` customer records of `org` after `after`, in key (id) order, each decoded by
/// `dec`.
fn list_records<T>(
    tx: &redb::ReadTransaction,
    org: &OrgId,
    after: Option<&CustomerId>,
    limit: usize,
    dec: fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let t = tx.open_table(CUSTOMERS).map_err(be)?;
    let (lo, hi) = org_range(org);
    let start = match after {
        // The smallest key greater than the cursor's: the cursor key plus a NUL.
        Some(a) => format!("{}\u{0}", key(org, a.as_str())),
        None => lo,
    };
    let mut out = Vec::with_capacity(limit.min(1024));
    for row in t
        .range(start.as_str()..hi.as_str())
        .map_err(be)?
        .take(limit)
    {
        let (_, v) = row.map_err(be)?;
        out.push(dec(v.value())?);
    }
    Ok(out)
}

/// The customer record of `org` holding each resource name, decoded by `dec`. One opening of
/// each table for the whole batch: a multiget of 100 cards paid for 200 table openings before.
fn find_by_names<T>(
    tx: &redb::ReadTransaction,
    org: &OrgId,
    names: &[&str],
    dec: fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Vec<Option<T>>, StoreError> {
    let by_name = tx.open_table(NAMES).map_err(be)?;
    let customers = tx.open_table(CUSTOMERS).map_err(be)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let record = match get_str(&by_name, &key(org, name))? {
            Some(id) => customers.get(key(org, &id).as_str()).map_err(be)?,
            None => None,
        };
        out.push(record.map(|v| dec(v.value())).transpose()?);
    }
    Ok(out)
}

/// The redb-backed store.
#[derive(Clone)]
pub struct EmbeddedStore {
    handle: Arc<RwLock<Handle>>,
    path: Arc<PathBuf>,
}

/// The open database and how many times it was reopened (`None` while a reopen failed).
struct Handle {
    generation: u64,
    db: Option<Arc<Database>>,
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    // redb's page cache defaults to 1 GiB and fills in proportion to the file; bound it so
    // memory stays flat as books grow (the OS page cache still keeps hot pages).
    redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/portico.redb`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("portico.redb");
        let db = open_db(&path)?;
        // Create every table up front so readers never see a missing table.
        let tx = db.begin_write().map_err(be)?;
        for t in [
            ORGS, ORG_SLUGS, INSTALLS, CUSTOMERS, NAMES, UIDS, CHANGES, RECORDS, MEDIA,
        ] {
            tx.open_table(t).map_err(be)?;
        }
        tx.open_table(SEQS).map_err(be)?;
        tx.commit().map_err(be)?;
        Ok(EmbeddedStore {
            handle: Arc::new(RwLock::new(Handle {
                generation: 0,
                db: Some(Arc::new(db)),
            })),
            path: Arc::new(path),
        })
    }

    /// The open database and its generation, reopening it if an earlier reopen failed.
    fn db(&self) -> Result<(u64, Arc<Database>), StoreError> {
        {
            let h = self.handle.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(db) = &h.db {
                return Ok((h.generation, db.clone()));
            }
        }
        self.reopen(None)
    }

    /// Closes and reopens the database after an I/O failure in generation `failed` (`None`:
    /// only if no database is open). Nothing is done if another caller reopened it meanwhile.
    /// Callers hold no handle of their own: the file stays locked until every handle is gone,
    /// so this waits (bounded) for the operations still running on the old one.
    fn reopen(&self, failed: Option<u64>) -> Result<(u64, Arc<Database>), StoreError> {
        let mut h = self.handle.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(db) = &h.db {
            if failed != Some(h.generation) {
                return Ok((h.generation, db.clone()));
            }
        }
        if let Some(old) = h.db.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if Arc::strong_count(&old) > 1 {
                h.db = Some(old);
                return Err(StoreError::Unavailable(
                    "the store is busy reopening after an I/O failure".into(),
                ));
            }
            drop(old);
        }
        let db = Arc::new(open_db(&self.path).inspect_err(|e| {
            tracing::error!(error = %e, "cannot reopen the store after an I/O failure");
        })?);
        h.generation += 1;
        h.db = Some(db.clone());
        tracing::warn!(path = %self.path.display(), "store reopened after an I/O failure");
        Ok((h.generation, db))
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::WriteTransaction) -> Result<WriteResult<T>, StoreError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let (generation, db) = this.db()?;
            let result = (|| {
                let tx = db.begin_write().map_err(be)?;
                match f(&tx)? {
                    WriteResult::Commit(v) => {
                        tx.commit().map_err(be)?;
                        Ok(v)
                    }
                    WriteResult::Abort(v) => {
                        tx.abort().map_err(be)?;
                        Ok(v)
                    }
                }
            })();
            drop(db);
            if let Err(e) = &result {
                if io_failed(e) {
                    tracing::error!(error = %e, "store write failed and was not applied");
                    // Reopening makes reads work again now and writes once the cause is gone.
                    let _ = this.reopen(Some(generation));
                }
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    fn read<T>(
        &self,
        f: impl Fn(&redb::ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (generation, db) = self.db()?;
        let result = db.begin_read().map_err(be).and_then(|tx| f(&tx));
        drop(db);
        match result {
            // A failed write elsewhere left the database refusing reads: reopen, read again.
            Err(e) if io_failed(&e) => {
                let (_, db) = self.reopen(Some(generation))?;
                let tx = db.begin_read().map_err(be)?;
                f(&tx)
            }
            other => other,
        }
    }
}

enum WriteResult<T> {
    Commit(T),
    Abort(T),
}

fn get_json<T: DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    k: &str,
) -> Result<Option<T>, StoreError> {
    match t.get(k).map_err(be)? {
        Some(v) => Ok(Some(dec(v.value())?)),
        None => Ok(None),
    }
}

fn get_str(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    k: &str,
) -> Result<Option<String>, StoreError> {
    match t.get(k).map_err(be)? {
        Some(v) => Ok(Some(String::from_utf8_lossy(v.value()).into_owned())),
        None => Ok(None),
    }
}

fn card_uid(draft: &CustomerDraft) -> Option<&str> {
    draft.card.as_ref().map(|c| c.uid.as_str())
}

fn draft_name<'a>(draft: &'a CustomerDraft, id: &'a CustomerId) -> &'a str {
    draft
        .card
        .as_ref()
        .map(|c| c.name.as_str())
        .unwrap_or(id.as_str())
}

/// Checks the per-organization uniqueness of resource name and card UID for `id`.
fn unique_ok(
    tx: &redb::WriteTransaction,
    org: &OrgId,
    id: &CustomerId,
    draft: &CustomerDraft,
) -> Result<Option<String>, StoreError> {
    let names = tx.open_table(NAMES).map_err(be)?;
    let name = draft_name(draft, id);
    if let Some(owner) = get_str(&names, &key(org, name))? {
        if owner != id.as_str() {
            return Ok(Some(format!("resource name '{name}' is taken")));
        }
    }
    if let Some(uid) = card_uid(draft) {
        let uids = tx.open_table(UIDS).map_err(be)?;
        if let Some(owner) = get_str(&uids, &key(org, uid))? {
            if owner != id.as_str() {
                return Ok(Some(format!("card UID '{uid}' is taken")));
            }
        }
    }
    Ok(None)
}

fn unindex(tx: &redb::WriteTransaction, org: &OrgId, c: &Customer) -> Result<(), StoreError> {
    tx.open_table(NAMES)
        .map_err(be)?
        .remove(key(org, c.resource_name()).as_str())
        .map_err(be)?;
    if let Some(card) = &c.card {
        tx.open_table(UIDS)
            .map_err(be)?
            .remove(key(org, &card.uid).as_str())
            .map_err(be)?;
    }
    Ok(())
}

fn index(tx: &redb::WriteTransaction, org: &OrgId, c: &Customer) -> Result<(), StoreError> {
    tx.open_table(NAMES)
        .map_err(be)?
        .insert(
            key(org, c.resource_name()).as_str(),
            c.id.as_str().as_bytes(),
        )
        .map_err(be)?;
    if let Some(card) = &c.card {
        tx.open_table(UIDS)
            .map_err(be)?
            .insert(key(org, &card.uid).as_str(), c.id.as_str().as_bytes())
            .map_err(be)?;
    }
    Ok(())
}

fn media_key(org: &OrgId, id: &CustomerId, k: &str) -> String {
    key(org, &format!("{id}{SEP}{k}"))
}

/// The key range of one customer's media pieces.
fn media_range(org: &OrgId, id: &CustomerId) -> (String, String) {
    (
        key(org, &format!("{id}{SEP}")),
        key(org, &format!("{id}\u{20}")),
    )
}

/// Plans the media of a write of `draft` over `old` (see [`portico_sdk::plan_card_media`]).
fn plan_media(
    old: Option<&Customer>,
    draft: &mut CustomerDraft,
) -> Result<portico_sdk::MediaPlan, String> {
    portico_sdk::plan_card_media(old.and_then(|c| c.card.as_ref()), draft, || {
        CustomerId::random().as_str().to_owned()
    })
}

fn apply_media(
    tx: &redb::WriteTransaction,
    org: &OrgId,
    id: &CustomerId,
    plan: portico_sdk::MediaPlan,
) -> Result<(), StoreError> {
    let mut t = tx.open_table(MEDIA).map_err(be)?;
    for k in &plan.drop {
        t.remove(media_key(org, id, k).as_str()).map_err(be)?;
    }
    for (k, v) in &plan.put {
        t.insert(media_key(org, id, k).as_str(), v.as_bytes())
            .map_err(be)?;
    }
    Ok(())
}

/// Removes every media piece of a customer.
fn drop_all_media(
    tx: &redb::WriteTransaction,
    org: &OrgId,
    id: &CustomerId,
) -> Result<(), StoreError> {
    let (lo, hi) = media_range(org, id);
    let mut t = tx.open_table(MEDIA).map_err(be)?;
    t.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
        .map_err(be)?;
    Ok(())
}

/// Appends a change-log entry with the organization's next sequence number.
fn log_change(
    tx: &redb::WriteTransaction,
    org: &OrgId,
    c: &Customer,
    deleted: bool,
) -> Result<(), StoreError> {
    let mut seqs = tx.open_table(SEQS).map_err(be)?;
    let (last, floor) = seqs
        .get(org.as_str())
        .map_err(be)?
        .map(|v| v.value())
        .unwrap_or((0, 0));
    let seq = last + 1;
    seqs.insert(org.as_str(), (seq, floor)).map_err(be)?;
    let entry = Change {
        seq,
        customer_id: c.id.clone(),
        resource_name: c.resource_name().to_owned(),
        deleted,
    };
    tx.open_table(CHANGES)
        .map_err(be)?
        .insert(seq_key(org, seq).as_str(), enc(&entry)?.as_slice())
        .map_err(be)?;
    Ok(())
}

/// Creates one customer inside a write transaction. A conflict writes nothing.
fn create_in(
    tx: &redb::WriteTransaction,
    org: &OrgId,
    mut draft: CustomerDraft,
    now: Timestamp,
) -> Result<Outcome<Customer>, StoreError> {
    let id = draft.id.take().unwrap_or_else(CustomerId::random);
    let k = key(org, id.as_str());
    {
        let t = tx.open_table(CUSTOMERS).map_err(be)?;
        if t.get(k.as_str()).map_err(be)?.is_some() {
            return Ok(Outcome::Conflict(format!("customer '{id}' exists")));
        }
    }
    if let Some(why) = unique_ok(tx, org, &id, &draft)? {
        return Ok(Outcome::Conflict(why));
    }
    let plan = match plan_media(None, &mut draft) {
        Ok(p) => p,
        Err(why) => return Ok(Outcome::Conflict(why)),
    };
    apply_media(tx, org, &id, plan)?;
    let c = draft.into_customer(id, 1, now);
    tx.open_table(CUSTOMERS)
        .map_err(be)?
        .insert(k.as_str(), enc_customer(&c)?.as_slice())
        .map_err(be)?;
    index(tx, org, &c)?;
    log_change(tx, org, &c, false)?;
    Ok(Outcome::Done(c))
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|tx| tx.open_table(ORGS).map(|_| ()).map_err(be))
    }

    async fn create_org(&self, org: &Organization) -> Result<Outcome<Organization>, StoreError> {
        let org = org.clone();
        self.write(move |tx| {
            let mut orgs = tx.open_table(ORGS).map_err(be)?;
            let mut slugs = tx.open_table(ORG_SLUGS).map_err(be)?;
            if orgs.get(org.id.as_str()).map_err(be)?.is_some() {
                return Ok(WriteResult::Abort(Outcome::Conflict(format!(
                    "organization id '{}' exists",
                    org.id
                ))));
            }
            if slugs.get(org.slug.as_str()).map_err(be)?.is_some() {
                return Ok(WriteResult::Abort(Outcome::Conflict(format!(
                    "slug '{}' is taken",
                    org.slug
                ))));
            }
            orgs.insert(org.id.as_str(), enc(&org)?.as_slice())
                .map_err(be)?;
            slugs
                .insert(org.slug.as_str(), org.id.as_str().as_bytes())
                .map_err(be)?;
            Ok(WriteResult::Commit(Outcome::Done(org)))
        })
        .await
    }

    async fn get_org(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        self.read(|tx| get_json(&tx.open_table(ORGS).map_err(be)?, id.as_str()))
    }

    async fn find_org_by_slug(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        self.read(|tx| {
            let Some(id) = get_str(&tx.open_table(ORG_SLUGS).map_err(be)?, slug)? else {
                return Ok(None);
            };
            get_json(&tx.open_table(ORGS).map_err(be)?, &id)
        })
    }

    async fn list_orgs(&self) -> Result<Vec<Organization>, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(ORGS).map_err(be)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(be)? {
                let (_, v) = row.map_err(be)?;
                out.push(dec(v.value())?);
            }
            Ok(out)
        })
    }

    async fn insert_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        let inst = inst.clone();
        self.write(move |tx| {
            let mut t = tx.open_table(INSTALLS).map_err(be)?;
            let k = key(&inst.org_id, inst.id.as_str());
            if t.get(k.as_str()).map_err(be)?.is_some() {
                return Ok(WriteResult::Abort(Outcome::Conflict(format!(
                    "installation '{}' exists",
                    inst.id
                ))));
            }
            t.insert(k.as_str(), enc(&inst)?.as_slice()).map_err(be)?;
            Ok(WriteResult::Commit(Outcome::Done(inst)))
        })
        .await
    }

    async fn get_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Option<Installation>, StoreError> {
        self.read(|tx| {
            get_json(
                &tx.open_table(INSTALLS).map_err(be)?,
                &key(org, id.as_str()),
            )
        })
    }

    async fn list_installations(&self, org: &OrgId) -> Result<Vec<Installation>, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(INSTALLS).map_err(be)?;
            let (lo, hi) = org_range(org);
            let mut out = Vec::new();
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                let (_, v) = row.map_err(be)?;
                out.push(dec(v.value())?);
            }
            Ok(out)
        })
    }

    async fn update_installation(
        &self,
        inst: &Installation,
    ) -> Result<Outcome<Installation>, StoreError> {
        let inst = inst.clone();
        self.write(move |tx| {
            let mut t = tx.open_table(INSTALLS).map_err(be)?;
            let k = key(&inst.org_id, inst.id.as_str());
            let Some(cur) = get_json::<Installation>(&t, &k)? else {
                return Ok(WriteResult::Abort(Outcome::NotFound));
            };
            if cur.revision != inst.revision {
                return Ok(WriteResult::Abort(Outcome::PreconditionFailed));
            }
            let mut next = inst;
            next.revision = cur.revision + 1;
            t.insert(k.as_str(), enc(&next)?.as_slice()).map_err(be)?;
            Ok(WriteResult::Commit(Outcome::Done(next)))
        })
        .await
    }

    async fn delete_installation(
        &self,
        org: &OrgId,
        id: &InstallationId,
    ) -> Result<Outcome<()>, StoreError> {
        let k = key(org, id.as_str());
        self.write(move |tx| {
            let mut t = tx.open_table(INSTALLS).map_err(be)?;
            let existed = t.remove(k.as_str()).map_err(be)?.is_some();
            Ok(if existed {
                WriteResult::Commit(Outcome::Done(()))
            } else {
                WriteResult::Abort(Outcome::NotFound)
            })
        })
        .await
    }

    async fn get_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
    ) -> Result<Option<Customer>, StoreError> {
        self.read(|tx| {
            get_customer_in(
                &tx.open_table(CUSTOMERS).map_err(be)?,
                &key(org, id.as_str()),
            )
        })
    }

    async fn find_customer_by_resource_name(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<Option<Customer>, StoreError> {
        self.read(|tx| {
            let Some(id) = get_str(&tx.open_table(NAMES).map_err(be)?, &key(org, name))? else {
                return Ok(None);
            };
            get_customer_in(&tx.open_table(CUSTOMERS).map_err(be)?, &key(org, &id))
        })
    }

    async fn find_customers_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<Customer>>, StoreError> {
        // One read transaction and one opening of each table for the whole batch: a multiget
        // of 100 cards paid for 200 table openings before.
        self.read(|tx| find_by_names(tx, org, names, dec_customer))
    }

    async fn find_customer_cards_by_resource_names(
        &self,
        org: &OrgId,
        names: &[&str],
    ) -> Result<Vec<Option<CardRecord>>, StoreError> {
        self.read(|tx| find_by_names(tx, org, names, dec_card_record))
    }

    async fn find_customer_by_card_uid(
        &self,
        org: &OrgId,
        uid: &str,
    ) -> Result<Option<Customer>, StoreError> {
        self.read(|tx| {
            let Some(id) = get_str(&tx.open_table(UIDS).map_err(be)?, &key(org, uid))? else {
                return Ok(None);
            };
            get_customer_in(&tx.open_table(CUSTOMERS).map_err(be)?, &key(org, &id))
        })
    }

    async fn list_customers(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<Customer>, StoreError> {
        self.read(|tx| list_records(tx, org, after, limit, dec_customer))
    }

    async fn list_customer_cards(
        &self,
        org: &OrgId,
        after: Option<&CustomerId>,
        limit: usize,
    ) -> Result<Vec<CardRecord>, StoreError> {
        self.read(|tx| list_records(tx, org, after, limit, dec_card_record))
    }

    async fn count_customers(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(CUSTOMERS).map_err(be)?;
            let (lo, hi) = org_range(org);
            let mut n = 0u64;
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                row.map_err(be)?;
                n += 1;
            }
            Ok(n)
        })
    }

    async fn create_customer(
        &self,
        org: &OrgId,
        draft: CustomerDraft,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        let org = org.clone();
        self.write(move |tx| {
            Ok(match create_in(tx, &org, draft, now)? {
                Outcome::Done(c) => WriteResult::Commit(Outcome::Done(c)),
                other => WriteResult::Abort(other),
            })
        })
        .await
    }

    async fn create_customers(
        &self,
        org: &OrgId,
        drafts: Vec<CustomerDraft>,
        now: Timestamp,
    ) -> Result<Vec<Outcome<Customer>>, StoreError> {
        // One transaction (one fsync) per batch: a refused draft writes nothing of its own, so
        // it cannot leave a partial record in the committed batch.
        let org = org.clone();
        self.write(move |tx| {
            let mut out = Vec::with_capacity(drafts.len());
            for d in drafts {
                out.push(create_in(tx, &org, d, now)?);
            }
            Ok(WriteResult::Commit(out))
        })
        .await
    }

    async fn update_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        mut draft: CustomerDraft,
        expected_revision: Option<u64>,
        now: Timestamp,
    ) -> Result<Outcome<Customer>, StoreError> {
        let org = org.clone();
        let id = id.clone();
        draft.id = None;
        self.write(move |tx| {
            let k = key(&org, id.as_str());
            let old: Customer = {
                let t = tx.open_table(CUSTOMERS).map_err(be)?;
                match get_customer_in(&t, &k)? {
                    Some(c) => c,
                    None => return Ok(WriteResult::Abort(Outcome::NotFound)),
                }
            };
            if expected_revision.is_some_and(|r| r != old.revision) {
                return Ok(WriteResult::Abort(Outcome::PreconditionFailed));
            }
            if let Some(why) = unique_ok(tx, &org, &id, &draft)? {
                return Ok(WriteResult::Abort(Outcome::Conflict(why)));
            }
            let plan = match plan_media(Some(&old), &mut draft) {
                Ok(p) => p,
                Err(why) => return Ok(WriteResult::Abort(Outcome::Conflict(why))),
            };
            apply_media(tx, &org, &id, plan)?;
            let c = draft.into_customer(id.clone(), old.revision + 1, now.max(old.updated_at));
            unindex(tx, &org, &old)?;
            index(tx, &org, &c)?;
            tx.open_table(CUSTOMERS)
                .map_err(be)?
                .insert(k.as_str(), enc_customer(&c)?.as_slice())
                .map_err(be)?;
            log_change(tx, &org, &c, false)?;
            Ok(WriteResult::Commit(Outcome::Done(c)))
        })
        .await
    }

    async fn delete_customer(
        &self,
        org: &OrgId,
        id: &CustomerId,
        expected_revision: Option<u64>,
    ) -> Result<Outcome<()>, StoreError> {
        let org = org.clone();
        let id = id.clone();
        self.write(move |tx| {
            let k = key(&org, id.as_str());
            let old: Customer = {
                let t = tx.open_table(CUSTOMERS).map_err(be)?;
                match get_customer_in(&t, &k)? {
                    Some(c) => c,
                    None => return Ok(WriteResult::Abort(Outcome::NotFound)),
                }
            };
            if expected_revision.is_some_and(|r| r != old.revision) {
                return Ok(WriteResult::Abort(Outcome::PreconditionFailed));
            }
            tx.open_table(CUSTOMERS)
                .map_err(be)?
                .remove(k.as_str())
                .map_err(be)?;
            unindex(tx, &org, &old)?;
            drop_all_media(tx, &org, &id)?;
            log_change(tx, &org, &old, true)?;
            Ok(WriteResult::Commit(Outcome::Done(())))
        })
        .await
    }

    async fn current_seq(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(SEQS).map_err(be)?;
            Ok(t.get(org.as_str())
                .map_err(be)?
                .map(|v| v.value().0)
                .unwrap_or(0))
        })
    }

    async fn changes_since(
        &self,
        org: &OrgId,
        seq: u64,
        limit: usize,
    ) -> Result<Option<ChangeBatch>, StoreError> {
        self.read(|tx| {
            let seqs = tx.open_table(SEQS).map_err(be)?;
            let (end, floor) = seqs
                .get(org.as_str())
                .map_err(be)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            if seq > end || seq < floor {
                return Ok(None);
            }
            let t = tx.open_table(CHANGES).map_err(be)?;
            let lo = seq_key(org, seq + 1);
            let (_, hi) = org_range(org);
            let mut entries = Vec::new();
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                let (_, v) = row.map_err(be)?;
                entries.push(dec::<Change>(v.value())?);
            }
            Ok(Some(collapse_changes(entries.into_iter(), seq, end, limit)))
        })
    }

    async fn prune_changes(&self, org: &OrgId, up_to: u64) -> Result<(), StoreError> {
        let org = org.clone();
        self.write(move |tx| {
            let mut seqs = tx.open_table(SEQS).map_err(be)?;
            let (end, floor) = seqs
                .get(org.as_str())
                .map_err(be)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            let up_to = up_to.min(end);
            if up_to <= floor {
                return Ok(WriteResult::Abort(()));
            }
            seqs.insert(org.as_str(), (end, up_to)).map_err(be)?;
            let mut t = tx.open_table(CHANGES).map_err(be)?;
            let lo = seq_key(&org, floor);
            let hi = seq_key(&org, up_to + 1);
            t.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                .map_err(be)?;
            Ok(WriteResult::Commit(()))
        })
        .await
    }

    async fn export_changes(&self, org: &OrgId) -> Result<ChangeLog, StoreError> {
        self.read(|tx| {
            let (seq, floor) = tx
                .open_table(SEQS)
                .map_err(be)?
                .get(org.as_str())
                .map_err(be)?
                .map(|v| v.value())
                .unwrap_or((0, 0));
            let t = tx.open_table(CHANGES).map_err(be)?;
            let (lo, hi) = org_range(org);
            let mut entries = Vec::new();
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                let (_, v) = row.map_err(be)?;
                entries.push(dec::<Change>(v.value())?);
            }
            Ok(ChangeLog {
                seq,
                floor,
                entries,
            })
        })
    }

    async fn import_customers(
        &self,
        org: &OrgId,
        customers: &[Customer],
    ) -> Result<Outcome<()>, StoreError> {
        let org = org.clone();
        let customers = customers.to_vec();
        self.write(move |tx| {
            for c in &customers {
                let k = key(&org, c.id.as_str());
                {
                    let t = tx.open_table(CUSTOMERS).map_err(be)?;
                    if t.get(k.as_str()).map_err(be)?.is_some() {
                        return Ok(WriteResult::Abort(Outcome::Conflict(format!(
                            "customer '{}' exists",
                            c.id
                        ))));
                    }
                }
                let as_draft = CustomerDraft {
                    card: c.card.clone(),
                    ..Default::default()
                };
                if let Some(why) = unique_ok(tx, &org, &c.id, &as_draft)? {
                    return Ok(WriteResult::Abort(Outcome::Conflict(why)));
                }
                tx.open_table(CUSTOMERS)
                    .map_err(be)?
                    .insert(k.as_str(), enc_customer(c)?.as_slice())
                    .map_err(be)?;
                index(tx, &org, c)?;
            }
            Ok(WriteResult::Commit(Outcome::Done(())))
        })
        .await
    }

    async fn import_changes(
        &self,
        org: &OrgId,
        log: &ChangeLog,
    ) -> Result<Outcome<()>, StoreError> {
        log.check().map_err(StoreError::Backend)?;
        let org = org.clone();
        let log = log.clone();
        self.write(move |tx| {
            let mut seqs = tx.open_table(SEQS).map_err(be)?;
            let mut t = tx.open_table(CHANGES).map_err(be)?;
            let (lo, hi) = org_range(&org);
            let has_entry = t
                .range(lo.as_str()..hi.as_str())
                .map_err(be)?
                .next()
                .is_some();
            if has_entry || seqs.get(org.as_str()).map_err(be)?.is_some() {
                return Ok(WriteResult::Abort(Outcome::Conflict(format!(
                    "organization '{org}' already has a change log"
                ))));
            }
            seqs.insert(org.as_str(), (log.seq, log.floor))
                .map_err(be)?;
            for e in &log.entries {
                t.insert(seq_key(&org, e.seq).as_str(), enc(e)?.as_slice())
                    .map_err(be)?;
            }
            Ok(WriteResult::Commit(Outcome::Done(())))
        })
        .await
    }

    async fn get_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(MEDIA).map_err(be)?;
            keys.iter()
                .map(|k| get_str(&t, &media_key(org, id, k)))
                .collect()
        })
    }

    async fn import_card_media(
        &self,
        org: &OrgId,
        id: &CustomerId,
        pieces: &[(String, String)],
    ) -> Result<(), StoreError> {
        let plan = portico_sdk::MediaPlan {
            put: pieces.to_vec(),
            drop: Vec::new(),
        };
        let (org, id) = (org.clone(), id.clone());
        self.write(move |tx| {
            apply_media(tx, &org, &id, plan)?;
            Ok(WriteResult::Commit(()))
        })
        .await
    }

    async fn count_card_media(&self, org: &OrgId) -> Result<u64, StoreError> {
        self.read(|tx| {
            let t = tx.open_table(MEDIA).map_err(be)?;
            let (lo, hi) = org_range(org);
            let mut n = 0u64;
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                row.map_err(be)?;
                n += 1;
            }
            Ok(n)
        })
    }

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let k = record_key(namespace, key);
        let bytes = enc(value)?;
        self.write(move |tx| {
            let mut t = tx.open_table(RECORDS).map_err(be)?;
            t.insert(k.as_str(), bytes.as_slice()).map_err(be)?;
            Ok(WriteResult::Commit(()))
        })
        .await
    }

    async fn get_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let k = record_key(namespace, key);
        self.read(|tx| get_json(&tx.open_table(RECORDS).map_err(be)?, &k))
    }

    async fn list_records(
        &self,
        namespace: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let lo = record_key(namespace, "");
        let hi = format!("{namespace}\u{1}");
        self.read(|tx| {
            let t = tx.open_table(RECORDS).map_err(be)?;
            let mut out = Vec::new();
            for row in t.range(lo.as_str()..hi.as_str()).map_err(be)? {
                let (k, v) = row.map_err(be)?;
                out.push((k.value()[lo.len()..].to_owned(), dec(v.value())?));
            }
            Ok(out)
        })
    }

    async fn take_record(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let k = record_key(namespace, key);
        self.write(move |tx| {
            let mut t = tx.open_table(RECORDS).map_err(be)?;
            let taken = match t.remove(k.as_str()).map_err(be)? {
                Some(v) => Some(dec::<serde_json::Value>(v.value())?),
                None => None,
            };
            Ok(match taken {
                Some(v) => WriteResult::Commit(Some(v)),
                None => WriteResult::Abort(None),
            })
        })
        .await
    }
}

/// `{namespace}\0{key}`: namespaces never contain NUL, so one namespace's keys form a range.
fn record_key(namespace: &str, key: &str) -> String {
    format!("{namespace}\0{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_writes_are_classified_by_their_io_error() {
        use std::io::{Error, ErrorKind as K};
        let io = |k: K| be(redb::Error::Io(Error::from(k)));
        assert!(matches!(io(K::StorageFull), StoreError::Full(_)));
        assert!(matches!(io(K::QuotaExceeded), StoreError::Full(_)));
        assert!(matches!(io(K::FileTooLarge), StoreError::Full(_)));
        assert!(matches!(io(K::ReadOnlyFilesystem), StoreError::ReadOnly(_)));
        assert!(matches!(io(K::PermissionDenied), StoreError::ReadOnly(_)));
        assert!(matches!(io(K::BrokenPipe), StoreError::Unavailable(_)));
        // All three make the store reopen redb, so reads keep working.
        for k in [K::StorageFull, K::ReadOnlyFilesystem, K::BrokenPipe] {
            assert!(io_failed(&io(k)));
        }
        // And the one mapping answers both with 503 + Retry-After.
        for e in [io(K::StorageFull), io(K::ReadOnlyFilesystem)] {
            let r = actix_web::ResponseError::error_response(&crate::error::HostError::Store(e));
            assert_eq!(r.status(), actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
            assert!(r.headers().contains_key("retry-after"));
        }
    }

    fn carded(text: &str) -> Customer {
        CustomerDraft {
            name: "Zoë \"Q\" Ünal".into(),
            email: Some("z@example.com".into()),
            tags: vec!["VIP".into()],
            card: Some(portico_sdk::StoredCard {
                name: "zoe".into(),
                uid: "uid-zoe".into(),
                text: text.into(),
                etag: "\"e1\"".into(),
                media: Vec::new(),
            }),
            ..Default::default()
        }
        .into_customer(CustomerId::parse("c1").unwrap(), 3, Timestamp(7))
    }

    /// A record as the first framing wrote it: one postcard head of every field.
    fn enc_one_head(c: &Customer) -> Vec<u8> {
        let card = c.card.clone().unwrap();
        let head = postcard::to_allocvec(&OneHead {
            id: c.id.clone(),
            name: c.name.clone(),
            given_name: c.given_name.clone(),
            family_name: c.family_name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            known_emails: c.known_emails.clone(),
            known_phones: c.known_phones.clone(),
            birthday: c.birthday.clone(),
            note: c.note.clone(),
            tags: c.tags.clone(),
            card_name: card.name,
            card_uid: card.uid,
            card_etag: card.etag,
            card_media: card.media,
            updated_at: c.updated_at,
            revision: c.revision,
        })
        .unwrap();
        let mut out = vec![RECORD_FRAME_ONE_HEAD];
        out.extend_from_slice(&u32::try_from(head.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(card.text.as_bytes());
        out
    }

    #[test]
    fn customer_records_are_framed_and_read_back_whole() {
        let text =
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë \\, \"Q\"\r\nNOTE:a\\nb\u{0}c\r\nEND:VCARD\r\n";
        let c = carded(text);
        let b = enc_customer(&c).unwrap();
        assert_eq!(b[0], RECORD_FRAME);
        // The card text is stored as it is, not JSON-escaped.
        assert!(b.ends_with(text.as_bytes()));
        assert_eq!(dec_customer(&b).unwrap(), c);
        // Read as a card record, the same card and identity (the customer head is skipped).
        assert_eq!(dec_card_record(&b).unwrap(), CardRecord::from(c.clone()));
        // A record without a card stays plain JSON, and is the whole customer as a card record.
        let plain = Customer {
            card: None,
            ..c.clone()
        };
        let b = enc_customer(&plain).unwrap();
        assert_eq!(b[0], b'{');
        assert_eq!(dec_customer(&b).unwrap(), plain);
        assert_eq!(
            dec_card_record(&b).unwrap(),
            CardRecord::Unwritten(Box::new(plain.clone()))
        );
        // Records written before framing (JSON with the card inside) and by the first framing
        // (one head) read as before.
        for old in [serde_json::to_vec(&c).unwrap(), enc_one_head(&c)] {
            assert_eq!(dec_customer(&old).unwrap(), c);
            assert_eq!(dec_card_record(&old).unwrap(), CardRecord::from(c.clone()));
        }
    }

    #[test]
    fn damaged_framed_records_are_corrupt_not_a_panic() {
        let whole = carded("BEGIN:VCARD\r\nEND:VCARD\r\n");
        for b in [enc_customer(&whole).unwrap(), enc_one_head(&whole)] {
            for cut in 1..b.len() - 24 {
                // Every cut inside the headers or heads is refused; cuts inside the card text
                // would be a shorter valid text, which the card's ETag (checked by the app)
                // tells.
                assert!(
                    matches!(dec_customer(&b[..cut]), Err(StoreError::Corrupt(_))),
                    "cut at {cut} of frame {}",
                    b[0]
                );
                assert!(
                    matches!(dec_card_record(&b[..cut]), Err(StoreError::Corrupt(_))),
                    "card record cut at {cut} of frame {}",
                    b[0]
                );
            }
            let mut bad_utf8 = b.clone();
            bad_utf8.push(0xff);
            assert!(matches!(
                dec_customer(&bad_utf8),
                Err(StoreError::Corrupt(_))
            ));
            assert!(matches!(
                dec_card_record(&bad_utf8),
                Err(StoreError::Corrupt(_))
            ));
            let mut huge_len = b.clone();
            huge_len[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
            assert!(matches!(
                dec_customer(&huge_len),
                Err(StoreError::Corrupt(_))
            ));
            // A head of the right length that is not a head.
            let head_len = usize::try_from(u32::from_le_bytes([b[1], b[2], b[3], b[4]])).unwrap();
            let mut garbage = b;
            garbage[5..5 + head_len].fill(0xff);
            assert!(matches!(
                dec_customer(&garbage),
                Err(StoreError::Corrupt(_))
            ));
            assert!(matches!(
                dec_card_record(&garbage),
                Err(StoreError::Corrupt(_))
            ));
        }
        // The customer head of a framed record is checked by every read of the whole customer.
        let mut b = enc_customer(&whole).unwrap();
        let card_len = usize::try_from(u32::from_le_bytes([b[1], b[2], b[3], b[4]])).unwrap();
        let at = 5 + card_len;
        let customer_len =
            usize::try_from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])).unwrap();
        b[at + 4..at + 4 + customer_len].fill(0xff);
        assert!(matches!(dec_customer(&b), Err(StoreError::Corrupt(_))));
    }

    #[tokio::test]
    async fn records_from_before_framing_are_read_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let org = Organization {
            id: OrgId::parse("o").unwrap(),
            slug: "o".into(),
            name: "O".into(),
        };
        EmbeddedStore::open(dir.path())
            .unwrap()
            .create_org(&org)
            .await
            .unwrap();
        // A customer as an older Portico stored it: the whole record as JSON.
        let old = carded("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Old\r\nEND:VCARD\r\n");
        {
            let db = open_db(&dir.path().join("portico.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(CUSTOMERS)
                .unwrap()
                .insert(
                    key(&org.id, "c1").as_str(),
                    serde_json::to_vec(&old).unwrap().as_slice(),
                )
                .unwrap();
            index(&tx, &org.id, &old).unwrap();
            tx.commit().unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let found = store
            .find_customer_by_resource_name(&org.id, "zoe")
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&old));
        assert_eq!(
            store.list_customers(&org.id, None, 10).await.unwrap(),
            vec![old.clone()]
        );
        assert_eq!(
            store.list_customer_cards(&org.id, None, 10).await.unwrap(),
            vec![CardRecord::from(old.clone())]
        );
        assert_eq!(
            store
                .find_customer_cards_by_resource_names(&org.id, &["zoe", "none"])
                .await
                .unwrap(),
            vec![Some(CardRecord::from(old.clone())), None]
        );
        let draft = CustomerDraft {
            name: "New".into(),
            card: old.card.clone(),
            ..Default::default()
        };
        let Outcome::Done(new) = store
            .update_customer(&org.id, &old.id, draft, Some(3), Timestamp(9))
            .await
            .unwrap()
        else {
            panic!("update refused");
        };
        assert_eq!(new.revision, 4);
        assert_eq!(
            store.get_customer(&org.id, &old.id).await.unwrap(),
            Some(new)
        );
    }

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        crate::store::conformance::run_all(&store, "").await;
    }

    #[tokio::test]
    async fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let org = Organization {
            id: OrgId::parse("o").unwrap(),
            slug: "o".into(),
            name: "O".into(),
        };
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store.create_org(&org).await.unwrap();
            let d = CustomerDraft {
                name: "Ann".into(),
                ..Default::default()
            };
            store
                .create_customer(&org.id, d, Timestamp(1))
                .await
                .unwrap();
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.get_org(&org.id).await.unwrap(), Some(org.clone()));
        assert_eq!(store.count_customers(&org.id).await.unwrap(), 1);
        assert_eq!(store.current_seq(&org.id).await.unwrap(), 1);
    }
}
