//! Running many apps side by side: the operator's switches and the host's per-installation
//! bookkeeping, kept in memory of each process.
//!
//! - **Disabled kinds** (`apps.disabled`): their installations answer 503 with a message; nothing
//!   is uninstalled, and removing the kind from the list brings them back.
//! - **Rate limits** per installation, per app kind (`[apps.rate_limits.<kind>]`): a token bucket
//!   of `burst` requests refilled at `per_second`; past it, 429 with `Retry-After`, so one
//!   misbehaving client cannot starve other organizations.
//! - **Request logs**: the last `apps.request_log_size` requests of each installation (method,
//!   path, status, latency, bytes, time, client address; never bodies, query strings or
//!   credentials), readable through the admin API.
//! - **Metrics** in the Prometheus text format at `/metrics`.
//!
//! All of it is per process: with several processes behind a load balancer each limits, logs
//! and counts what it served (Prometheus sums the processes; the admin API shows the log of the
//! process that answers).
use dashmap::DashMap;
use portico_sdk::InstallationId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[apps]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// App kinds switched off by the operator: their installations answer 503.
    pub disabled: Vec<String>,
    /// Per-installation request limits by app kind.
    pub rate_limits: BTreeMap<String, RateLimit>,
    /// How many recent requests are kept per installation.
    pub request_log_size: usize,
}

impl Default for AppsConfig {
    fn default() -> Self {
        AppsConfig {
            disabled: Vec::new(),
            rate_limits: BTreeMap::new(),
            request_log_size: 100,
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed in a burst.
    pub burst: u32,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The most installations tracked by the limiter and the request log; beyond, the maps are
/// cleared (a fresh bucket is the generous side; losing old log lines is harmless).
const MAX_TRACKED: usize = 100_000;

/// Token buckets by installation.
#[derive(Default)]
pub struct RateLimiter {
    buckets: DashMap<InstallationId, Bucket>,
}

impl RateLimiter {
    /// Takes one request from the installation's bucket; `Err(wait)` when it is empty.
    pub fn check(&self, inst: &InstallationId, limit: &RateLimit) -> Result<(), Duration> {
        if self.buckets.len() > MAX_TRACKED {
            self.buckets.clear();
        }
        let now = Instant::now();
        let burst = f64::from(limit.burst.max(1));
        let mut b = self.buckets.entry(inst.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * limit.per_second.max(0.0);
        b.tokens = (b.tokens + refill).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else if limit.per_second > 0.0 {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second))
        } else {
            Err(Duration::from_secs(60))
        }
    }
}

/// One served request, as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestRecord {
    /// When it arrived (ms since the epoch).
    pub at: i64,
    /// Method.
    pub method: String,
    /// Path below the installation (no query string).
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// Time to the response head, in microseconds.
    pub micros: u64,
    /// Response body bytes (0 for a streamed body of unknown length).
    pub bytes: u64,
    /// Client address.
    pub client: String,
}

/// Recent requests by installation.
#[derive(Default)]
pub struct RequestLog {
    logs: DashMap<InstallationId, Mutex<VecDeque<RequestRecord>>>,
}

impl RequestLog {
    /// Records a request, keeping the last `size`.
    pub fn record(&self, inst: &InstallationId, size: usize, r: RequestRecord) {
        if size == 0 {
            return;
        }
        if self.logs.len() > MAX_TRACKED {
            self.logs.clear();
        }
        let entry = self.logs.entry(inst.clone()).or_default();
        let mut q = entry.lock().unwrap_or_else(|p| p.into_inner());
        while q.len() >= size {
            q.pop_front();
        }
        q.push_back(r);
    }

    /// The recent requests of an installation, newest first.
    pub fn recent(&self, inst: &InstallationId) -> Vec<RequestRecord> {
        self.logs
            .get(inst)
            .map(|q| {
                let q = q.lock().unwrap_or_else(|p| p.into_inner());
                q.iter().rev().cloned().collect()
            })
            .unwrap_or_default()
    }

    /// Forgets an installation (after uninstall).
    pub fn forget(&self, inst: &InstallationId) {
        self.logs.remove(inst);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindStatus {
    kind: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Op {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<KindStatus, Counter>,
    latency: Family<Kind, Histogram, fn() -> Histogram>,
    store_latency: Family<Op, Histogram, fn() -> Histogram>,
    cache: Family<Outcome, Counter>,
    rate_limited: Family<Kind, Counter>,
    outbox_depth: Gauge,
    webhook_deliveries: Family<Outcome, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portico");
        let requests = Family::<KindStatus, Counter>::default();
        registry.register(
            "app_requests",
            "Gateway requests by app kind and response status",
            requests.clone(),
        );
        let latency = Family::<Kind, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "app_request_duration_seconds",
            "Gateway request latency (to the response head) by app kind",
            latency.clone(),
        );
        let store_latency = Family::<Op, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "store_operation_duration_seconds",
            "Store operation latency by operation",
            store_latency.clone(),
        );
        let cache = Family::<Outcome, Counter>::default();
        registry.register(
            "installation_cache_lookups",
            "Installation lookups by the gateway, by outcome (hit or miss)",
            cache.clone(),
        );
        let rate_limited = Family::<Kind, Counter>::default();
        registry.register(
            "rate_limited_requests",
            "Requests refused by a per-installation rate limit, by app kind",
            rate_limited.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register(
            "webhook_outbox_depth",
            "Webhook deliveries waiting in the outbox",
            outbox_depth.clone(),
        );
        let webhook_deliveries = Family::<Outcome, Counter>::default();
        registry.register(
            "webhook_delivery_attempts",
            "Webhook delivery attempts by outcome (delivered, retry, failed)",
            webhook_deliveries.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            store_latency,
            cache,
            rate_limited,
            outbox_depth,
            webhook_deliveries,
        }
    }

    /// Counts a gateway request.
    pub fn request(&self, kind: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&KindStatus {
                kind: kind.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Kind {
                kind: kind.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Times a store operation.
    pub fn store_op(&self, op: &'static str, elapsed: Duration) {
        self.store_latency
            .get_or_create(&Op { op })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an installation lookup.
    pub fn cache_lookup(&self, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts a rate-limited request.
    pub fn rate_limited(&self, kind: &str) {
        self.rate_limited
            .get_or_create(&Kind {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts a webhook delivery attempt.
    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&Outcome { outcome })
            .inc();
    }

    /// The text exposition, with the outbox depth as of now.
    pub fn render(&self, outbox_depth: i64) -> String {
        self.outbox_depth.set(outbox_depth);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_refuses_with_a_wait() {
        let l = RateLimiter::default();
        let id = InstallationId::parse("i1").unwrap();
        let other = InstallationId::parse("i2").unwrap();
        let limit = RateLimit {
            per_second: 1.0,
            burst: 3,
        };
        for _ in 0..3 {
            assert!(l.check(&id, &limit).is_ok());
        }
        let wait = l.check(&id, &limit).unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(
            l.check(&other, &limit).is_ok(),
            "buckets are per installation"
        );
    }

    #[test]
    fn request_log_keeps_the_last_n_newest_first() {
        let log = RequestLog::default();
        let id = InstallationId::parse("i1").unwrap();
        for n in 0..5 {
            log.record(
                &id,
                3,
                RequestRecord {
                    at: n,
                    method: "GET".into(),
                    path: "/".into(),
                    status: 200,
                    micros: 1,
                    bytes: 0,
                    client: String::new(),
                },
            );
        }
        let got: Vec<i64> = log.recent(&id).iter().map(|r| r.at).collect();
        assert_eq!(got, vec![4, 3, 2]);
    }

    #[test]
    fn metrics_render_in_the_text_format() {
        let m = Metrics::new();
        m.request("carddav", 207, Duration::from_millis(2));
        m.cache_lookup(true);
        m.store_op("get_customer", Duration::from_micros(300));
        let text = m.render(4);
        assert!(text.contains("portico_app_requests_total{kind=\"carddav\",status=\"207\"} 1"));
        assert!(text.contains("portico_webhook_outbox_depth 4"));
        assert!(text.contains("portico_store_operation_duration_seconds_bucket"));
        assert!(text.contains("portico_installation_cache_lookups_total{outcome=\"hit\"} 1"));
    }
}
