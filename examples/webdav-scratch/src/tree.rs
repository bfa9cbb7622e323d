//! The resource tree of one installation, kept in its installation data, and its limits.
//!
//! Paths are decoded, relative to the installation base, without leading or trailing `/`:
//! `""` is the base collection itself, `"litmus/res"` a member two levels down. A path's
//! descendants are the keys starting with the path and `/`, so a subtree is one ordered range of
//! the map.
use portico_carddav::dav::Precondition;
use portico_sdk::http::StatusCode;
use portico_sdk::{AppError, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The field of the installation data holding the tree.
pub const TREE_FIELD: &str = "tree";
/// Most resources (collections and files, the base collection not counted).
pub const MAX_RESOURCES: usize = 256;
/// Most bytes stored: file bodies plus dead property names and values.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Largest value of one dead property, in bytes of XML.
pub const MAX_PROP_VALUE: usize = 64 * 1024;
/// Longest path, in bytes (decoded).
pub const MAX_PATH: usize = 1024;

/// One resource: a collection (`file` is `None`) or a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The body and its metadata; `None` for a collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<File>,
    /// Creation time, milliseconds since the epoch.
    pub created: i64,
    /// Last change of the body (or creation), milliseconds since the epoch.
    pub modified: i64,
    /// Dead properties: Clark name (`{ns}local`) → value as self-contained XML.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, String>,
}

/// A file's body and metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// The bytes, base64 in JSON.
    #[serde(with = "b64")]
    pub body: Vec<u8>,
    /// The `Content-Type` it was written with.
    pub content_type: String,
    /// Strong entity tag, quotes included.
    pub etag: String,
}

impl Node {
    /// A new, empty collection.
    pub fn collection(now: Timestamp) -> Self {
        Node {
            file: None,
            created: now.0,
            modified: now.0,
            props: BTreeMap::new(),
        }
    }

    /// True for a collection.
    pub fn is_collection(&self) -> bool {
        self.file.is_none()
    }

    /// The entity tag of a file; collections have none.
    pub fn etag(&self) -> Option<&str> {
        self.file.as_ref().map(|f| f.etag.as_str())
    }

    /// Bytes this node counts against [`MAX_BYTES`].
    pub fn bytes(&self) -> u64 {
        let body = self.file.as_ref().map_or(0, |f| f.body.len());
        let props: usize = self.props.iter().map(|(k, v)| k.len() + v.len()).sum();
        (body + props) as u64
    }
}

/// A strong entity tag for a body: the first 128 bits of its SHA-256, quoted.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// How much of the limits a tree uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resources, the base collection not counted.
    pub resources: usize,
    /// Bytes of bodies and dead properties.
    pub bytes: u64,
}

impl Usage {
    /// True if `self` is over a limit that `before` was not already over by as much: a change
    /// that grows past a limit is refused, one that shrinks an over-full tree is not.
    pub fn grew_past_limits(&self, before: &Usage) -> bool {
        (self.resources > MAX_RESOURCES && self.resources > before.resources)
            || (self.bytes > MAX_BYTES && self.bytes > before.bytes)
    }
}

/// Why an operation was refused: the status, a short reason, and the precondition to name in
/// a `DAV:error` body where RFC 4918 defines one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status to answer.
    pub status: StatusCode,
    /// A short human-readable reason (the body when there is no condition).
    pub reason: String,
    /// The condition for a `DAV:error` body, if any.
    pub condition: Option<Precondition>,
}

impl Refusal {
    /// A refusal with this status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
            condition: None,
        }
    }

    /// Adds the condition to name in the body (builder style).
    pub fn with_condition(mut self, condition: Precondition) -> Self {
        self.condition = Some(condition);
        self
    }

    /// 507 Insufficient Storage, naming the limits.
    pub fn storage() -> Self {
        Refusal::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "this scratch area holds at most {MAX_RESOURCES} resources and {MAX_BYTES} bytes"
            ),
        )
    }
}

/// The whole tree: path → resource. Always holds the base collection `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tree {
    /// The resources by path.
    pub nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// A tree holding only the base collection, created `now`.
    pub fn new(now: Timestamp) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(String::new(), Node::collection(now));
        Tree { nodes }
    }

    /// Reads the tree from installation data (an empty tree if the field is absent).
    pub fn from_data(data: &serde_json::Value) -> Result<Self, AppError> {
        let mut tree = match data.get(TREE_FIELD) {
            None | Some(serde_json::Value::Null) => Tree {
                nodes: BTreeMap::new(),
            },
            Some(v) => Tree::deserialize(v)
                .map_err(|e| AppError::internal(format!("stored tree is unreadable: {e}")))?,
        };
        tree.nodes
            .entry(String::new())
            .or_insert_with(|| Node::collection(Timestamp(0)));
        Ok(tree)
    }

    /// Writes the tree into installation data (which becomes an object if it is not one).
    pub fn write_into(&self, data: &mut serde_json::Value) -> Result<(), AppError> {
        if !data.is_object() {
            *data = serde_json::json!({});
        }
        data[TREE_FIELD] =
            serde_json::to_value(self).map_err(|e| AppError::internal(e.to_string()))?;
        Ok(())
    }

    /// The resource at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// The resource at `path`, for changing it.
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    /// True if `path` is an existing collection.
    pub fn is_collection(&self, path: &str) -> bool {
        self.get(path).is_some_and(Node::is_collection)
    }

    /// The paths of the resources strictly below `path`, in order.
    pub fn descendants(&self, path: &str) -> Vec<String> {
        if path.is_empty() {
            return self
                .nodes
                .keys()
                .filter(|k| !k.is_empty())
                .cloned()
                .collect();
        }
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The immediate members of the collection at `path`, in order.
    pub fn members(&self, path: &str) -> Vec<String> {
        self.descendants(path)
            .into_iter()
            .filter(|k| {
                let rest = if path.is_empty() {
                    k.as_str()
                } else {
                    k.get(path.len() + 1..).unwrap_or("")
                };
                !rest.contains('/')
            })
            .collect()
    }

    /// Removes `path` and everything below it; returns how many resources went.
    pub fn remove_subtree(&mut self, path: &str) -> usize {
        let mut gone = self.descendants(path);
        if !path.is_empty() {
            gone.push(path.to_owned());
        }
        for k in &gone {
            self.nodes.remove(k);
        }
        gone.len()
    }

    /// Resources and bytes in use.
    pub fn usage(&self) -> Usage {
        Usage {
            resources: self.nodes.len().saturating_sub(1),
            bytes: self.nodes.values().map(Node::bytes).sum(),
        }
    }
}

/// The parent of a path (`"a/b"` → `"a"`, `"a"` → `""`); `None` for the base.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rsplit_once('/').map_or("", |(p, _)| p))
}

/// True if `path` is `ancestor` or below it.
pub fn is_within(path: &str, ancestor: &str) -> bool {
    ancestor.is_empty()
        || path == ancestor
        || (path.len() > ancestor.len()
            && path.starts_with(ancestor)
            && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// Serde helper: bytes as standard base64 text.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
