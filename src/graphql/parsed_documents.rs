//! Documents parsed before, by their text. Apps send the same few documents
//! again and again, and parsing is a large part of a small query's work
//! (about half of what `{ __typename }` costs inside async-graphql). A
//! parsed document depends on nothing but its text, so entries never go
//! stale; the limits below only bound the memory they take.
use std::sync::Arc;

use async_graphql::{Request, parser::types::ExecutableDocument};

use crate::bounded_map::BoundedMap;

/// Longer documents are parsed each time, not kept (they are rare, and
/// each could hold tens of kilobytes once parsed).
const MAX_TEXT: usize = 4096;
/// Documents kept at most.
const MAX_DOCUMENTS: usize = 256;

pub struct ParsedDocuments(BoundedMap<Box<str>, Arc<ExecutableDocument>>);

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(BoundedMap::new(MAX_DOCUMENTS))
    }
}

impl ParsedDocuments {
    /// Gives `request` its parsed document, kept from before or parsed now,
    /// and returns it. A document that does not parse is left to
    /// async-graphql, which reports the error as usual.
    pub fn prepare(&self, request: &mut Request) -> Option<Arc<ExecutableDocument>> {
        let text = request.query.as_str();
        let keep = text.len() <= MAX_TEXT;
        let document = match keep.then(|| self.0.get(text)).flatten() {
            Some(document) => document,
            None => {
                let document = Arc::new(async_graphql::parser::parse_query(text).ok()?);
                if keep {
                    self.0.insert(text.into(), Arc::clone(&document));
                }
                document
            }
        };
        request.set_parsed_query(ExecutableDocument::clone(&document));
        Some(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_documents_that_parse_and_short_enough() {
        let documents = ParsedDocuments::default();
        let mut request = Request::new("{ __typename }");
        assert!(documents.prepare(&mut request).is_some());
        assert!(
            request
                .parsed_query()
                .is_ok_and(|d| d.operations.iter().count() == 1)
        );
        documents.prepare(&mut Request::new("{ __typename }"));
        assert_eq!(documents.0.len(), 1);

        assert!(documents.prepare(&mut Request::new("{ broken")).is_none());
        let long = format!(
            "{{ __typename {} }}",
            "a: __typename ".repeat(MAX_TEXT / 10)
        );
        assert!(documents.prepare(&mut Request::new(long)).is_some());
        assert_eq!(documents.0.len(), 1);

        for i in 0..MAX_DOCUMENTS {
            documents.prepare(&mut Request::new(format!("{{ a{i}: __typename }}")));
        }
        // Full at the last of them: emptied, then that one kept.
        assert_eq!(documents.0.len(), 1);
    }
}
