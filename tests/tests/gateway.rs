//! The gateway over a real socket, with the example app.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::{base_path, text, TestServer};
use serde_json::Value;

async fn hello(s: &TestServer, org: &str) -> (String, String) {
    s.org(org).await;
    let inst = s.install(org, "hello").await;
    (
        base_path(&inst),
        inst["reveal"]["token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn every_method_reaches_the_app_intact() {
    let s = TestServer::start().await;
    let (base, token) = hello(&s, "acme").await;
    for method in [
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "PROPFIND",
        "PROPPATCH",
        "REPORT",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "FROBNICATE",
    ] {
        let r = s
            .req(
                method,
                &format!("{base}addressbook/a%2Fb/x%20y.vcf?q=1&r=%20"),
            )
            .bearer_auth(&token)
            .header("Depth", "1")
            .header("If-Match", "\"e1\"")
            .body("<x/>")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["method"], method);
        assert_eq!(
            v["segments"],
            serde_json::json!(["addressbook", "a/b", "x y.vcf"])
        );
        assert_eq!(v["query"], "q=1&r=%20");
        assert_eq!(v["headers"]["depth"], "1");
        assert_eq!(v["headers"]["if-match"], "\"e1\"");
        assert_eq!(v["body_length"], 4);
        assert_eq!(v["base_path"], base.as_str());
    }
    s.stop().await;
}

#[tokio::test]
async fn preflight_needs_no_credentials() {
    let s = TestServer::start().await;
    let (base, _) = hello(&s, "acme").await;
    let r = s
        .req("OPTIONS", &base)
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "PROPFIND")
        .header("Access-Control-Request-Headers", "authorization, depth")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for m in [
        "PROPFIND",
        "REPORT",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
    ] {
        assert!(methods.contains(m), "{m} allowed");
    }
    let headers = h["access-control-allow-headers"].to_str().unwrap();
    for x in [
        "Authorization",
        "Depth",
        "If-Match",
        "If-None-Match",
        "Prefer",
        "Brief",
        "Overwrite",
        "Destination",
        "Content-Type",
    ] {
        assert!(headers.contains(x), "{x} allowed");
    }
    // A real request from a browser gets the exposed headers too.
    let r = s
        .req("GET", &base)
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the app still demands its token");
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("ETag"));
    s.stop().await;
}

#[tokio::test]
async fn another_orgs_installation_is_a_plain_404() {
    let s = TestServer::start().await;
    let (base_a, token_a) = hello(&s, "alpha").await;
    s.org("beta").await;
    let inst_a = base_a
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let foreign = s
        .req("GET", &format!("/api/apps/beta/{inst_a}/"))
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    let missing = s
        .req("GET", "/api/apps/beta/0123456789abcdef/")
        .bearer_auth(&token_a)
        .send()
        .await
        .unwrap();
    let no_org = s
        .req("GET", &format!("/api/apps/nobody/{inst_a}/"))
        .send()
        .await
        .unwrap();
    let malformed = s
        .req("GET", "/api/apps/beta/bad%20id/")
        .send()
        .await
        .unwrap();
    let (s1, b1) = text(foreign).await;
    let (s2, b2) = text(missing).await;
    let (s3, b3) = text(no_org).await;
    let (s4, b4) = text(malformed).await;
    assert_eq!((s1, s2, s3, s4), (404, 404, 404, 404));
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);
    assert_eq!(b1, b4);
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_the_app() {
    let s = TestServer::start_with(|c| c.server.body_limit = 1024).await;
    let (base, token) = hello(&s, "acme").await;
    let ok = s
        .req("PUT", &base)
        .bearer_auth(&token)
        .body(vec![b'a'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let r = s
        .req("PUT", &base)
        .bearer_auth(&token)
        .body(vec![b'a'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        413,
        "with a valid token the app would have answered 200"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
    // Chunked, without Content-Length.
    let stream = futures_util::stream::iter(
        [vec![b'a'; 800], vec![b'b'; 800]]
            .into_iter()
            .map(Ok::<_, std::io::Error>),
    );
    let r = s
        .req("PUT", &base)
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    s.stop().await;
}

#[tokio::test]
async fn dot_segments_never_escape() {
    let s = TestServer::start().await;
    let (base, token) = hello(&s, "acme").await;
    let auth = format!("Bearer {token}");
    assert_eq!(
        s.raw_status("GET", &format!("{base}x/y"), &[("Authorization", &auth)])
            .await,
        200
    );
    for p in [
        "x/../y",
        "x/%2e%2e/y",
        "x/%2E%2e/%2e%2e/z",
        "a/%c0%ae%c0%ae/b",
    ] {
        let status = s
            .raw_status("GET", &format!("{base}{p}"), &[("Authorization", &auth)])
            .await;
        assert_eq!(status, 400, "{p}");
    }
    s.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let s = TestServer::start().await;
    assert_eq!(s.req("GET", "/healthz").send().await.unwrap().status(), 200);
    let r = s.req("GET", "/readyz").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ready"], true);
    s.stop().await;
}
