//! The app actions that manage credentials: `create-device`, `list-devices`, `revoke-device`
//! and `set-read-only`. Input is a JSON object; shape errors are 400, refused values 422.
//!
//! Listings never carry a password or a digest: a device password is shown once, in the
//! answer to `create-device`.
use crate::auth::Credentials;
use crate::card::http_date;
use crate::devices::{
    self, Device, DeviceError, INSTALL_ID, INSTALL_LABEL, INSTALL_LAST_USED_FIELD, READ_ONLY_FIELD,
};
use portico_sdk::{ActionOutcome, AppContext, AppError, Installation};
use serde_json::{json, Map, Value};

/// Bytes of randomness in a device id (12 URL-safe characters).
const DEVICE_ID_BYTES: usize = 9;

fn object(input: &Value) -> Result<Map<String, Value>, AppError> {
    match input {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        _ => Err(AppError::bad_request("the input must be a JSON object")),
    }
}

fn flag(m: &Map<String, Value>, name: &str) -> Result<Option<bool>, AppError> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(AppError::bad_request(format!(
            "{name} must be true or false"
        ))),
    }
}

fn text<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, AppError> {
    match m.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(AppError::unprocessable(format!("{name} is required"))),
        Some(_) => Err(AppError::bad_request(format!("{name} must be a string"))),
    }
}

fn refused(e: DeviceError) -> AppError {
    AppError::unprocessable(e.to_string())
}

fn with_devices(cx: &AppContext, list: &[Device]) -> Result<Installation, AppError> {
    let mut inst = cx.installation.clone();
    if !inst.data.is_object() {
        inst.data = json!({});
    }
    inst.data[devices::DEVICES_FIELD] =
        serde_json::to_value(list).map_err(|e| AppError::internal(e.to_string()))?;
    Ok(inst)
}

fn date(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| {
        Value::String(http_date(ms.div_euclid(1000)))
    })
}

/// `create-device` `{label, read_only?}`: a new device password, returned once with the
/// connection details.
pub fn create(
    cx: &AppContext,
    input: &Value,
    password_bytes: usize,
) -> Result<ActionOutcome, AppError> {
    let m = object(input)?;
    let mut list = devices::devices_of(&cx.installation.data);
    let label = devices::check_new(text(&m, "label")?, &list).map_err(refused)?;
    let read_only = flag(&m, "read_only")?.unwrap_or(false);
    let password = cx.secrets.random_token(password_bytes);
    let device = Device {
        id: cx.secrets.random_token(DEVICE_ID_BYTES).into_inner(),
        label,
        digest: devices::digest_hex(password.expose()),
        created_at: cx.clock.now().0,
        last_used: None,
        read_only,
    };
    let result = json!({
        "id": device.id,
        "label": device.label,
        "read_only": read_only || devices::read_only_of(&cx.installation.data),
        "created_at": date(Some(device.created_at)),
        "url": cx.base_url(),
        "username": cx.org.slug,
        "password": password.expose(),
    });
    list.push(device);
    Ok(ActionOutcome::changed(with_devices(cx, &list)?, result))
}

/// `list-devices`: every password of the installation, the install password first, with label,
/// id, creation and last use; never a secret.
pub fn list(cx: &AppContext, creds: &Credentials) -> Value {
    let inst = &cx.installation;
    let book_ro = devices::read_only_of(&inst.data);
    let mut out = vec![json!({
        "id": INSTALL_ID,
        "kind": "install",
        "label": INSTALL_LABEL,
        "read_only": book_ro,
        "created_at": date(Some(inst.created_at.0)),
        "last_used_at": date(creds.last_used(&inst.id, INSTALL_ID, inst.data[INSTALL_LAST_USED_FIELD].as_i64())),
    })];
    for d in devices::devices_of(&inst.data) {
        out.push(json!({
            "id": d.id,
            "kind": "device",
            "label": d.label,
            "read_only": book_ro || d.read_only,
            "created_at": date(Some(d.created_at)),
            "last_used_at": date(creds.last_used(&inst.id, &d.id, d.last_used)),
        }));
    }
    json!({
        "read_only": book_ro,
        "max_devices": devices::MAX_DEVICES,
        "devices": out,
    })
}

/// `revoke-device` `{id}`: removes one device password; the others keep working. The install
/// password cannot be revoked (it is what the `credentials` action and Apple profiles hand
/// out): `regenerate-password` replaces it instead.
pub fn revoke(
    cx: &AppContext,
    creds: &Credentials,
    input: &Value,
) -> Result<ActionOutcome, AppError> {
    let m = object(input)?;
    let id = text(&m, "id")?;
    if id == INSTALL_ID {
        return Err(AppError::unprocessable(
            "the install password cannot be revoked; regenerate it instead",
        ));
    }
    let mut list = devices::devices_of(&cx.installation.data);
    let Some(at) = list.iter().position(|d| d.id == id) else {
        return Err(AppError::not_found(format!("no device password '{id}'")));
    };
    let gone = list.remove(at);
    creds.forget_credential(&cx.installation.id, &gone.id);
    Ok(ActionOutcome::changed(
        with_devices(cx, &list)?,
        json!({ "revoked": gone.id, "label": gone.label }),
    ))
}

/// `set-read-only` `{read_only}`: the install-wide setting (also settable at install), changed
/// later. Takes effect from the next request.
pub fn set_read_only(cx: &AppContext, input: &Value) -> Result<ActionOutcome, AppError> {
    let m = object(input)?;
    let Some(read_only) = flag(&m, "read_only")? else {
        return Err(AppError::unprocessable("read_only is required"));
    };
    let mut inst = cx.installation.clone();
    if !inst.data.is_object() {
        inst.data = json!({});
    }
    inst.data[READ_ONLY_FIELD] = Value::Bool(read_only);
    Ok(ActionOutcome::changed(
        inst,
        json!({ "read_only": read_only }),
    ))
}
