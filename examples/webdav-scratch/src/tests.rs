//! The app through its `handle` hook, with the SDK's in-memory ports.
use super::*;
use base64::Engine;
use portico_sdk::http::{Method, StatusCode};
use portico_sdk::testing::TestContext;

const DAV: &str = "DAV:";

/// One installed scratch area and a client for it.
struct Dav {
    t: TestContext,
    app: WebdavScratchApp,
    password: String,
    base: String,
}

impl Dav {
    async fn new() -> Self {
        let mut t = TestContext::new(KIND);
        let app = WebdavScratchApp::new();
        let out = app.install(&t.cx, InstallInput::default()).await.unwrap();
        let password = out.reveal["password"].as_str().unwrap().to_owned();
        t.set_installation(out.installation);
        let base = format!("/api/apps/acme/{}/", t.cx.installation.id);
        Dav {
            t,
            app,
            password,
            base,
        }
    }

    fn auth(&self) -> String {
        basic("acme", &self.password)
    }

    fn req(&self, method: &str, path: &str) -> AppRequest {
        AppRequest::new(
            Method::from_bytes(method.as_bytes()).unwrap(),
            &self.base,
            path,
        )
        .with_header("authorization", &self.auth())
        .with_header("host", "portico.test")
    }

    /// Sends a request, then refreshes the installation as the host does for the next one.
    async fn send(&mut self, req: AppRequest) -> AppResponse {
        let r = self.app.handle(&self.t.cx, req).await.unwrap();
        self.t.cx.installation = self.t.cx.installation_store.load().await.unwrap();
        r
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> AppResponse {
        let mut req = self.req(method, path).with_body(body.to_owned());
        for (k, v) in headers {
            req = req.with_header(k, v);
        }
        self.send(req).await
    }

    async fn status(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> u16 {
        self.call(method, path, headers, body).await.status.as_u16()
    }

    fn url(&self, path: &str) -> String {
        format!("http://portico.test{}{path}", self.base)
    }

    async fn get_body(&mut self, path: &str) -> Option<Vec<u8>> {
        let r = self.call("GET", path, &[], "").await;
        (r.status == StatusCode::OK).then(|| r.body.to_vec())
    }

    async fn usage(&self) -> Value {
        self.app.status(&self.t.cx).await.unwrap().details
    }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// (href, property "{ns}local", status code, text) for every property of a multistatus body.
fn props_of(body: &[u8]) -> Vec<(String, String, u16, String)> {
    let text = std::str::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(text).unwrap();
    let mut out = Vec::new();
    for resp in doc
        .descendants()
        .filter(|n| n.has_tag_name((DAV, "response")))
    {
        let href = resp
            .children()
            .find(|n| n.has_tag_name((DAV, "href")))
            .and_then(|n| n.text())
            .unwrap()
            .to_owned();
        for ps in resp
            .children()
            .filter(|n| n.has_tag_name((DAV, "propstat")))
        {
            let status: u16 = ps
                .children()
                .find(|n| n.has_tag_name((DAV, "status")))
                .and_then(|n| n.text())
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let prop = ps
                .children()
                .find(|n| n.has_tag_name((DAV, "prop")))
                .unwrap();
            for p in prop.children().filter(|n| n.is_element()) {
                let name = format!(
                    "{{{}}}{}",
                    p.tag_name().namespace().unwrap_or(""),
                    p.tag_name().name()
                );
                let text: String = p
                    .descendants()
                    .filter(|d| d.is_text())
                    .filter_map(|d| d.text())
                    .collect();
                out.push((href.clone(), name, status, text));
            }
        }
    }
    out
}

fn hrefs(body: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = props_of(body).into_iter().map(|p| p.0).collect();
    v.dedup();
    v
}

fn prop<'a>(
    all: &'a [(String, String, u16, String)],
    href: &str,
    name: &str,
) -> Option<(u16, &'a str)> {
    all.iter()
        .find(|p| p.0 == href && p.1 == name)
        .map(|p| (p.2, p.3.as_str()))
}

#[tokio::test]
async fn install_reveals_credentials_and_seals_the_password() {
    let d = Dav::new().await;
    let inst = &d.t.cx.installation;
    assert_eq!(inst.status, InstallationStatus::Connected);
    let account = inst.account.clone().unwrap();
    assert_eq!(account.username, "acme");
    assert_eq!(account.server_url, d.t.cx.base_url());
    assert_ne!(inst.data["password"], json!(d.password));
    assert!(d.password.len() >= 24);
    let s = d.usage().await;
    assert_eq!(s["resources"], 0);
    assert_eq!(s["bytes_used"], 0);
    let err = WebdavScratchApp::new()
        .install(
            &TestContext::new(KIND).cx,
            InstallInput {
                config: json!({"x": 1}),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, portico_sdk::ErrorKind::Unprocessable);
}

#[tokio::test]
async fn every_request_needs_basic_credentials() {
    let mut d = Dav::new().await;
    let bare = AppRequest::new(Method::OPTIONS, &d.base, "");
    let r = d.send(bare.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"Portico WebDAV scratch\", charset=\"UTF-8\""
    );
    let right = d.password.clone();
    for (user, pass) in [("acme", "wrong"), ("other", right.as_str()), ("", "")] {
        let r = d
            .send(
                bare.clone()
                    .with_header("authorization", &basic(user, pass)),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
    }
    let r = d
        .send(bare.clone().with_header("authorization", "Bearer x"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = d.call("OPTIONS", "", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["dav"], "1");
    assert!(r.headers["allow"].to_str().unwrap().contains("PROPPATCH"));
    assert_eq!(d.status("LOCK", "x", &[], "").await, 405);
    assert_eq!(d.status("POST", "", &[], "").await, 405);
}

#[tokio::test]
async fn put_get_head_delete() {
    let mut d = Dav::new().await;
    let r = d
        .call("PUT", "res", &[("content-type", "text/plain")], "hello")
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = d.call("GET", "res", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello");
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag);
    assert!(r.headers.contains_key("last-modified"));
    assert_eq!(d.status("HEAD", "res", &[], "").await, 200);
    assert_eq!(
        d.status("GET", "res", &[("if-none-match", &etag)], "")
            .await,
        304
    );

    // Arbitrary bytes, replaced in place: 204, new ETag, content type defaults.
    let bytes: Vec<u8> = (0..=255u8).collect();
    let r = d.send(d.req("PUT", "res").with_body(bytes.clone())).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let r = d.call("GET", "res", &[], "").await;
    assert_eq!(r.body.to_vec(), bytes);
    assert_eq!(r.headers["content-type"], "application/octet-stream");

    // Stale If-Match → 412; If-None-Match: * on an existing resource → 412.
    assert_eq!(
        d.status("PUT", "res", &[("if-match", &etag)], "x").await,
        412
    );
    assert_eq!(
        d.status("PUT", "res", &[("if-none-match", "*")], "x").await,
        412
    );
    assert_eq!(
        d.status("PUT", "res", &[("content-range", "bytes 0-0/1")], "x")
            .await,
        400
    );

    // A UTF-8 name.
    assert_eq!(d.status("PUT", "res-€", &[], "euro").await, 201);
    assert_eq!(d.get_body("res-€").await.unwrap(), b"euro");

    assert_eq!(d.status("DELETE", "res", &[], "").await, 204);
    assert_eq!(d.status("GET", "res", &[], "").await, 404);
    assert_eq!(d.status("DELETE", "res", &[], "").await, 404);
    assert_eq!(d.status("DELETE", "", &[], "").await, 403);
}

#[tokio::test]
async fn mkcol_and_recursive_delete() {
    let mut d = Dav::new().await;
    assert_eq!(d.status("MKCOL", "coll/", &[], "").await, 201);
    let again = d.call("MKCOL", "coll/", &[], "").await;
    assert_eq!(again.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(String::from_utf8_lossy(&again.body).contains("resource-must-be-null"));
    assert!(again.headers.contains_key("allow"));
    assert_eq!(d.status("MKCOL", "", &[], "").await, 405);
    assert_eq!(d.status("MKCOL", "nope/sub/", &[], "").await, 409);
    assert_eq!(d.status("PUT", "nope/file", &[], "x").await, 409);
    assert_eq!(d.status("MKCOL", "coll/b", &[], "<x/>").await, 415);
    assert_eq!(d.status("PUT", "coll", &[], "x").await, 405);
    assert_eq!(d.status("PUT", "coll/f", &[], "x").await, 201);
    assert_eq!(d.status("MKCOL", "coll/f", &[], "").await, 405);
    assert_eq!(d.status("PUT", "coll/f/g", &[], "x").await, 409);
    assert_eq!(d.status("MKCOL", "coll/sub", &[], "").await, 201);
    assert_eq!(d.status("PUT", "coll/sub/deep", &[], "x").await, 201);
    assert_eq!(d.status("PUT", "coll-sibling", &[], "x").await, 201);
    let r = d.call("GET", "coll/", &[], "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&r.body).contains("sub/\n"));
    assert_eq!(d.status("DELETE", "coll", &[("depth", "0")], "").await, 400);
    assert_eq!(d.status("DELETE", "coll/", &[], "").await, 204);
    assert_eq!(d.status("GET", "coll/sub/deep", &[], "").await, 404);
    assert_eq!(d.status("GET", "coll/f", &[], "").await, 404);
    assert_eq!(d.get_body("coll-sibling").await.unwrap(), b"x");
    assert_eq!(d.usage().await["resources"], 1);
}

#[tokio::test]
async fn copy_files_with_overwrite_and_errors() {
    let mut d = Dav::new().await;
    d.call("PUT", "src", &[("content-type", "text/x")], "one")
        .await;
    let dest = d.url("dst");
    assert_eq!(
        d.status("COPY", "src", &[("destination", &dest)], "").await,
        201
    );
    assert_eq!(d.get_body("dst").await.unwrap(), b"one");
    assert_eq!(d.get_body("src").await.unwrap(), b"one");
    d.call("PUT", "src", &[], "two").await;
    assert_eq!(
        d.status(
            "COPY",
            "src",
            &[("destination", &dest), ("overwrite", "F")],
            ""
        )
        .await,
        412
    );
    assert_eq!(d.get_body("dst").await.unwrap(), b"one");
    assert_eq!(
        d.status(
            "COPY",
            "src",
            &[("destination", &dest), ("overwrite", "T")],
            ""
        )
        .await,
        204
    );
    assert_eq!(d.get_body("dst").await.unwrap(), b"two");
    // A path works as well as a URL; a missing parent is 409; the same resource 403.
    let path_dest = format!("{}copy2", d.base);
    assert_eq!(
        d.status("COPY", "src", &[("destination", &path_dest)], "")
            .await,
        201
    );
    let no_parent = d.url("nope/x");
    assert_eq!(
        d.status("COPY", "src", &[("destination", &no_parent)], "")
            .await,
        409
    );
    let same = d.url("src");
    assert_eq!(
        d.status("COPY", "src", &[("destination", &same)], "").await,
        403
    );
    assert_eq!(d.status("COPY", "src", &[], "").await, 400);
    assert_eq!(
        d.status("COPY", "missing", &[("destination", &dest)], "")
            .await,
        404
    );
    assert_eq!(
        d.status(
            "COPY",
            "src",
            &[("destination", &dest), ("overwrite", "maybe")],
            ""
        )
        .await,
        400
    );
    // Outside the installation, or on another server: 502.
    for outside in [
        "http://portico.test/api/apps/acme/other/x".to_owned(),
        "/elsewhere/x".to_owned(),
        format!("http://evil.example{}x", d.base),
    ] {
        assert_eq!(
            d.status("COPY", "src", &[("destination", &outside)], "")
                .await,
            502,
            "{outside}"
        );
    }
    assert_eq!(
        d.status("COPY", "src", &[("destination", "not a url")], "")
            .await,
        400
    );
}

#[tokio::test]
async fn copy_and_move_collections() {
    let mut d = Dav::new().await;
    d.status("MKCOL", "c", &[], "").await;
    d.status("PUT", "c/a", &[], "A").await;
    d.status("MKCOL", "c/sub", &[], "").await;
    d.status("PUT", "c/sub/b", &[], "B").await;
    let dest = d.url("deep/");
    assert_eq!(
        d.status("COPY", "c/", &[("destination", &dest)], "").await,
        201
    );
    assert_eq!(d.get_body("deep/sub/b").await.unwrap(), b"B");
    let shallow = d.url("shallow/");
    assert_eq!(
        d.status(
            "COPY",
            "c/",
            &[("destination", &shallow), ("depth", "0")],
            ""
        )
        .await,
        201
    );
    assert_eq!(d.status("GET", "shallow/", &[], "").await, 200);
    assert_eq!(d.status("GET", "shallow/a", &[], "").await, 404);
    assert_eq!(
        d.status(
            "COPY",
            "c/",
            &[("destination", &shallow), ("depth", "1")],
            ""
        )
        .await,
        400
    );
    let inside = d.url("c/sub/again/");
    assert_eq!(
        d.status("COPY", "c/", &[("destination", &inside)], "")
            .await,
        403
    );

    // MOVE onto an existing collection replaces it whole.
    let r = d.call("MOVE", "c/", &[("destination", &dest)], "").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(d.status("GET", "c/a", &[], "").await, 404);
    assert_eq!(d.status("GET", "c/", &[], "").await, 404);
    assert_eq!(d.get_body("deep/a").await.unwrap(), b"A");
    assert_eq!(
        d.status(
            "MOVE",
            "deep/",
            &[("destination", &shallow), ("depth", "0")],
            ""
        )
        .await,
        400
    );
    assert_eq!(
        d.status(
            "MOVE",
            "deep/",
            &[("destination", &shallow), ("overwrite", "F")],
            ""
        )
        .await,
        412
    );
    let fresh = d.url("fresh");
    assert_eq!(
        d.status("MOVE", "deep/sub/b", &[("destination", &fresh)], "")
            .await,
        201
    );
    assert_eq!(d.get_body("fresh").await.unwrap(), b"B");
    assert_eq!(d.status("GET", "deep/sub/b", &[], "").await, 404);
    let base = d.url("");
    assert_eq!(
        d.status("MOVE", "fresh", &[("destination", &base)], "")
            .await,
        403
    );
}

const SET_PROPS: &str = r#"<?xml version="1.0"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:Z="http://example.com/ns">
  <D:set><D:prop><Z:color>red</Z:color><Z:nested><Z:a x="1">é &amp; <Z:b/></Z:a></Z:nested><plain xmlns="">p</plain></D:prop></D:set>
</D:propertyupdate>"#;

#[tokio::test]
async fn proppatch_and_propfind_dead_properties() {
    let mut d = Dav::new().await;
    d.status("MKCOL", "c", &[], "").await;
    d.status("PUT", "c/f", &[("content-type", "text/plain")], "12345")
        .await;
    let r = d.call("PROPPATCH", "c/f", &[], SET_PROPS).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    let ps = props_of(&r.body);
    assert!(ps.iter().all(|p| p.2 == 200), "{ps:?}");
    assert_eq!(ps.len(), 3);

    let find = r#"<propfind xmlns="DAV:"><prop><getcontentlength/><getetag/><resourcetype/><color xmlns="http://example.com/ns"/><missing xmlns="http://example.com/ns"/><plain xmlns=""/></prop></propfind>"#;
    let r = d.call("PROPFIND", "c/f", &[("depth", "0")], find).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    let ps = props_of(&r.body);
    let href = format!("{}c/f", d.base);
    assert_eq!(prop(&ps, &href, "{DAV:}getcontentlength"), Some((200, "5")));
    assert_eq!(
        prop(&ps, &href, "{http://example.com/ns}color"),
        Some((200, "red"))
    );
    assert_eq!(prop(&ps, &href, "{}plain"), Some((200, "p")));
    assert_eq!(
        prop(&ps, &href, "{http://example.com/ns}missing"),
        Some((404, ""))
    );
    // The nested value comes back with its structure and names, whatever the prefixes.
    let all = d.call("PROPFIND", "c/f", &[("depth", "0")], "").await;
    let text = String::from_utf8(all.body.to_vec()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let nested = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://example.com/ns", "nested")))
        .unwrap();
    let a = nested.first_element_child().unwrap();
    assert!(a.has_tag_name(("http://example.com/ns", "a")));
    assert_eq!(a.attribute("x"), Some("1"));
    assert_eq!(a.text(), Some("é & "));
    assert!(a
        .first_element_child()
        .unwrap()
        .has_tag_name(("http://example.com/ns", "b")));
    assert!(text.contains("getlastmodified") && text.contains("creationdate"));

    // propname: names only, live and dead.
    let r = d
        .call(
            "PROPFIND",
            "c/f",
            &[("depth", "0")],
            r#"<propfind xmlns="DAV:"><propname/></propfind>"#,
        )
        .await;
    let names: Vec<String> = props_of(&r.body).into_iter().map(|p| p.1).collect();
    for n in [
        "{DAV:}getetag",
        "{DAV:}resourcetype",
        "{http://example.com/ns}color",
        "{}plain",
    ] {
        assert!(names.contains(&n.to_owned()), "{n} in {names:?}");
    }

    // Protected property: 403 for it, 424 for the rest, nothing applied.
    let mixed = r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getetag>x</D:getetag><Z:color xmlns:Z="http://example.com/ns">blue</Z:color></D:prop></D:set></D:propertyupdate>"#;
    let r = d.call("PROPPATCH", "c/f", &[], mixed).await;
    let ps = props_of(&r.body);
    assert_eq!(prop(&ps, &href, "{DAV:}getetag").unwrap().0, 403);
    assert_eq!(
        prop(&ps, &href, "{http://example.com/ns}color").unwrap().0,
        424
    );
    assert!(String::from_utf8_lossy(&r.body).contains("cannot-modify-protected-property"));

    // Remove; then it is 404.
    let remove = r#"<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><Z:color xmlns:Z="http://example.com/ns"/></D:prop></D:remove></D:propertyupdate>"#;
    assert_eq!(d.status("PROPPATCH", "c/f", &[], remove).await, 207);
    let r = d.call("PROPFIND", "c/f", &[("depth", "0")], find).await;
    assert_eq!(
        prop(&props_of(&r.body), &href, "{http://example.com/ns}color"),
        Some((404, ""))
    );

    // Dead properties travel with COPY and MOVE.
    let copy = d.url("c/g");
    assert_eq!(
        d.status("COPY", "c/f", &[("destination", &copy)], "").await,
        201
    );
    let moved = d.url("moved/");
    assert_eq!(
        d.status("MOVE", "c/", &[("destination", &moved)], "").await,
        201
    );
    let r = d.call("PROPFIND", "moved/g", &[("depth", "0")], find).await;
    let href_g = format!("{}moved/g", d.base);
    assert_eq!(
        prop(&props_of(&r.body), &href_g, "{}plain"),
        Some((200, "p"))
    );

    // Errors: malformed XML 400, missing resource 404, bad Depth 400.
    assert_eq!(d.status("PROPFIND", "moved/", &[], "<propfind").await, 400);
    assert_eq!(d.status("PROPPATCH", "moved/g", &[], "<x").await, 400);
    assert_eq!(d.status("PROPPATCH", "nope", &[], SET_PROPS).await, 404);
    assert_eq!(d.status("PROPFIND", "nope", &[], "").await, 404);
    assert_eq!(
        d.status("PROPFIND", "moved/", &[("depth", "2")], "").await,
        400
    );
}

#[tokio::test]
async fn propfind_depths_and_hrefs() {
    let mut d = Dav::new().await;
    d.status("MKCOL", "a b", &[], "").await;
    d.status("PUT", "a b/é", &[], "x").await;
    d.status("MKCOL", "a b/sub", &[], "").await;
    d.status("PUT", "a b/sub/z", &[], "x").await;
    let body = r#"<propfind xmlns="DAV:"><prop><resourcetype/></prop></propfind>"#;
    let r = d.call("PROPFIND", "a b/", &[("depth", "0")], body).await;
    assert_eq!(hrefs(&r.body), [format!("{}a%20b/", d.base)]);
    let r = d.call("PROPFIND", "a b/", &[("depth", "1")], body).await;
    assert_eq!(
        hrefs(&r.body),
        [
            format!("{}a%20b/", d.base),
            format!("{}a%20b/sub/", d.base),
            format!("{}a%20b/%C3%A9", d.base),
        ]
    );
    let r = d.call("PROPFIND", "", &[], body).await;
    assert_eq!(hrefs(&r.body).len(), 5, "infinity by default");
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.contains("<d:resourcetype><d:collection/></d:resourcetype>"));
}

#[tokio::test]
async fn if_header_and_lock_tokens() {
    let mut d = Dav::new().await;
    let etag = d.call("PUT", "f", &[], "x").await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    // No lock is ever granted: a submitted lock token does not match, the write fails.
    assert_eq!(
        d.status("PUT", "f", &[("if", "(<opaquelocktoken:abc>)")], "y")
            .await,
        412
    );
    assert_eq!(d.get_body("f").await.unwrap(), b"x");
    assert_eq!(
        d.status("PUT", "f", &[("if", "(<DAV:no-lock>)")], "y")
            .await,
        412
    );
    assert_eq!(
        d.status("PUT", "f", &[("if", "(Not <urn:x>)")], "y").await,
        204
    );
    let cond = format!("([{etag}])");
    assert_eq!(d.status("PUT", "f", &[("if", &cond)], "y").await, 412);
    let now = d.call("GET", "f", &[], "").await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let cond = format!("(<urn:nope>) ([{now}])");
    assert_eq!(d.status("DELETE", "f", &[("if", &cond)], "").await, 204);
    d.call("PUT", "g", &[], "x").await;
    let tagged = format!("<{}> (<opaquelocktoken:x>)", d.url("g"));
    assert_eq!(d.status("DELETE", "g", &[("if", &tagged)], "").await, 412);
    assert_eq!(d.status("DELETE", "g", &[("if", "(bad)")], "").await, 400);
    assert_eq!(d.status("DELETE", "g", &[("if", "()")], "").await, 400);
    assert_eq!(d.status("DELETE", "g", &[], "").await, 204);
}

#[tokio::test]
async fn limits_answer_507() {
    let mut d = Dav::new().await;
    for i in 0..MAX_RESOURCES {
        assert_eq!(d.status("PUT", &format!("r{i}"), &[], "").await, 201);
    }
    assert_eq!(d.status("PUT", "one-more", &[], "").await, 507);
    assert_eq!(d.status("MKCOL", "one-more", &[], "").await, 507);
    let dest = d.url("copy");
    assert_eq!(
        d.status("COPY", "r0", &[("destination", &dest)], "").await,
        507
    );
    // Replacing an existing resource is still fine; so is deleting.
    assert_eq!(d.status("PUT", "r0", &[], "again").await, 204);
    assert_eq!(d.status("DELETE", "r1", &[], "").await, 204);
    assert_eq!(d.usage().await["resources"], MAX_RESOURCES - 1);

    // Bytes: one body may not exceed the total, nor push past it.
    let mut d = Dav::new().await;
    let big = vec![b'x'; MAX_BYTES as usize + 1];
    let r = d.send(d.req("PUT", "big").with_body(big)).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    let half = vec![b'x'; MAX_BYTES as usize / 2 + 1];
    let r = d.send(d.req("PUT", "h1").with_body(half.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = d.send(d.req("PUT", "h2").with_body(half)).await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(d.usage().await["bytes_used"], MAX_BYTES / 2 + 1);

    // A dead property value over its own limit.
    let value = "v".repeat(MAX_PROP_VALUE + 1);
    let patch = format!(
        r#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><Z:big xmlns:Z="urn:z">{value}</Z:big><Z:small xmlns:Z="urn:z">s</Z:small></D:prop></D:set></D:propertyupdate>"#
    );
    let r = d.call("PROPPATCH", "h1", &[], &patch).await;
    let ps = props_of(&r.body);
    let href = format!("{}h1", d.base);
    assert_eq!(prop(&ps, &href, "{urn:z}big").unwrap().0, 507);
    assert_eq!(prop(&ps, &href, "{urn:z}small").unwrap().0, 424);
}

#[tokio::test]
async fn a_write_from_another_process_is_reloaded_and_both_kept() {
    let mut d = Dav::new().await;
    let stale = d.t.cx.clone();
    assert_eq!(d.status("PUT", "a", &[], "1").await, 201);
    // Another process (another app instance) still holds the old revision: its save conflicts,
    // it reads the record again and retries, and both writes are kept.
    let other = WebdavScratchApp::new();
    let r = other
        .handle(&stale, d.req("PUT", "b").with_body("2"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::CREATED);
    d.t.cx.installation = d.t.cx.installation_store.load().await.unwrap();
    assert_eq!(d.get_body("a").await.unwrap(), b"1");
    assert_eq!(d.get_body("b").await.unwrap(), b"2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_in_one_process_all_land() {
    let d = Dav::new().await;
    let app = std::sync::Arc::new(d.app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        // Every request carries the record as resolved before any of them ran.
        let (app, cx) = (app.clone(), d.t.cx.clone());
        let req = AppRequest::new(Method::PUT, &d.base, &format!("f{i}"))
            .with_header("authorization", &basic("acme", &d.password))
            .with_body(format!("{i}"));
        tasks.spawn(async move { app.handle(&cx, req).await.unwrap().status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::CREATED);
    }
    let inst = d.t.cx.installation_store.load().await.unwrap();
    assert_eq!(
        tree::Tree::from_data(&inst.data).unwrap().usage().resources,
        32
    );
}

#[tokio::test]
async fn actions_clear_and_regenerate_password() {
    let mut d = Dav::new().await;
    d.status("PUT", "a", &[], "1").await;
    let out = d.app.action(&d.t.cx, "clear", json!({})).await.unwrap();
    assert_eq!(out.result["removed"], 1);
    d.t.set_installation(out.installation.unwrap());
    assert_eq!(d.status("GET", "a", &[], "").await, 404);

    let old = d.password.clone();
    let out = d
        .app
        .action(&d.t.cx, "regenerate-password", json!({}))
        .await
        .unwrap();
    let mut inst = out.installation.unwrap();
    inst.revision += 1; // as the host's save would
    d.t.set_installation(inst);
    d.password = out.result["password"].as_str().unwrap().to_owned();
    assert_ne!(d.password, old);
    assert_eq!(d.status("OPTIONS", "", &[], "").await, 200);
    let r = d
        .send(
            AppRequest::new(Method::OPTIONS, &d.base, "")
                .with_header("authorization", &basic("acme", &old)),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(d.app.action(&d.t.cx, "nope", json!({})).await.is_err());
}

#[test]
fn dates() {
    assert_eq!(props::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(props::rfc3339(1_767_225_600_000), "2026-01-01T00:00:00Z");
    assert_eq!(
        props::rfc3339(951_782_400_000 + 3_723_000),
        "2000-02-29T01:02:03Z"
    );
    assert_eq!(props::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

#[test]
fn if_header_grammar() {
    use conditions::{parse_if, Condition};
    let l = parse_if("<http://h/a> (<urn:t> [\"e\"]) (Not <DAV:no-lock>)").unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[1].tag.as_deref(), Some("http://h/a"));
    assert_eq!(
        l[0].conditions,
        vec![
            Condition::StateToken(false, "urn:t".into()),
            Condition::ETag(false, "\"e\"".into())
        ]
    );
    assert_eq!(
        l[1].conditions,
        vec![Condition::StateToken(true, "DAV:no-lock".into())]
    );
    for bad in ["", "(", "()", "(x)", "<a>", "(<a>) <b> (<c>)", "(<a"] {
        assert!(parse_if(bad).is_none(), "{bad}");
    }
}
