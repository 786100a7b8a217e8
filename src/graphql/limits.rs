//! Depth and complexity limits, checked on the parsed document before
//! anything runs. Introspection (`__schema`, `__type`) and `__typename` cost
//! nothing and add no depth, so the standard introspection query that
//! GraphiQL and Apollo tooling send always passes.
//!
//! Complexity: every field costs 1 plus its children; a list field paged
//! with `first`, `last` or `limit` costs its children times that page size,
//! and a connection selected without one counts the default page size.
use std::sync::Arc;

use async_graphql::{
    Name, ServerError, ServerResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Field, Selection, SelectionSet},
};

/// Page size of a connection selected with no page argument.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Most fields (aliases included) at the root of one operation.
pub const MAX_ROOT_FIELDS: usize = 64;
/// Most aliased fields in one document.
pub const MAX_ALIASES: usize = 128;

pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
        })
    }
}

struct Measure<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    max_depth: usize,
    too_deep: bool,
    /// Fields at depth 1, and aliased fields anywhere, as expanded.
    root_fields: usize,
    aliases: usize,
}

impl Measure<'_> {
    /// The cost of `set` at `depth`, noting when the depth limit is passed.
    fn cost(&mut self, set: &SelectionSet, depth: usize) -> u64 {
        if depth > self.max_depth {
            // Fragments could nest without end before validation runs;
            // stop as soon as the limit is passed.
            self.too_deep = true;
            return 0;
        }
        let mut total: u64 = 0;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => {
                    self.root_fields += usize::from(depth == 1);
                    self.aliases += usize::from(field.node.alias.is_some());
                    self.field_cost(&field.node, depth)
                }
                Selection::InlineFragment(fragment) => {
                    self.cost(&fragment.node.selection_set.node, depth)
                }
                Selection::FragmentSpread(spread) => {
                    match self.document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => self.cost(&fragment.node.selection_set.node, depth),
                        None => 0,
                    }
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }

    fn field_cost(&mut self, field: &Field, depth: usize) -> u64 {
        let name = field.name.node.as_str();
        if name.starts_with("__") {
            return 0;
        }
        let children = &field.selection_set.node;
        if children.items.is_empty() {
            return 1;
        }
        let inner = self.cost(children, depth + 1);
        1u64.saturating_add(inner.saturating_mul(self.page_size(field)))
    }

    fn page_size(&self, field: &Field) -> u64 {
        let argument = ["first", "last", "limit"].iter().find_map(|name| {
            let value = field.get_argument(name)?;
            let value = value
                .node
                .clone()
                .into_const_with(|var: Name| self.variables.get(&var).cloned().ok_or(()));
            match value {
                Ok(Value::Number(n)) => n.as_u64(),
                _ => None,
            }
        });
        let is_connection = field.selection_set.node.items.iter().any(|item| {
            matches!(&item.node, Selection::Field(f) if matches!(f.node.name.node.as_str(), "edges" | "nodes"))
        });
        argument
            .unwrap_or(if is_connection { DEFAULT_PAGE_SIZE } else { 1 })
            .max(1)
    }
}

fn too_complex(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", Value::from("QUERY_TOO_COMPLEX"));
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let mut measure = Measure {
                document: &document,
                variables,
                max_depth: self.max_depth,
                too_deep: false,
                root_fields: 0,
                aliases: 0,
            };
            let complexity = measure.cost(&operation.node.selection_set.node, 1);
            if measure.too_deep {
                return Err(too_complex(format!(
                    "The query is deeper than the limit of {} (ROSTER_MAX_DEPTH).",
                    self.max_depth
                )));
            }
            if measure.root_fields > MAX_ROOT_FIELDS {
                return Err(too_complex(format!(
                    "An operation may select at most {MAX_ROOT_FIELDS} root fields."
                )));
            }
            if measure.aliases > MAX_ALIASES {
                return Err(too_complex(format!(
                    "A document may hold at most {MAX_ALIASES} aliases."
                )));
            }
            if complexity > self.max_complexity as u64 {
                return Err(too_complex(format!(
                    "The query's complexity {complexity} is above the limit of {} (ROSTER_MAX_COMPLEXITY).",
                    self.max_complexity
                )));
            }
        }
        Ok(document)
    }
}
