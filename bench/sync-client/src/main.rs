//! `sync-client`: the initial sync of the shared benchmark harness (`carddav_bench.py`), done by
//! a native client.
//!
//! The harness is Python: parsing the XML caps it at about 20-30k contacts/s, so against it even
//! nginx serving fixed files is only a little faster than a CardDAV server, and ratios between
//! servers are compressed toward 1. This client sends the same requests in the same order on one
//! connection (a fresh one per repetition, like a new phone) and does the same work on the
//! answers — parses each multistatus, collects hrefs and ETags, counts the cards whose
//! `address-data` holds a vCard — at native speed, so the server's share of the time shows.
//!
//! ```text
//! sync-client --url http://127.0.0.1:8080/dav/book/ --user u --password p --reps 3 \
//!             [--server-pid PID] [--static] [--json out.json]
//! ```
//! `--static` is the harness's reference mode: `_propfind.xml` and `_multiget-NNNN.xml` under
//! the URL hold the answers, fetched with GET (nginx serving a server's captured bytes).
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::Parser;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

const DAV: &str = "DAV:";
const CARDDAV: &str = "urn:ietf:params:xml:ns:carddav";
/// The harness's member listing (`PROPFIND_MEMBERS`).
const PROPFIND_MEMBERS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><d:propfind \
    xmlns:d=\"DAV:\"><d:prop><d:getetag/><d:getcontenttype/></d:prop></d:propfind>";

#[derive(Parser, Debug)]
#[command(about = "Initial CardDAV sync (PROPFIND Depth 1 + addressbook-multiget), timed")]
struct Args {
    /// The address book's URL (ending in `/`).
    #[arg(long)]
    url: String,
    /// Basic auth user (none if empty).
    #[arg(long, default_value = "")]
    user: String,
    /// Basic auth password.
    #[arg(long, default_value = "")]
    password: String,
    /// Repetitions; the figures reported are their medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Hrefs per multiget (DAVx5 asks for 100).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// The server's PID, for its CPU seconds and peak RSS.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Reference mode: GET the pre-built answers instead of PROPFIND / REPORT.
    #[arg(long = "static")]
    static_files: bool,
    /// Cards expected; a repetition receiving another number fails the run.
    #[arg(long)]
    expect: Option<usize>,
    /// Bound on one request.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Write the results here as JSON too.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One repetition of the initial sync.
#[derive(Debug, Clone, Default)]
struct Rep {
    wall_s: f64,
    propfind_s: f64,
    multiget_s: f64,
    listed: usize,
    received: usize,
    requests: usize,
    bytes: usize,
    client_cpu_s: f64,
    server_cpu_s: Option<f64>,
}

struct Client {
    http: reqwest::Client,
    auth: Option<String>,
    base: reqwest::Url,
}

impl Client {
    fn new(args: &Args) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(args.timeout_s))
            .pool_max_idle_per_host(1)
            .build()?;
        let auth = (!args.user.is_empty()).then(|| {
            let raw = format!("{}:{}", args.user, args.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        let base = reqwest::Url::parse(&args.url).context("--url")?;
        Ok(Client { http, auth, base })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        depth: Option<&str>,
        body: Option<String>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let url = self.base.join(path)?;
        let mut rq = self.http.request(method, url);
        if let Some(a) = &self.auth {
            rq = rq.header(AUTHORIZATION, a);
        }
        if let Some(d) = depth {
            rq = rq.header("Depth", d);
        }
        if let Some(b) = body {
            rq = rq
                .header(CONTENT_TYPE, "application/xml; charset=utf-8")
                .body(b);
        }
        let resp = rq.send().await?;
        let status = resp.status();
        Ok((status, resp.bytes().await?.to_vec()))
    }
}

/// `(href, etag)` of each member in a PROPFIND Depth 1 answer (the collection itself left out).
fn members(body: &[u8], collection: &str) -> Result<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).context("listing is not UTF-8")?;
    let doc = roxmltree::Document::parse(text).context("listing is not XML")?;
    let mut out = Vec::new();
    for resp in responses(&doc) {
        let Some(href) = child_text(resp, DAV, "href") else {
            continue;
        };
        if href.trim_end_matches('/') == collection.trim_end_matches('/') {
            continue;
        }
        let etag = prop_ok(resp, DAV, "getetag")
            .and_then(|e| e.text())
            .unwrap_or("")
            .trim()
            .to_owned();
        out.push((href.trim().to_owned(), etag));
    }
    Ok(out)
}

/// Cards in a multiget answer whose `address-data` holds a vCard.
fn cards(body: &[u8]) -> Result<usize> {
    let text = std::str::from_utf8(body).context("multiget is not UTF-8")?;
    let doc = roxmltree::Document::parse(text).context("multiget is not XML")?;
    let mut n = 0;
    for resp in responses(&doc) {
        let data = prop_ok(resp, CARDDAV, "address-data").and_then(|e| e.text());
        let etag = prop_ok(resp, DAV, "getetag").and_then(|e| e.text());
        if data.is_some_and(|d| d.contains("BEGIN:VCARD")) && etag.is_some() {
            n += 1;
        }
    }
    Ok(n)
}

fn responses<'a>(
    doc: &'a roxmltree::Document<'a>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'a>> + 'a {
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name((DAV, "response")))
}

fn child_text<'a>(n: roxmltree::Node<'a, 'a>, ns: &str, name: &str) -> Option<&'a str> {
    n.children()
        .find(|c| c.has_tag_name((ns, name)))
        .and_then(|c| c.text())
}

/// The property `ns:name` of a response, if a propstat with status 200 holds it.
fn prop_ok<'a>(
    resp: roxmltree::Node<'a, 'a>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'a>> {
    resp.children()
        .filter(|c| c.has_tag_name((DAV, "propstat")))
        .filter(|ps| child_text(*ps, DAV, "status").is_some_and(|s| s.contains(" 200 ")))
        .filter_map(|ps| ps.children().find(|c| c.has_tag_name((DAV, "prop"))))
        .find_map(|p| p.children().find(|c| c.has_tag_name((ns, name))))
}

fn multiget_body(hrefs: &[(String, String)]) -> String {
    let mut b = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><card:addressbook-multiget xmlns:d=\"DAV:\" \
         xmlns:card=\"urn:ietf:params:xml:ns:carddav\"><d:prop><d:getetag/><card:address-data/>\
         </d:prop>",
    );
    for (h, _) in hrefs {
        b.push_str("<d:href>");
        b.push_str(&h.replace('&', "&amp;").replace('<', "&lt;"));
        b.push_str("</d:href>");
    }
    b.push_str("</card:addressbook-multiget>");
    b
}

/// CPU seconds (user + system) of a process, all threads, from `/proc/PID/stat`.
fn cpu_s(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// `pid` and its descendants (nginx answers from worker processes).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_owned();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while let Some(&p) = tree.get(i) {
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
        if i > 10_000 {
            break;
        }
    }
    tree
}

/// CPU seconds of a server, its descendants included.
fn server_cpu_s(pid: u32) -> Option<f64> {
    process_tree(pid)
        .iter()
        .map(|p| cpu_s(&p.to_string()))
        .sum::<Option<f64>>()
}

/// Peak RSS of a server, its descendants summed.
fn vm_hwm_mib(pid: u32) -> Option<f64> {
    let one = |p: u32| -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    };
    let kb: f64 = process_tree(pid).into_iter().filter_map(one).sum();
    (kb > 0.0).then_some(kb / 1024.0)
}

async fn initial(args: &Args) -> Result<Rep> {
    let c = Client::new(args)?;
    let collection = c.base.path().to_owned();
    let cpu0 = (cpu_s("self"), args.server_pid.and_then(server_cpu_s));
    let t0 = Instant::now();
    let mut rep = Rep::default();
    let (st, body) = if args.static_files {
        c.send(Method::GET, "_propfind.xml", None, None).await?
    } else {
        let m = Method::from_bytes(b"PROPFIND")?;
        c.send(m, "", Some("1"), Some(PROPFIND_MEMBERS.to_owned()))
            .await?
    };
    if st != StatusCode::MULTI_STATUS && !(args.static_files && st == StatusCode::OK) {
        bail!("PROPFIND -> {st}");
    }
    rep.bytes += body.len();
    rep.requests += 1;
    let listed = members(&body, &collection)?;
    rep.listed = listed.len();
    let t1 = Instant::now();
    let report = Method::from_bytes(b"REPORT")?;
    for (i, chunk) in listed.chunks(args.batch.max(1)).enumerate() {
        let (st, body) = if args.static_files {
            let name = format!("_multiget-{i:04}.xml");
            c.send(Method::GET, &name, None, None).await?
        } else {
            let b = multiget_body(chunk);
            c.send(report.clone(), "", None, Some(b)).await?
        };
        if st != StatusCode::MULTI_STATUS && !(args.static_files && st == StatusCode::OK) {
            bail!("multiget {i} -> {st}");
        }
        rep.requests += 1;
        rep.bytes += body.len();
        rep.received += cards(&body)?;
    }
    let t2 = Instant::now();
    rep.propfind_s = (t1 - t0).as_secs_f64();
    rep.multiget_s = (t2 - t1).as_secs_f64();
    rep.wall_s = (t2 - t0).as_secs_f64();
    if let (Some(a), Some(b)) = (cpu0.0, cpu_s("self")) {
        rep.client_cpu_s = b - a;
    }
    if let (Some(a), Some(b)) = (cpu0.1, args.server_pid.and_then(server_cpu_s)) {
        rep.server_cpu_s = Some(b - a);
    }
    Ok(rep)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut reps = Vec::new();
    for r in 0..args.reps.max(1) {
        let rep = rt.block_on(initial(&args))?;
        eprintln!(
            "initial rep {}: {:.4} s ({} listed, {} cards, {:.2} MB, {} requests; propfind {:.4} s, \
             multiget {:.4} s; client CPU {:.2} s, server CPU {})",
            r + 1,
            rep.wall_s,
            rep.listed,
            rep.received,
            rep.bytes as f64 / 1e6,
            rep.requests,
            rep.propfind_s,
            rep.multiget_s,
            rep.client_cpu_s,
            rep.server_cpu_s
                .map(|s| format!("{s:.2} s"))
                .unwrap_or_else(|| "n/a".into()),
        );
        if let Some(n) = args.expect {
            if rep.received != n {
                return Err(anyhow!(
                    "rep {}: received {} cards, expected {n}",
                    r + 1,
                    rep.received
                ));
            }
        }
        reps.push(rep);
    }
    let pick = |f: fn(&Rep) -> f64| median(reps.iter().map(f).collect());
    let wall = pick(|r| r.wall_s);
    let received = reps.last().map(|r| r.received).unwrap_or(0);
    let out = serde_json::json!({
        "client": "sync-client (native, one connection per repetition)",
        "url": args.url,
        "static": args.static_files,
        "reps": reps.len(),
        "batch": args.batch,
        "initial": {
            "wall_s": wall,
            "propfind_s": pick(|r| r.propfind_s),
            "multiget_s": pick(|r| r.multiget_s),
            "contacts_received": received,
            "contacts_per_s": received as f64 / wall,
            "bytes": reps.last().map(|r| r.bytes).unwrap_or(0),
            "requests": reps.last().map(|r| r.requests).unwrap_or(0),
            "client_cpu_s": pick(|r| r.client_cpu_s),
            "server_cpu_s": reps.iter().map(|r| r.server_cpu_s).collect::<Option<Vec<f64>>>().map(median),
            "walls_s": reps.iter().map(|r| r.wall_s).collect::<Vec<_>>(),
        },
        "server_vm_hwm_mib": args.server_pid.and_then(vm_hwm_mib),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">
<d:response><d:href>/b/</d:href><d:propstat><d:prop><d:getetag/></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>
<d:response><d:href>/b/a.vcf</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/b/b.vcf</d:href><d:propstat><d:prop><d:getetag>"2"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
</d:multistatus>"#;

    #[test]
    fn listing_leaves_out_the_collection() {
        let m = members(LISTING.as_bytes(), "/b/").unwrap();
        assert_eq!(
            m,
            vec![
                ("/b/a.vcf".to_owned(), "\"1\"".to_owned()),
                ("/b/b.vcf".to_owned(), "\"2\"".to_owned())
            ]
        );
    }

    #[test]
    fn multiget_counts_only_cards_with_data() {
        let body = r#"<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">
<d:response><d:href>/b/a.vcf</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag><c:address-data>BEGIN:VCARD&#13;
END:VCARD&#13;
</c:address-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
<d:response><d:href>/b/x.vcf</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>
<d:response><d:href>/b/y.vcf</d:href><d:propstat><d:prop><c:address-data>BEGIN:VCARD</c:address-data></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>
</d:multistatus>"#;
        assert_eq!(cards(body.as_bytes()).unwrap(), 1);
        assert!(cards(b"<not xml").is_err());
    }

    #[test]
    fn multiget_body_escapes_hrefs() {
        let b = multiget_body(&[("/b/a&b.vcf".into(), String::new())]);
        assert!(b.contains("<d:href>/b/a&amp;b.vcf</d:href>"));
        assert!(roxmltree::Document::parse(&b).is_ok());
    }
}
