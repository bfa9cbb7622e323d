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
use actix_web::{web, App, HttpResponse, HttpServer};
use portico_sdk::HostLinks;
use std::net::TcpListener;
use std::sync::Arc;

/// Opens the store and the key and builds the host. Async because a MongoDB store connects (and
/// its client must live on the runtime that serves it).
pub async fn build(cfg: &Config, registry: Registry) -> anyhow::Result<Arc<Portico>> {
    let sealer = match &cfg.secrets.key {
        Some(k) => Sealer::from_base64(k.expose())?,
        None => {
            let path = cfg.key_file();
            let (s, created) = Sealer::from_key_file(&path, cfg.secrets.create_key_file)?;
            if created {
                tracing::info!(path = %path.display(), "generated a new master key file");
            }
            s
        }
    };
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
    Ok(Arc::new(Portico::new(store, registry, sealer, links)))
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

/// Starts the HTTP server on `listener`. The returned server stops gracefully on SIGTERM/SIGINT:
/// it stops accepting, lets in-flight requests finish (up to the configured timeout), then ends.
pub fn start(
    portico: Arc<Portico>,
    cfg: &Config,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let body_limit = cfg.server.body_limit;
    let gateway_state = web::Data::new(GatewayState {
        portico: portico.clone(),
        body_limit,
    });
    let openapi = admin::openapi()
        .to_pretty_json()
        .map_err(|e| std::io::Error::other(format!("OpenAPI document: {e}")))?;
    let admin_state = web::Data::new(AdminState {
        portico: portico.clone(),
        token_hash: cfg
            .admin
            .token
            .as_ref()
            .map(|t| admin::token_hash(t.expose())),
        openapi,
    });
    let portico_data = web::Data::new(portico.clone());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(gateway_state.clone())
            .app_data(admin_state.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .route("/healthz", web::get().to(healthz))
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
    })
    .shutdown_timeout(cfg.server.shutdown_timeout_secs)
    .listen(listener)?;
    if cfg.server.workers > 0 {
        server = server.workers(cfg.server.workers);
    }
    Ok(server.run())
}
