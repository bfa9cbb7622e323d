//! CardDAV test support: an installed address book reached over a real socket with its Basic
//! credentials, request helpers, admin shortcuts, and multistatus / `DAV:error` parsing by
//! namespace URI (never by prefix).
use crate::TestServer;
use base64::Engine;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use std::time::Duration;

/// The WebDAV namespace.
pub const DAV: &str = "DAV:";
/// The CardDAV namespace (RFC 6352).
pub const CARD: &str = "urn:ietf:params:xml:ns:carddav";
/// The CalendarServer namespace (`getctag`).
pub const CS: &str = "http://calendarserver.org/ns/";

/// An expanded XML name: (namespace URI, local name).
pub type QName = (String, String);

/// An expanded name from borrowed parts.
pub fn qn(ns: &str, local: &str) -> QName {
    (ns.to_owned(), local.to_owned())
}

/// One organization's CardDAV installation as a client sees it.
#[derive(Clone)]
pub struct Book {
    /// A client that never follows redirects.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The organization id (= slug in these tests).
    pub org: String,
    /// The installation id.
    pub installation: String,
    /// The installation base path (`/api/apps/{org}/{installation}/`).
    pub base: String,
    /// Basic username.
    pub username: String,
    /// Basic password.
    pub password: String,
}

/// A client without redirect following, so 301/302 are visible.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Book {
    /// Creates the organization `org` and installs CardDAV for it.
    pub async fn install(s: &TestServer, org: &str) -> Book {
        s.org(org).await;
        let inst = s.install(org, "carddav").await;
        Book::from_install(s, org, &inst)
    }

    /// The book described by an install response.
    pub fn from_install(s: &TestServer, org: &str, inst: &Value) -> Book {
        let reveal = &inst["reveal"];
        let url = reveal["url"].as_str().expect("reveal.url");
        let at = url.find("/api/apps/").expect("gateway path in the URL");
        let base = url[at..].to_owned();
        assert!(base.ends_with('/'), "base URL ends with a slash: {base}");
        Book {
            http: no_redirect_client(),
            url: s.url.clone(),
            org: org.to_owned(),
            installation: inst["installation"]["id"]
                .as_str()
                .expect("installation.id")
                .to_owned(),
            base,
            username: reveal["username"].as_str().expect("username").to_owned(),
            password: reveal["password"].as_str().expect("password").to_owned(),
        }
    }

    /// The same book with other credentials.
    pub fn with_credentials(&self, username: &str, password: &str) -> Book {
        Book {
            username: username.to_owned(),
            password: password.to_owned(),
            ..self.clone()
        }
    }

    /// `base` + `rel`.
    pub fn path(&self, rel: &str) -> String {
        format!("{}{rel}", self.base)
    }
    /// The principal.
    pub fn principal(&self) -> String {
        self.path("principal/")
    }
    /// The address book home.
    pub fn home(&self) -> String {
        self.path("addressbook/")
    }
    /// The address book.
    pub fn book(&self) -> String {
        self.path("addressbook/customers/")
    }
    /// A card by file name (`x.vcf`).
    pub fn card(&self, file: &str) -> String {
        format!("{}{file}", self.book())
    }

    /// The `Authorization` header value for these credentials.
    pub fn authorization(&self) -> String {
        basic(&self.username, &self.password)
    }

    /// An unauthenticated request to an absolute path (or full URL).
    pub fn anon(&self, method: &str, path: &str) -> RequestBuilder {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.url)
        };
        self.http.request(m, url)
    }

    /// An authenticated request to an absolute path (or full URL).
    pub fn req(&self, method: &str, path: &str) -> RequestBuilder {
        self.anon(method, path)
            .header("authorization", self.authorization())
    }

    /// PROPFIND with a Depth and an XML body.
    pub async fn propfind(&self, path: &str, depth: &str, body: &str) -> Response {
        self.req("PROPFIND", path)
            .header("depth", depth)
            .header("content-type", "application/xml; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// PROPFIND that must answer 207; the parsed multistatus.
    pub async fn propfind_ms(&self, path: &str, depth: &str, body: &str) -> Multistatus {
        expect_multistatus(self.propfind(path, depth, body).await).await
    }

    /// PROPFIND of the given properties (`(ns, local)` pairs) with Depth.
    pub async fn props(&self, path: &str, depth: &str, names: &[(&str, &str)]) -> Multistatus {
        self.propfind_ms(path, depth, &propfind_body(names)).await
    }

    /// REPORT with an XML body.
    pub async fn report(&self, path: &str, body: &str) -> Response {
        self.req("REPORT", path)
            .header("depth", "1")
            .header("content-type", "application/xml; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// REPORT that must answer 207; the parsed multistatus.
    pub async fn report_ms(&self, path: &str, body: &str) -> Multistatus {
        expect_multistatus(self.report(path, body).await).await
    }

    /// `sync-collection` on the book asking for `getetag`, from `token` (`None`: initial).
    pub async fn sync(&self, token: Option<&str>, limit: Option<u32>) -> Multistatus {
        self.report_ms(&self.book(), &sync_body(token, limit)).await
    }

    /// The book's current `DAV:sync-token` (by PROPFIND).
    pub async fn sync_token(&self) -> String {
        let ms = self.props(&self.book(), "0", &[(DAV, "sync-token")]).await;
        ms.only()
            .prop(DAV, "sync-token")
            .expect("sync-token")
            .text
            .clone()
    }

    /// The book's `getctag`.
    pub async fn ctag(&self) -> String {
        let ms = self.props(&self.book(), "0", &[(CS, "getctag")]).await;
        ms.only().prop(CS, "getctag").expect("getctag").text.clone()
    }

    /// GET of a path.
    pub async fn get(&self, path: &str) -> Response {
        self.req("GET", path).send().await.unwrap()
    }

    /// GET of a card that must exist: (ETag, body).
    pub async fn get_card(&self, path: &str) -> (String, String) {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        let etag = header(&r, "etag").expect("ETag on GET");
        (etag, r.text().await.unwrap())
    }

    /// PUT of a card as `text/vcard` with extra headers.
    pub async fn put(&self, path: &str, card: &str, headers: &[(&str, &str)]) -> Response {
        let mut b = self
            .req("PUT", path)
            .header("content-type", "text/vcard; charset=utf-8")
            .body(card.to_owned());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.send().await.unwrap()
    }

    /// PUT that creates a card (`If-None-Match: *`), which must answer 201; the new ETag.
    pub async fn create_card(&self, file: &str, card: &str) -> String {
        let r = self
            .put(&self.card(file), card, &[("if-none-match", "*")])
            .await;
        let status = r.status();
        let etag = header(&r, "etag");
        let body = r.text().await.unwrap();
        assert_eq!(status, 201, "PUT {file}: {body}");
        etag.expect("ETag on 201")
    }
}

/// `Basic base64(user:pass)`.
pub fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// A header as text.
pub fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

/// Asserts a 207 and parses its body.
pub async fn expect_multistatus(r: Response) -> Multistatus {
    let status = r.status();
    let ct = header(&r, "content-type").unwrap_or_default();
    let body = r.text().await.unwrap();
    assert_eq!(status, 207, "expected a multistatus, got: {body}");
    assert!(
        ct.starts_with("application/xml") || ct.starts_with("text/xml"),
        "multistatus content type {ct}"
    );
    Multistatus::parse(&body)
}

/// Asserts `status` and a `DAV:error` body naming `(ns, local)`; returns the body.
pub async fn expect_error(r: Response, status: u16, ns: &str, local: &str) -> String {
    let got = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "status; body: {body}");
    let cond = error_condition(&body);
    assert_eq!(cond, qn(ns, local), "precondition in {body}");
    body
}

/// The first child element of a `DAV:error` document (asserting the root is `DAV:error`).
pub fn error_condition(body: &str) -> QName {
    let doc = roxmltree::Document::parse(body)
        .unwrap_or_else(|e| panic!("DAV:error body is not XML ({e}): {body}"));
    let root = doc.root_element();
    assert!(
        root.has_tag_name((DAV, "error")),
        "root is DAV:error: {body}"
    );
    let first = root
        .children()
        .find(|n| n.is_element())
        .expect("a condition element");
    name_of(first)
}

/// The `DAV:href` values inside the condition element of a `DAV:error` body.
pub fn error_hrefs(body: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(body).unwrap();
    doc.root_element()
        .descendants()
        .filter(|n| n.has_tag_name((DAV, "href")))
        .map(|n| n.text().unwrap_or("").trim().to_owned())
        .collect()
}

fn name_of(n: roxmltree::Node<'_, '_>) -> QName {
    qn(n.tag_name().namespace().unwrap_or(""), n.tag_name().name())
}

/// A `propfind` body asking for the named properties, with deliberately unusual prefixes.
pub fn propfind_body(names: &[(&str, &str)]) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<A:propfind xmlns:A=\"DAV:\"><A:prop>",
    );
    for (i, (ns, local)) in names.iter().enumerate() {
        out.push_str(&format!("<p{i}:{local} xmlns:p{i}=\"{ns}\"/>"));
    }
    out.push_str("</A:prop></A:propfind>");
    out
}

/// A `sync-collection` body asking for `getetag`.
pub fn sync_body(token: Option<&str>, limit: Option<u32>) -> String {
    let limit = limit
        .map(|n| format!("<D:limit><D:nresults>{n}</D:nresults></D:limit>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:sync-collection xmlns:D=\"DAV:\">\
<D:sync-token>{}</D:sync-token><D:sync-level>1</D:sync-level>{limit}\
<D:prop><D:getetag/></D:prop></D:sync-collection>",
        token.unwrap_or("")
    )
}

/// An `addressbook-multiget` body for `hrefs` asking for `getetag` and `address-data`
/// (with `address_data_attrs` inside the `address-data` start tag, e.g. `version="4.0"`).
pub fn multiget_body(hrefs: &[String], address_data_attrs: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<C:addressbook-multiget xmlns:D=\"DAV:\" \
xmlns:C=\"{CARD}\"><D:prop><D:getetag/><C:address-data {address_data_attrs}/></D:prop>"
    );
    for h in hrefs {
        out.push_str(&format!("<D:href>{}</D:href>", xml_escape(h)));
    }
    out.push_str("</C:addressbook-multiget>");
    out
}

/// Escapes text for XML content.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decodes `%XX` escapes of an href (panics on malformed input).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A `DAV:multistatus`, parsed.
#[derive(Debug, Clone)]
pub struct Multistatus {
    /// The `DAV:response` elements in order.
    pub responses: Vec<DavResponse>,
    /// The top-level `DAV:sync-token`, if any.
    pub sync_token: Option<String>,
    /// The raw body.
    pub body: String,
}

/// One `DAV:response`.
#[derive(Debug, Clone)]
pub struct DavResponse {
    /// The first `DAV:href`, as sent (percent-encoded).
    pub href: String,
    /// Every `DAV:href`.
    pub hrefs: Vec<String>,
    /// The response-level `DAV:status` code, if any.
    pub status: Option<u16>,
    /// The propstats.
    pub propstats: Vec<DavPropstat>,
    /// Children of a response-level `DAV:error`.
    pub error: Vec<QName>,
}

/// One `DAV:propstat`.
#[derive(Debug, Clone)]
pub struct DavPropstat {
    /// Its status code.
    pub status: u16,
    /// Its properties.
    pub props: Vec<Prop>,
    /// Children of its `DAV:error`.
    pub error: Vec<QName>,
}

/// One property inside a propstat.
#[derive(Debug, Clone)]
pub struct Prop {
    /// Namespace URI.
    pub ns: String,
    /// Local name.
    pub name: String,
    /// All text below the element (not trimmed).
    pub text: String,
    /// The element as it appears in the body.
    pub xml: String,
    /// Expanded names of every descendant element.
    pub elements: Vec<QName>,
    /// The text of every descendant `DAV:href`.
    pub hrefs: Vec<String>,
    /// Attributes of every descendant element: (element name, attribute local name, value).
    pub attributes: Vec<(QName, String, String)>,
}

impl Prop {
    /// True if a descendant element `{ns}local` exists.
    pub fn has(&self, ns: &str, local: &str) -> bool {
        self.elements.contains(&qn(ns, local))
    }
}

fn status_code(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {text:?}"))
}

fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .map(|d| d.text().unwrap_or(""))
        .collect()
}

fn error_children(parent: roxmltree::Node<'_, '_>) -> Vec<QName> {
    parent
        .children()
        .filter(|c| c.has_tag_name((DAV, "error")))
        .flat_map(|e| e.children().filter(|c| c.is_element()).map(name_of))
        .collect()
}

impl Multistatus {
    /// Parses a multistatus body (panics if it is not one).
    pub fn parse(body: &str) -> Multistatus {
        let doc = roxmltree::Document::parse(body)
            .unwrap_or_else(|e| panic!("multistatus is not XML ({e}): {body}"));
        let root = doc.root_element();
        assert!(
            root.has_tag_name((DAV, "multistatus")),
            "root is DAV:multistatus: {body}"
        );
        let mut responses = Vec::new();
        let mut sync_token = None;
        for child in root.children().filter(|c| c.is_element()) {
            if child.has_tag_name((DAV, "sync-token")) {
                sync_token = Some(text_of(child).trim().to_owned());
                continue;
            }
            if !child.has_tag_name((DAV, "response")) {
                continue;
            }
            let hrefs: Vec<String> = child
                .children()
                .filter(|c| c.has_tag_name((DAV, "href")))
                .map(|c| text_of(c).trim().to_owned())
                .collect();
            let status = child
                .children()
                .find(|c| c.has_tag_name((DAV, "status")))
                .map(|c| status_code(&text_of(c)));
            let mut propstats = Vec::new();
            for ps in child
                .children()
                .filter(|c| c.has_tag_name((DAV, "propstat")))
            {
                let status = ps
                    .children()
                    .find(|c| c.has_tag_name((DAV, "status")))
                    .map(|c| status_code(&text_of(c)))
                    .expect("propstat status");
                let mut props = Vec::new();
                for prop in ps.children().filter(|c| c.has_tag_name((DAV, "prop"))) {
                    for p in prop.children().filter(|c| c.is_element()) {
                        let descendants: Vec<_> =
                            p.descendants().skip(1).filter(|d| d.is_element()).collect();
                        props.push(Prop {
                            ns: p.tag_name().namespace().unwrap_or("").to_owned(),
                            name: p.tag_name().name().to_owned(),
                            text: text_of(p),
                            xml: body[p.range()].to_owned(),
                            elements: descendants.iter().map(|d| name_of(*d)).collect(),
                            hrefs: descendants
                                .iter()
                                .filter(|d| d.has_tag_name((DAV, "href")))
                                .map(|d| text_of(*d).trim().to_owned())
                                .collect(),
                            attributes: descendants
                                .iter()
                                .flat_map(|d| {
                                    d.attributes().map(|a| {
                                        (name_of(*d), a.name().to_owned(), a.value().to_owned())
                                    })
                                })
                                .collect(),
                        });
                    }
                }
                propstats.push(DavPropstat {
                    status,
                    props,
                    error: error_children(ps),
                });
            }
            responses.push(DavResponse {
                href: hrefs.first().cloned().expect("response href"),
                hrefs,
                status,
                propstats,
                error: error_children(child),
            });
        }
        Multistatus {
            responses,
            sync_token,
            body: body.to_owned(),
        }
    }

    /// The only response (asserting there is exactly one).
    pub fn only(&self) -> &DavResponse {
        assert_eq!(self.responses.len(), 1, "one response in {}", self.body);
        &self.responses[0]
    }

    /// The response whose decoded href equals the decoded `path`.
    pub fn find(&self, path: &str) -> Option<&DavResponse> {
        let want = percent_decode(path);
        self.responses
            .iter()
            .find(|r| percent_decode(&r.href) == want)
    }

    /// The response for `path` (panics if absent).
    pub fn get(&self, path: &str) -> &DavResponse {
        self.find(path)
            .unwrap_or_else(|| panic!("no response for {path} in {}", self.body))
    }

    /// The decoded hrefs of all responses.
    pub fn hrefs(&self) -> Vec<String> {
        self.responses
            .iter()
            .map(|r| percent_decode(&r.href))
            .collect()
    }

    /// Responses other than the 507 truncation marker.
    pub fn members(&self) -> Vec<&DavResponse> {
        self.responses
            .iter()
            .filter(|r| r.status != Some(507))
            .collect()
    }

    /// The 507 `number-of-matches-within-limits` response, if any.
    pub fn truncation(&self) -> Option<&DavResponse> {
        self.responses.iter().find(|r| r.status == Some(507))
    }
}

impl DavResponse {
    /// A property reported with status 200.
    pub fn prop(&self, ns: &str, local: &str) -> Option<&Prop> {
        self.propstats
            .iter()
            .filter(|ps| ps.status == 200)
            .flat_map(|ps| ps.props.iter())
            .find(|p| p.ns == ns && p.name == local)
    }

    /// A property reported with status 200 (panics if absent).
    pub fn ok(&self, ns: &str, local: &str) -> &Prop {
        self.prop(ns, local)
            .unwrap_or_else(|| panic!("{{{ns}}}{local} with 200 on {}: {self:?}", self.href))
    }

    /// The status of the propstat holding `{ns}local`.
    pub fn prop_status(&self, ns: &str, local: &str) -> Option<u16> {
        self.propstats
            .iter()
            .find(|ps| ps.props.iter().any(|p| p.ns == ns && p.name == local))
            .map(|ps| ps.status)
    }

    /// The propstat with `status`.
    pub fn propstat(&self, status: u16) -> Option<&DavPropstat> {
        self.propstats.iter().find(|ps| ps.status == status)
    }

    /// The names in the propstat with `status`.
    pub fn names(&self, status: u16) -> Vec<QName> {
        self.propstat(status)
            .map(|ps| ps.props.iter().map(|p| qn(&p.ns, &p.name)).collect())
            .unwrap_or_default()
    }
}

/// A vCard 3.0 with CRLF line ends: BEGIN, VERSION, UID, FN, `extra` lines, END.
pub fn vcard3(uid: &str, full_name: &str, extra: &[&str]) -> String {
    let mut lines = vec![
        "BEGIN:VCARD".to_owned(),
        "VERSION:3.0".to_owned(),
        format!("UID:{uid}"),
        format!("FN:{full_name}"),
    ];
    lines.extend(extra.iter().map(|l| (*l).to_owned()));
    lines.push("END:VCARD".to_owned());
    lines.join("\r\n") + "\r\n"
}

/// The unfolded content lines of a card (CRLF or LF).
pub fn unfolded_lines(card: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in card.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if let Some(cont) = line.strip_prefix([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str(cont);
                continue;
            }
        }
        if !line.is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

/// The value of the first content line named `name` (case-insensitive, any group/params).
pub fn card_value(card: &str, name: &str) -> Option<String> {
    unfolded_lines(card).into_iter().find_map(|l| {
        let (head, value) = l.split_once(':')?;
        let prop = head.split(';').next()?;
        let prop = prop.rsplit('.').next()?;
        prop.eq_ignore_ascii_case(name).then(|| value.to_owned())
    })
}

// ----- admin API shortcuts -----

/// Creates a customer through the admin API; its JSON.
pub async fn create_customer(s: &TestServer, org: &str, body: Value) -> Value {
    let r = s
        .admin("POST", &format!("/orgs/{org}/customers"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "create customer: {v}");
    v
}

/// PATCHes a customer through the admin API: (status, JSON).
pub async fn patch_customer(s: &TestServer, org: &str, id: &str, body: Value) -> (u16, Value) {
    let r = s
        .admin("PATCH", &format!("/orgs/{org}/customers/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Deletes a customer through the admin API (must answer 204).
pub async fn delete_customer(s: &TestServer, org: &str, id: &str) {
    let r = s
        .admin("DELETE", &format!("/orgs/{org}/customers/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "delete customer {id}");
}

/// A customer's JSON, `None` if the admin API answers 404.
pub async fn get_customer(s: &TestServer, org: &str, id: &str) -> Option<Value> {
    let r = s
        .admin("GET", &format!("/orgs/{org}/customers/{id}"))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => Some(r.json().await.unwrap()),
        404 => None,
        other => panic!("GET customer {id}: {other}"),
    }
}

/// Every customer of `org`, through the admin API's pages.
pub async fn all_customers(s: &TestServer, org: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("?limit=1000&after={a}"),
            None => "?limit=1000".to_owned(),
        };
        let page: Value = s
            .admin("GET", &format!("/orgs/{org}/customers{q}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["customers"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return out,
        }
    }
}

/// The customer whose stored card has resource name `stem` (file name without `.vcf`).
pub async fn customer_by_card_name(s: &TestServer, org: &str, stem: &str) -> Value {
    all_customers(s, org)
        .await
        .into_iter()
        .find(|c| c["card"]["name"] == stem)
        .unwrap_or_else(|| panic!("no customer with card {stem}"))
}

/// Polls `probe` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn poll<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
