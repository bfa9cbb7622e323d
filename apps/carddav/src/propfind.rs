//! PROPFIND (RFC 4918 §9.1).
use crate::card::Card;
use crate::dav::{
    parse_propfind, propstats_for, Depth, MultistatusWriter, Precondition, PropName, PropRequest,
    PropValue, Propstat,
};
use crate::props::{self, Env};
use crate::respond;
use crate::tree::Resource;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppError, AppRequest, AppResponse};

/// The Depth of a PROPFIND. RFC 4918 §10.2 makes a missing header mean infinity; many clients
/// send PROPFIND without Depth when they mean the resource itself, so — a client quirk — a
/// missing header is treated as 0. `infinity` is refused (§9.1, `propfind-finite-depth`).
pub fn propfind_depth(header: Option<&str>) -> Result<Depth, Box<AppResponse>> {
    match header {
        None => Ok(Depth::Zero),
        Some(v) => match Depth::parse(v) {
            Ok(Depth::Infinity) => Err(Box::new(respond::precondition(
                Precondition::PropfindFiniteDepth,
            ))),
            Ok(d) => Ok(d),
            Err(e) => Err(Box::new(respond::dav_error(&e))),
        },
    }
}

/// The propstats of one resource for a PROPFIND request.
pub fn propstats(
    env: &Env<'_>,
    r: &Resource,
    card: Option<&Card>,
    request: &PropRequest,
) -> Vec<Propstat> {
    match request {
        PropRequest::Prop(names) => props::trim_for(
            env,
            propstats_for(names, |n| props::value(env, r, card, n, None)),
        ),
        PropRequest::PropName => {
            // Only properties that exist on the resource (an unset description is not listed).
            let mut names: Vec<(PropName, PropValue)> = props::live_props(r)
                .iter()
                .map(|k| k.name())
                .filter(|n| props::value(env, r, card, n, None).is_some())
                .map(|n| (n, PropValue::Empty))
                .collect();
            if matches!(r, Resource::Book) {
                for clark in env.book.dead.keys() {
                    if let Some(n) = PropName::from_clark(clark) {
                        names.push((n, PropValue::Empty));
                    }
                }
            }
            vec![Propstat::ok(names)]
        }
        PropRequest::AllProp { include } => {
            let mut names = props::allprop_props(r);
            if matches!(r, Resource::Book) {
                names.extend(env.book.dead.keys().filter_map(|c| PropName::from_clark(c)));
            }
            for n in include {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
            // allprop reports only what exists: no 404 propstat for absent ones (§9.1), except
            // for names the client explicitly included.
            let all = propstats_for(&names, |n| props::value(env, r, card, n, None))
                .into_iter()
                .filter(|ps| ps.status == StatusCode::OK || !include.is_empty())
                .collect();
            props::trim_for(env, all)
        }
    }
}

/// Answers a PROPFIND on `r` (already known to exist).
pub async fn propfind(
    env: &Env<'_>,
    r: &Resource,
    card: Option<&Card>,
    req: &AppRequest,
) -> Result<AppResponse, AppError> {
    let depth = match propfind_depth(req.header("depth")) {
        Ok(d) => d,
        Err(resp) => return Ok(*resp),
    };
    let request = match parse_propfind(&req.body) {
        Ok(p) => p,
        Err(e) => return Ok(respond::dav_error(&e)),
    };
    let mut w = MultistatusWriter::begin();
    w.response(&env.hrefs.of(r), &propstats(env, r, card, &request));
    if depth == Depth::One {
        match r {
            Resource::Root => {
                for child in [Resource::Principal, Resource::Home] {
                    w.response(
                        &env.hrefs.of(&child),
                        &propstats(env, &child, None, &request),
                    );
                }
            }
            Resource::Home => {
                let child = Resource::Book;
                w.response(
                    &env.hrefs.of(&child),
                    &propstats(env, &child, None, &request),
                );
            }
            Resource::Book => {
                let kind = crate::listing::Kind::Propfind { request };
                return Ok(crate::listing::Listing::start(env, kind, w, None).into_response());
            }
            _ => {}
        }
    }
    Ok(respond::multistatus(w.finish()))
}
