//! The audit log over real HTTP: who did what, to which organization and installation, when and
//! from where; lockouts included; nothing secret; organizations see only their own entries.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::Book;
use portico_tests::TestServer;
use serde_json::{json, Value};

#[tokio::test]
async fn changes_and_lockouts_are_audited_without_secrets() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    s.org("other").await;
    let inst = book.installation.clone();
    let regen: Value = s
        .admin(
            "POST",
            &format!("/orgs/acme/installations/{inst}/actions/regenerate-password"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_password = regen["result"]["password"].as_str().unwrap().to_owned();
    // Reads and file actions are not changes.
    s.admin(
        "POST",
        &format!("/orgs/acme/installations/{inst}/actions/credentials"),
    )
    .send()
    .await
    .unwrap();
    let token: Value = s
        .admin("POST", "/orgs/acme/tokens")
        .json(&json!({ "label": "owner" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Ten wrong passwords lock this address out of the installation.
    let wrong = book.with_credentials("acme", "wrong-password-123");
    for _ in 0..10 {
        wrong.propfind(&book.book(), "0", "").await;
    }
    let r = s
        .admin("DELETE", &format!("/orgs/acme/installations/{inst}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let log: Value = s
        .admin("GET", "/audit?limit=50")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log.as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "installation.uninstalled",
            "auth.locked_out",
            "token.minted",
            "installation.action",
            "org.created",
            "installation.installed",
            "org.created",
        ],
        "newest first"
    );
    for want in [
        "org.created",
        "installation.installed",
        "installation.action",
        "token.minted",
        "auth.locked_out",
        "installation.uninstalled",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "installation.action")
            .count(),
        1,
        "the read-only credentials action is not a change"
    );
    let installed = entries
        .iter()
        .find(|e| e["action"] == "installation.installed")
        .unwrap();
    assert_eq!(installed["actor"], "admin");
    assert_eq!(installed["org"], "acme");
    assert_eq!(installed["installation"], inst.as_str());
    assert_eq!(installed["address"], "127.0.0.1");
    assert!(installed["at"].as_i64().unwrap() > 0);
    let lockout = entries
        .iter()
        .find(|e| e["action"] == "auth.locked_out")
        .unwrap();
    assert_eq!(lockout["installation"], inst.as_str());
    assert_eq!(lockout["address"], "127.0.0.1");
    let text = log.to_string();
    for secret in [
        new_password.as_str(),
        book.password.as_str(),
        token["token"].as_str().unwrap(),
        "wrong-password-123",
    ] {
        assert!(!text.contains(secret), "audit log holds a secret");
    }

    // An organization sees its own entries only; the global log is the admin's.
    let own = s
        .req("GET", "/admin/api/orgs/acme/audit")
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert!(own.as_array().unwrap().iter().all(|e| e["org"] == "acme"));
    let global = s
        .req("GET", "/admin/api/audit")
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(global.status(), 403);
    let foreign = s
        .req("GET", "/admin/api/orgs/other/audit")
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    s.stop().await;
}
