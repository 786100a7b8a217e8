//! Relay connections of users, groups and divisions.
use async_graphql::{Object, SimpleObject};

use super::types::{AuditEvent, Division, Group, User, WebhookDelivery};
use crate::{error::Error, services::reads::pagination::Page};

/// Where a page sits in its list.
#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    /// Rows follow this page (paging forward: more to fetch with `after`).
    pub has_next_page: bool,
    /// Rows precede this page (paging backward: more with `before`).
    pub has_previous_page: bool,
    /// The first row's cursor; null for an empty page.
    pub start_cursor: Option<String>,
    /// The last row's cursor; null for an empty page.
    pub end_cursor: Option<String>,
}

macro_rules! connection {
    ($connection:ident, $edge:ident, $node:ident, $doc:literal) => {
        #[doc = concat!("One ", $doc, " of a page, with its cursor.")]
        #[derive(SimpleObject, Clone)]
        pub struct $edge {
            /// Opaque; pass it as `after` or `before`.
            pub cursor: String,
            #[doc = concat!("The ", $doc, ".")]
            pub node: $node,
        }

        #[doc = concat!("A page of ", $doc, "s.")]
        pub struct $connection {
            pub edges: Vec<$edge>,
            pub page_info: PageInfo,
            /// Computed only when `totalCount` is selected.
            pub total_count: Option<i64>,
        }

        impl $connection {
            /// Builds the connection from a fetched page.
            pub fn new<M>(
                page: Page<M>,
                node: impl Fn(M) -> $node,
                total_count: Option<i64>,
            ) -> Self {
                let page_info = page_info(&page);
                let edges = page
                    .rows
                    .into_iter()
                    .map(|(cursor, row)| $edge {
                        cursor,
                        node: node(row),
                    })
                    .collect();
                Self {
                    edges,
                    page_info,
                    total_count,
                }
            }
        }

        #[Object]
        impl $connection {
            #[doc = concat!("The page's ", $doc, "s, each with its cursor.")]
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            #[doc = concat!("The page's ", $doc, "s, without cursors.")]
            async fn nodes(&self) -> Vec<$node> {
                self.edges.iter().map(|edge| edge.node.clone()).collect()
            }

            /// Where the page sits in the list.
            async fn page_info(&self) -> &PageInfo {
                &self.page_info
            }

            /// Every match of the filter, not just this page.
            async fn total_count(&self) -> async_graphql::Result<i64> {
                self.total_count.ok_or_else(|| {
                    async_graphql::ErrorExtensions::extend(&Error::internal(anyhow::anyhow!(
                        "totalCount was not computed"
                    )))
                })
            }
        }
    };
}

connection!(UserConnection, UserEdge, User, "user");
connection!(GroupConnection, GroupEdge, Group, "group");
connection!(DivisionConnection, DivisionEdge, Division, "division");
connection!(
    AuditEventConnection,
    AuditEventEdge,
    AuditEvent,
    "audit event"
);

fn page_info<M>(page: &Page<M>) -> PageInfo {
    PageInfo {
        has_next_page: page.has_next_page,
        has_previous_page: page.has_previous_page,
        start_cursor: page.rows.first().map(|(cursor, _)| cursor.clone()),
        end_cursor: page.rows.last().map(|(cursor, _)| cursor.clone()),
    }
}
connection!(
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookDelivery,
    "webhook delivery"
);
