//! Webhooks: events out of the host to endpoints an organization (or the platform) registers.
//!
//! - **Events**: `installation.installed`, `installation.uninstalled`, `installation.action`
//!   (e.g. a regenerated password), `customer.changed` (a customer created, edited or deleted
//!   through an app, such as a contact edited on a phone), and each app's own events
//!   (`{kind}.{name}`, emitted through [`portico_sdk::EventSink`]).
//! - **Outbox**: emitting writes one outbox record per matching endpoint into the store (host
//!   records), so a restart loses nothing; a background task delivers what is due.
//! - **Delivery**: `POST` of the event as JSON with `Portico-Event`, `Portico-Delivery` (the
//!   outbox id, stable across retries: receivers dedupe on it) and
//!   `Portico-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A 2xx
//!   answer is success; anything else (or no answer within the timeout) is retried after
//!   `retry_base_ms · 2^(attempt-1)` (capped at `retry_max_ms`), up to `max_attempts`, then
//!   recorded as failed. Delivery is at least once: a crash between the send and the outbox
//!   update, or two processes picking the same record, may send a delivery twice.
//! - **Visibility**: each endpoint's recent attempts (time, status, outcome, error) and its
//!   pending count are shown by the admin API.
use crate::core::Portico;
use crate::error::HostError;
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use portico_sdk::{AppError, ErrorKind, EventSink, InstallationId, OrgId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Host-record namespace of endpoints.
pub const ENDPOINTS: &str = "webhook_endpoints";
/// Host-record namespace of pending deliveries.
pub const OUTBOX: &str = "webhook_outbox";
/// Host-record namespace of delivery attempts.
pub const DELIVERIES: &str = "webhook_deliveries";
/// Attempts kept per endpoint.
pub const KEEP_ATTEMPTS: usize = 20;

/// `[webhooks]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// How often the outbox is checked, in milliseconds.
    pub poll_ms: u64,
    /// The first retry delay; each further one doubles.
    pub retry_base_ms: u64,
    /// The longest retry delay.
    pub retry_max_ms: u64,
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// How long an endpoint gets to answer, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            poll_ms: 1000,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            max_attempts: 12,
            timeout_ms: 10_000,
        }
    }
}

/// A registered endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// Id.
    pub id: String,
    /// The organization whose events it gets; `None`: every organization's (the platform's).
    pub org_id: Option<OrgId>,
    /// Where deliveries go (`http` or `https`).
    pub url: String,
    /// Event types it wants; empty: all.
    pub events: Vec<String>,
    /// The signing secret, sealed.
    pub secret: String,
    /// When it was registered.
    pub created_at: Timestamp,
}

impl Endpoint {
    fn wants(&self, org: &OrgId, event_type: &str) -> bool {
        self.org_id.as_ref().is_none_or(|o| o == org)
            && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

/// An endpoint as the admin API shows it (no secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    /// Id.
    pub id: String,
    /// Organization, or null for a platform endpoint.
    #[schema(value_type = Option<String>)]
    pub org_id: Option<OrgId>,
    /// URL.
    pub url: String,
    /// Event types (empty: all).
    pub events: Vec<String>,
    /// Registered at (ms since the epoch).
    #[schema(value_type = i64)]
    pub created_at: Timestamp,
    /// Deliveries waiting (including retries).
    pub pending: usize,
    /// Recent attempts, newest first.
    pub recent: Vec<Attempt>,
}

/// An event as delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unique id.
    pub id: String,
    /// Type, e.g. `customer.changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Organization.
    pub org_id: OrgId,
    /// Installation, for events about one.
    pub installation_id: Option<InstallationId>,
    /// When it happened (ms since the epoch).
    pub occurred_at: Timestamp,
    /// Event details.
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    endpoint_id: String,
    event: Event,
    attempts: u32,
    next_at: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// The delivery id (`Portico-Delivery`).
    pub delivery: String,
    /// Event type.
    pub event_type: String,
    /// When (ms since the epoch).
    pub at: i64,
    /// Which attempt (1 = first).
    pub attempt: u32,
    /// HTTP status, if the endpoint answered.
    pub status: Option<u16>,
    /// `delivered`, `retry` (another attempt is scheduled) or `failed` (given up).
    pub outcome: String,
    /// What went wrong.
    pub error: Option<String>,
}

/// The webhook machinery of a host.
pub struct Webhooks {
    cfg: WebhooksConfig,
    client: reqwest::Client,
    cache: DashMap<(), (Instant, Arc<Vec<Endpoint>>)>,
}

/// How long the endpoint list is cached for emitting (other processes' registrations are seen
/// within this time).
const ENDPOINT_TTL: Duration = Duration::from_secs(1);

type HmacSha256 = Hmac<Sha256>;

/// Hex HMAC-SHA256 of the concatenated parts.
fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot run.
        Err(_) => return String::new(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Portico-Signature` value for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A receiver recomputes it over the raw
/// body and the `t` it received, compares in constant time, and rejects old `t` values.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let ts = t.to_string();
    let v1 = hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
    format!("t={ts},v1={v1}")
}

/// Endpoint secrets are sealed bound to this pseudo-installation and the endpoint id.
pub fn sealing_id() -> InstallationId {
    InstallationId::parse("host-webhooks").unwrap_or_else(|_| InstallationId::random())
}

fn internal(e: impl std::fmt::Display) -> HostError {
    HostError::kind(ErrorKind::Internal, e.to_string())
}

impl Webhooks {
    /// The machinery for `cfg`.
    pub fn new(cfg: WebhooksConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Portico-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Webhooks {
            cfg,
            client,
            cache: DashMap::new(),
        }
    }

    async fn endpoints(&self, portico: &Portico) -> Result<Arc<Vec<Endpoint>>, HostError> {
        if let Some(hit) = self.cache.get(&()).filter(|e| e.0.elapsed() < ENDPOINT_TTL) {
            return Ok(hit.1.clone());
        }
        let list: Vec<Endpoint> = portico
            .store
            .list_records(ENDPOINTS)
            .await?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_value(v).ok())
            .collect();
        let list = Arc::new(list);
        self.cache.insert((), (Instant::now(), list.clone()));
        Ok(list)
    }

    fn forget_endpoints(&self) {
        self.cache.clear();
    }
}

/// Registers an endpoint; returns it and its signing secret (shown once).
pub async fn register(
    portico: &Portico,
    org: Option<&OrgId>,
    url: &str,
    events: Vec<String>,
) -> Result<(EndpointView, String), HostError> {
    let url = url.trim();
    let valid = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some());
    if !valid {
        return Err(HostError::kind(
            ErrorKind::Unprocessable,
            "url must be an absolute http(s) URL of at most 2,000 characters",
        ));
    }
    if events.len() > 50 || events.iter().any(|e| e.is_empty() || e.len() > 100) {
        return Err(HostError::kind(
            ErrorKind::Unprocessable,
            "events: at most 50 event types of 1 to 100 characters",
        ));
    }
    let id = crate::secrets::random_token(12);
    let secret = format!("whsec_{}", crate::secrets::random_token(32));
    let ep = Endpoint {
        id: id.clone(),
        org_id: org.cloned(),
        url: url.to_owned(),
        events,
        secret: portico.sealer.seal(&sealing_id(), &id, &secret),
        created_at: portico.clock.now(),
    };
    let value = serde_json::to_value(&ep).map_err(internal)?;
    portico.store.put_record(ENDPOINTS, &id, &value).await?;
    portico.webhooks.forget_endpoints();
    tracing::info!(endpoint = %id, org = ?org.map(|o| o.to_string()), "webhook endpoint registered");
    Ok((view(&ep, 0, Vec::new()), secret))
}

fn view(ep: &Endpoint, pending: usize, recent: Vec<Attempt>) -> EndpointView {
    EndpointView {
        id: ep.id.clone(),
        org_id: ep.org_id.clone(),
        url: ep.url.clone(),
        events: ep.events.clone(),
        created_at: ep.created_at,
        pending,
        recent,
    }
}

/// The endpoints of an organization (`Some`) or the platform's (`None`), with their recent
/// attempts and pending counts.
pub async fn list(portico: &Portico, org: Option<&OrgId>) -> Result<Vec<EndpointView>, HostError> {
    let mine: Vec<Endpoint> = portico
        .store
        .list_records(ENDPOINTS)
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value::<Endpoint>(v).ok())
        .filter(|e| e.org_id.as_ref() == org)
        .collect();
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let outbox: Vec<Pending> = portico
        .store
        .list_records(OUTBOX)
        .await?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect();
    let attempts = portico.store.list_records(DELIVERIES).await?;
    Ok(mine
        .iter()
        .map(|ep| {
            let pending = outbox.iter().filter(|p| p.endpoint_id == ep.id).count();
            let prefix = format!("{}/", ep.id);
            let mut recent: Vec<Attempt> = attempts
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
                .collect();
            recent.reverse();
            view(ep, pending, recent)
        })
        .collect())
}

/// Deletes an endpoint (of `org`, or a platform one) with its pending deliveries.
pub async fn remove(portico: &Portico, org: Option<&OrgId>, id: &str) -> Result<(), HostError> {
    let found = portico
        .store
        .get_record(ENDPOINTS, id)
        .await?
        .and_then(|v| serde_json::from_value::<Endpoint>(v).ok())
        .filter(|e| e.org_id.as_ref() == org);
    if found.is_none() {
        return Err(HostError::kind(
            ErrorKind::NotFound,
            "webhook endpoint not found",
        ));
    }
    portico.store.take_record(ENDPOINTS, id).await?;
    portico.webhooks.forget_endpoints();
    for (key, v) in portico.store.list_records(OUTBOX).await? {
        if serde_json::from_value::<Pending>(v).is_ok_and(|p| p.endpoint_id == id) {
            portico.store.take_record(OUTBOX, &key).await?;
        }
    }
    Ok(())
}

/// Queues an event for every endpoint that wants it.
pub async fn emit(
    portico: &Portico,
    org: &OrgId,
    installation: Option<&InstallationId>,
    event_type: &str,
    data: serde_json::Value,
) -> Result<(), HostError> {
    let endpoints = portico.webhooks.endpoints(portico).await?;
    let targets: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|e| e.wants(org, event_type))
        .collect();
    if targets.is_empty() {
        return Ok(());
    }
    let now = portico.clock.now();
    let event = Event {
        id: crate::secrets::random_token(12),
        event_type: event_type.to_owned(),
        org_id: org.clone(),
        installation_id: installation.cloned(),
        occurred_at: now,
        data,
    };
    for ep in targets {
        let pending = Pending {
            endpoint_id: ep.id.clone(),
            event: event.clone(),
            attempts: 0,
            next_at: now.0,
        };
        // Keys sort by creation time, so the outbox drains oldest first.
        let key = format!("{:020}-{}-{}", now.0.max(0), event.id, ep.id);
        let value = serde_json::to_value(&pending).map_err(internal)?;
        portico.store.put_record(OUTBOX, &key, &value).await?;
    }
    Ok(())
}

/// Emits without failing the caller: the change it reports has already happened, so a store
/// failure here is logged rather than turned into an error for the user.
pub async fn emit_logged(
    portico: &Portico,
    org: &OrgId,
    installation: Option<&InstallationId>,
    event_type: &str,
    data: serde_json::Value,
) {
    if let Err(e) = emit(portico, org, installation, event_type, data).await {
        tracing::error!(error = %e, event_type, org = %org, "webhook event not queued");
    }
}

/// The [`EventSink`] of one installation: app events are named `{kind}.{name}`.
pub struct InstallationEvents {
    /// The host (weak: contexts must not keep it alive).
    pub portico: Weak<Portico>,
    /// Organization.
    pub org: OrgId,
    /// Installation.
    pub installation: InstallationId,
    /// App kind.
    pub kind: String,
}

impl InstallationEvents {
    /// Reports a customer write the app made (`created`, `updated` or `deleted`).
    pub async fn customer_changed(&self, customer: &portico_sdk::CustomerId, change: &str) {
        if let Some(p) = self.portico.upgrade() {
            emit_logged(
                &p,
                &self.org,
                Some(&self.installation),
                "customer.changed",
                serde_json::json!({
                    "customer_id": customer,
                    "change": change,
                    "kind": self.kind,
                }),
            )
            .await;
        }
    }
}

#[async_trait::async_trait]
impl EventSink for InstallationEvents {
    async fn emit(&self, name: &str, payload: serde_json::Value) -> Result<(), AppError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !valid {
            return Err(AppError::internal(format!(
                "event name '{name}': 1-64 of a-z 0-9 _ ."
            )));
        }
        let Some(p) = self.portico.upgrade() else {
            return Ok(());
        };
        emit(
            &p,
            &self.org,
            Some(&self.installation),
            &format!("{}.{name}", self.kind),
            payload,
        )
        .await
        .map_err(|e| AppError::unavailable(format!("event not queued: {e}")))
    }
}

/// The outbox depth (for metrics).
pub async fn outbox_depth(portico: &Portico) -> i64 {
    match portico.store.list_records(OUTBOX).await {
        Ok(v) => v.len() as i64,
        Err(_) => -1,
    }
}

/// Starts the delivery task on the current runtime. It runs until the runtime stops.
pub fn spawn_delivery(portico: &Arc<Portico>) {
    let weak = Arc::downgrade(portico);
    let poll = Duration::from_millis(portico.webhooks.cfg.poll_ms.max(10));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            let Some(p) = weak.upgrade() else { return };
            if let Err(e) = deliver_due(&p).await {
                tracing::warn!(error = %e, "webhook delivery round failed");
            }
        }
    });
}

/// Delivers what is due now (at most 100 per round). Returns how many were attempted.
pub async fn deliver_due(portico: &Arc<Portico>) -> Result<usize, HostError> {
    let now = portico.clock.now().0;
    let due: Vec<(String, Pending)> = portico
        .store
        .list_records(OUTBOX)
        .await?
        .into_iter()
        .filter_map(|(k, v)| serde_json::from_value::<Pending>(v).ok().map(|p| (k, p)))
        .filter(|(_, p)| p.next_at <= now)
        .take(100)
        .collect();
    let n = due.len();
    for (key, pending) in due {
        deliver_one(portico, &key, pending).await?;
    }
    Ok(n)
}

async fn deliver_one(portico: &Arc<Portico>, key: &str, mut p: Pending) -> Result<(), HostError> {
    let cfg = &portico.webhooks.cfg;
    let Some(ep) = portico
        .store
        .get_record(ENDPOINTS, &p.endpoint_id)
        .await?
        .and_then(|v| serde_json::from_value::<Endpoint>(v).ok())
    else {
        // The endpoint was deleted: nothing to deliver to.
        portico.store.take_record(OUTBOX, key).await?;
        return Ok(());
    };
    let secret = portico
        .sealer
        .open(&sealing_id(), &ep.id, &ep.secret)
        .map_err(|e| internal(format!("webhook secret of {}: {e}", ep.id)))?;
    let body = serde_json::to_vec(&p.event).map_err(internal)?;
    let t = portico.clock.now().as_secs();
    p.attempts += 1;
    let sent = portico
        .webhooks
        .client
        .post(&ep.url)
        .header("Content-Type", "application/json")
        .header("Portico-Event", &p.event.event_type)
        .header("Portico-Delivery", key)
        .header("Portico-Signature", signature(secret.expose(), t, &body))
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
        Ok(r) => (
            Some(r.status().as_u16()),
            Some(format!("answered {}", r.status())),
        ),
        Err(e) => (None, Some(e.to_string())),
    };
    let outcome = match (&error, p.attempts >= cfg.max_attempts) {
        (None, _) => "delivered",
        (Some(_), false) => "retry",
        (Some(_), true) => "failed",
    };
    portico.metrics.webhook_attempt(outcome);
    let attempt = Attempt {
        delivery: key.to_owned(),
        event_type: p.event.event_type.clone(),
        at: portico.clock.now().0,
        attempt: p.attempts,
        status,
        outcome: outcome.to_owned(),
        error,
    };
    record_attempt(portico, &ep.id, &attempt).await?;
    if outcome == "retry" {
        let exp = 1u64 << (p.attempts - 1).min(30);
        let delay = cfg.retry_base_ms.saturating_mul(exp).min(cfg.retry_max_ms);
        p.next_at = portico.clock.now().0 + delay as i64;
        let value = serde_json::to_value(&p).map_err(internal)?;
        portico.store.put_record(OUTBOX, key, &value).await?;
    } else {
        if outcome == "failed" {
            tracing::warn!(endpoint = %ep.id, delivery = key, "webhook delivery given up");
        }
        portico.store.take_record(OUTBOX, key).await?;
    }
    Ok(())
}

async fn record_attempt(portico: &Portico, endpoint: &str, a: &Attempt) -> Result<(), HostError> {
    let prefix = format!("{endpoint}/");
    let key = format!(
        "{prefix}{:020}-{}",
        a.at.max(0),
        crate::secrets::random_token(6)
    );
    let value = serde_json::to_value(a).map_err(internal)?;
    portico.store.put_record(DELIVERIES, &key, &value).await?;
    let mine: Vec<String> = portico
        .store
        .list_records(DELIVERIES)
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&prefix))
        .collect();
    if mine.len() > KEEP_ATTEMPTS {
        for k in &mine[..mine.len() - KEEP_ATTEMPTS] {
            portico.store.take_record(DELIVERIES, k).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_signature_covers_time_and_body() {
        // RFC 4231 §4.3, test case 2.
        assert_eq!(
            hmac_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = signature("k", 1700000000, b"{}");
        assert_eq!(
            s,
            format!("t=1700000000,v1={}", hmac_hex(b"k", &[b"1700000000.{}"]))
        );
        assert_ne!(s, signature("k", 1700000001, b"{}"));
        assert_ne!(s, signature("k", 1700000000, b"{ }"));
    }

    #[test]
    fn endpoint_filters_by_org_and_type() {
        let org = OrgId::parse("o1").unwrap();
        let other = OrgId::parse("o2").unwrap();
        let mut ep = Endpoint {
            id: "e".into(),
            org_id: Some(org.clone()),
            url: "http://x/".into(),
            events: vec![],
            secret: String::new(),
            created_at: Timestamp(0),
        };
        assert!(ep.wants(&org, "customer.changed"));
        assert!(!ep.wants(&other, "customer.changed"));
        ep.events = vec!["installation.installed".into()];
        assert!(!ep.wants(&org, "customer.changed"));
        ep.org_id = None;
        assert!(
            ep.wants(&other, "installation.installed"),
            "platform endpoints get all orgs"
        );
    }
}
