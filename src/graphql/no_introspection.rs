//! With introspection switched off, `__schema` and `__type` are refused as a
//! validation error, so tools learn why instead of reading a bare null.
use std::sync::Arc;

use async_graphql::{
    Pos, ServerError, ServerResult, Value, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

pub struct NoIntrospection;

impl ExtensionFactory for NoIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NoIntrospection)
    }
}

fn introspection_field(document: &ExecutableDocument, set: &SelectionSet) -> Option<Pos> {
    set.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => {
            let name = field.node.name.node.as_str();
            (name == "__schema" || name == "__type").then_some(field.pos)
        }
        Selection::InlineFragment(fragment) => {
            introspection_field(document, &fragment.node.selection_set.node)
        }
        Selection::FragmentSpread(spread) => document
            .fragments
            .get(&spread.node.fragment_name.node)
            .and_then(|fragment| introspection_field(document, &fragment.node.selection_set.node)),
    })
}

#[async_graphql::async_trait::async_trait]
impl Extension for NoIntrospection {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let found = document.operations.iter().find_map(|(_, operation)| {
            introspection_field(&document, &operation.node.selection_set.node)
        });
        match found {
            Some(pos) => {
                let mut error =
                    ServerError::new("Introspection is disabled on this server.", Some(pos));
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("code", Value::from("GRAPHQL_VALIDATION_FAILED"));
                Err(error)
            }
            None => Ok(document),
        }
    }
}
