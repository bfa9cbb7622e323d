//! PROPPATCH on the address book (RFC 4918 §9.2): `displayname` and
//! `addressbook-description` are writable, other live properties are protected, dead properties
//! are stored with their content intact. All instructions succeed or none do.
use crate::book::{BookSettings, BOOK_FIELD};
use crate::dav::{
    parse_proppatch, KnownProp, MultistatusWriter, Precondition, PropOp, PropValue, Propstat,
};
use crate::props::Env;
use crate::respond;
use crate::tree::Resource;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppError, AppRequest, AppResponse, ErrorKind};

/// Largest dead property value kept, and most dead properties per book.
const MAX_DEAD_VALUE: usize = 64 * 1024;
const MAX_DEAD_PROPS: usize = 100;

enum Verdict {
    Ok,
    Protected,
    TooLarge,
}

fn judge(op: &PropOp) -> Verdict {
    match KnownProp::from_name(op.name()) {
        Some(KnownProp::DisplayName) | Some(KnownProp::AddressbookDescription) => Verdict::Ok,
        Some(_) => Verdict::Protected,
        None => match op {
            PropOp::Set { element_xml, .. } if element_xml.len() > MAX_DEAD_VALUE => {
                Verdict::TooLarge
            }
            _ => Verdict::Ok,
        },
    }
}

/// Applies the instructions to the settings (all already judged acceptable).
pub fn apply(book: &mut BookSettings, ops: &[PropOp]) {
    for op in ops {
        let name = op.name();
        match (KnownProp::from_name(name), op) {
            (Some(KnownProp::DisplayName), PropOp::Set { text, .. }) => {
                book.displayname = Some(text.clone())
            }
            (Some(KnownProp::DisplayName), PropOp::Remove { .. }) => book.displayname = None,
            (Some(KnownProp::AddressbookDescription), PropOp::Set { text, .. }) => {
                book.description = Some(text.clone())
            }
            (Some(KnownProp::AddressbookDescription), PropOp::Remove { .. }) => {
                book.description = None
            }
            (_, PropOp::Set { element_xml, .. }) => {
                book.dead.insert(name.to_string(), element_xml.clone());
            }
            (_, PropOp::Remove { .. }) => {
                book.dead.remove(&name.to_string());
            }
        }
    }
}

/// Answers a PROPPATCH on `r`.
pub async fn proppatch(
    env: &Env<'_>,
    r: &Resource,
    req: &AppRequest,
) -> Result<AppResponse, AppError> {
    let parsed = match parse_proppatch(&req.body) {
        Ok(p) => p,
        Err(e) => return Ok(respond::dav_error(&e)),
    };
    if *r != Resource::Book {
        return Ok(respond::status(
            StatusCode::FORBIDDEN,
            "only the address book's properties can be changed",
        ));
    }
    let verdicts: Vec<Verdict> = parsed.ops.iter().map(judge).collect();
    let mut book = env.book.clone();
    apply(&mut book, &parsed.ops);
    let too_many = book.dead.len() > MAX_DEAD_PROPS;
    let all_ok = !too_many && verdicts.iter().all(|v| matches!(v, Verdict::Ok));
    let mut ok = Vec::new();
    let mut failed_dep = Vec::new();
    let mut protected = Vec::new();
    let mut too_large = Vec::new();
    for (op, v) in parsed.ops.iter().zip(&verdicts) {
        let entry = (op.name().clone(), PropValue::Empty);
        match v {
            Verdict::Ok if all_ok => ok.push(entry),
            Verdict::Ok if too_many && KnownProp::from_name(op.name()).is_none() => {
                too_large.push(entry)
            }
            Verdict::Ok => failed_dep.push(entry),
            Verdict::Protected => protected.push(entry),
            Verdict::TooLarge => too_large.push(entry),
        }
    }
    if all_ok {
        let mut inst = env.cx.installation_store.load().await?;
        let mut latest = BookSettings::from_data(&inst.data);
        apply(&mut latest, &parsed.ops);
        if !inst.data.is_object() {
            inst.data = serde_json::json!({});
        }
        inst.data[BOOK_FIELD] =
            serde_json::to_value(&latest).map_err(|e| AppError::internal(e.to_string()))?;
        match env.cx.installation_store.save(&inst).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::PreconditionFailed => {
                return Ok(respond::status(
                    StatusCode::CONFLICT,
                    "the address book changed meanwhile; retry",
                ));
            }
            Err(e) => return Err(e),
        }
    }
    let mut propstats = Vec::new();
    if !ok.is_empty() {
        propstats.push(Propstat::ok(ok));
    }
    if !protected.is_empty() {
        propstats.push(
            Propstat::new(StatusCode::FORBIDDEN, protected)
                .with_error(Precondition::CannotModifyProtectedProperty),
        );
    }
    if !too_large.is_empty() {
        propstats.push(Propstat::new(StatusCode::INSUFFICIENT_STORAGE, too_large));
    }
    if !failed_dep.is_empty() {
        propstats.push(Propstat::new(StatusCode::FAILED_DEPENDENCY, failed_dep));
    }
    let mut w = MultistatusWriter::begin();
    w.response(&env.hrefs.of(r), &propstats);
    Ok(respond::multistatus(w.finish()))
}
