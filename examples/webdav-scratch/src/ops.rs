//! The write operations on a [`Tree`] (RFC 4918 §9.2–§9.9), as pure functions: each either
//! changes the tree and says how it went, or refuses and leaves the tree as it was.
use crate::tree::{etag_of, is_within, parent, File, Node, Refusal, Tree, Usage, MAX_PROP_VALUE};
use portico_carddav::dav::{Depth, KnownProp, Precondition, PropName, PropOp, NS_DAV};
use portico_sdk::http::StatusCode;
use portico_sdk::Timestamp;

/// How a write that can create or replace went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// A new resource: 201 Created.
    Created,
    /// An existing resource was replaced: 204 No Content.
    Replaced,
}

impl Done {
    /// The status to answer.
    pub fn status(self) -> StatusCode {
        match self {
            Done::Created => StatusCode::CREATED,
            Done::Replaced => StatusCode::NO_CONTENT,
        }
    }
}

/// COPY or MOVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// COPY (RFC 4918 §9.8).
    Copy,
    /// MOVE (RFC 4918 §9.9).
    Move,
}

/// Refuses unless the parent of `path` is an existing collection (409, RFC 4918 §9.3.1, §9.7.1,
/// §9.8.5).
fn parent_must_exist(tree: &Tree, path: &str) -> Result<(), Refusal> {
    match parent(path) {
        Some(p) if tree.is_collection(p) => Ok(()),
        _ => Err(Refusal::new(
            StatusCode::CONFLICT,
            "the parent collection does not exist",
        )),
    }
}

/// MKCOL (RFC 4918 §9.3): 405 if something is mapped there, 409 without a parent collection,
/// 507 past the resource limit.
pub fn mkcol(tree: &mut Tree, path: &str, now: Timestamp) -> Result<(), Refusal> {
    if tree.get(path).is_some() {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MKCOL needs an unmapped URL",
        )
        .with_condition(Precondition::ResourceMustBeNull));
    }
    parent_must_exist(tree, path)?;
    let before = tree.usage();
    let after = Usage {
        resources: before.resources + 1,
        ..before
    };
    if after.grew_past_limits(&before) {
        return Err(Refusal::storage());
    }
    tree.nodes.insert(path.to_owned(), Node::collection(now));
    Ok(())
}

/// PUT (RFC 4918 §9.7, RFC 9110 §9.3.4): creates or replaces a file; dead properties and the
/// creation date of a replaced file stay.
pub fn put(
    tree: &mut Tree,
    path: &str,
    body: &[u8],
    content_type: &str,
    now: Timestamp,
) -> Result<Done, Refusal> {
    if tree.get(path).is_some_and(Node::is_collection) {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "this is a collection; PUT writes files",
        ));
    }
    parent_must_exist(tree, path)?;
    let before = tree.usage();
    let old = tree.get(path);
    let old_len = old
        .and_then(|n| n.file.as_ref())
        .map_or(0, |f| f.body.len() as u64);
    let after = Usage {
        resources: before.resources + usize::from(old.is_none()),
        bytes: before.bytes - old_len + body.len() as u64,
    };
    if after.grew_past_limits(&before) {
        return Err(Refusal::storage());
    }
    let file = File {
        body: body.to_vec(),
        content_type: content_type.to_owned(),
        etag: etag_of(body),
    };
    match tree.get_mut(path) {
        Some(node) => {
            node.file = Some(file);
            node.modified = now.0;
            Ok(Done::Replaced)
        }
        None => {
            let mut node = Node::collection(now);
            node.file = Some(file);
            tree.nodes.insert(path.to_owned(), node);
            Ok(Done::Created)
        }
    }
}

/// DELETE (RFC 4918 §9.6): the resource and, for a collection, everything below it. The base
/// collection cannot be deleted (403).
pub fn delete(tree: &mut Tree, path: &str) -> Result<(), Refusal> {
    if path.is_empty() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "the base collection cannot be deleted",
        ));
    }
    if tree.get(path).is_none() {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "no such resource"));
    }
    tree.remove_subtree(path);
    Ok(())
}

/// COPY or MOVE of `src` to `dst` (RFC 4918 §9.8, §9.9).
///
/// `depth` matters for a COPY of a collection: `Zero` copies the collection and its dead
/// properties without members, `Infinity` the whole subtree (the caller refuses `One`). MOVE of
/// a collection always moves the subtree. Dead properties go with the resource. With
/// `overwrite` an existing destination is deleted first (204), without it the answer is 412.
/// Other refusals: 404 (no source), 403 (source and destination the same, the base collection
/// involved, or a collection into itself), 409 (no parent at the destination), 507.
pub fn transfer(
    tree: &mut Tree,
    kind: Transfer,
    src: &str,
    dst: &str,
    depth: Depth,
    overwrite: bool,
    now: Timestamp,
) -> Result<Done, Refusal> {
    let Some(node) = tree.get(src) else {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "no such resource"));
    };
    if src.is_empty() || dst.is_empty() {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "the base collection cannot be copied, moved or replaced",
        ));
    }
    if src == dst {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "source and destination are the same resource",
        ));
    }
    let deep = node.is_collection() && (kind == Transfer::Move || depth == Depth::Infinity);
    if deep && is_within(dst, src) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "a collection cannot be copied or moved into itself",
        ));
    }
    parent_must_exist(tree, dst)?;
    let exists = tree.get(dst).is_some();
    if exists && !overwrite {
        return Err(Refusal::new(
            StatusCode::PRECONDITION_FAILED,
            "the destination exists and Overwrite is F",
        ));
    }
    // Everything to place, by path suffix below the destination.
    let mut placed: Vec<(String, Node)> = vec![(String::new(), node.clone())];
    if deep {
        for d in tree.descendants(src) {
            if let (Some(n), Some(suffix)) = (tree.get(&d), d.get(src.len()..)) {
                placed.push((suffix.to_owned(), n.clone()));
            }
        }
    }
    let before = tree.usage();
    let mut next = tree.clone();
    if kind == Transfer::Move {
        next.remove_subtree(src);
    }
    if exists {
        next.remove_subtree(dst);
    }
    for (suffix, mut n) in placed {
        if kind == Transfer::Copy {
            n.created = now.0;
            n.modified = now.0;
        }
        next.nodes.insert(format!("{dst}{suffix}"), n);
    }
    if next.usage().grew_past_limits(&before) {
        return Err(Refusal::storage());
    }
    *tree = next;
    Ok(if exists {
        Done::Replaced
    } else {
        Done::Created
    })
}

/// True for a property this server computes and clients may not set: the `DAV:` properties
/// RFC 4918 and its extensions define (all but `displayname`, which is an ordinary dead
/// property here).
pub fn is_protected(name: &PropName) -> bool {
    name.ns == NS_DAV && name.local != "displayname" && KnownProp::from_name(name).is_some()
}

/// The outcome of a PROPPATCH: a status per property, in request order, and whether the
/// changes were applied (all of them, or none: RFC 4918 §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOutcome {
    /// Property, status and the condition for a `DAV:error` in its propstat.
    pub results: Vec<(PropName, StatusCode, Option<Precondition>)>,
    /// True if the tree changed.
    pub applied: bool,
}

/// PROPPATCH (RFC 4918 §9.2) of the dead properties of `path`, in document order, atomically.
/// Protected properties fail with 403 `cannot-modify-protected-property`, values over
/// [`MAX_PROP_VALUE`] or past the byte limit with 507; when anything fails the rest get 424 and
/// nothing changes. 404 if the resource does not exist.
pub fn proppatch(tree: &mut Tree, path: &str, ops: &[PropOp]) -> Result<PatchOutcome, Refusal> {
    let before = tree.usage();
    let Some(node) = tree.get_mut(path) else {
        return Err(Refusal::new(StatusCode::NOT_FOUND, "no such resource"));
    };
    let mut results: Vec<(PropName, StatusCode, Option<Precondition>)> = ops
        .iter()
        .map(|op| {
            let name = op.name().clone();
            if is_protected(&name) {
                (
                    name,
                    StatusCode::FORBIDDEN,
                    Some(Precondition::CannotModifyProtectedProperty),
                )
            } else if matches!(op, PropOp::Set { value_xml, .. } if value_xml.len() > MAX_PROP_VALUE)
            {
                (name, StatusCode::INSUFFICIENT_STORAGE, None)
            } else {
                (name, StatusCode::OK, None)
            }
        })
        .collect();
    let mut applied = false;
    if results.iter().all(|r| r.1 == StatusCode::OK) {
        let old = node.props.clone();
        for op in ops {
            match op {
                PropOp::Set {
                    name, value_xml, ..
                } => {
                    node.props.insert(name.to_string(), value_xml.clone());
                }
                PropOp::Remove { name } => {
                    node.props.remove(&name.to_string());
                }
            }
        }
        if tree.usage().grew_past_limits(&before) {
            if let Some(node) = tree.get_mut(path) {
                node.props = old;
            }
            for (r, op) in results.iter_mut().zip(ops) {
                if matches!(op, PropOp::Set { .. }) {
                    r.1 = StatusCode::INSUFFICIENT_STORAGE;
                }
            }
        } else {
            applied = true;
        }
    }
    if !applied {
        for r in &mut results {
            if r.1 == StatusCode::OK {
                r.1 = StatusCode::FAILED_DEPENDENCY;
            }
        }
    }
    Ok(PatchOutcome { results, applied })
}
