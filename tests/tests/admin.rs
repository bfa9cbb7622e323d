//! The admin API over a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::{base_path, text, TestServer, ADMIN_TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn token_is_required_and_checked() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/admin/api/orgs").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = s
        .req("GET", "/admin/api/orgs")
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    let r = s
        .req("GET", "/admin/api/orgs")
        .bearer_auth(format!("{ADMIN_TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(s.admin("GET", "/orgs").send().await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn organizations_are_validated() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let dup = s
        .admin("POST", "/orgs")
        .json(&json!({"slug": "acme", "name": "Other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let bad = s
        .admin("POST", "/orgs")
        .json(&json!({"slug": "Not A Slug", "name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let (st, body) = text(
        s.admin("POST", "/orgs")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
    let unknown = s
        .admin("POST", "/orgs")
        .json(&json!({"slug": "x", "name": "x", "colour": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let bad_id = s.admin("GET", "/orgs/bad%20id").send().await.unwrap();
    assert_eq!(bad_id.status(), 400);
    assert_eq!(
        s.admin("GET", "/orgs/ghost").send().await.unwrap().status(),
        404
    );
    let list: Vec<Value> = s
        .admin("GET", "/orgs")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "refused orgs were not stored");
    s.stop().await;
}

#[tokio::test]
async fn install_is_idempotent_and_uninstall_closes_the_url() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let first = s.install("acme", "hello").await;
    let token = first["reveal"]["token"].as_str().unwrap().to_owned();
    let again = s
        .admin("POST", "/orgs/acme/installations")
        .json(&json!({"kind": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["installation"]["id"], first["installation"]["id"]);
    assert!(again["reveal"].is_null(), "the token is shown only once");
    assert_eq!(again["created"], false);
    let unknown = s
        .admin("POST", "/orgs/acme/installations")
        .json(&json!({"kind": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let id = first["installation"]["id"].as_str().unwrap();
    let st: Value = s
        .admin("GET", &format!("/orgs/acme/installations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"]["status"], "connected");

    let base = base_path(&first);
    assert_eq!(
        s.req("GET", &base)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let rotated: Value = s
        .admin(
            "POST",
            &format!("/orgs/acme/installations/{id}/actions/rotate-token"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = rotated["result"]["token"].as_str().unwrap();
    assert_eq!(
        s.req("GET", &base)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "old token stops at once"
    );
    assert_eq!(
        s.req("GET", &base)
            .bearer_auth(new_token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let bad_action = s
        .admin(
            "POST",
            &format!("/orgs/acme/installations/{id}/actions/explode"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad_action.status(), 404);

    assert_eq!(
        s.admin("DELETE", &format!("/orgs/acme/installations/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        s.req("GET", &base)
            .bearer_auth(new_token)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin("DELETE", &format!("/orgs/acme/installations/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn migration_keeps_id_and_secret() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let body = json!({"kind": "hello", "id": "legacy-install-1", "secrets": {"token": "an-existing-token-123"}});
    let r = s
        .admin("POST", "/orgs/acme/installations")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .req("GET", "/api/apps/acme/legacy-install-1/")
        .bearer_auth("an-existing-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn customers_crud_paging_import_and_isolation() {
    let s = TestServer::start().await;
    s.org("acme").await;
    s.org("other").await;
    let c: Value = s
        .admin("POST", "/orgs/acme/customers")
        .json(&json!({"name": "Zoë Ünal", "email": "zoe@example.com", "known_phones": ["+1 555"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["revision"], 1);
    let missing_name = s
        .admin("POST", "/orgs/acme/customers")
        .json(&json!({"email": "x@y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_name.status(), 400);

    // Another org never sees it.
    assert_eq!(
        s.admin("GET", &format!("/orgs/other/customers/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin("PATCH", &format!("/orgs/other/customers/{id}"))
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        s.admin("DELETE", &format!("/orgs/other/customers/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let other_list: Value = s
        .admin("GET", "/orgs/other/customers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other_list["customers"].as_array().unwrap().len(), 0);

    let patched: Value = s
        .admin("PATCH", &format!("/orgs/acme/customers/{id}"))
        .json(&json!({"note": "likes tea", "expected_revision": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["note"], "likes tea");
    assert_eq!(
        patched["email"], "zoe@example.com",
        "absent fields are kept"
    );
    assert_eq!(patched["revision"], 2);
    let stale = s
        .admin("PATCH", &format!("/orgs/acme/customers/{id}"))
        .json(&json!({"note": "x", "expected_revision": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);

    let good = (0..30)
        .map(|i| json!({"id": format!("imp{i:02}"), "name": format!("Imported {i}")}).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    // All-or-nothing: a file with bad lines imports nothing and names every bad line.
    let refused = s
        .admin("POST", "/orgs/acme/customers/import")
        .body(good.clone() + "\n{broken\n{\"name\": \"\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let report: Value = refused.json().await.unwrap();
    assert_eq!(report["created"], 0);
    let lines: Vec<u64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![31, 32]);
    let count: Value = s
        .admin("GET", "/orgs/acme/customers?limit=1000")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        count["customers"].as_array().unwrap().len(),
        1,
        "nothing imported"
    );
    let report: Value = s
        .admin("POST", "/orgs/acme/customers/import")
        .body(good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["created"], 30);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);

    let mut seen = 0;
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let q = match &after {
            Some(a) => format!("?limit=7&after={a}"),
            None => "?limit=7".into(),
        };
        let page: Value = s
            .admin("GET", &format!("/orgs/acme/customers{q}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page["customers"].as_array().unwrap().len();
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 31);

    assert_eq!(
        s.admin(
            "DELETE",
            &format!("/orgs/acme/customers/{id}?expected_revision=1")
        )
        .send()
        .await
        .unwrap()
        .status(),
        412
    );
    assert_eq!(
        s.admin("DELETE", &format!("/orgs/acme/customers/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        s.admin("GET", &format!("/orgs/acme/customers/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}
