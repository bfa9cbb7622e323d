//! Building the host from configuration and running the HTTP server.
use crate::admin::{self, AdminState};
use crate::config::{Config, StoreKind};
use crate::core::Portico;
use crate::gateway::{self, GatewayState};
use crate::registry::Registry;
use crate::secrets::Sealer;
use crate::store::embedded::EmbeddedStore;
use crate::store::mongo::MongoStore;
use crate::store::Store;
use actix_web::dev::Service;
use actix_web::http::ConnectionType;
use actix_web::{web, App, HttpResponse, HttpServer};
use portico_sdk::HostLinks;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Threads each worker may use for blocking work. The only blocking work is the embedded
/// store's write transactions, which redb runs one at a time, so more threads only wait on
/// each other while each holds an allocator heap and a stack. With actix's default (512 across
/// the workers) 16 concurrent PUTs ran the process at 24 threads; with this cap, 14.
const BLOCKING_THREADS_PER_WORKER: usize = 4;

/// Opens the store and the key and builds the host. Async because a MongoDB store connects (and
/// its client must live on the runtime that serves it).
pub async fn build(cfg: &Config, registry: Registry) -> anyhow::Result<Arc<Portico>> {
    // Every configured key is loaded and checked before anything else: a missing or malformed
    // one stops startup with the setting's name.
    let (sealer, created) = Sealer::from_config(cfg)?;
    if let Some(path) = created {
        tracing::info!(path = %path.display(), "generated a new master key file");
    }
    tracing::info!(
        active = sealer.active_id(),
        previous = ?sealer.previous_ids(),
        "master keys loaded"
    );
    let store: Arc<dyn Store> = match cfg.store.kind {
        StoreKind::Embedded => Arc::new(EmbeddedStore::open(&cfg.store.data_dir)?),
        StoreKind::Mongodb => {
            let uri = cfg.store.uri.as_ref().ok_or_else(|| {
                anyhow::anyhow!("store.kind = \"mongodb\" needs store.uri (or PORTICO_STORE__URI)")
            })?;
            Arc::new(
                MongoStore::connect_with(uri.expose(), &cfg.store.database, cfg.store.transactions)
                    .await?,
            )
        }
    };
    let links = HostLinks {
        public_url: cfg.public_url(),
        admin_customer_url: cfg.admin.customer_url.clone(),
    };
    check_apps_config(cfg, &registry)?;
    let metrics = Arc::new(crate::operations::Metrics::new());
    let store: Arc<dyn Store> = Arc::new(crate::store::metered::MeteredStore::new(
        store,
        metrics.clone(),
    ));
    let portico = Arc::new(
        Portico::new(store, registry, sealer, links)
            .with_operations(cfg.apps.clone(), cfg.webhooks.clone())
            .with_metrics(metrics),
    );
    let migrated = portico.migrate_installations().await?;
    if migrated > 0 {
        tracing::info!(migrated, "installation data migrated");
    }
    Ok(portico)
}

/// Refuses `[apps]` settings that name unknown app kinds or limits that would block everything.
fn check_apps_config(cfg: &Config, registry: &Registry) -> anyhow::Result<()> {
    let known = |k: &str| registry.get(k).is_some();
    for k in &cfg.apps.disabled {
        if !known(k) {
            anyhow::bail!("apps.disabled names '{k}', which is not a registered app kind");
        }
    }
    for (k, l) in &cfg.apps.rate_limits {
        if !known(k) {
            anyhow::bail!("apps.rate_limits.{k}: '{k}' is not a registered app kind");
        }
        if !(l.per_second > 0.0 && l.per_second.is_finite()) || l.burst == 0 {
            anyhow::bail!("apps.rate_limits.{k}: per_second must be > 0 and burst >= 1");
        }
    }
    Ok(())
}

/// Anything unrouted: a JSON error under the admin API, an empty 404 elsewhere.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    if req.path().starts_with("/admin/api") || req.path() == "/admin/session" {
        actix_web::ResponseError::error_response(&crate::error::HostError::kind(
            portico_sdk::ErrorKind::NotFound,
            "no such admin endpoint",
        ))
    } else {
        HttpResponse::NotFound().finish()
    }
}

/// `/metrics`: the Prometheus text exposition.
async fn metrics(s: web::Data<GatewayState>) -> HttpResponse {
    let depth = crate::webhooks::outbox_depth(&s.portico).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(s.portico.metrics.render(depth))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(s: web::Data<GatewayState>) -> HttpResponse {
    match s.portico.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "ready": true })),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "ready": false }))
        }
    }
}

/// Requests being answered, and whether SIGTERM came (answers then close their connection).
#[derive(Default)]
struct Drain {
    in_flight: AtomicUsize,
    draining: AtomicBool,
}

/// Counts a request as in flight while it lives.
struct InFlight(Arc<Drain>);

impl InFlight {
    fn enter(d: &Arc<Drain>) -> InFlight {
        d.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(d.clone())
    }
}

/// A response body that keeps its request counted as in flight until it is sent (or dropped).
struct Guarded {
    body: actix_web::body::BoxBody,
    _guard: InFlight,
}

impl actix_web::body::MessageBody for Guarded {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<bytes::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// SIGTERM: stop accepting and close the listening socket (new connections are refused), answer
/// every request already sent on an open connection, each answer closing its connection, and
/// stop once none has been in progress for a moment, or when the grace period ends (what is
/// still running then is cut off). SIGINT: stop at once.
async fn drain_on_signals(
    handle: actix_web::dev::ServerHandle,
    listener: TcpListener,
    drain: Arc<Drain>,
    grace: Duration,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install the SIGTERM/SIGINT handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {
            tracing::info!("SIGINT: stopping now");
            handle.stop(false).await;
            return;
        }
    }
    let started = Instant::now();
    tracing::info!("SIGTERM: finishing the requests in progress");
    drain.draining.store(true, Ordering::SeqCst);
    handle.pause().await;
    if let Err(e) = socket2::SockRef::from(&listener).shutdown(std::net::Shutdown::Read) {
        tracing::warn!(error = %e, "cannot close the listening socket");
    }
    drop(listener);
    // A request sent just before the signal may still be unread: wait for a quiet moment.
    let mut quiet_since: Option<Instant> = None;
    while started.elapsed() < grace {
        if drain.in_flight.load(Ordering::SeqCst) == 0 {
            if quiet_since.get_or_insert_with(Instant::now).elapsed() >= QUIET {
                break;
            }
        } else {
            quiet_since = None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = drain.in_flight.load(Ordering::SeqCst);
    if left > 0 {
        tracing::warn!(
            requests = left,
            "grace period over: stopping with requests in progress"
        );
    }
    // Closes the idle connections; forced if the grace period is over.
    handle.stop(left == 0).await;
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "stopped");
}

/// How long no request must be in progress before a SIGTERM'd server stops.
const QUIET: Duration = Duration::from_millis(500);

/// Starts the HTTP server on `listener`. The returned server stops gracefully on SIGTERM (see
/// [`drain_on_signals`]): new connections are refused at once, requests already sent finish
/// (up to `server.shutdown_timeout_secs`), then it ends. SIGINT stops it at once.
/// With `[http.tls]` it serves HTTPS (see [`start_with_tls`]).
pub fn start(
    portico: Arc<Portico>,
    cfg: &Config,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let tls = crate::tls::Tls::from_config(cfg).map_err(std::io::Error::other)?;
    start_with_tls(portico, cfg, listener, tls)
}

/// [`start`] with the TLS settings already loaded (by [`crate::tls::Tls::from_config`], so that
/// a bad certificate stops startup early): HTTPS on `listener` when `tls` is given, with
/// certificate reload on SIGHUP and the optional HTTP redirect listener.
pub fn start_with_tls(
    portico: Arc<Portico>,
    cfg: &Config,
    listener: TcpListener,
    tls: Option<crate::tls::Tls>,
) -> std::io::Result<actix_web::dev::Server> {
    let body_limit = cfg.server.body_limit;
    let gateway_state = web::Data::new(GatewayState {
        portico: portico.clone(),
        body_limit,
        body_timeout: std::time::Duration::from_secs(cfg.server.body_timeout_secs.max(1)),
    });
    let openapi = admin::openapi()
        .to_pretty_json()
        .map_err(|e| std::io::Error::other(format!("OpenAPI document: {e}")))?;
    let admin_state = web::Data::new(AdminState {
        portico: portico.clone(),
        token_hash: cfg
            .admin
            .token_digest()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
        openapi,
    });
    let portico_data = web::Data::new(portico.clone());
    crate::webhooks::spawn_delivery(&portico);
    let drain = Arc::new(Drain::default());
    let drain_app = drain.clone();
    let listening = listener.try_clone()?;
    let server = HttpServer::new(move || {
        let drain = drain_app.clone();
        App::new()
            .app_data(gateway_state.clone())
            .app_data(admin_state.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics))
            .route("/readyz", web::get().to(readyz))
            .route("/.well-known/{name}", web::route().to(gateway::well_known))
            .app_data(portico_data.clone())
            .configure(crate::console::routes)
            .route("/setup/{token}", web::get().to(crate::setup::open))
            .service(web::scope("/admin").configure(|c| {
                admin::routes(&mut utoipa_actix_web::service_config::ServiceConfig::new(c))
            }))
            .service(web::scope("/api/apps").default_service(web::to(gateway::gateway)))
            .default_service(web::to(not_found))
            .wrap_fn(move |req, srv| {
                let guard = InFlight::enter(&drain);
                let call = srv.call(req);
                async move {
                    let mut res = call.await?;
                    if guard.0.draining.load(Ordering::SeqCst) {
                        res.response_mut()
                            .head_mut()
                            .set_connection_type(ConnectionType::Close);
                    }
                    // The request stays in flight until its body is sent: whole-book listings
                    // stream long after the handler returned.
                    Ok(res.map_body(move |_, body| Guarded {
                        body: actix_web::body::MessageBody::boxed(body),
                        _guard: guard,
                    }))
                }
            })
    })
    .shutdown_timeout(cfg.server.shutdown_timeout_secs)
    // Slow clients (slowloris): the head must arrive in time, and idle connections close.
    // Header count and size are bounded by actix-http itself (at most 96 headers and 32 KiB
    // of head; beyond: 431 or 400 and the connection closes).
    .client_request_timeout(std::time::Duration::from_millis(
        cfg.server.request_head_timeout_ms.max(100),
    ))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .keep_alive(match cfg.server.keep_alive_secs {
        0 => actix_web::http::KeepAlive::Disabled,
        n => actix_web::http::KeepAlive::Timeout(std::time::Duration::from_secs(n)),
    })
    .max_connections(cfg.server.max_connections.max(1))
    // SIGTERM/SIGINT are handled by `drain_on_signals`.
    .disable_signals();
    let mut server = match tls {
        Some(mut tls) => {
            tls.start_side_tasks(cfg)?;
            server.listen_rustls_0_23(listener, tls.server_config())?
        }
        None => server.listen(listener)?,
    };
    if cfg.server.workers > 0 {
        server = server.workers(cfg.server.workers);
    }
    server = server.worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER);
    let server = server.run();
    tokio::spawn(drain_on_signals(
        server.handle(),
        listening,
        drain,
        Duration::from_secs(cfg.server.shutdown_timeout_secs),
    ));
    Ok(server)
}
