//! One-time setup links: a short-lived URL that downloads a file action's file (e.g. the
//! CardDAV app's Apple configuration profile) without signing in, so a phone can open it from a
//! QR code. The link is a host record keyed by the SHA-256 of its random token; opening it takes
//! the record (once, even with several processes) and runs the action then, so no secret is
//! stored in the link.
use crate::core::Portico;
use crate::error::HostError;
use actix_web::{web, HttpResponse};
use portico_sdk::{ErrorKind, InstallationId, OrgId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Host-record namespace of setup links.
pub const LINKS: &str = "setup_links";
/// How long a link works.
pub const LINK_TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Serialize, Deserialize)]
struct Link {
    org: OrgId,
    installation: InstallationId,
    action: String,
    input: serde_json::Value,
    expires_at: i64,
}

/// A created link.
pub struct Created {
    /// The URL to open.
    pub url: String,
    /// When it stops working (HTTP date).
    pub expires_at: String,
}

/// Creates a link for a file action of an installation.
pub async fn create(
    portico: &Portico,
    org: &OrgId,
    installation: &InstallationId,
    action: &str,
    input: serde_json::Value,
) -> Result<Created, HostError> {
    let inst = portico
        .store
        .get_installation(org, installation)
        .await?
        .ok_or_else(|| HostError::kind(ErrorKind::NotFound, "installation not found"))?;
    let is_file_action = portico.registry.get(&inst.kind).is_some_and(|r| {
        r.manifest
            .actions
            .iter()
            .any(|a| a.name == action && a.file)
    });
    if !is_file_action {
        return Err(HostError::kind(
            ErrorKind::NotFound,
            format!("'{action}' is not a file action of this app"),
        ));
    }
    let now = portico.clock.now().0;
    // Sweep expired links so abandoned ones do not pile up.
    for (key, v) in portico.store.list_records(LINKS).await? {
        let expired = serde_json::from_value::<Link>(v)
            .map(|l| l.expires_at <= now)
            .unwrap_or(true);
        if expired {
            portico.store.take_record(LINKS, &key).await?;
        }
    }
    let token = crate::secrets::random_token(24);
    let link = Link {
        org: org.clone(),
        installation: installation.clone(),
        action: action.to_owned(),
        input,
        expires_at: now + LINK_TTL_MS,
    };
    let value = serde_json::to_value(&link)
        .map_err(|e| HostError::kind(ErrorKind::Internal, e.to_string()))?;
    portico
        .store
        .put_record(LINKS, &crate::admin_auth::digest_hex(&token), &value)
        .await?;
    tracing::info!(org = %org, installation = %installation, action, "setup link created");
    Ok(Created {
        url: format!("{}/setup/{token}", portico.links.public_url),
        expires_at: http_date(link.expires_at),
    })
}

fn http_date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(t)
}

/// A QR code of `text` as SVG.
pub fn qr_svg(text: &str) -> Result<String, HostError> {
    if text.is_empty() || text.len() > 1000 {
        return Err(HostError::kind(
            ErrorKind::BadRequest,
            "a QR code takes 1 to 1,000 bytes of text",
        ));
    }
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| HostError::kind(ErrorKind::BadRequest, format!("cannot encode: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build())
}

/// `GET /setup/{token}`: the file, once. Unknown, used and expired links all answer 404 with a
/// short page saying what to do.
pub async fn open(path: web::Path<String>, portico: web::Data<Arc<Portico>>) -> HttpResponse {
    match open_link(&portico, &path).await {
        Ok(Some(file)) => crate::admin::file_response(file),
        Ok(None) => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(
                "This setup link has expired or was already used.\n\
                 Open the admin page and show a new QR code.\n",
            ),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

async fn open_link(
    portico: &Arc<Portico>,
    token: &str,
) -> Result<Option<portico_sdk::ActionFile>, HostError> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let key = crate::admin_auth::digest_hex(token);
    let Some(v) = portico.store.take_record(LINKS, &key).await? else {
        return Ok(None);
    };
    let Ok(link) = serde_json::from_value::<Link>(v) else {
        return Ok(None);
    };
    if link.expires_at <= portico.clock.now().0 {
        return Ok(None);
    }
    let done = match portico
        .action(&link.org, &link.installation, &link.action, link.input)
        .await
    {
        Ok(d) => d,
        // Uninstalled meanwhile: the link is dead like any used one.
        Err(HostError::App(e)) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    tracing::info!(org = %link.org, installation = %link.installation, action = %link.action, "setup link used");
    Ok(done.file)
}
