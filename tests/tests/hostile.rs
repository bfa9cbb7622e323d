//! Hostile input over a real socket (issue 9): oversized and slow HTTP, hostile XML, hostile
//! vCards and path tricks. Each gets a 4xx (or the connection is closed), changes nothing, and
//! the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure
use portico_tests::carddav::Book;
use portico_tests::TestServer;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and reads until the server closes or `limit` passes; returns the status
/// code of the first response (0 if none) and whether the server closed the connection.
async fn raw(addr: &str, bytes: &[u8], limit: Duration) -> (u16, bool) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    // A server that refuses early may close while we still write: that is an answer too.
    let _ = sock.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + limit;
    let mut closed = false;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => {
                if !out.is_empty() {
                    break;
                }
            }
        }
    }
    let status = String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, closed)
}

async fn healthy(s: &TestServer) {
    let r = s.req("GET", "/healthz").send().await.unwrap();
    assert_eq!(r.status(), 200, "the server still serves");
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let s = TestServer::start().await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..300 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let (status, _) = raw(&addr, many.as_bytes(), Duration::from_secs(5)).await;
    assert!(matches!(status, 400 | 431), "300 headers: {status}");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let (status, _) = raw(&addr, huge.as_bytes(), Duration::from_secs(5)).await;
    assert!(matches!(status, 0 | 400 | 431), "200 kB header: {status}");
    healthy(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let s = TestServer::start_with(|c| {
        c.server.request_head_timeout_ms = 500;
        c.server.body_timeout_secs = 1;
    })
    .await;
    let book = Book::install(&s, "acme").await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    // Slowloris: a head that never ends.
    let started = Instant::now();
    let mut sock = TcpStream::connect(&addr).await.unwrap();
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if sock
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(1), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => {
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(head.contains(" 408 "), "{head}");
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(
        closed,
        "a head trickled over {:?} was not cut off",
        started.elapsed()
    );
    // A body that never completes.
    let put = format!(
        "PUT {} HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: text/vcard\r\nContent-Length: 1000\r\n\r\nBEGIN:VCARD\r\n",
        book.card("slow.vcf"),
        book.authorization()
    );
    let (status, _) = raw(&addr, put.as_bytes(), Duration::from_secs(8)).await;
    assert_eq!(status, 408, "a trickled body");
    let gone = book
        .req("GET", &book.card("slow.vcf"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404, "nothing was written");
    healthy(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_xml_is_refused_in_bounded_memory() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let deep = format!(
        "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\">{}{}</propfind>",
        "<prop>".repeat(50_000),
        "</prop>".repeat(50_000)
    );
    let many = format!(
        "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop>{}</prop></propfind>",
        "<getetag/>".repeat(300_000)
    );
    let attr = format!(
        "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\" a=\"{}\"><prop><getetag/></prop></propfind>",
        "x".repeat(5_000_000)
    );
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><propfind xmlns=\"DAV:\"><prop>&lol2;</prop></propfind>".to_owned();
    let not_utf8 =
        b"<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><prop>\xff\xfe</prop></propfind>"
            .to_vec();
    for (name, body) in [
        ("deep", deep.into_bytes()),
        ("many", many.into_bytes()),
        ("attribute", attr.into_bytes()),
        ("billion laughs", laughs.into_bytes()),
        ("not UTF-8", not_utf8),
    ] {
        for method in ["PROPFIND", "REPORT", "PROPPATCH"] {
            let r = book
                .req(method, &book.book())
                .header("Depth", "0")
                .header("content-type", "application/xml")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!((400..500).contains(&status), "{name} {method}: {status}");
        }
    }
    healthy(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn hostile_vcards_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let book = Book::install(&s, "acme").await;
    let wrap = |inner: &str| {
        format!("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:h\r\nFN:H\r\n{inner}END:VCARD\r\n")
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "one enormous line",
            wrap(&format!("NOTE:{}\r\n", "a".repeat(3_000_000))).into_bytes(),
        ),
        (
            "a million properties",
            wrap(&"X-A:b\r\n".repeat(1_000_000)).into_bytes(),
        ),
        (
            "a line folded 300,000 times",
            wrap(&format!("NOTE:a{}\r\n", "\r\n b".repeat(300_000))).into_bytes(),
        ),
        ("invalid UTF-8", {
            let mut v = wrap("NOTE:").into_bytes();
            v.splice(v.len() - 11..v.len() - 11, [0xff, 0xfe, b'\r', b'\n']);
            v
        }),
        ("a NUL byte", wrap("NOTE:a\0b\r\n").into_bytes()),
        (
            "no end",
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:h\r\nFN:H\r\n".to_vec(),
        ),
    ];
    for (name, body) in cases {
        let r = book
            .req("PUT", &book.card("h.vcf"))
            .header("content-type", "text/vcard")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "{name}: {status}");
        let after = book.req("GET", &book.card("h.vcf")).send().await.unwrap();
        assert_eq!(after.status(), 404, "{name} stored nothing");
    }
    healthy(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn path_tricks_never_reach_another_resource_or_organization() {
    let s = TestServer::start().await;
    let mine = Book::install(&s, "mine").await;
    let theirs = Book::install(&s, "theirs").await;
    let auth = mine.authorization();
    let their_book = theirs.book();
    let their_inst = their_book
        .trim_start_matches("/api/apps/theirs/")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let base = mine.base.clone();
    let tricks = [
        format!("{base}..%2F..%2Ftheirs%2F{their_inst}%2Faddressbook%2Fcustomers%2F"),
        format!("{base}%2e%2e/%2e%2e/theirs/{their_inst}/addressbook/customers/"),
        format!("{base}%252e%252e/%252e%252e/theirs/{their_inst}/"),
        format!("{base}%c0%ae%c0%ae/%c0%ae%c0%ae/theirs/{their_inst}/"),
        format!("{base}addressbook%2fcustomers%2f"),
        format!(
            "/api/apps/mine/{}/../../theirs/{their_inst}/addressbook/customers/",
            mine.installation
        ),
    ];
    for path in &tricks {
        let status = s
            .raw_status(
                "PROPFIND",
                path,
                &[("Authorization", &auth), ("Depth", "1")],
            )
            .await;
        assert!(
            (400..500).contains(&status),
            "{path}: {status} (must not be served)"
        );
    }
    healthy(&s).await;
    s.stop().await;
}
