//! Brute-force limits over real sockets: lockout per installation and client address, growing
//! Retry-After, the owner on another address unaffected, success resets; the admin token too.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::{base_path, TestServer, ADMIN_TOKEN};
use std::net::{IpAddr, Ipv4Addr};

fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn failed_basic_auth_locks_out_one_address_only() {
    let s = TestServer::start().await;
    s.org("acme").await;
    let inst = s.install("acme", "carddav").await;
    let url = format!("{}{}", s.url, base_path(&inst));
    let password = inst["reveal"]["password"].as_str().unwrap();
    let propfind = reqwest::Method::from_bytes(b"PROPFIND").unwrap();
    let attacker = client_from(2);
    let owner = client_from(3);

    let mut statuses = vec![];
    for _ in 0..portico_host::limits::THRESHOLD {
        let r = attacker
            .request(propfind.clone(), &url)
            .basic_auth("acme", Some("guess"))
            .header("Depth", "0")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let r = attacker
        .request(propfind.clone(), &url)
        .basic_auth("acme", Some("guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let first: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first >= 1);
    // Even the right password is refused from the locked address while locked.
    let r = attacker
        .request(propfind.clone(), &url)
        .basic_auth("acme", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The owner on another address is not locked out.
    let r = owner
        .request(propfind.clone(), &url)
        .basic_auth("acme", Some(password))
        .header("Depth", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 207);
    // Requests without credentials (a client's first, unauthenticated try) never count.
    for _ in 0..(portico_host::limits::THRESHOLD + 2) {
        let r = owner.request(propfind.clone(), &url).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    s.stop().await;
}

#[tokio::test]
async fn failed_admin_tokens_lock_out_the_address() {
    let s = TestServer::start().await;
    let attacker = client_from(4);
    let other = client_from(5);
    let url = format!("{}/admin/api/orgs", s.url);
    for _ in 0..portico_host::limits::THRESHOLD {
        assert_eq!(
            attacker
                .get(&url)
                .bearer_auth("nope")
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
    }
    let r = attacker
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        other
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn a_success_resets_the_counter() {
    let s = TestServer::start().await;
    let c = client_from(6);
    let url = format!("{}/admin/api/orgs", s.url);
    for _ in 0..3 {
        for _ in 0..(portico_host::limits::THRESHOLD - 1) {
            assert_eq!(
                c.get(&url)
                    .bearer_auth("nope")
                    .send()
                    .await
                    .unwrap()
                    .status(),
                401
            );
        }
        assert_eq!(
            c.get(&url)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    s.stop().await;
}
