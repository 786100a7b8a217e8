//! Documents parsed before, by their text. Apps send the same few documents
//! again and again, and parsing is a large part of a small query's work
//! (about half of what `{ __typename }` costs inside async-graphql). A
//! parsed document depends on nothing but its text, so entries never go
//! stale; the limits below only bound the memory they take.
use std::{mem::size_of, sync::Arc};

use async_graphql::{
    Positioned, Request,
    parser::types::{ExecutableDocument, Field, Selection},
};

use super::analysis::{count_values, each_selection};
use crate::bounded_map::BoundedMap;

/// Longer documents are parsed each time, not kept (they are rare, and
/// each could hold tens of kilobytes once parsed).
const MAX_TEXT: usize = 4096;
/// Documents kept at most.
const MAX_DOCUMENTS: usize = 256;
/// Most memory the kept documents take, as weighed by [`weight`]: a 4 KiB
/// text of one-letter fields parses into about 2,000 selections, some
/// 600 KiB, so the count alone would allow 150 MiB.
const MAX_BYTES: usize = 8 * 1024 * 1024;

pub struct ParsedDocuments(BoundedMap<Box<str>, Arc<ExecutableDocument>>);

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(BoundedMap::new(MAX_DOCUMENTS, MAX_BYTES))
    }
}

/// Roughly what a parsed document holds: its text, each selection's node
/// with its field, and each value of its arguments.
fn weight(text: &str, document: &ExecutableDocument) -> usize {
    let per_selection = size_of::<Positioned<Selection>>() + size_of::<Field>();
    // A value in a map costs its slot, its key and its own size again.
    let per_value = 3 * size_of::<async_graphql_value::Value>();
    let (mut selections, mut values) = (0, 0);
    each_selection(document, |selection| {
        selections += 1;
        if let Selection::Field(field) = selection {
            values += field
                .node
                .arguments
                .iter()
                .map(|(_, value)| count_values(&value.node) as usize)
                .sum::<usize>();
        }
    });
    2 * text.len() + selections * per_selection + values * per_value
}

impl ParsedDocuments {
    /// The parsed document of `request`, kept from before or parsed now
    /// (the caller gives the request what async-graphql should see of it).
    /// A document that does not parse is left to async-graphql, which
    /// reports the error as usual.
    pub fn prepare(&self, request: &Request) -> Option<Arc<ExecutableDocument>> {
        let text = request.query.as_str();
        let keep = text.len() <= MAX_TEXT;
        let document = match keep.then(|| self.0.get(text)).flatten() {
            Some(document) => document,
            None => {
                let document = Arc::new(async_graphql::parser::parse_query(text).ok()?);
                if keep {
                    let weight = weight(text, &document);
                    self.0.insert(text.into(), Arc::clone(&document), weight);
                }
                document
            }
        };
        Some(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_documents_that_parse_and_short_enough() {
        let documents = ParsedDocuments::default();
        let request = Request::new("{ __typename }");
        assert!(
            documents
                .prepare(&request)
                .is_some_and(|d| d.operations.iter().count() == 1)
        );
        documents.prepare(&Request::new("{ __typename }"));
        assert_eq!(documents.0.len(), 1);

        assert!(documents.prepare(&Request::new("{ broken")).is_none());
        let long = format!(
            "{{ __typename {} }}",
            "a: __typename ".repeat(MAX_TEXT / 10)
        );
        assert!(documents.prepare(&Request::new(long)).is_some());
        assert_eq!(documents.0.len(), 1);

        for i in 0..MAX_DOCUMENTS {
            documents.prepare(&Request::new(format!("{{ a{i}: __typename }}")));
        }
        // Full at the last of them: emptied, then that one kept.
        assert_eq!(documents.0.len(), 1);
    }

    #[test]
    fn dense_documents_are_kept_within_the_byte_bound() {
        let documents = ParsedDocuments::default();
        for i in 0..MAX_DOCUMENTS {
            let dense = format!("{{ b{i} {} }}", "a ".repeat(MAX_TEXT / 2 - 8));
            documents.prepare(&Request::new(dense));
            assert!(documents.0.bytes() <= MAX_BYTES);
        }
        assert!(
            documents.0.len() < MAX_DOCUMENTS / 4,
            "{}",
            documents.0.len()
        );
    }
}
