//! The admin page's server side over real HTTP: sessions, CSRF, cookie flags, organization
//! tokens, one-time setup links, the Apple profile, file imports and exports, the page's
//! headers, and the OpenAPI document. (The page itself is driven in Chromium by
//! tests/browser/.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::{base_path, TestServer, ADMIN_TOKEN};
use reqwest::header::{HeaderMap, CONTENT_TYPE, SET_COOKIE};
use serde_json::{json, Value};

/// A signed-in browser: the cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
    set_cookie: String,
}

async fn sign_in(s: &TestServer, token: &str) -> Result<Session, u16> {
    let r = s
        .req("POST", "/admin/session")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let set_cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    Ok(Session {
        cookie,
        csrf: body["csrf"].as_str().unwrap().to_owned(),
        set_cookie,
    })
}

impl Session {
    fn headers(&self, with_csrf: bool) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", self.cookie.parse().unwrap());
        if with_csrf {
            h.insert("x-csrf-token", self.csrf.parse().unwrap());
        }
        h
    }
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_cookies_are_locked_down() {
    let s = TestServer::start().await;
    let me = sign_in(&s, ADMIN_TOKEN).await.unwrap();
    let flags: Vec<&str> = me.set_cookie.split(';').map(str::trim).collect();
    assert!(flags.contains(&"HttpOnly"), "{flags:?}");
    assert!(flags.contains(&"SameSite=Strict"), "{flags:?}");
    assert!(flags.contains(&"Path=/admin"), "{flags:?}");
    assert!(
        !flags.contains(&"Secure"),
        "plain-HTTP origin: no Secure flag"
    );

    let create = |csrf: Option<&str>| {
        let mut h = me.headers(false);
        if let Some(c) = csrf {
            h.insert("x-csrf-token", c.parse().unwrap());
        }
        s.req("POST", "/admin/api/orgs")
            .headers(h)
            .json(&json!({ "slug": "csrf-org", "name": "C" }))
    };
    assert_eq!(create(None).send().await.unwrap().status(), 403);
    assert_eq!(create(Some("wrong")).send().await.unwrap().status(), 403);
    assert_eq!(
        s.admin("GET", "/orgs")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!([]),
        "the refused requests created nothing"
    );
    assert_eq!(create(Some(&me.csrf)).send().await.unwrap().status(), 201);

    // Reads need no CSRF token; the session view hands it to the page.
    let view: Value = s
        .req("GET", "/admin/session")
        .headers(me.headers(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["scope"], "admin");
    assert_eq!(view["csrf"], me.csrf.as_str());

    // Logout needs the token too, then ends the session for good.
    let out = s.req("DELETE", "/admin/session").headers(me.headers(false));
    assert_eq!(out.send().await.unwrap().status(), 403);
    let out = s
        .req("DELETE", "/admin/session")
        .headers(me.headers(true))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = s
        .req("GET", "/admin/api/orgs")
        .headers(me.headers(true))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn sign_in_refuses_wrong_tokens_and_form_posts() {
    let s = TestServer::start().await;
    assert_eq!(sign_in(&s, "not-the-token").await.err(), Some(401));
    // A cross-site HTML form can only send form or text bodies.
    let r = s
        .req("POST", "/admin/session")
        .header(CONTENT_TYPE, "text/plain")
        .body(format!("{{\"token\":\"{ADMIN_TOKEN}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert_eq!(
        s.req("GET", "/admin/session")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    s.stop().await;
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure() {
    let s = TestServer::start_with(|c| {
        c.server.public_url = Some("https://contacts.example".into());
    })
    .await;
    let me = sign_in(&s, ADMIN_TOKEN).await.unwrap();
    assert!(me.set_cookie.split(';').any(|f| f.trim() == "Secure"));
    s.stop().await;
}

async fn mint(s: &TestServer, org: &str, label: &str) -> Value {
    let r = s
        .admin("POST", &format!("/orgs/{org}/tokens"))
        .json(&json!({ "label": label }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_organization_token_sees_and_changes_only_its_organization() {
    let s = TestServer::start().await;
    s.org("mine").await;
    s.org("theirs").await;
    s.install("theirs", "carddav").await;
    s.admin("POST", "/orgs/theirs/customers")
        .json(&json!({ "name": "Secret Customer" }))
        .send()
        .await
        .unwrap();
    let minted = mint(&s, "mine", "Owner's laptop").await;
    let token = minted["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pto_"));
    let as_owner = |m: &str, p: &str| s.req(m, &format!("/admin/api{p}")).bearer_auth(&token);

    let orgs: Value = as_owner("GET", "/orgs")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["id"], "mine");
    for (m, p) in [
        ("GET", "/orgs/theirs"),
        ("GET", "/orgs/theirs/installations"),
        ("GET", "/orgs/theirs/customers"),
        ("GET", "/orgs/theirs/customers/export.vcf"),
        ("POST", "/orgs/theirs/customers"),
        ("POST", "/orgs/theirs/installations"),
    ] {
        let r = as_owner(m, p)
            .json(&json!({ "name": "x", "kind": "carddav" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{m} {p}");
        assert!(!r.text().await.unwrap().contains("Secret Customer"));
    }
    let create = as_owner("POST", "/orgs").json(&json!({"slug": "new", "name": "N"}));
    assert_eq!(create.send().await.unwrap().status(), 403);
    let mint_more = as_owner("POST", "/orgs/mine/tokens").json(&json!({"label": "x"}));
    assert_eq!(mint_more.send().await.unwrap().status(), 403);
    // Its own organization works.
    let own = as_owner("POST", "/orgs/mine/installations")
        .json(&json!({ "kind": "carddav" }))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);

    // The same through a page session opened with the token; revoking ends it.
    let page = sign_in(&s, &token).await.unwrap();
    let view: Value = s
        .req("GET", "/admin/session")
        .headers(page.headers(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["scope"], "org");
    assert_eq!(view["org"], "mine");
    let foreign = s
        .req("GET", "/admin/api/orgs/theirs/customers")
        .headers(page.headers(false))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    let listed: Value = s
        .admin("GET", "/orgs/mine/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["label"], "Owner's laptop");
    assert!(listed[0].get("token").is_none(), "never listed again");
    let id = minted["id"].as_str().unwrap();
    let r = s
        .admin("DELETE", &format!("/orgs/mine/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(as_owner("GET", "/orgs").send().await.unwrap().status(), 401);
    let ended = s
        .req("GET", "/admin/api/orgs")
        .headers(page.headers(false))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 401, "sessions end with their token");
    s.stop().await;
}

/// The value element after `<key>name</key>` in a plist (first occurrence).
fn plist_value(text: &str, name: &str) -> Option<String> {
    let key = format!("<key>{name}</key>");
    let rest = &text[text.find(&key)? + key.len()..];
    let rest = rest.trim_start();
    if let Some(r) = rest.strip_prefix("<string>") {
        return Some(r[..r.find("</string>")?].to_owned());
    }
    if let Some(r) = rest.strip_prefix("<integer>") {
        return Some(r[..r.find("</integer>")?].to_owned());
    }
    rest.strip_prefix("<true/>")
        .map(|_| "true".to_owned())
        .or_else(|| rest.strip_prefix("<false/>").map(|_| "false".to_owned()))
}

#[tokio::test]
async fn apple_profile_and_one_time_setup_links() {
    let s = TestServer::start().await;
    s.org("salon").await;
    let inst = s.install("salon", "carddav").await;
    let id = inst["installation"]["id"].as_str().unwrap().to_owned();
    let password = inst["reveal"]["password"].as_str().unwrap().to_owned();
    let action = |name: &str| format!("/orgs/salon/installations/{id}/actions/{name}");

    let creds: Value = s
        .admin("POST", &action("credentials"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(creds["result"]["password"], password.as_str());
    assert_eq!(creds["result"]["username"], "salon");

    let profile = |include: bool| {
        s.admin("POST", &action("apple-profile"))
            .json(&json!({ "include_password": include }))
    };
    let r = profile(false).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()[CONTENT_TYPE],
        "application/x-apple-aspen-config"
    );
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("salon-contacts.mobileconfig"));
    let text = r.text().await.unwrap();
    let host = s.url.trim_start_matches("http://");
    let (h, port) = host.split_once(':').unwrap();
    assert_eq!(
        plist_value(&text, "PayloadType").as_deref(),
        Some("com.apple.carddav.account")
    );
    assert_eq!(plist_value(&text, "CardDAVHostName").as_deref(), Some(h));
    assert_eq!(plist_value(&text, "CardDAVPort").as_deref(), Some(port));
    assert_eq!(
        plist_value(&text, "CardDAVPrincipalURL").as_deref(),
        Some(base_path(&inst).as_str())
    );
    assert_eq!(
        plist_value(&text, "CardDAVUseSSL").as_deref(),
        Some("false")
    );
    assert_eq!(
        plist_value(&text, "CardDAVUsername").as_deref(),
        Some("salon")
    );
    assert_eq!(plist_value(&text, "CardDAVPassword"), None);
    let with = profile(true).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        plist_value(&with, "CardDAVPassword").as_deref(),
        Some(password.as_str())
    );
    let bad = s
        .admin("POST", &action("apple-profile"))
        .json(&json!({ "include_password": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // One-time link: works once without credentials, then 404.
    let link: Value = s
        .admin("POST", &format!("{}/link", action("apple-profile")))
        .json(&json!({ "include_password": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/setup/", s.url)));
    assert!(link["qr_svg"].as_str().unwrap().contains("<svg"));
    let first = s.http.get(url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let body = first.text().await.unwrap();
    assert_eq!(
        plist_value(&body, "CardDAVPassword").as_deref(),
        Some(password.as_str())
    );
    assert_eq!(s.http.get(url).send().await.unwrap().status(), 404);
    assert_eq!(
        s.http
            .get(format!("{}/setup/made-up-token", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Only file actions get links.
    let r = s
        .admin("POST", &format!("{}/link", action("regenerate-password")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A link made before an uninstall dies with the installation.
    let link: Value = s
        .admin("POST", &format!("{}/link", action("apple-profile")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = s
        .admin("DELETE", &format!("/orgs/salon/installations/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let url = link["url"].as_str().unwrap();
    assert_eq!(s.http.get(url).send().await.unwrap().status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn imports_are_all_or_nothing_in_every_format_and_export_gives_the_book() {
    let s = TestServer::start().await;
    s.org("shop").await;
    s.install("shop", "carddav").await;
    let import = |format: &str, body: &str| {
        s.admin(
            "POST",
            &format!("/orgs/shop/customers/import?format={format}"),
        )
        .body(body.to_owned())
    };
    let count = || async {
        let v: Value = s
            .admin("GET", "/orgs/shop/customers?limit=1000")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["customers"].as_array().unwrap().len()
    };

    let bad_csv = "name,email,birthday\nAnn Lee,ann@example.com,1985-04-12\n,nobody@example.com,\nCy,cy@example.com,1985-13-40\n";
    let r = import("csv", bad_csv).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0][0], 3);
    assert_eq!(v["errors"][1][0], 4);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nothing was imported"));
    assert_eq!(count().await, 0);

    let good_csv = "name,email,known_phones,note,tags\n\"Lee, Ann\",ann@example.com,+1 555 0100;+1 555 0101,\"Line one\nline two; with semicolon\",VIP\nBo Chen,bo@example.com,,,\n";
    let r = import("csv", good_csv).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["created"], 2);

    let vcf =
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë Martin\r\nTEL:+33 1 23 45 67 89\r\nEND:VCARD\r\n\
               BEGIN:VCARD\r\nVERSION:4.0\r\nUID:x\r\nFN:Kai\r\nBDAY:--0412\r\nEND:VCARD\r\n";
    let r = import("vcf", vcf).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(count().await, 4);
    let broken_vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Fine\r\nEND:VCARD\r\nBEGIN:VCARD\r\nVERSION:2.1\r\nFN:Old\r\nEND:VCARD\r\n";
    let r = import("vcf", broken_vcf).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(count().await, 4, "nothing of the refused file");
    let r = import("xml", "x").send().await.unwrap();
    assert_eq!(r.status(), 400);

    let found: Value = s
        .admin("GET", "/orgs/shop/customers?q=ZOË")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["customers"].as_array().unwrap().len(), 1);
    let by_phone: Value = s
        .admin("GET", "/orgs/shop/customers?q=555%200101")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_phone["customers"][0]["name"], "Lee, Ann");

    let r = s
        .admin("GET", "/orgs/shop/customers/export.vcf")
        .send()
        .await
        .unwrap();
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/vcard"));
    let book = r.text().await.unwrap();
    assert_eq!(book.matches("BEGIN:VCARD").count(), 4);
    assert!(book.contains("Zoë Martin"));
    // The export imports back as the same four people.
    s.org("copy").await;
    let r = s
        .admin("POST", "/orgs/copy/customers/import?format=vcf")
        .body(book)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["created"], 4);
    s.stop().await;
}

#[tokio::test]
async fn the_page_is_self_contained_and_holds_no_secret() {
    let s = TestServer::start().await;
    let r = s.req("GET", "/admin/").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(!html.contains(ADMIN_TOKEN));
    for asset in ["/admin/assets/admin.js", "/admin/assets/admin.css"] {
        let r = s.req("GET", asset).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().await.unwrap();
        for external in ["https://", "http://", "//cdn"] {
            assert!(
                !html.contains(&format!("src=\"{external}"))
                    && !body.contains(&format!("@import url({external}")),
                "{asset} loads nothing from elsewhere"
            );
        }
    }
    let r = s.req("GET", "/admin").send().await.unwrap();
    assert_eq!(r.status(), 200, "redirected to /admin/");
    s.stop().await;
}

/// Every admin route the server answers, as (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/admin/session"),
    ("get", "/admin/session"),
    ("delete", "/admin/session"),
    ("get", "/admin/api/openapi.json"),
    ("get", "/admin/api/apps"),
    ("get", "/admin/api/qr.svg"),
    ("get", "/admin/api/orgs/check-slug"),
    ("post", "/admin/api/orgs"),
    ("get", "/admin/api/orgs"),
    ("get", "/admin/api/orgs/{org}"),
    ("post", "/admin/api/orgs/{org}/installations"),
    ("get", "/admin/api/orgs/{org}/installations"),
    ("get", "/admin/api/orgs/{org}/installations/{inst}"),
    ("delete", "/admin/api/orgs/{org}/installations/{inst}"),
    (
        "post",
        "/admin/api/orgs/{org}/installations/{inst}/actions/{name}",
    ),
    (
        "post",
        "/admin/api/orgs/{org}/installations/{inst}/actions/{name}/link",
    ),
    ("post", "/admin/api/orgs/{org}/customers"),
    ("get", "/admin/api/orgs/{org}/customers"),
    ("post", "/admin/api/orgs/{org}/customers/import"),
    ("get", "/admin/api/orgs/{org}/customers/export.vcf"),
    ("get", "/admin/api/orgs/{org}/customers/{id}"),
    ("patch", "/admin/api/orgs/{org}/customers/{id}"),
    ("delete", "/admin/api/orgs/{org}/customers/{id}"),
    ("post", "/admin/api/orgs/{org}/tokens"),
    ("get", "/admin/api/orgs/{org}/tokens"),
    ("delete", "/admin/api/orgs/{org}/tokens/{id}"),
    ("get", "/admin/api/orgs/{org}/installations/{inst}/requests"),
    ("post", "/admin/api/orgs/{org}/webhooks"),
    ("get", "/admin/api/orgs/{org}/webhooks"),
    ("delete", "/admin/api/orgs/{org}/webhooks/{id}"),
    ("post", "/admin/api/webhooks"),
    ("get", "/admin/api/webhooks"),
    ("delete", "/admin/api/webhooks/{id}"),
    ("post", "/admin/api/keys/rotate"),
    ("get", "/admin/api/audit"),
    ("get", "/admin/api/orgs/{org}/audit"),
];

#[tokio::test]
async fn the_openapi_document_lists_every_admin_route_and_each_is_served() {
    let s = TestServer::start().await;
    let doc: Value = s
        .req("GET", "/admin/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut listed: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // Each documented operation is routed: with placeholders filled in, none falls through to
    // the "no such admin endpoint" answer.
    for (m, p) in ROUTES {
        let path = p
            .replace("{org}", "o")
            .replace("{inst}", "i")
            .replace("{name}", "n")
            .replace("{id}", "c");
        let r = s.admin(&m.to_uppercase(), path.trim_start_matches("/admin/api"));
        let r = if path.starts_with("/admin/api") {
            r
        } else {
            s.req(&m.to_uppercase(), &path)
        };
        let body = r.send().await.unwrap().text().await.unwrap();
        assert!(
            !body.contains("no such admin endpoint"),
            "{m} {path} is documented but not routed"
        );
    }
    let unrouted = s.admin("GET", "/nope").send().await.unwrap();
    assert_eq!(unrouted.status(), 404);
    assert!(unrouted
        .text()
        .await
        .unwrap()
        .contains("no such admin endpoint"));
    // Every operation documents its responses.
    for (p, ops) in doc["paths"].as_object().unwrap() {
        for (m, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {p} has no responses"
            );
        }
    }
    s.stop().await;
}
