//! SQLite: which substring lookups `users_trigrams` should narrow, and by
//! which trigrams. A pattern most users hold (`example`, `com`) costs more
//! through the index than by a scan: FTS5 reads the whole list of rows of
//! each trigram it is asked for. So one statement reads how many rows hold
//! each trigram of the patterns (`users_trigrams_vocab`) and the highest
//! user id (as many rows at most); a pattern is asked of the index by its
//! two rarest trigrams, and only when those lists hold a quarter of the
//! rows or fewer (or a thousand rows in all). Otherwise it scans, as before
//! the index.
use std::collections::{HashMap, HashSet};

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use super::query::UserFilter;
use crate::{domain::fold, error::Result};

/// The fewest characters a pattern needs for a trigram index to narrow
/// the rows (a shorter one has no trigram).
pub const TRIGRAM: usize = 3;

/// The trigrams the index is asked for, by folded pattern; a pattern not
/// in it scans.
pub type TrigramPlan = HashMap<String, Vec<String>>;

/// Lists of this many rows in all cost little to read, however few the
/// users (so a small table uses the index too, and the tests see it).
const CHEAP_READ: i64 = 1024;

/// How many trigrams of one pattern are weighed: enough to find rare ones
/// in any real pattern, few enough that a long one costs little.
const WEIGHED_PER_PATTERN: usize = 24;

/// How many patterns of one request are weighed (the filter limits allow
/// more lookups than any real screen sends); the others scan.
const WEIGHED_PATTERNS: usize = 32;

/// The trigrams of `needle`, each once, in order.
fn trigrams_of(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut seen = HashSet::new();
    chars
        .windows(TRIGRAM)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// The folded patterns that `filter` and `search` look for in users' text
/// by substring, each once.
pub fn patterns(filter: Option<&UserFilter>, search: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(term) = search {
        found.push(fold(term));
    }
    if let Some(filter) = filter {
        collect(filter, &mut found);
    }
    let mut seen = HashSet::new();
    found.retain(|p| seen.insert(p.clone()));
    found
}

fn collect(filter: &UserFilter, found: &mut Vec<String>) {
    let texts = [
        &filter.username,
        &filter.first_name,
        &filter.last_name,
        &filter.email,
        &filter.phone_number,
        &filter.remote_id,
    ];
    for text in texts.into_iter().flatten() {
        for value in [
            &text.contains,
            &text.icontains,
            &text.startswith,
            &text.istartswith,
            &text.endswith,
            &text.iendswith,
        ]
        .into_iter()
        .flatten()
        {
            found.push(fold(value));
        }
    }
    for nested in filter.and.iter().chain(filter.or.iter()).flatten() {
        collect(nested, found);
    }
    if let Some(nested) = &filter.not {
        collect(nested, found);
    }
}

/// Which of `patterns` the index should narrow, and by which trigrams
/// (those of 3 characters or more; a shorter one has no trigram).
pub async fn plan(db: &impl ConnectionTrait, patterns: &[String]) -> Result<TrigramPlan> {
    let weighed: Vec<(&String, Vec<String>)> = patterns
        .iter()
        .filter(|p| p.chars().nth(TRIGRAM - 1).is_some())
        .take(WEIGHED_PATTERNS)
        .map(|p| {
            let mut trigrams = trigrams_of(p);
            trigrams.truncate(WEIGHED_PER_PATTERN);
            (p, trigrams)
        })
        .collect();
    let terms: HashSet<&String> = weighed.iter().flat_map(|(_, t)| t).collect();
    if terms.is_empty() {
        return Ok(TrigramPlan::new());
    }
    let marks = vec!["?"; terms.len()].join(", ");
    let values: Vec<Value> = terms.iter().map(|t| (*t).clone().into()).collect();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!(
                "SELECT term, doc FROM users_trigrams_vocab WHERE term IN ({marks}) \
                 UNION ALL SELECT NULL, COALESCE(MAX(id), 0) FROM users"
            ),
            values,
        ))
        .await?;
    let mut rows_holding: HashMap<String, i64> = HashMap::new();
    let mut users = 0;
    for row in rows {
        let term: Option<String> = row.try_get("", "term")?;
        let doc: i64 = row.try_get("", "doc")?;
        match term {
            Some(term) => {
                rows_holding.insert(term, doc);
            }
            None => users = doc,
        }
    }
    let mut plan = TrigramPlan::new();
    for (pattern, trigrams) in weighed {
        let mut counted: Vec<(i64, String)> = trigrams
            .into_iter()
            .map(|t| (rows_holding.get(&t).copied().unwrap_or(0), t))
            .collect();
        counted.sort();
        counted.truncate(2);
        let read: i64 = counted.iter().map(|(doc, _)| doc).sum();
        if read <= (users / 4).max(CHEAP_READ) {
            plan.insert(
                pattern.clone(),
                counted.into_iter().map(|(_, t)| t).collect(),
            );
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_windows_of_characters() {
        assert_eq!(trigrams_of("ab"), Vec::<String>::new());
        assert_eq!(trigrams_of("abcab"), vec!["abc", "bca", "cab"]);
        assert_eq!(trigrams_of("ßéé"), vec!["ßéé"]);
        assert_eq!(trigrams_of("aaaa"), vec!["aaa"]);
    }
}
