//! Conditional requests: the WebDAV `If` header (RFC 4918 §10.4) and `If-Match` /
//! `If-None-Match` (RFC 9110 §13.1).
//!
//! This server grants no locks (class 1), so no resource ever has a state token: a condition on
//! a lock token (or on `DAV:no-lock`) is false, and `Not <token>` is true. A request that
//! submits a lock token it does not hold therefore fails with 412 instead of writing.
use crate::tree::Tree;
use portico_carddav::dav::normalize_href;
use portico_sdk::AppRequest;

/// One condition of an `If` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `<state-token>` (or `Not <state-token>` when the flag is set).
    StateToken(bool, String),
    /// `[entity-tag]` (or `Not [entity-tag]`).
    ETag(bool, String),
}

/// One `If` list: its resource tag (`None` for a no-tag list) and its conditions, all of
/// which must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    /// The tagged resource, as sent.
    pub tag: Option<String>,
    /// The conditions.
    pub conditions: Vec<Condition>,
}

/// Parses an `If` header value (RFC 4918 §10.4.2). `None` if it is malformed, including a mix
/// of tagged and untagged lists and an empty list.
pub fn parse_if(value: &str) -> Option<Vec<IfList>> {
    let mut s = value.trim();
    let mut lists = Vec::new();
    let mut tag: Option<String> = None;
    let mut tagged: Option<bool> = None;
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('<') {
            if tagged == Some(false) {
                return None;
            }
            tagged = Some(true);
            let (t, rest) = rest.split_once('>')?;
            tag = Some(t.trim().to_owned());
            s = rest.trim_start();
            if !s.starts_with('(') {
                return None;
            }
        } else if let Some(rest) = s.strip_prefix('(') {
            tagged.get_or_insert(false);
            let (conditions, rest) = parse_list(rest)?;
            lists.push(IfList {
                tag: tag.clone(),
                conditions,
            });
            s = rest.trim_start();
        } else {
            return None;
        }
    }
    (!lists.is_empty()).then_some(lists)
}

/// The conditions of one list, after its `(`; returns them and what follows the `)`.
fn parse_list(mut s: &str) -> Option<(Vec<Condition>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix(')') {
            return (!out.is_empty()).then_some((out, rest));
        }
        let mut not = false;
        if s.get(..3).is_some_and(|w| w.eq_ignore_ascii_case("not")) {
            not = true;
            s = s.get(3..)?.trim_start();
        }
        if let Some(rest) = s.strip_prefix('<') {
            let (token, rest) = rest.split_once('>')?;
            out.push(Condition::StateToken(not, token.trim().to_owned()));
            s = rest;
        } else if let Some(rest) = s.strip_prefix('[') {
            let (etag, rest) = rest.split_once(']')?;
            out.push(Condition::ETag(not, etag.trim().to_owned()));
            s = rest;
        } else {
            return None;
        }
    }
}

/// Evaluates parsed lists: true if any list holds (RFC 4918 §10.4.3). `etag_of(tag)` gives the
/// current entity tag of the list's resource (the request target for `None`), `None` if it
/// has none (missing, a collection, or outside this installation).
pub fn if_holds<F>(lists: &[IfList], etag_of: F) -> bool
where
    F: Fn(Option<&str>) -> Option<String>,
{
    lists.iter().any(|list| {
        let etag = etag_of(list.tag.as_deref());
        list.conditions.iter().all(|c| match c {
            // No resource here ever has a state token: nothing is ever locked.
            Condition::StateToken(not, _) => *not,
            Condition::ETag(not, want) => (etag.as_deref() == Some(want.as_str())) != *not,
        })
    })
}

/// Why a request's conditions stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// 412 Precondition Failed.
    Failed,
    /// 304 Not Modified (a safe method's `If-None-Match` matched), with the current entity tag.
    NotModified(Option<String>),
    /// 400: the `If` header is malformed.
    Malformed,
}

/// True if any entity tag of a comma-separated list equals `etag`; weak comparison ignores a
/// `W/` prefix on either side (RFC 9110 §8.8.3.2).
fn list_matches(list: &str, etag: &str, weak: bool) -> bool {
    let strip = |t: &str| -> String {
        let t = t.trim();
        if weak {
            t.strip_prefix("W/").unwrap_or(t).to_owned()
        } else {
            t.to_owned()
        }
    };
    if !weak && etag.starts_with("W/") {
        return false;
    }
    let current = strip(etag);
    list.split(',')
        .map(strip)
        .any(|t| t == current && (weak || !t.starts_with("W/")))
}

/// Checks `If`, `If-Match` and `If-None-Match` of `req` against the resource at `path`.
/// `safe` is true for GET/HEAD/PROPFIND, where a matching `If-None-Match` means 304.
pub fn check(req: &AppRequest, tree: &Tree, path: &str, safe: bool) -> Result<(), Blocked> {
    let node = tree.get(path);
    let etag = node.and_then(|n| n.etag());
    if let Some(value) = req.header("if") {
        let lists = parse_if(value).ok_or(Blocked::Malformed)?;
        let holds = if_holds(&lists, |tag| match tag {
            None => etag.map(str::to_owned),
            Some(t) => normalize_href(t, &req.base_path).and_then(|p| {
                tree.get(p.trim_end_matches('/'))
                    .and_then(|n| n.etag())
                    .map(str::to_owned)
            }),
        });
        if !holds {
            return Err(Blocked::Failed);
        }
    }
    if let Some(value) = req.header("if-match") {
        let ok = if value.trim() == "*" {
            node.is_some()
        } else {
            etag.is_some_and(|e| list_matches(value, e, false))
        };
        if !ok {
            return Err(Blocked::Failed);
        }
    }
    if let Some(value) = req.header("if-none-match") {
        let matched = if value.trim() == "*" {
            node.is_some()
        } else {
            etag.is_some_and(|e| list_matches(value, e, true))
        };
        if matched {
            return Err(if safe {
                Blocked::NotModified(etag.map(str::to_owned))
            } else {
                Blocked::Failed
            });
        }
    }
    Ok(())
}
