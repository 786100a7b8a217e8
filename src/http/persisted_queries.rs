//! Documents a request names instead of sending: Apollo's automatic
//! persisted queries (`extensions.persistedQuery`, the SHA-256 of a
//! document this process has run) and the operations of a trusted-documents
//! manifest (`ROSTER_TRUSTED_DOCUMENTS`), which may be the only documents
//! that run.
use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::Path,
    sync::Arc,
};

use async_graphql::{
    Request, Value,
    parser::types::{DocumentOperations, OperationType},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{bounded_map::BoundedMap, graphql::analysis::Refusal};

/// Apollo Client retries with the whole document on this code (and on its
/// message, `PersistedQueryNotFound`).
pub const NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// Apollo Client stops sending hashes on this code.
pub const NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
/// Trusted documents only: an id the manifest does not hold.
pub const NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";
/// Trusted documents only: a document the manifest does not hold, sent
/// by someone the policy does not let send any.
pub const NOT_TRUSTED: &str = "DOCUMENT_NOT_TRUSTED";

/// The operations of a manifest in the format Apollo's
/// `generate-persisted-query-manifest` writes.
#[derive(Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, Arc<str>>,
    bodies: HashSet<Arc<str>>,
}

impl fmt::Debug for TrustedDocuments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustedDocuments({} operations)", self.by_id.len())
    }
}

#[derive(Deserialize)]
struct Manifest {
    format: String,
    version: u64,
    operations: Vec<ManifestOperation>,
}

#[derive(Deserialize)]
struct ManifestOperation {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    kind: String,
    body: String,
}

impl TrustedDocuments {
    /// Reads the manifest at `path`; the error says what is wrong with it.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a manifest: its format and version, and each operation's id,
    /// type and body, which must be a GraphQL document.
    pub fn parse(text: &str) -> Result<Self, String> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| format!("not a manifest: {e}"))?;
        if manifest.format != "apollo-persisted-query-manifest" || manifest.version != 1 {
            return Err(
                "expected \"format\": \"apollo-persisted-query-manifest\", \"version\": 1"
                    .to_owned(),
            );
        }
        let mut documents = Self::default();
        for operation in manifest.operations {
            let id = operation.id;
            let named = || format!("operation {id:?} ({})", operation.name);
            if id.is_empty() {
                return Err(format!("{}: the id is empty", named()));
            }
            if !matches!(
                operation.kind.as_str(),
                "query" | "mutation" | "subscription"
            ) {
                return Err(format!(
                    "{}: type must be query, mutation or subscription",
                    named()
                ));
            }
            let document = match async_graphql::parser::parse_query(&operation.body) {
                Ok(document) => document,
                Err(e) => {
                    // The setting's error is one line.
                    let reason = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    return Err(format!("{}: the body does not parse: {reason}", named()));
                }
            };
            // One operation per entry, as the generator writes them: a body
            // with more would let `operationName` pick one the manifest's
            // type and name do not describe.
            let (name, definition) = match &document.operations {
                DocumentOperations::Single(definition) => (None, definition),
                DocumentOperations::Multiple(operations) if operations.len() == 1 => {
                    match operations.iter().next() {
                        Some((name, definition)) => (Some(name.as_str()), definition),
                        None => continue,
                    }
                }
                DocumentOperations::Multiple(_) => {
                    return Err(format!(
                        "{}: the body holds more than one operation",
                        named()
                    ));
                }
            };
            let kind = match definition.node.ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            if kind != operation.kind {
                return Err(format!("{}: the body is a {kind}", named()));
            }
            if !operation.name.is_empty() && name != Some(operation.name.as_str()) {
                return Err(format!(
                    "{}: the body's operation is named {}",
                    named(),
                    name.unwrap_or("nothing")
                ));
            }
            let body: Arc<str> = operation.body.into();
            match documents.by_id.get(&id) {
                Some(known) if *known != body => {
                    return Err(format!("{}: the id is given to two bodies", named()));
                }
                _ => {}
            }
            documents.bodies.insert(body.clone());
            documents.by_id.insert(id, body);
        }
        Ok(documents)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn holds(&self, body: &str) -> bool {
        self.bodies.contains(body)
    }
}

/// What a deployment lets a request name or send.
#[derive(Debug, Clone)]
pub struct DocumentPolicy {
    /// Automatic persisted queries: documents sent with their hash are kept
    /// (at most `automatic_max_bytes` of them) and may then be sent by hash.
    pub automatic: bool,
    pub automatic_max_bytes: usize,
    /// Longest document kept by hash: a longer one runs when sent, but is
    /// not kept (each request naming it would make the server read it
    /// whole again, for the price of a hash).
    pub max_kept_document_bytes: usize,
    pub trusted: Option<Arc<TrustedDocuments>>,
    /// Only the trusted documents run.
    pub trusted_only: bool,
    /// With `trusted_only`: staff may still send any document.
    pub staff_bypass: bool,
}

/// How a request's document was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The manifest holds it.
    Trusted,
    /// Only trusted documents run, and this one is not: it runs for staff
    /// when the policy lets them, and is otherwise refused.
    Untrusted,
    /// Anything may run.
    Open,
}

/// A request's document, once its `persistedQuery` extension is read.
pub struct Resolved {
    pub trust: Trust,
    /// The hash under which to keep the document once it has run.
    remember: Option<Box<str>>,
}

/// A document to keep under its hash once it has run.
pub struct ToKeep {
    hash: Box<str>,
    document: Arc<str>,
}

impl Resolved {
    /// What to keep once `request` has run (validated, not refused).
    pub fn to_keep(&self, request: &Request) -> Option<ToKeep> {
        self.remember.as_ref().map(|hash| ToKeep {
            hash: hash.clone(),
            document: request.query.as_str().into(),
        })
    }
}

/// The documents this process keeps by hash, and the policy.
pub struct PersistedQueries {
    policy: DocumentPolicy,
    /// Documents by the lowercase hex SHA-256 of their text.
    kept: BoundedMap<Box<str>, Arc<str>>,
}

/// What a kept document weighs besides its text and hash.
const ENTRY_OVERHEAD: usize = 96;

impl PersistedQueries {
    pub fn new(policy: DocumentPolicy) -> Self {
        let max_bytes = policy.automatic_max_bytes;
        Self {
            kept: BoundedMap::new(max_bytes / (ENTRY_OVERHEAD + 64) + 1, max_bytes),
            policy,
        }
    }

    pub fn policy(&self) -> &DocumentPolicy {
        &self.policy
    }

    /// Reads and removes `request`'s `persistedQuery` extension, filling in
    /// the document it names when the request sent none.
    pub fn resolve(&self, request: &mut Request) -> Result<Resolved, Refusal> {
        let trusted = self.policy.trusted.as_deref();
        let Some(extension) = request.extensions.remove("persistedQuery") else {
            return Ok(Resolved {
                trust: self.trust(trusted.is_some_and(|t| t.holds(&request.query))),
                remember: None,
            });
        };
        let hash = requested_hash(&extension)?;
        if let Some(body) = trusted.and_then(|t| t.by_id.get(hash)) {
            if !request.query.is_empty() && *request.query != **body {
                return Err(mismatch());
            }
            request.query = body.to_string();
            return Ok(Resolved {
                trust: Trust::Trusted,
                remember: None,
            });
        }
        if request.query.is_empty() {
            if self.policy.trusted_only {
                let message = "The persisted query is not one of the trusted documents.";
                return Err(refusal(NOT_IN_LIST, message));
            }
            if !self.policy.automatic {
                return Err(refusal(NOT_SUPPORTED, "PersistedQueryNotSupported"));
            }
            let kept = is_sha256_hex(hash)
                .then(|| self.kept.get(hash.to_ascii_lowercase().as_str()))
                .flatten();
            let Some(document) = kept else {
                return Err(refusal(NOT_FOUND, "PersistedQueryNotFound"));
            };
            request.query = document.to_string();
            return Ok(Resolved {
                trust: Trust::Open,
                remember: None,
            });
        }
        let digest = format!("{:x}", Sha256::digest(request.query.as_bytes()));
        if !digest.eq_ignore_ascii_case(hash) {
            return Err(mismatch());
        }
        let held = trusted.is_some_and(|t| t.holds(&request.query));
        let keep = self.policy.automatic
            && !self.policy.trusted_only
            && request.query.len() <= self.policy.max_kept_document_bytes;
        Ok(Resolved {
            trust: self.trust(held),
            remember: keep.then(|| digest.into_boxed_str()),
        })
    }

    fn trust(&self, held: bool) -> Trust {
        match (held, self.policy.trusted_only) {
            (true, _) => Trust::Trusted,
            (false, true) => Trust::Untrusted,
            (false, false) => Trust::Open,
        }
    }

    /// Keeps a document that has run under the hash it was sent with.
    pub fn keep(&self, kept: ToKeep) {
        let weight = ENTRY_OVERHEAD + kept.hash.len() + kept.document.len();
        self.kept.insert(kept.hash, kept.document, weight);
    }
}

/// The `sha256Hash` of a `persistedQuery` extension of version 1.
fn requested_hash(extension: &Value) -> Result<&str, Refusal> {
    let bad = || {
        let message =
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"...\"}.";
        refusal("BAD_USER_INPUT", message)
    };
    let Value::Object(fields) = extension else {
        return Err(bad());
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(_)) => {
            let message = "Only version 1 of persisted queries is supported.";
            return Err(refusal("BAD_USER_INPUT", message));
        }
        _ => return Err(bad()),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash)) if !hash.is_empty() && hash.len() <= 256 => Ok(hash),
        _ => Err(bad()),
    }
}

/// The answer to an untrusted document when only trusted ones run.
pub fn untrusted() -> Refusal {
    let message = "Only the trusted documents of this server run; this is not one of them.";
    refusal(NOT_TRUSTED, message)
}

fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

fn mismatch() -> Refusal {
    let message = "The persisted query's sha256Hash is not the SHA-256 of its query.";
    refusal("BAD_USER_INPUT", message)
}

fn refusal(code: &'static str, message: &str) -> Refusal {
    Refusal {
        code,
        message: message.to_owned(),
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(operations: &str) -> String {
        format!(
            r#"{{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{operations}]}}"#
        )
    }

    #[test]
    fn a_manifest_names_what_is_wrong_with_it() {
        let op = |id: &str, kind: &str, body: &str| {
            format!(r#"{{"id": "{id}", "name": "Me", "type": "{kind}", "body": "{body}"}}"#)
        };
        let good = op("a1", "query", "query Me { me { id } }");
        assert_eq!(
            TrustedDocuments::parse(&manifest(&good)).map(|t| t.len()),
            Ok(1)
        );
        let cases = [
            ("{}".to_owned(), "not a manifest"),
            (
                manifest(&good).replace("apollo-persisted-query-manifest", "other"),
                "expected \"format\"",
            ),
            (
                manifest(&op("", "query", "{ me { id } }")),
                "the id is empty",
            ),
            (
                manifest(&op("a1", "fetch", "{ me { id } }")),
                "type must be",
            ),
            (
                manifest(&op("a1", "query", "{ me { id }")),
                "does not parse",
            ),
            (
                manifest(&format!(
                    "{good}, {}",
                    op("a1", "query", "query Me { __typename }")
                )),
                "two bodies",
            ),
            (
                manifest(&op(
                    "a1",
                    "query",
                    "query Me { me { id } } query Other { __typename }",
                )),
                "more than one operation",
            ),
            (
                manifest(&op("a1", "query", "mutation Me { __typename }")),
                "the body is a mutation",
            ),
            (
                manifest(&op("a1", "query", "query Other { me { id } }")),
                "named Other",
            ),
        ];
        for (text, expected) in cases {
            let error = TrustedDocuments::parse(&text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
