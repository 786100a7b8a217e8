//! After a mutation, this process forgets every cached read (the users
//! behind tokens, list counts, divisions, groups): whatever it changed is
//! seen by the very next request. The mutation itself reads past the caches,
//! so what it returns shows what it changed. Forgetting happens when the execution ends or is dropped (a
//! deadline), so a committed change is never left behind a stale entry.
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    Response, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery},
    parser::types::{ExecutableDocument, OperationType},
};

use super::loaders::Loaders;
use crate::services::read_cache::ReadCaches;

pub struct ForgetReads(pub Arc<ReadCaches>);

impl ExtensionFactory for ForgetReads {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerRequest {
            caches: Arc::clone(&self.0),
            mutates: AtomicBool::new(false),
        })
    }
}

struct PerRequest {
    caches: Arc<ReadCaches>,
    mutates: AtomicBool,
}

/// Forgets when dropped, however the execution ends.
struct ForgetOnDrop<'a>(&'a ReadCaches);

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget_all();
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for PerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mutates = document
            .operations
            .iter()
            .any(|(_, operation)| operation.node.ty == OperationType::Mutation);
        self.mutates.store(mutates, Ordering::Relaxed);
        if mutates && let Some(loaders) = ctx.data_opt::<Loaders>() {
            loaders.bypass_caches();
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let _forget = self
            .mutates
            .load(Ordering::Relaxed)
            .then(|| ForgetOnDrop(&self.caches));
        next.run(ctx, operation_name).await
    }
}
