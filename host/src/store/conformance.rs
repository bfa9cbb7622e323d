//! The store conformance suite: one behavioural contract, run against every backend (the
//! embedded store in `host` tests; the MongoDB store where a server is available). Each case
//! panics with a message naming the rule it checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ChangeLog, Outcome, Store};
use portico_sdk::{
    CardMedia, CardRecord, Customer, CustomerDraft, CustomerId, Installation, InstallationId,
    InstallationStatus, OrgId, Organization, StoredCard, Timestamp,
};

fn org(id: &str) -> Organization {
    Organization {
        id: OrgId::parse(id).unwrap(),
        slug: id.to_owned(),
        name: id.to_uppercase(),
    }
}

fn draft(name: &str) -> CustomerDraft {
    CustomerDraft {
        name: name.into(),
        ..Default::default()
    }
}

fn card(name: &str, uid: &str) -> StoredCard {
    StoredCard {
        name: name.into(),
        uid: uid.into(),
        text: "BEGIN:VCARD".into(),
        etag: "\"x\"".into(),
        media: Vec::new(),
    }
}

fn installation(org: &OrgId) -> Installation {
    Installation {
        id: InstallationId::random(),
        org_id: org.clone(),
        kind: "hello".into(),
        status: InstallationStatus::Pending,
        status_text: None,
        account: None,
        data: serde_json::json!({"a": 1}),
        revision: 1,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
        data_version: 1,
    }
}

/// Runs every case. `prefix` keeps the ids of repeated runs on one database apart.
pub async fn run_all(store: &dyn Store, prefix: &str) {
    store.ping().await.expect("ping");
    organizations(store, prefix).await;
    installations(store, prefix).await;
    customers_and_isolation(store, prefix).await;
    revisions(store, prefix).await;
    change_log(store, prefix).await;
    uniqueness(store, prefix).await;
    paging(store, prefix).await;
    export_and_import(store, prefix).await;
    batch_create(store, prefix).await;
    host_records(store, prefix).await;
    card_media(store, prefix).await;
}

async fn batch_create(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}batch"));
    store.create_org(&a).await.unwrap();
    let mut first = draft("Existing");
    first.id = Some(CustomerId::parse("b1").unwrap());
    store
        .create_customer(&a.id, first.clone(), Timestamp(1))
        .await
        .unwrap();
    let mut fresh = draft("Fresh");
    fresh.id = Some(CustomerId::parse("b2").unwrap());
    let mut dup_in_batch = draft("Twin");
    dup_in_batch.id = Some(CustomerId::parse("b2").unwrap());
    let out = store
        .create_customers(
            &a.id,
            vec![draft("Anon"), first, fresh, dup_in_batch],
            Timestamp(2),
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 4, "one outcome per draft");
    assert!(matches!(out[0], Outcome::Done(_)));
    assert!(
        matches!(out[1], Outcome::Conflict(_)),
        "an existing id is a conflict"
    );
    assert!(matches!(out[2], Outcome::Done(_)));
    assert!(
        matches!(out[3], Outcome::Conflict(_)),
        "a duplicate inside the batch too"
    );
    assert_eq!(store.count_customers(&a.id).await.unwrap(), 3);
    assert_eq!(
        store.current_seq(&a.id).await.unwrap(),
        3,
        "refused drafts log nothing"
    );
    let b2 = store
        .get_customer(&a.id, &CustomerId::parse("b2").unwrap())
        .await
        .unwrap();
    assert_eq!(
        b2.unwrap().name,
        "Fresh",
        "the refused twin did not overwrite"
    );
}

async fn organizations(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}org-a"));
    assert!(matches!(
        store.create_org(&a).await.unwrap(),
        Outcome::Done(_)
    ));
    assert!(
        matches!(store.create_org(&a).await.unwrap(), Outcome::Conflict(_)),
        "a duplicate organization id is a conflict"
    );
    let mut same_slug = org(&format!("{p}org-b"));
    same_slug.slug = a.slug.clone();
    assert!(
        matches!(
            store.create_org(&same_slug).await.unwrap(),
            Outcome::Conflict(_)
        ),
        "a duplicate slug is a conflict"
    );
    assert_eq!(store.get_org(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.find_org_by_slug(&a.slug).await.unwrap(),
        Some(a.clone())
    );
    assert!(
        store.get_org(&same_slug.id).await.unwrap().is_none(),
        "a refused org is not stored"
    );
    assert!(store.list_orgs().await.unwrap().contains(&a));
}

async fn installations(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}inst-a"));
    let b = org(&format!("{p}inst-b"));
    store.create_org(&a).await.unwrap();
    store.create_org(&b).await.unwrap();
    let inst = installation(&a.id);
    let stored = store
        .insert_installation(&inst)
        .await
        .unwrap()
        .done()
        .unwrap();
    assert!(matches!(
        store.insert_installation(&inst).await.unwrap(),
        Outcome::Conflict(_)
    ));
    assert_eq!(
        store.get_installation(&a.id, &inst.id).await.unwrap(),
        Some(stored.clone())
    );
    assert!(
        store
            .get_installation(&b.id, &inst.id)
            .await
            .unwrap()
            .is_none(),
        "another org's installation is invisible"
    );
    assert!(store.list_installations(&b.id).await.unwrap().is_empty());
    let mut changed = stored.clone();
    changed.status = InstallationStatus::Connected;
    let v2 = store
        .update_installation(&changed)
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(v2.revision, stored.revision + 1);
    assert_eq!(
        store.update_installation(&changed).await.unwrap(),
        Outcome::PreconditionFailed,
        "a stale revision is refused"
    );
    let mut foreign = v2.clone();
    foreign.org_id = b.id.clone();
    assert_eq!(
        store.update_installation(&foreign).await.unwrap(),
        Outcome::NotFound
    );
    assert_eq!(
        store.delete_installation(&b.id, &inst.id).await.unwrap(),
        Outcome::NotFound
    );
    assert_eq!(
        store.delete_installation(&a.id, &inst.id).await.unwrap(),
        Outcome::Done(())
    );
    assert!(store
        .get_installation(&a.id, &inst.id)
        .await
        .unwrap()
        .is_none());
}

async fn customers_and_isolation(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}cust-a"));
    // A prefix of the other org's id: key ranges must not overlap.
    let b = org(&format!("{p}cust-ab"));
    store.create_org(&a).await.unwrap();
    store.create_org(&b).await.unwrap();
    let c = store
        .create_customer(&a.id, draft("Ann"), Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(c.revision, 1);
    assert_eq!(c.updated_at, Timestamp(5));
    store
        .create_customer(&b.id, draft("Bob"), Timestamp(5))
        .await
        .unwrap();
    assert!(
        store.get_customer(&b.id, &c.id).await.unwrap().is_none(),
        "no cross-org reads"
    );
    assert_eq!(store.count_customers(&a.id).await.unwrap(), 1);
    assert_eq!(store.count_customers(&b.id).await.unwrap(), 1);
    let listed = store.list_customers(&a.id, None, 100).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Ann");
    assert_eq!(
        store
            .update_customer(&b.id, &c.id, draft("X"), None, Timestamp(6))
            .await
            .unwrap(),
        Outcome::NotFound,
        "no cross-org writes"
    );
    assert_eq!(
        store.delete_customer(&b.id, &c.id, None).await.unwrap(),
        Outcome::NotFound
    );
    assert_eq!(
        store
            .get_customer(&a.id, &c.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Ann"
    );
    assert_eq!(
        store.current_seq(&b.id).await.unwrap(),
        1,
        "each org has its own sequence"
    );
    let by_name = store
        .find_customer_by_resource_name(&a.id, c.id.as_str())
        .await
        .unwrap();
    assert_eq!(
        by_name.map(|x| x.id),
        Some(c.id.clone()),
        "resource name defaults to the id"
    );
    assert!(store
        .find_customer_by_resource_name(&b.id, c.id.as_str())
        .await
        .unwrap()
        .is_none());
}

async fn revisions(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}rev"));
    store.create_org(&a).await.unwrap();
    let c = store
        .create_customer(&a.id, draft("Ann"), Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    let v2 = store
        .update_customer(&a.id, &c.id, draft("Ann B"), Some(1), Timestamp(6))
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(v2.revision, 2);
    let seq = store.current_seq(&a.id).await.unwrap();
    assert_eq!(
        store
            .update_customer(&a.id, &c.id, draft("Lost"), Some(1), Timestamp(7))
            .await
            .unwrap(),
        Outcome::PreconditionFailed
    );
    assert_eq!(
        store.delete_customer(&a.id, &c.id, Some(1)).await.unwrap(),
        Outcome::PreconditionFailed
    );
    assert_eq!(
        store.current_seq(&a.id).await.unwrap(),
        seq,
        "a refused write logs nothing"
    );
    assert_eq!(
        store
            .get_customer(&a.id, &c.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "Ann B"
    );
    let v3 = store
        .update_customer(&a.id, &c.id, draft("Ann C"), None, Timestamp(8))
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(v3.revision, 3, "no precondition: last writer wins");
    let missing = CustomerId::parse("missing").unwrap();
    assert_eq!(
        store
            .update_customer(&a.id, &missing, draft("x"), None, Timestamp(9))
            .await
            .unwrap(),
        Outcome::NotFound
    );
}

async fn change_log(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}log"));
    store.create_org(&a).await.unwrap();
    assert_eq!(store.current_seq(&a.id).await.unwrap(), 0);
    let empty = store.changes_since(&a.id, 0, 10).await.unwrap().unwrap();
    assert!(empty.changes.is_empty());
    let c1 = store
        .create_customer(&a.id, draft("One"), Timestamp(1))
        .await
        .unwrap()
        .done()
        .unwrap();
    let c2 = store
        .create_customer(&a.id, draft("Two"), Timestamp(1))
        .await
        .unwrap()
        .done()
        .unwrap();
    let t = store.current_seq(&a.id).await.unwrap();
    assert_eq!(t, 2);
    store
        .update_customer(&a.id, &c1.id, draft("One b"), None, Timestamp(2))
        .await
        .unwrap();
    store
        .update_customer(&a.id, &c1.id, draft("One c"), None, Timestamp(3))
        .await
        .unwrap();
    store.delete_customer(&a.id, &c2.id, None).await.unwrap();
    let batch = store.changes_since(&a.id, t, 100).await.unwrap().unwrap();
    assert_eq!(batch.next_seq, 5);
    assert!(!batch.truncated);
    assert_eq!(batch.changes.len(), 2, "one entry per customer");
    assert_eq!(batch.changes[0].customer_id, c1.id);
    assert!(!batch.changes[0].deleted);
    assert_eq!(batch.changes[1].customer_id, c2.id);
    assert!(batch.changes[1].deleted, "a delete leaves a tombstone");
    assert_eq!(batch.changes[1].resource_name, c2.id.as_str());
    let up_to_date = store.changes_since(&a.id, 5, 100).await.unwrap().unwrap();
    assert!(up_to_date.changes.is_empty());
    assert_eq!(up_to_date.next_seq, 5);
    assert!(
        store.changes_since(&a.id, 6, 100).await.unwrap().is_none(),
        "future token"
    );
    let limited = store.changes_since(&a.id, 0, 1).await.unwrap().unwrap();
    assert!(limited.truncated);
    assert_eq!(limited.changes.len(), 1);
    let rest = store
        .changes_since(&a.id, limited.next_seq, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(rest
        .changes
        .iter()
        .all(|c| c.customer_id != limited.changes[0].customer_id || c.seq > limited.next_seq));
    store.prune_changes(&a.id, 3).await.unwrap();
    assert!(
        store.changes_since(&a.id, 1, 100).await.unwrap().is_none(),
        "expired token"
    );
    assert!(store.changes_since(&a.id, 3, 100).await.unwrap().is_some());
    assert_eq!(
        store.current_seq(&a.id).await.unwrap(),
        5,
        "pruning keeps the sequence"
    );
}

async fn uniqueness(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}uniq"));
    let b = org(&format!("{p}uniq2"));
    store.create_org(&a).await.unwrap();
    store.create_org(&b).await.unwrap();
    let mut d = draft("Carded");
    d.card = Some(card("apple-123", "uid-1"));
    let c = store
        .create_customer(&a.id, d.clone(), Timestamp(1))
        .await
        .unwrap()
        .done()
        .unwrap();
    assert!(
        matches!(
            store
                .create_customer(&a.id, d.clone(), Timestamp(1))
                .await
                .unwrap(),
            Outcome::Conflict(_)
        ),
        "resource names are unique in an org"
    );
    let mut other_uid_clash = draft("Other");
    other_uid_clash.card = Some(card("other", "uid-1"));
    assert!(matches!(
        store
            .create_customer(&a.id, other_uid_clash, Timestamp(1))
            .await
            .unwrap(),
        Outcome::Conflict(_)
    ));
    assert!(
        matches!(
            store.create_customer(&b.id, d, Timestamp(1)).await.unwrap(),
            Outcome::Done(_)
        ),
        "another org may use the same name and UID"
    );
    let found = store
        .find_customer_by_resource_name(&a.id, "apple-123")
        .await
        .unwrap();
    assert_eq!(found.map(|x| x.id), Some(c.id.clone()));
    let found = store
        .find_customer_by_card_uid(&a.id, "uid-1")
        .await
        .unwrap();
    assert_eq!(found.map(|x| x.id), Some(c.id.clone()));
    // Renaming frees the old name; deleting frees both.
    let mut renamed = draft("Carded");
    renamed.card = Some(card("apple-456", "uid-2"));
    store
        .update_customer(&a.id, &c.id, renamed, None, Timestamp(2))
        .await
        .unwrap();
    assert!(store
        .find_customer_by_resource_name(&a.id, "apple-123")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_customer_by_card_uid(&a.id, "uid-1")
        .await
        .unwrap()
        .is_none());
    // Batched lookups: one answer per name, in order, a repeated name answered again, a freed
    // name and a name held only in another organization answered `None`.
    let plain = store
        .create_customer(&a.id, draft("Plain"), Timestamp(3))
        .await
        .unwrap()
        .done()
        .unwrap();
    let names = [
        "apple-456",
        "apple-123",
        plain.id.as_str(),
        "nobody",
        "apple-456",
    ];
    let found = store
        .find_customers_by_resource_names(&a.id, &names)
        .await
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|f| f.as_ref().map(|x| x.id.clone()))
            .collect::<Vec<_>>(),
        vec![
            Some(c.id.clone()),
            None,
            Some(plain.id.clone()),
            None,
            Some(c.id.clone())
        ],
        "batched lookups answer each name in order, within the organization"
    );
    for (name, got) in names.iter().zip(&found) {
        let one = store
            .find_customer_by_resource_name(&a.id, name)
            .await
            .unwrap();
        assert_eq!(got, &one, "a batched lookup returns what a single one does");
    }
    assert!(store
        .find_customers_by_resource_names(&a.id, &[])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .find_customers_by_resource_names(&b.id, &["apple-456", plain.id.as_str()])
            .await
            .unwrap(),
        vec![None, None],
        "no cross-org batched reads"
    );
    // The same lookups as card records: each what `CardRecord::from` makes of the customer
    // (the stored card and identity for `c`, the whole record for `plain`).
    let cards = store
        .find_customer_cards_by_resource_names(&a.id, &names)
        .await
        .unwrap();
    assert_eq!(
        cards,
        found
            .iter()
            .map(|f| f.clone().map(CardRecord::from))
            .collect::<Vec<_>>(),
        "card lookups answer as customer lookups do"
    );
    assert!(matches!(cards[0], Some(CardRecord::Stored(_))));
    assert!(matches!(cards[2], Some(CardRecord::Unwritten(_))));
    assert_eq!(
        store
            .find_customer_cards_by_resource_names(&b.id, &["apple-456", plain.id.as_str()])
            .await
            .unwrap(),
        vec![None, None],
        "no cross-org card lookups"
    );
    store.delete_customer(&a.id, &c.id, None).await.unwrap();
    assert!(store
        .find_customer_by_resource_name(&a.id, "apple-456")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_customer_by_card_uid(&a.id, "uid-2")
        .await
        .unwrap()
        .is_none());
}

async fn paging(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}page"));
    store.create_org(&a).await.unwrap();
    for i in 0..25 {
        let mut d = draft(&format!("C{i}"));
        d.id = Some(CustomerId::parse(&format!("c{i:03}")).unwrap());
        if i % 3 == 0 {
            d.card = Some(card(&format!("card-{i}"), &format!("uid-{i}")));
        }
        store.create_customer(&a.id, d, Timestamp(1)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<CustomerId> = None;
    for _ in 0..10 {
        let page = store
            .list_customers(&a.id, cursor.as_ref(), 10)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|c| c.id.clone());
        seen.extend(page.into_iter().map(|c| c.id.to_string()));
    }
    assert_eq!(seen.len(), 25, "cursor paging visits every customer once");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in id order");
    // Card listings page the same way and hold what `CardRecord::from` makes of each customer.
    let mut cursor: Option<CustomerId> = None;
    let mut pages = 0;
    for _ in 0..10 {
        let cards = store
            .list_customer_cards(&a.id, cursor.as_ref(), 7)
            .await
            .unwrap();
        let customers = store
            .list_customers(&a.id, cursor.as_ref(), 7)
            .await
            .unwrap();
        assert_eq!(
            cards,
            customers
                .into_iter()
                .map(CardRecord::from)
                .collect::<Vec<_>>(),
            "a card page is the customer page's cards"
        );
        let Some(last) = cards.last() else {
            break;
        };
        cursor = Some(last.id().clone());
        pages += 1;
    }
    assert_eq!(pages, 4, "25 customers in pages of 7");
    let b = org(&format!("{p}page-other"));
    store.create_org(&b).await.unwrap();
    assert!(
        store
            .list_customer_cards(&b.id, None, 100)
            .await
            .unwrap()
            .is_empty(),
        "no cross-org card listings"
    );
}

/// The raw change-log export and the imports `portico store copy` is built on: an organization
/// copied into another (same store, new id) answers every position like the original.
async fn export_and_import(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}exp"));
    let b = org(&format!("{p}exp-copy"));
    store.create_org(&a).await.unwrap();
    store.create_org(&b).await.unwrap();
    assert_eq!(
        store.export_changes(&a.id).await.unwrap(),
        ChangeLog::default(),
        "an organization without writes has an empty log"
    );
    let mut with_card = draft("Carded");
    with_card.card = Some(card("carded.vcf", "uid-exp"));
    let c1 = store
        .create_customer(&a.id, with_card, Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    let c2 = store
        .create_customer(&a.id, draft("Two"), Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    let c3 = store
        .create_customer(&a.id, draft("Three"), Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    store
        .update_customer(&a.id, &c2.id, draft("Two b"), Some(1), Timestamp(6))
        .await
        .unwrap();
    store.delete_customer(&a.id, &c3.id, None).await.unwrap();
    store.prune_changes(&a.id, 1).await.unwrap();
    let log = store.export_changes(&a.id).await.unwrap();
    assert_eq!(
        (log.seq, log.floor),
        (5, 1),
        "export keeps the sequence and the floor"
    );
    let seqs: Vec<(u64, bool)> = log.entries.iter().map(|e| (e.seq, e.deleted)).collect();
    assert_eq!(
        seqs,
        vec![(2, false), (3, false), (4, false), (5, true)],
        "export lists every entry above the floor, superseded ones too"
    );

    let customers = store.list_customers(&a.id, None, 100).await.unwrap();
    assert_eq!(
        store.import_customers(&b.id, &customers).await.unwrap(),
        Outcome::Done(())
    );
    assert_eq!(
        store.current_seq(&b.id).await.unwrap(),
        0,
        "importing customers writes no log entry"
    );
    assert_eq!(
        store.import_changes(&b.id, &log).await.unwrap(),
        Outcome::Done(())
    );
    assert_eq!(store.export_changes(&b.id).await.unwrap(), log);
    assert_eq!(
        store.get_customer(&b.id, &c1.id).await.unwrap(),
        Some(c1.clone()),
        "an imported customer keeps its revision, timestamps and card"
    );
    assert_eq!(
        store
            .find_customer_by_card_uid(&b.id, "uid-exp")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(c1.id.clone()),
        "an imported card is found by UID"
    );
    assert_eq!(
        store
            .find_customer_by_resource_name(&b.id, "carded.vcf")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(c1.id.clone()),
        "an imported card is found by resource name"
    );
    for seq in 0..=6 {
        for limit in [1, 100] {
            assert_eq!(
                store.changes_since(&a.id, seq, limit).await.unwrap(),
                store.changes_since(&b.id, seq, limit).await.unwrap(),
                "an imported log answers position {seq} (limit {limit}) like the original"
            );
        }
    }
    assert_eq!(store.current_seq(&b.id).await.unwrap(), 5);
    // Writes go on from the imported position, with the usual rules.
    let c4 = store
        .create_customer(&b.id, draft("Four"), Timestamp(7))
        .await
        .unwrap()
        .done()
        .unwrap();
    let next = store.changes_since(&b.id, 5, 100).await.unwrap().unwrap();
    assert_eq!(next.next_seq, 6, "the next write takes the next number");
    assert_eq!(next.changes.len(), 1);
    assert_eq!(next.changes[0].customer_id, c4.id);
    assert_eq!(
        store
            .update_customer(&b.id, &c2.id, draft("Two c"), Some(2), Timestamp(8))
            .await
            .unwrap()
            .done()
            .map(|c| c.revision),
        Some(3),
        "an imported revision is the one If-Match compares"
    );
    let mut clash = draft("Clash");
    clash.card = Some(card("other.vcf", "uid-exp"));
    assert!(
        matches!(
            store
                .create_customer(&b.id, clash, Timestamp(9))
                .await
                .unwrap(),
            Outcome::Conflict(_)
        ),
        "an imported card UID is unique"
    );

    assert!(
        matches!(
            store.import_changes(&b.id, &log).await.unwrap(),
            Outcome::Conflict(_)
        ),
        "a log is never imported over another"
    );
    assert!(
        matches!(
            store
                .import_customers(&b.id, &customers[..1])
                .await
                .unwrap(),
            Outcome::Conflict(_)
        ),
        "an imported customer id must be free"
    );
}

async fn host_records(store: &dyn Store, p: &str) {
    let ns = format!("{p}tokens");
    let other = format!("{p}tokens2");
    assert_eq!(store.get_record(&ns, "a").await.unwrap(), None);
    store
        .put_record(&ns, "b", &serde_json::json!({"n": 2}))
        .await
        .unwrap();
    store
        .put_record(&ns, "a", &serde_json::json!({"n": 1}))
        .await
        .unwrap();
    store
        .put_record(&other, "a", &serde_json::json!({"n": 9}))
        .await
        .unwrap();
    store
        .put_record(&ns, "a", &serde_json::json!({"n": 1, "again": true}))
        .await
        .unwrap();
    assert_eq!(
        store.get_record(&ns, "a").await.unwrap(),
        Some(serde_json::json!({"n": 1, "again": true})),
        "a put replaces"
    );
    let listed = store.list_records(&ns).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b"], "key order, one namespace only");
    assert_eq!(
        store.take_record(&ns, "b").await.unwrap(),
        Some(serde_json::json!({"n": 2}))
    );
    assert_eq!(
        store.take_record(&ns, "b").await.unwrap(),
        None,
        "a record is taken once"
    );
    assert_eq!(
        store.get_record(&other, "a").await.unwrap(),
        Some(serde_json::json!({"n": 9})),
        "namespaces are apart"
    );
}

/// A draft whose card has a media piece per entry of `pieces` (all at the text's end).
fn draft_with_media(name: &str, id: &str, pieces: &[&str]) -> CustomerDraft {
    let mut d = draft(name);
    d.id = Some(CustomerId::parse(id).unwrap());
    let mut c = card(&format!("{id}-card"), &format!("{id}-uid"));
    c.media = pieces
        .iter()
        .map(|p| CardMedia {
            offset: c.text.len() as u64,
            len: p.len() as u64,
            key: String::new(),
        })
        .collect();
    d.card = Some(c);
    d.card_media = Some(pieces.iter().map(|p| p.to_string()).collect());
    d
}

fn keys(c: &Customer) -> Vec<String> {
    c.card
        .iter()
        .flat_map(|k| k.media.iter().map(|m| m.key.clone()))
        .collect()
}

/// Card media pieces: stored with the record, read only by key, carried over, replaced and
/// dropped by the record's own writes, never across organizations.
async fn card_media(store: &dyn Store, p: &str) {
    let a = org(&format!("{p}media-a"));
    let b = org(&format!("{p}media-b"));
    store.create_org(&a).await.unwrap();
    store.create_org(&b).await.unwrap();
    let photo1 = "PHOTO;ENCODING=b;TYPE=JPEG:AAAA\r\n".repeat(40);
    let photo2 = "LOGO:data:image/png;base64,BBBB\r\n";
    let c = store
        .create_customer(
            &a.id,
            draft_with_media("Ann", "m1", &[&photo1, photo2]),
            Timestamp(1),
        )
        .await
        .unwrap()
        .done()
        .expect("created with media");
    let k = keys(&c);
    assert_eq!(k.len(), 2);
    assert!(
        k.iter().all(|k| !k.is_empty()) && k[0] != k[1],
        "the store assigns keys"
    );
    assert_eq!(
        store.get_customer(&a.id, &c.id).await.unwrap().as_ref(),
        Some(&c),
        "the record names its pieces"
    );
    assert_eq!(
        store.get_card_media(&a.id, &c.id, &k).await.unwrap(),
        vec![Some(photo1.clone()), Some(photo2.to_owned())],
        "pieces read back byte for byte, in the order asked"
    );
    assert_eq!(store.count_card_media(&a.id).await.unwrap(), 2);

    // Another organization, same customer id: its own pieces, never the other's.
    let cb = store
        .create_customer(
            &b.id,
            draft_with_media("Bob", "m1", &["PHOTO:x\r\n"]),
            Timestamp(1),
        )
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(
        store.get_card_media(&b.id, &c.id, &k).await.unwrap(),
        vec![None, None],
        "no cross-org reads of media"
    );
    assert_eq!(
        store
            .get_card_media(&a.id, &c.id, &keys(&cb))
            .await
            .unwrap(),
        vec![None]
    );

    // Refused drafts write nothing.
    let mut bad = draft_with_media("Cy", "m2", &[photo2]);
    bad.card_media = None;
    assert!(
        matches!(
            store
                .create_customer(&a.id, bad, Timestamp(1))
                .await
                .unwrap(),
            Outcome::Conflict(_)
        ),
        "references without bytes on a create"
    );
    let mut bad = draft_with_media("Cy", "m2", &[photo2]);
    bad.card_media = Some(vec!["short".into()]);
    assert!(matches!(
        store
            .create_customer(&a.id, bad, Timestamp(1))
            .await
            .unwrap(),
        Outcome::Conflict(_)
    ));
    assert!(store
        .get_customer(&a.id, &CustomerId::parse("m2").unwrap())
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.count_card_media(&a.id).await.unwrap(), 2);

    // An edit of other fields carries the pieces over (same keys, same bytes).
    let mut edit = CustomerDraft::from_customer(&c);
    edit.tags = vec!["VIP".into()];
    let c2 = store
        .update_customer(&a.id, &c.id, edit, Some(1), Timestamp(2))
        .await
        .unwrap()
        .done()
        .expect("carried over");
    assert_eq!(keys(&c2), k);
    assert_eq!(
        store.get_card_media(&a.id, &c.id, &k).await.unwrap(),
        vec![Some(photo1.clone()), Some(photo2.to_owned())]
    );
    // A reference to a piece the replaced record does not name is refused.
    let mut forged = CustomerDraft::from_customer(&c2);
    if let Some(card) = forged.card.as_mut() {
        card.media[0].key = keys(&cb)[0].clone();
    }
    assert!(matches!(
        store
            .update_customer(&a.id, &c.id, forged, None, Timestamp(3))
            .await
            .unwrap(),
        Outcome::Conflict(_)
    ));
    // A lost race with new pieces leaves none behind.
    let stale = draft_with_media("Ann", "m1", &["PHOTO:stale\r\n"]);
    assert_eq!(
        store
            .update_customer(&a.id, &c.id, stale, Some(1), Timestamp(3))
            .await
            .unwrap(),
        Outcome::PreconditionFailed
    );
    assert_eq!(store.count_card_media(&a.id).await.unwrap(), 2);

    // Replacing the card replaces its pieces.
    let photo3 = "PHOTO;VALUE=uri:https://example.com/new.jpg\r\n";
    let c3 = store
        .update_customer(
            &a.id,
            &c.id,
            draft_with_media("Ann", "m1", &[photo3]),
            Some(2),
            Timestamp(4),
        )
        .await
        .unwrap()
        .done()
        .expect("replaced");
    let k3 = keys(&c3);
    assert_eq!(k3.len(), 1);
    assert!(!k.contains(&k3[0]), "new pieces get new keys");
    assert_eq!(
        store.get_card_media(&a.id, &c.id, &k).await.unwrap(),
        vec![None, None],
        "the replaced pieces are gone"
    );
    assert_eq!(
        store.get_card_media(&a.id, &c.id, &k3).await.unwrap(),
        vec![Some(photo3.to_owned())]
    );
    assert_eq!(store.count_card_media(&a.id).await.unwrap(), 1);

    // Deleting the customer deletes its pieces; the other organization keeps its own.
    assert_eq!(
        store.delete_customer(&a.id, &c.id, None).await.unwrap(),
        Outcome::Done(())
    );
    assert_eq!(store.count_card_media(&a.id).await.unwrap(), 0);
    assert_eq!(store.count_card_media(&b.id).await.unwrap(), 1);

    // A card removed by an edit drops its pieces too.
    let mut no_card = CustomerDraft::from_customer(&cb);
    no_card.card = None;
    store
        .update_customer(&b.id, &cb.id, no_card, None, Timestamp(5))
        .await
        .unwrap()
        .done()
        .unwrap();
    assert_eq!(store.count_card_media(&b.id).await.unwrap(), 0);

    // Import (store copy) stores pieces exactly as given.
    let pieces = vec![("k1".to_owned(), photo1.clone())];
    store
        .import_card_media(&b.id, &cb.id, &pieces)
        .await
        .unwrap();
    assert_eq!(
        store
            .get_card_media(&b.id, &cb.id, &["k1".to_owned(), "k2".to_owned()])
            .await
            .unwrap(),
        vec![Some(photo1), None]
    );
}
