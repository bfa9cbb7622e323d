//! The admin page's static assets, compiled into the binary (no CDN, nothing fetched at run
//! time): `/admin/` and `/admin/assets/*`. A strict Content-Security-Policy applies: scripts and
//! styles only from these files.
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../assets/admin/index.html");
const ADMIN_JS: &str = include_str!("../assets/admin/admin.js");
const ADMIN_CSS: &str = include_str!("../assets/admin/admin.css");

/// The policy sent with the page.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                       script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'self'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn admin_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/admin/"))
        .finish()
}

async fn file(path: web::Path<String>) -> HttpResponse {
    match path.as_str() {
        "admin.js" => asset("text/javascript; charset=utf-8", ADMIN_JS),
        "admin.css" => asset("text/css; charset=utf-8", ADMIN_CSS),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Registers the page routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(admin_redirect))
        .route("/admin/", web::get().to(index))
        .route("/admin/assets/{file}", web::get().to(file));
}
