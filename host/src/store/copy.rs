//! `portico store copy`: everything in one store copied into another, over the [`Store`] trait
//! (so embedded → MongoDB, MongoDB → embedded, and either → the same kind all work).
//!
//! Copied: organizations, installations (revisions, status, app data and sealed secrets as they
//! are), customers with their stored cards (ids, revisions, timestamps kept) and the cards'
//! media pieces (photos stored apart, same keys; pieces no card names are garbage and stay
//! behind), and each organization's change log with the same sequence numbers and prune floor
//! — and the same for the records apps keep in the organization's group space (CardDAV contact
//! groups). A phone's sync
//! token (a position in that log) therefore answers the same on the target, so phones keep
//! syncing incrementally after a switch of store.
//!
//! The source must not be written meanwhile (stop the Portico processes first; an embedded
//! store's file is locked while a process has it open). The target must be empty: a copy never
//! merges. Sealed secrets stay sealed with the source's master key: the target hosts need the
//! same key (`secrets.key` or `secrets.key_file`).
use super::{Outcome, Store, StoreError};
use portico_sdk::{Customer, CustomerId, Installation, OrgId, Organization};
use serde::Serialize;

/// Customers read and written per batch.
pub const PAGE: usize = 500;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target holds data already.
    #[error(
        "the target store is not empty ({0} organizations): a copy only goes into an empty store"
    )]
    TargetNotEmpty(usize),
    /// The target refused a record (a clash: it changed while copying).
    #[error("the target refused {what}: {why}")]
    Refused {
        /// The record.
        what: String,
        /// The target's answer.
        why: String,
    },
    /// After copying, the target does not answer like the source.
    #[error("verification failed for organization '{org}': {what}")]
    Mismatch {
        /// The organization.
        org: OrgId,
        /// What differs.
        what: String,
    },
}

/// What was copied.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Organizations.
    pub organizations: u64,
    /// Installations.
    pub installations: u64,
    /// Customers.
    pub customers: u64,
    /// Change-log entries (above the prune floors).
    pub change_log_entries: u64,
    /// Host records that outlive a session (organization tokens).
    pub host_records: u64,
    /// Card media pieces (photos stored apart from the card text).
    pub card_media: u64,
    /// Media pieces a source card names but the source store lacks (damaged records, copied
    /// as they are and logged).
    pub card_media_missing: u64,
}

/// The host-record namespaces a copy carries over. Sessions and one-time setup links are
/// short-lived and stay behind: users sign in again after a move.
pub const DURABLE_RECORDS: &[&str] = &[crate::admin_auth::TOKENS];

fn refused<T>(what: String, o: Outcome<T>) -> Result<T, CopyError> {
    match o {
        Outcome::Done(v) => Ok(v),
        Outcome::NotFound => Err(CopyError::Refused {
            what,
            why: "not found".into(),
        }),
        Outcome::Conflict(why) => Err(CopyError::Refused { what, why }),
        Outcome::PreconditionFailed => Err(CopyError::Refused {
            what,
            why: "precondition failed".into(),
        }),
    }
}

/// Copies everything in `from` into the empty `to`, then checks the target answers like the
/// source (customer counts, change-log positions).
pub async fn copy_all(from: &dyn Store, to: &dyn Store) -> Result<CopyReport, CopyError> {
    let existing = to.list_orgs().await?;
    if !existing.is_empty() {
        return Err(CopyError::TargetNotEmpty(existing.len()));
    }
    let mut report = CopyReport::default();
    for org in from.list_orgs().await? {
        copy_org(from, to, &org, &mut report).await?;
        report.organizations += 1;
    }
    for ns in DURABLE_RECORDS {
        for (key, value) in from.list_records(ns).await? {
            to.put_record(ns, &key, &value).await?;
            report.host_records += 1;
        }
    }
    Ok(report)
}

async fn copy_org(
    from: &dyn Store,
    to: &dyn Store,
    org: &Organization,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let id = &org.id;
    tracing::info!(org = %id, "copying organization");
    refused(format!("organization '{id}'"), to.create_org(org).await?)?;
    for inst in from.list_installations(id).await? {
        refused(
            format!("installation '{}' of '{id}'", inst.id),
            to.insert_installation(&inst).await?,
        )?;
        report.installations += 1;
    }
    // The organization's customers, then its contact groups (apps keep them as records under
    // `OrgId::group_space`, with their own change log), each with its log.
    copy_records(from, to, id, id, report).await?;
    copy_records(from, to, id, &id.group_space(), report).await?;
    Ok(())
}

/// Copies the customer records and change log kept under `space` (the organization `org`'s
/// own id or its group space), then checks the target answers like the source.
async fn copy_records(
    from: &dyn Store,
    to: &dyn Store,
    org: &OrgId,
    space: &OrgId,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let id = space;
    let mut after: Option<CustomerId> = None;
    loop {
        let page = from.list_customers(id, after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        refused(
            format!("customers of '{id}'"),
            to.import_customers(id, &page).await?,
        )?;
        report.customers += page.len() as u64;
        for c in &page {
            copy_media(from, to, id, c, report).await?;
        }
        if page.len() < PAGE {
            break;
        }
    }
    let log = from.export_changes(id).await?;
    report.change_log_entries += log.entries.len() as u64;
    refused(
        format!("the change log of '{id}'"),
        to.import_changes(id, &log).await?,
    )?;

    // The target must answer like the source.
    let mismatch = |what: String| CopyError::Mismatch {
        org: org.clone(),
        what: format!("{what} (records of '{id}')"),
    };
    let (a, b) = (
        from.count_customers(id).await?,
        to.count_customers(id).await?,
    );
    if a != b {
        return Err(mismatch(format!(
            "{a} customers in the source, {b} in the target"
        )));
    }
    let (a, b) = (from.current_seq(id).await?, to.current_seq(id).await?);
    if a != b {
        return Err(mismatch(format!(
            "change-log position {a} in the source, {b} in the target"
        )));
    }
    let (a, b) = (
        from.changes_since(id, log.floor, usize::MAX).await?,
        to.changes_since(id, log.floor, usize::MAX).await?,
    );
    if a != b {
        return Err(mismatch("the change log answers differently".into()));
    }
    Ok(())
}

/// Copies the media pieces a customer's card names, one customer at a time (a page of cards
/// with photos is never in memory at once), and checks the target returns the same bytes.
async fn copy_media(
    from: &dyn Store,
    to: &dyn Store,
    org: &OrgId,
    c: &Customer,
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let keys: Vec<String> = c
        .card
        .iter()
        .flat_map(|k| k.media.iter().map(|m| m.key.clone()))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let found = from.get_card_media(org, &c.id, &keys).await?;
    let mut pieces = Vec::with_capacity(keys.len());
    for (k, piece) in keys.iter().zip(&found) {
        match piece {
            Some(p) => pieces.push((k.clone(), p.clone())),
            None => {
                tracing::warn!(%org, customer = %c.id, key = %k, "source card names a missing media piece");
                report.card_media_missing += 1;
            }
        }
    }
    to.import_card_media(org, &c.id, &pieces).await?;
    report.card_media += pieces.len() as u64;
    if to.get_card_media(org, &c.id, &keys).await? != found {
        return Err(CopyError::Mismatch {
            org: org.clone(),
            what: format!("the media pieces of customer '{}' differ", c.id),
        });
    }
    Ok(())
}

/// Everything a store holds, in a comparable form (tests, and small stores).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Per organization: the organization, its installations, its customers (id order) and its
    /// change log.
    pub orgs: Vec<(
        Organization,
        Vec<Installation>,
        Vec<Customer>,
        super::ChangeLog,
    )>,
}

/// Reads everything in `store`.
pub async fn snapshot(store: &dyn Store) -> Result<Snapshot, StoreError> {
    let mut orgs = Vec::new();
    for org in store.list_orgs().await? {
        let mut insts = store.list_installations(&org.id).await?;
        insts.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let mut customers = Vec::new();
        let mut after: Option<CustomerId> = None;
        loop {
            let page = store.list_customers(&org.id, after.as_ref(), PAGE).await?;
            let n = page.len();
            after = page.last().map(|c| c.id.clone());
            customers.extend(page);
            if n < PAGE {
                break;
            }
        }
        let log = store.export_changes(&org.id).await?;
        orgs.push((org, insts, customers, log));
    }
    Ok(Snapshot { orgs })
}

/// Test fixture shared by the copy tests: two organizations with installations (one updated,
/// so revision 2), customers with and without stored cards, updates, deletes, and a pruned log
/// on one of them. Returns a sync token (position) taken mid-way for each organization.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) async fn fixture(s: &dyn Store) -> Vec<(OrgId, u64)> {
    use portico_sdk::{CustomerDraft, InstallationId, InstallationStatus, StoredCard, Timestamp};
    let mut tokens = Vec::new();
    for (n, oid) in ["acme", "acme-b"].into_iter().enumerate() {
        let org = Organization {
            id: OrgId::parse(oid).unwrap(),
            slug: format!("{oid}-slug"),
            name: oid.to_uppercase(),
        };
        s.create_org(&org).await.unwrap();
        let inst = Installation {
            id: InstallationId::random(),
            org_id: org.id.clone(),
            kind: "carddav".into(),
            status: InstallationStatus::Connected,
            status_text: Some("ok".into()),
            account: None,
            data: serde_json::json!({ "big": 18446744073709551615_u64, "$k": [1, "x"] }),
            revision: 1,
            created_at: Timestamp(10),
            updated_at: Timestamp(11),
            data_version: 1,
        };
        let stored = s.insert_installation(&inst).await.unwrap().done().unwrap();
        s.update_installation(&stored)
            .await
            .unwrap()
            .done()
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..7 {
            let mut d = CustomerDraft {
                name: format!("Person {i}"),
                email: Some(format!("p{i}@example.com")),
                ..Default::default()
            };
            if i % 2 == 0 {
                let text = format!(
                    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:uid-{i}\r\nFN:P {i}\r\nEND:VCARD\r\n"
                );
                let media = if i == 6 {
                    // One card with a photo stored apart (after the FN line).
                    let piece = format!("PHOTO;ENCODING=b;TYPE=JPEG:{}\r\n", "QUJD".repeat(300));
                    d.card_media = Some(vec![piece.clone()]);
                    vec![portico_sdk::CardMedia {
                        offset: (text.len() - "END:VCARD\r\n".len()) as u64,
                        len: piece.len() as u64,
                        key: String::new(),
                    }]
                } else {
                    Vec::new()
                };
                d.card = Some(StoredCard {
                    name: format!("card-{i}.vcf"),
                    uid: format!("uid-{i}"),
                    text,
                    etag: format!("\"e{i}\""),
                    media,
                });
            }
            let c = s
                .create_customer(&org.id, d, Timestamp(100 + i))
                .await
                .unwrap()
                .done()
                .unwrap();
            ids.push(c.id);
        }
        let token = s.current_seq(&org.id).await.unwrap();
        tokens.push((org.id.clone(), token));
        for id in &ids[..3] {
            let d = CustomerDraft {
                name: "Renamed".into(),
                ..Default::default()
            };
            s.update_customer(&org.id, id, d, Some(1), Timestamp(200))
                .await
                .unwrap()
                .done()
                .unwrap();
        }
        s.delete_customer(&org.id, &ids[4], None)
            .await
            .unwrap()
            .done()
            .unwrap();
        if n == 1 {
            s.prune_changes(&org.id, 3).await.unwrap();
        }
        // A contact group an app keeps in the organization's group space.
        let group = CustomerDraft {
            name: "VIP".into(),
            card: Some(StoredCard {
                name: "portico-group-1".into(),
                uid: "group-uid-1".into(),
                text: "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:group-uid-1\r\nFN:VIP\r\nX-ADDRESSBOOKSERVER-KIND:group\r\nEND:VCARD\r\n".into(),
                etag: "\"g1\"".into(),
                media: Vec::new(),
            }),
            ..Default::default()
        };
        s.create_customer(&org.id.group_space(), group, Timestamp(300))
            .await
            .unwrap()
            .done()
            .unwrap();
    }
    tokens
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
/// Every position from the floor to the end answers the same in both stores, at several
/// batch sizes, and a future or pruned one is refused in both.
pub(crate) async fn same_answers(a: &dyn Store, b: &dyn Store, limits: &[usize]) {
    for org in a.list_orgs().await.unwrap() {
        let id = &org.id;
        let log = a.export_changes(id).await.unwrap();
        assert_eq!(
            a.current_seq(id).await.unwrap(),
            b.current_seq(id).await.unwrap()
        );
        for seq in 0..=log.seq + 1 {
            for &limit in limits {
                assert_eq!(
                    a.changes_since(id, seq, limit).await.unwrap(),
                    b.changes_since(id, seq, limit).await.unwrap(),
                    "{id} from {seq} limit {limit}"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedStore;

    #[tokio::test]
    async fn embedded_to_embedded_keeps_everything_and_refuses_a_full_target() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let src = EmbeddedStore::open(d1.path()).unwrap();
        let dst = EmbeddedStore::open(d2.path()).unwrap();
        let tokens = fixture(&src).await;
        let token = serde_json::json!({"id": "t1", "label": "owner"});
        src.put_record(crate::admin_auth::TOKENS, "k1", &token)
            .await
            .unwrap();
        src.put_record(crate::admin_auth::SESSIONS, "s1", &token)
            .await
            .unwrap();
        let report = copy_all(&src, &dst).await.unwrap();
        assert_eq!(
            report,
            CopyReport {
                organizations: 2,
                installations: 2,
                customers: 12 + 2,
                change_log_entries: 11 + 8 + 2,
                host_records: 1,
                card_media: 2,
                card_media_missing: 0,
            }
        );
        assert_eq!(
            dst.get_record(crate::admin_auth::TOKENS, "k1")
                .await
                .unwrap(),
            Some(token),
            "organization tokens move with the data"
        );
        assert_eq!(
            dst.get_record(crate::admin_auth::SESSIONS, "s1")
                .await
                .unwrap(),
            None,
            "sessions stay behind"
        );
        assert_eq!(snapshot(&src).await.unwrap(), snapshot(&dst).await.unwrap());
        same_answers(&src, &dst, &[1, 2, 100]).await;
        // A token taken before the copy answers the same afterwards.
        for (org, t) in tokens {
            let before = src.changes_since(&org, t, 100).await.unwrap().unwrap();
            assert!(!before.changes.is_empty());
            assert_eq!(
                dst.changes_since(&org, t, 100).await.unwrap().unwrap(),
                before
            );
        }
        // Contact groups (the group spaces) came along, with their change logs.
        for org in src.list_orgs().await.unwrap() {
            let space = org.id.group_space();
            assert_eq!(dst.count_customers(&space).await.unwrap(), 1);
            assert_eq!(
                dst.changes_since(&space, 0, 10).await.unwrap(),
                src.changes_since(&space, 0, 10).await.unwrap()
            );
        }
        let err = copy_all(&src, &dst).await.unwrap_err();
        assert!(matches!(err, CopyError::TargetNotEmpty(2)), "{err}");
    }
}
