//! Per-request authentication cost with 1, 100 and 10,000 device passwords.
//!
//! `cargo bench -p portico-carddav --bench auth` (add `-- --quick` for a short run). Uses only
//! `std::time`: each figure is the median of several timed batches, in nanoseconds per call.
//!
//! - `lookup`: SHA-256 of the presented password and one probe of the digest index.
//! - `request`: a whole authenticated `OPTIONS` on the address book through `CardDavApp::handle`
//!   (Basic header decoding, the index, last-use bookkeeping, dispatch), the index warm.
//! - `refused`: the same with a wrong password (401).
//! - `rebuild`: building the index after the installation record changed (once per revision).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark binary
use base64::Engine;
use portico_carddav::devices::{self, CredentialIndex, Device};
use portico_carddav::CardDavApp;
use portico_sdk::http::Method;
use portico_sdk::testing::TestContext;
use portico_sdk::{AppRequest, Clock, ExternalApp, InstallInput, Timestamp};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// The wall clock, so last-use writes happen at their real pace (once a minute), not at the
/// test clock's one second per reading.
struct Wall;
impl Clock for Wall {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

fn device_password(i: usize) -> String {
    // 24 characters like the generated ones.
    format!("dev{i:0>21}")
}

fn fleet(n: usize) -> Vec<Device> {
    (0..n)
        .map(|i| Device {
            id: format!("id{i}"),
            label: format!("Device {i}"),
            digest: devices::digest_hex(&device_password(i)),
            created_at: 0,
            last_used: None,
            read_only: false,
        })
        .collect()
}

/// Median ns per call of `f` over `batches` batches of `per_batch` calls.
fn median_ns(batches: usize, per_batch: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn basic(user: &str, pass: &str) -> String {
    let raw = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn main() {
    // `cargo bench` passes `--bench`; run briefly otherwise (e.g. `cargo test --all-targets`).
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick") || !args.iter().any(|a| a == "--bench");
    let (batches, per_batch) = if quick { (5, 2_000) } else { (11, 20_000) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    println!("devices  lookup_ns  request_ns  refused_ns  rebuild_us");
    for n in [1usize, 100, 10_000] {
        let list = fleet(n);
        let probe = device_password(n / 2);

        let index = CredentialIndex::build(Some("install-password-0123456"), None, &list, false);
        assert!(index.lookup(&probe).is_some());
        let lookup = median_ns(batches, per_batch, || {
            black_box(index.lookup(black_box(&probe)));
        });
        let rebuild_batches = if n >= 10_000 { 5 } else { batches };
        let rebuild = median_ns(rebuild_batches, 10, || {
            black_box(CredentialIndex::build(
                Some("install-password-0123456"),
                None,
                black_box(&list),
                false,
            ));
        }) / 1000.0;

        let app = CardDavApp::new();
        let mut t = TestContext::new("carddav");
        let installed = rt
            .block_on(app.install(&t.cx, InstallInput::default()))
            .expect("install");
        let mut inst = installed.installation;
        inst.data[devices::DEVICES_FIELD] = serde_json::to_value(&list).unwrap();
        t.set_installation(inst);
        t.cx.clock = Arc::new(Wall);
        let cx = t.cx;
        let base = format!("/api/apps/{}/{}/", cx.org.id, cx.installation.id);
        let req = |pass: &str| {
            AppRequest::new(Method::OPTIONS, &base, "addressbook/customers/")
                .with_header("authorization", &basic("acme", pass))
        };
        let good = req(&probe);
        let bad = req("not-one-of-the-passwords");
        let status = rt.block_on(app.handle(&cx, good.clone())).unwrap().status;
        assert_eq!(status, 200);
        let status = rt.block_on(app.handle(&cx, bad.clone())).unwrap().status;
        assert_eq!(status, 401);
        let request = median_ns(batches, per_batch, || {
            black_box(rt.block_on(app.handle(&cx, good.clone())).unwrap());
        });
        let refused = median_ns(batches, per_batch, || {
            black_box(rt.block_on(app.handle(&cx, bad.clone())).unwrap());
        });
        println!("{n:>7}  {lookup:>9.0}  {request:>10.0}  {refused:>10.0}  {rebuild:>10.1}");
    }
}
