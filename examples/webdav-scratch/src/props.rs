//! Property values and the PROPFIND answer (RFC 4918 §9.1, §15).
use crate::tree::{Node, Tree};
use portico_carddav::dav::{
    propstats_for, Depth, MultistatusWriter, PropName, PropRequest, PropValue, Propstat, NS_DAV,
};
use std::time::{Duration, UNIX_EPOCH};

/// The live properties this server computes, in the order `allprop` and `propname` list them.
const LIVE: [&str; 8] = [
    "resourcetype",
    "creationdate",
    "getlastmodified",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "supportedlock",
    "lockdiscovery",
];

/// `getlastmodified`: an HTTP date (RFC 9110 §5.6.7).
pub fn http_date(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}

/// `creationdate`: an RFC 3339 date-time in UTC, whole seconds.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar:
/// shift to a calendar whose years start in March (so the leap day ends the year), count
/// 400-year eras, then the year, day of year and month within the era.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The value of a live property of `node`, if it has that property.
fn live_value(node: &Node, name: &PropName) -> Option<PropValue> {
    if name.ns != NS_DAV {
        return None;
    }
    let file = node.file.as_ref();
    match name.local.as_str() {
        "resourcetype" => Some(if node.is_collection() {
            PropValue::Xml("<d:collection/>".into())
        } else {
            PropValue::Empty
        }),
        "creationdate" => Some(PropValue::Text(rfc3339(node.created))),
        "getlastmodified" => Some(PropValue::Text(http_date(node.modified))),
        "getcontentlength" => file.map(|f| PropValue::Text(f.body.len().to_string())),
        "getcontenttype" => file.map(|f| PropValue::Text(f.content_type.clone())),
        "getetag" => file.map(|f| PropValue::Text(f.etag.clone())),
        // Class 1: no lock types are supported and nothing is ever locked.
        "supportedlock" | "lockdiscovery" => Some(PropValue::Empty),
        _ => None,
    }
}

/// The value of any property of `node`, live or dead.
pub fn value(node: &Node, name: &PropName) -> Option<PropValue> {
    live_value(node, name).or_else(|| {
        node.props
            .get(&name.to_string())
            .map(|v| PropValue::Xml(v.clone()))
    })
}

/// The names of every property `node` has: live first, then dead in name order.
pub fn names(node: &Node) -> Vec<PropName> {
    let live = LIVE
        .iter()
        .map(|l| PropName::dav(l))
        .filter(|n| live_value(node, n).is_some());
    let dead = node.props.keys().filter_map(|k| PropName::from_clark(k));
    live.chain(dead).collect()
}

/// The absolute path clients address `path` by: the base path, the path, and a final `/` for a
/// collection (decoded; the writer encodes it).
pub fn href(base_path: &str, path: &str, collection: bool) -> String {
    if path.is_empty() {
        base_path.to_owned()
    } else if collection {
        format!("{base_path}{path}/")
    } else {
        format!("{base_path}{path}")
    }
}

/// The propstats answering `request` for one resource.
fn propstats(node: &Node, request: &PropRequest) -> Vec<Propstat> {
    match request {
        PropRequest::Prop(wanted) => propstats_for(wanted, |n| value(node, n)),
        PropRequest::PropName => vec![Propstat::ok(
            names(node)
                .into_iter()
                .map(|n| (n, PropValue::Empty))
                .collect(),
        )],
        PropRequest::AllProp { include } => {
            let mut all = names(node);
            for n in include {
                if !all.contains(n) {
                    all.push(n.clone());
                }
            }
            propstats_for(&all, |n| value(node, n))
        }
    }
}

/// The 207 body of a PROPFIND on `path` (which must exist) with `depth` (RFC 4918 §9.1).
/// `Depth: infinity` is served: the tree is small by construction.
pub fn propfind(
    tree: &Tree,
    path: &str,
    depth: Depth,
    request: &PropRequest,
    base_path: &str,
) -> Vec<u8> {
    let mut targets = vec![path.to_owned()];
    if tree.is_collection(path) {
        match depth {
            Depth::Zero => {}
            Depth::One => targets.extend(tree.members(path)),
            Depth::Infinity => targets.extend(tree.descendants(path)),
        }
    }
    let mut w = MultistatusWriter::begin();
    for p in &targets {
        if let Some(node) = tree.get(p) {
            w.response(
                &href(base_path, p, node.is_collection()),
                &propstats(node, request),
            );
        }
    }
    w.finish()
}
