//! `hello`: the smallest real Portico app. Copy this crate to start a new app.
//!
//! - the manifest describes its configuration (a `greeting`, text up to 200 characters,
//!   default "Hello"): the host checks install input against it and the admin page can render a
//!   form from it.
//! - `validate` refuses what the description cannot express (a greeting of only spaces) before
//!   anything is stored: the caller gets 422 with the message.
//! - `install` stores the greeting and a generated access token, sealed, and reveals the token
//!   once.
//! - data version 2: version 1 kept the greeting at `data.greeting`, version 2 under
//!   `data.settings.greeting`; `migrate` moves it, and the host runs it once per old record.
//! - `status` reports the greeting and how often the token was rotated.
//! - the `rotate-token` action replaces the token (the old one stops working at once) and emits
//!   a `hello.token_rotated` event to the organization's webhooks.
//! - `handle` answers every request under the installation's base path with a JSON echo of
//!   what the host normalized (method, path segments, query, a few headers, body length),
//!   provided the request carries `Authorization: Bearer <token>`.
use portico_sdk::http::StatusCode;
use portico_sdk::{
    async_trait, ActionOutcome, AppContext, AppError, AppManifest, AppRequest, AppResponse,
    AppStatus, ConfigField, ConfigKind, ExternalApp, InstallInput, InstallOutcome, Installation,
    InstallationStatus,
};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

/// The example app. Stateless: everything lives in the installation record.
pub struct HelloApp;

/// Headers echoed back by `handle`.
const ECHOED_HEADERS: &[&str] = &[
    "content-type",
    "depth",
    "if-match",
    "if-none-match",
    "user-agent",
];

fn new_token(cx: &AppContext) -> Result<(String, String), AppError> {
    let token = cx.secrets.random_token(18).into_inner();
    let sealed = cx.secrets.seal("token", &token)?;
    Ok((token, sealed))
}

#[async_trait]
impl ExternalApp for HelloApp {
    fn manifest(&self) -> AppManifest {
        AppManifest::new(
            "hello",
            "Hello",
            "Echoes requests back; the example to copy",
        )
        .with_action(
            "rotate-token",
            "Replace the access token; the old one stops working",
        )
        .with_config_field(
            ConfigField::new("greeting", "Greeting", ConfigKind::Text { max_len: 200 })
                .with_default(json!("Hello"))
                .with_help("Sent back with every echo"),
        )
        .with_data_version(2)
    }

    async fn validate(&self, _cx: &AppContext, input: &InstallInput) -> Result<(), AppError> {
        // The manifest already guaranteed a string of at most 200 characters.
        let greeting = input.config["greeting"].as_str().unwrap_or_default();
        if greeting.trim().is_empty() {
            return Err(AppError::unprocessable(
                "the greeting needs at least one visible character",
            ));
        }
        Ok(())
    }

    async fn migrate(&self, cx: &AppContext, from_version: u32) -> Result<Installation, AppError> {
        let mut inst = cx.installation.clone();
        if from_version < 2 {
            // Version 1 kept the greeting at the top level.
            let greeting = inst.data["greeting"].take();
            if let Some(obj) = inst.data.as_object_mut() {
                obj.remove("greeting");
                obj.insert("settings".into(), json!({ "greeting": greeting }));
            }
        }
        Ok(inst)
    }

    async fn install(
        &self,
        cx: &AppContext,
        input: InstallInput,
    ) -> Result<InstallOutcome, AppError> {
        // Checked by the host against the manifest, default filled in.
        let greeting = input.config["greeting"]
            .as_str()
            .unwrap_or("Hello")
            .to_owned();
        let (token, sealed) = match input.secrets.get("token") {
            Some(t) if t.expose().len() >= 16 => {
                (t.expose().clone(), cx.secrets.seal("token", t.expose())?)
            }
            Some(_) => {
                return Err(AppError::unprocessable(
                    "an imported token must be at least 16 characters",
                ))
            }
            None => new_token(cx)?,
        };
        let mut inst = cx.installation.clone();
        inst.data = json!({
            "settings": { "greeting": greeting },
            "token": sealed,
            "rotations": 0,
        });
        inst.status = InstallationStatus::Connected;
        Ok(InstallOutcome {
            installation: inst,
            reveal: json!({ "token": token }),
        })
    }

    async fn status(&self, cx: &AppContext) -> Result<AppStatus, AppError> {
        let mut s = AppStatus::from_installation(&cx.installation);
        s.details = json!({
            "greeting": cx.installation.data["settings"]["greeting"],
            "rotations": cx.installation.data["rotations"],
        });
        Ok(s)
    }

    async fn action(
        &self,
        cx: &AppContext,
        name: &str,
        _input: Value,
    ) -> Result<ActionOutcome, AppError> {
        match name {
            "rotate-token" => {
                let (token, sealed) = new_token(cx)?;
                let mut inst = cx.installation.clone();
                let rotations = inst.data["rotations"].as_u64().unwrap_or(0) + 1;
                inst.data["token"] = Value::String(sealed);
                inst.data["rotations"] = json!(rotations);
                cx.events
                    .emit("token_rotated", json!({ "rotations": rotations }))
                    .await?;
                Ok(ActionOutcome::changed(inst, json!({ "token": token })))
            }
            other => Err(AppError::not_found(format!("unknown action '{other}'"))),
        }
    }

    async fn handle(&self, cx: &AppContext, req: AppRequest) -> Result<AppResponse, AppError> {
        let sealed = cx.installation.data["token"].as_str().unwrap_or_default();
        let token = cx.secrets.open("token", sealed)?;
        let given = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
            return Ok(AppResponse::json(
                StatusCode::UNAUTHORIZED,
                &json!({ "error": "bearer token required" }),
            )
            .with_header("www-authenticate", "Bearer realm=\"hello\""));
        }
        let headers: serde_json::Map<String, Value> = ECHOED_HEADERS
            .iter()
            .filter_map(|h| {
                req.header(h)
                    .map(|v| (h.to_string(), Value::String(v.to_owned())))
            })
            .collect();
        Ok(AppResponse::json(
            StatusCode::OK,
            &json!({
                "greeting": cx.installation.data["settings"]["greeting"],
                "organization": cx.org.slug,
                "method": req.method.as_str(),
                "segments": req.segments,
                "slug": req.slug(),
                "trailing_slash": req.trailing_slash,
                "query": req.query,
                "headers": headers,
                "body_length": req.body.len(),
                "base_path": req.base_path,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portico_sdk::http::Method;
    use portico_sdk::testing::TestContext;

    async fn installed() -> (TestContext, String) {
        let mut t = TestContext::new("hello");
        let input = InstallInput {
            config: json!({ "greeting": "Hej" }),
            ..Default::default()
        };
        let out = HelloApp.install(&t.cx, input).await.unwrap();
        let token = out.reveal["token"].as_str().unwrap().to_owned();
        assert_ne!(
            out.installation.data["token"],
            json!(token),
            "the token is stored sealed"
        );
        t.set_installation(out.installation);
        (t, token)
    }

    #[tokio::test]
    async fn install_reports_connected_with_greeting() {
        let (t, _) = installed().await;
        let s = HelloApp.status(&t.cx).await.unwrap();
        assert_eq!(s.status, InstallationStatus::Connected);
        assert_eq!(s.details["greeting"], "Hej");
    }

    #[tokio::test]
    async fn config_is_described_and_validated() {
        let m = HelloApp.manifest();
        // What the host does first: the description refuses wrong types and fills defaults.
        assert!(ConfigField::check(&m.config, &json!({ "greeting": 5 })).is_err());
        assert!(ConfigField::check(&m.config, &json!({ "colour": "red" })).is_err());
        let filled = ConfigField::check(&m.config, &json!(null)).unwrap();
        assert_eq!(filled, json!({ "greeting": "Hello" }));
        // Then the app's own check, for what the description cannot say.
        let t = TestContext::new("hello");
        let blank = InstallInput {
            config: json!({ "greeting": "   " }),
            ..Default::default()
        };
        let err = HelloApp.validate(&t.cx, &blank).await.unwrap_err();
        assert_eq!(err.kind, portico_sdk::ErrorKind::Unprocessable);
        let fine = InstallInput {
            config: filled,
            ..Default::default()
        };
        assert!(HelloApp.validate(&t.cx, &fine).await.is_ok());
    }

    #[tokio::test]
    async fn migrate_moves_the_greeting_under_settings() {
        let mut t = TestContext::new("hello");
        let mut v1 = t.cx.installation.clone();
        v1.data = json!({ "greeting": "Hej", "token": "sealed", "rotations": 3 });
        v1.data_version = 1;
        t.set_installation(v1);
        let v2 = HelloApp.migrate(&t.cx, 1).await.unwrap();
        assert_eq!(
            v2.data,
            json!({ "settings": { "greeting": "Hej" }, "token": "sealed", "rotations": 3 })
        );
    }

    #[tokio::test]
    async fn handle_echoes_with_token_only() {
        let (t, token) = installed().await;
        let req = AppRequest::new(Method::from_bytes(b"PROPFIND").unwrap(), "/b/", "x/y.vcf")
            .with_header("depth", "1")
            .with_body("abc");
        let denied = HelloApp.handle(&t.cx, req.clone()).await.unwrap();
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        let ok = HelloApp
            .handle(
                &t.cx,
                req.with_header("authorization", &format!("Bearer {token}")),
            )
            .await
            .unwrap();
        assert_eq!(ok.status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&ok.body).unwrap();
        assert_eq!(v["method"], "PROPFIND");
        assert_eq!(v["slug"], "x/y.vcf");
        assert_eq!(v["headers"]["depth"], "1");
        assert_eq!(v["body_length"], 3);
    }

    #[tokio::test]
    async fn rotate_token_replaces_it() {
        let (mut t, old) = installed().await;
        let out = HelloApp
            .action(&t.cx, "rotate-token", json!({}))
            .await
            .unwrap();
        let new = out.result["token"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        t.set_installation(out.installation.unwrap());
        let req = |tok: &str| {
            AppRequest::new(Method::GET, "/b/", "")
                .with_header("authorization", &format!("Bearer {tok}"))
        };
        assert_eq!(
            HelloApp.handle(&t.cx, req(&old)).await.unwrap().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            HelloApp.handle(&t.cx, req(&new)).await.unwrap().status,
            StatusCode::OK
        );
        assert_eq!(
            HelloApp.status(&t.cx).await.unwrap().details["rotations"],
            1
        );
        assert!(HelloApp.action(&t.cx, "nope", json!({})).await.is_err());
        assert_eq!(
            t.events.emitted(),
            vec![("token_rotated".to_owned(), json!({ "rotations": 1 }))],
            "the rotation was reported"
        );
    }
}
