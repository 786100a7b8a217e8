//! What a document may ask for, decided in one pass over the parsed
//! document before anything else walks it. async-graphql's own depth check
//! and several of its validation rules expand fragment spreads afresh at
//! every use, so 1 KB of fragments that each spread the next three times
//! would keep them busy for minutes; here each fragment is measured once
//! (per context) and its measure reused, so the work is linear in the size
//! of the document whatever it expands to.
//!
//! Measured, for the operation that will run, as the document expands:
//! - **depth**: the deepest field (a root field is at depth 1);
//! - **complexity**: every field costs 1, plus its children times its page
//!   size (`first`, `last` or `limit`, from a literal, a variable or the
//!   variable's default; a connection selected without one counts the
//!   default page of 20, found through fragments too; a list field of the
//!   schema counts the default page). Reading every row that might match
//!   (`totalCount`, `search`, `filter`) costs `ROSTER_SCAN_COST` (250),
//!   once per list, not per row: the default complexity allows 40 of them,
//!   or a page of 20 groups with their members' counts. Argument values
//!   are counted apart, as fragments expand and rows multiply
//!   (`ROSTER_MAX_INPUT_VALUES`). `__typename` costs nothing;
//! - **introspection** like everything else, each list counted at its real
//!   length in this schema (`types` as many as the schema has, `fields` as
//!   many as its largest type has, ...). What the fullest standard
//!   introspection query costs, and its depth, are free under `__schema`,
//!   once per request: that query always passes, and a document that
//!   repeats `types` or `fields` does not (`__type` is paid for);
//! - root fields, aliases, directives, selections and fragments, counted as
//!   expanded; a fragment that spreads itself is refused;
//! - how deep lists and objects nest in the arguments, defaults and
//!   variables of a request, and how many objects they hold (async-graphql
//!   coerces them recursively into large structs).
//!
//! async-graphql then gets a document pruned to that operation and the
//! fragments it reaches ([`Limits::check`]), so it walks nothing that was
//! not measured.
use std::collections::HashMap;

use async_graphql::{
    Name, Positioned, Value, Variables,
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition,
        OperationType, Selection, SelectionSet,
    },
};

use crate::config::Config;
use crate::services::reads::pagination::DEFAULT_PAGE_SIZE;

/// Most nested selection sets and fragment spreads on one path; beyond it
/// the walk stops (it recurses, and a stack is finite).
const MAX_NESTING: usize = 64;
/// Deepest nesting of brackets (`{`, `[`, `(`) in a document's text,
/// checked before it is parsed: the parser recurses on them.
pub const MAX_TEXT_NESTING: usize = 64;
/// Deepest nesting of lists and objects in an input value (a filter nested
/// as deep as the filter limits allow takes about 24).
pub const MAX_INPUT_DEPTH: usize = 32;

/// The fullest introspection query the standard tools send (graphql-js's
/// `getIntrospectionQuery` with every option on): free.
pub const FULL_INTROSPECTION: &str = include_str!("full_introspection.graphql");

/// Why a document is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    /// The argument (or variable) the refusal is about, for
    /// `extensions.fields`.
    pub field: Option<String>,
}

impl Refusal {
    fn too_complex(message: impl Into<String>) -> Self {
        Self {
            code: "QUERY_TOO_COMPLEX",
            message: message.into(),
            field: None,
        }
    }

    fn bad_input(message: impl Into<String>, field: Option<String>) -> Self {
        Self {
            code: "BAD_USER_INPUT",
            message: message.into(),
            field,
        }
    }
}

/// How long each introspection list of this schema is, at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntrospectionSizes {
    pub types: u64,
    pub fields: u64,
    pub args: u64,
    pub input_fields: u64,
    pub enum_values: u64,
    pub interfaces: u64,
    pub possible_types: u64,
    pub directives: u64,
    /// Names of this schema's fields that return lists (a user's `groups`),
    /// other than a page's `edges` and `nodes`: each counts as the default
    /// page when not paged.
    pub lists: std::collections::BTreeSet<String>,
}

impl IntrospectionSizes {
    /// Read off the answer (`data`, as JSON) to [`FULL_INTROSPECTION`].
    pub fn from_answer(data: &serde_json::Value) -> Self {
        let len = |value: &serde_json::Value| value.as_array().map_or(0, |a| a.len() as u64);
        let types = data["__schema"]["types"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let directives = data["__schema"]["directives"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let most = |values: &[serde_json::Value], list: &str| {
            values.iter().map(|v| len(&v[list])).max().unwrap_or(0)
        };
        let fields: Vec<serde_json::Value> = types
            .iter()
            .flat_map(|t| t["fields"].as_array().cloned().unwrap_or_default())
            .collect();
        let is_list = |mut kind: &serde_json::Value| {
            while !kind.is_null() {
                if kind["kind"] == "LIST" {
                    return true;
                }
                kind = &kind["ofType"];
            }
            false
        };
        let lists = types
            .iter()
            .filter(|t| !t["name"].as_str().unwrap_or("__").starts_with("__"))
            .flat_map(|t| t["fields"].as_array().cloned().unwrap_or_default())
            .filter(|f| is_list(&f["type"]))
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .filter(|name| name != "edges" && name != "nodes")
            .collect();
        Self {
            lists,
            types: len(&data["__schema"]["types"]),
            fields: most(&types, "fields"),
            args: most(&fields, "args").max(most(&directives, "args")),
            input_fields: most(&types, "inputFields"),
            enum_values: most(&types, "enumValues"),
            interfaces: most(&types, "interfaces"),
            possible_types: most(&types, "possibleTypes"),
            directives: directives.len() as u64,
        }
    }

    /// How many items the introspection field `name` lists (1 when it is
    /// not a list).
    fn length(&self, name: &str) -> u64 {
        match name {
            "types" => self.types,
            "fields" => self.fields,
            "args" => self.args,
            "inputFields" => self.input_fields,
            "enumValues" => self.enum_values,
            "interfaces" => self.interfaces,
            "possibleTypes" => self.possible_types,
            "directives" => self.directives,
            _ => 1,
        }
        .max(1)
    }
}

/// The limits a document is held to (the `ROSTER_MAX_*` settings).
#[derive(Debug, Clone)]
pub struct Limits {
    max_depth: u64,
    max_complexity: u64,
    max_root_fields: u64,
    max_aliases: u64,
    max_directives: u64,
    max_fragments: usize,
    max_selections: u64,
    scan_cost: u64,
    max_input_objects: usize,
    max_input_values: u64,
    sizes: IntrospectionSizes,
    /// What [`FULL_INTROSPECTION`] costs and how deep it goes: free.
    free_introspection: Measure,
}

impl Limits {
    pub fn new(config: &Config, sizes: IntrospectionSizes) -> Self {
        let mut limits = Self {
            max_depth: config.max_depth as u64,
            max_complexity: config.max_complexity as u64,
            max_root_fields: config.max_root_fields,
            max_aliases: config.max_aliases,
            max_directives: config.max_directives,
            max_fragments: config.max_fragments,
            max_selections: config.max_selections,
            scan_cost: config.scan_cost,
            max_input_objects: config.max_input_objects,
            max_input_values: config.max_input_values,
            sizes,
            free_introspection: Measure::default(),
        };
        if let Ok(document) = async_graphql::parser::parse_query(FULL_INTROSPECTION)
            && let Some(operation) = operation(&document, None)
            && let Ok(measure) = limits.measure(&document, operation, &Variables::default())
        {
            limits.free_introspection = measure;
        }
        limits
    }

    /// Checks the operation of `document` that would run (the one named,
    /// or the only one) against the limits, and gives the document
    /// async-graphql should see: that operation and the fragments it
    /// reaches, nothing it would walk unmeasured. Refused: an operation that
    /// cannot be found, a fragment no operation uses, a missing required
    /// variable, and what asks for more than the limits allow, this
    /// operation alone or with those before it in `request` (the batch it
    /// belongs to).
    pub fn check(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        request: &mut RequestBudget,
    ) -> Result<ExecutableDocument, Refusal> {
        if document.fragments.len() > self.max_fragments {
            return Err(Refusal::too_complex(format!(
                "A document may define at most {} fragments.",
                self.max_fragments
            )));
        }
        let document = prune(document, operation_name)?;
        let Some(operation) = operation(&document, operation_name) else {
            return Err(invalid("The document's operation cannot be found."));
        };
        check_inputs(&document, variables, self.max_input_objects, request)?;
        let measure = self.measure(&document, operation, variables)?;
        let free = &self.free_introspection;
        if measure.depth > self.max_depth
            || measure.introspection_depth > self.max_depth.max(free.introspection_depth)
        {
            return Err(Refusal::too_complex(format!(
                "The query is deeper than the limit of {} (ROSTER_MAX_DEPTH).",
                self.max_depth
            )));
        }
        for (count, limit, what) in [
            (
                measure.fields,
                self.max_root_fields,
                "An operation may select at most {} root fields.",
            ),
            (
                measure.aliases,
                self.max_aliases,
                "A document may hold at most {} aliases.",
            ),
            (
                measure.directives,
                self.max_directives,
                "A document may use at most {} directives.",
            ),
            (
                measure.selections,
                self.max_selections,
                "A document may expand to at most {} selections.",
            ),
        ] {
            if count > limit {
                return Err(Refusal::too_complex(what.replace("{}", &limit.to_string())));
            }
        }
        // What holds for the whole HTTP request: one introspection is free,
        // and a batch's operations share one budget. An operation refused
        // here leaves the budget to those after it.
        let mut total = request.measure;
        total.add(&measure);
        if total.schemas > 1 {
            return Err(Refusal::too_complex(
                "A request may select __schema at most once.",
            ));
        }
        if total.values > self.max_input_values {
            let message = format!(
                "The arguments of a request may hold at most {} values, counted as fragments expand and rows multiply.",
                self.max_input_values
            );
            return Err(Refusal::bad_input(message, largest_argument(&document)));
        }
        let complexity = total.cost.saturating_add(
            total
                .introspection_cost
                .saturating_sub(free.introspection_cost),
        );
        if complexity > self.max_complexity {
            return Err(Refusal::too_complex(format!(
                "The query's complexity {complexity} is above the limit of {} (ROSTER_MAX_COMPLEXITY).",
                self.max_complexity
            )));
        }
        request.measure = total;
        missing_variable(operation, variables)?;
        Ok(document)
    }

    fn measure(
        &self,
        document: &ExecutableDocument,
        operation: &OperationDefinition,
        variables: &Variables,
    ) -> Result<Measure, Refusal> {
        let defaults: HashMap<&str, &Value> = operation
            .variable_definitions
            .iter()
            .filter_map(|v| {
                let value = v.node.default_value.as_ref()?;
                Some((v.node.name.node.as_str(), &value.node))
            })
            .collect();
        // Each variable's values counted once, however many fields use it.
        let variable_values = operation
            .variable_definitions
            .iter()
            .map(|v| {
                let name = v.node.name.node.as_str();
                let given = variables
                    .get(&v.node.name.node)
                    .or_else(|| defaults.get(name).copied());
                (name, given.map_or(1, count_values))
            })
            .collect();
        let mut walk = Walk {
            document,
            variables,
            defaults,
            variable_values,
            sizes: &self.sizes,
            scan_cost: self.scan_cost,
            fragments: HashMap::new(),
            nesting: 0,
        };
        let mut measure = walk.set(&operation.selection_set.node, false)?;
        let on_variables: usize = operation
            .variable_definitions
            .iter()
            .map(|v| v.node.directives.len())
            .sum();
        measure.directives = measure
            .directives
            .saturating_add((operation.directives.len() + on_variables) as u64);
        Ok(measure)
    }
}

/// Refuses a document text whose brackets nest deeper than
/// [`MAX_TEXT_NESTING`], before the parser (which recurses on them, and at
/// a few hundred levels overflows a worker's stack) sees it. Strings and
/// comments are skipped.
pub fn check_text(text: &str) -> Result<(), Refusal> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end the block.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                if i >= bytes.len() {
                    // The parser would take it back and read on from the
                    // quotes as two strings: brackets this scan skipped.
                    return Err(Refusal {
                        code: "GRAPHQL_PARSE_FAILED",
                        message: "A block string is not closed.".into(),
                        field: None,
                    });
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n' | b'\r') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_TEXT_NESTING {
                    return Err(Refusal::too_complex(format!(
                        "The document nests brackets more than {MAX_TEXT_NESTING} deep."
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What the operations of one HTTP request (a batch, or one) have used of
/// the limits that hold for the request as a whole.
#[derive(Debug, Default)]
pub struct RequestBudget {
    measure: Measure,
    input_objects: usize,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        code: "GRAPHQL_VALIDATION_FAILED",
        message: message.into(),
        field: None,
    }
}

/// The fragments a selection set spreads, directly or in inline fragments
/// (not through the fragments it spreads).
fn spreads(set: &SelectionSet) -> Vec<&Name> {
    let mut found = Vec::new();
    let mut sets = vec![set];
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => sets.push(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => sets.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => found.push(&spread.node.fragment_name.node),
            }
        }
    }
    found
}

/// The names of the fragments reachable from `roots`.
fn reachable<'a>(
    document: &'a ExecutableDocument,
    roots: impl Iterator<Item = &'a SelectionSet>,
) -> std::collections::HashSet<&'a Name> {
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<&Name> = roots.flat_map(spreads).collect();
    while let Some(name) = pending.pop() {
        if let Some(fragment) = document.fragments.get(name)
            && seen.insert(name)
        {
            pending.extend(spreads(&fragment.node.selection_set.node));
        }
    }
    seen
}

/// The operation `name` selects (or the only one) with the fragments it
/// reaches: what async-graphql will parse-check and validate, so that it
/// walks nothing the analysis did not measure. Refuses, as validation
/// would, an operation that cannot be found and a fragment no operation
/// uses.
fn prune(document: &ExecutableDocument, name: Option<&str>) -> Result<ExecutableDocument, Refusal> {
    let all = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node);
    let used = reachable(document, all);
    let unused = document
        .fragments
        .iter()
        .filter(|(name, _)| !used.contains(name))
        .min_by_key(|(_, fragment)| (fragment.pos.line, fragment.pos.column));
    if let Some((unused, _)) = unused {
        return Err(invalid(format!("Fragment \"{unused}\" is never used.")));
    }
    let operations = match (&document.operations, name) {
        (DocumentOperations::Single(operation), None) => {
            DocumentOperations::Single(operation.clone())
        }
        (DocumentOperations::Multiple(operations), Some(name)) => {
            match operations.get_key_value(name) {
                Some((key, operation)) => {
                    DocumentOperations::Multiple([(key.clone(), operation.clone())].into())
                }
                None => return Err(invalid(format!("Unknown operation named \"{name}\"."))),
            }
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            DocumentOperations::Multiple(operations.clone())
        }
        (DocumentOperations::Multiple(_), None) => {
            return Err(invalid("Operation name required in request."));
        }
        (DocumentOperations::Single(_), Some(name)) => {
            return Err(invalid(format!("Unknown operation named \"{name}\".")));
        }
    };
    // With one operation every fragment is its own (none is unused); with
    // several, only those the kept one reaches.
    let fragments = if document.operations.iter().nth(1).is_none() {
        document.fragments.clone()
    } else {
        let kept = operations.iter().map(|(_, op)| &op.node.selection_set.node);
        reachable(document, kept)
            .into_iter()
            .filter_map(|name| Some((name.clone(), document.fragments.get(name)?.clone())))
            .collect()
    };
    Ok(ExecutableDocument {
        operations,
        fragments,
    })
}

/// The name of the argument of `document` that holds the most values.
fn largest_argument(document: &ExecutableDocument) -> Option<String> {
    let mut largest: Option<(u64, &Name)> = None;
    each_selection(document, |selection| {
        if let Selection::Field(field) = selection {
            for (name, value) in &field.node.arguments {
                let count = count_values(&value.node);
                if largest.is_none_or(|(most, _)| count > most) {
                    largest = Some((count, &name.node));
                }
            }
        }
    });
    largest.map(|(_, name)| name.to_string())
}

/// The operation that runs: the one named, or else the only one.
fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = document.operations.iter();
    let found = match name {
        Some(name) => operations.find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => {
            let first = operations.next();
            operations.next().is_none().then_some(first).flatten()
        }
    };
    found.map(|(_, operation)| &operation.node)
}

/// The root fields of the operation of `document` (pruned to it by
/// [`Limits::check`]) if it is a mutation, through fragments: each field's
/// name and response key.
fn mutation_fields(document: &ExecutableDocument) -> Vec<(&str, &str)> {
    let mut fields = Vec::new();
    let Some((_, operation)) = document.operations.iter().next() else {
        return fields;
    };
    if operation.node.ty != OperationType::Mutation {
        return fields;
    }
    let mut sets = vec![&operation.node.selection_set.node];
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    fields.push((field.name.node.as_str(), field.response_key().node.as_str()));
                }
                Selection::InlineFragment(fragment) => sets.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        sets.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    fields
}

/// The response keys of the root fields of the mutation of `document` that
/// may write: every field other than `__typename` and `logout` (which
/// changes nothing that is cached).
pub fn writers(document: &ExecutableDocument) -> Vec<String> {
    mutation_fields(document)
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "__typename" | "logout"))
        .map(|(_, key)| key.to_owned())
        .collect()
}

/// The response keys of the root fields of the mutation of `document` that
/// may change what other processes cache and check a token against (a
/// user's password, activity, roles; memberships, groups, divisions): every
/// writer but the session's own fields, whose writes (a login time, a new
/// account, a rotated token) no other process needs to hear of before the
/// client does.
pub fn announcers(document: &ExecutableDocument) -> Vec<String> {
    mutation_fields(document)
        .into_iter()
        .filter(|(name, _)| {
            !matches!(
                *name,
                "__typename" | "logout" | "login" | "register" | "refreshToken"
            )
        })
        .map(|(_, key)| key.to_owned())
        .collect()
}

/// Whether the operation that runs is a mutation.
pub fn is_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    operation(document, operation_name).is_some_and(|op| op.ty == OperationType::Mutation)
}

/// A variable of a non-null type with no default that the request leaves
/// out (or sets to null) cannot be coerced: the request is refused whole,
/// as the GraphQL spec's CoerceVariableValues says, before anything runs.
fn missing_variable(operation: &OperationDefinition, variables: &Variables) -> Result<(), Refusal> {
    for definition in &operation.variable_definitions {
        let definition = &definition.node;
        let name = &definition.name.node;
        let given = variables.get(name).is_some_and(|v| *v != Value::Null);
        if !definition.var_type.node.nullable && definition.default_value.is_none() && !given {
            let message = format!(
                "Variable \"${name}\" of required type \"{}\" was not provided.",
                definition.var_type.node
            );
            return Err(Refusal::bad_input(message, None));
        }
    }
    Ok(())
}

/// A value made of lists and objects.
pub(crate) trait Nested {
    fn is_object(&self) -> bool;
    fn for_each_item<'a>(&'a self, visit: impl FnMut(&'a Self));
}

impl Nested for Value {
    fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    fn for_each_item<'a>(&'a self, visit: impl FnMut(&'a Self)) {
        match self {
            Value::List(items) => items.iter().for_each(visit),
            Value::Object(fields) => fields.values().for_each(visit),
            _ => {}
        }
    }
}

impl Nested for async_graphql_value::Value {
    fn is_object(&self) -> bool {
        matches!(self, Self::Object(_))
    }

    fn for_each_item<'a>(&'a self, visit: impl FnMut(&'a Self)) {
        match self {
            Self::List(items) => items.iter().for_each(visit),
            Self::Object(fields) => fields.values().for_each(visit),
            _ => {}
        }
    }
}

/// How many values `value` holds, itself included; iterative, so that
/// counting cannot overflow the stack.
pub(crate) fn count_values<V: Nested>(value: &V) -> u64 {
    let mut count: u64 = 0;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        count = count.saturating_add(1);
        value.for_each_item(|item| pending.push(item));
    }
    count
}

/// Every selection of `document`, in every operation and fragment, as
/// written (spreads are not followed); iterative.
pub(crate) fn each_selection<'a>(
    document: &'a ExecutableDocument,
    mut visit: impl FnMut(&'a Selection),
) {
    let mut sets: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, operation)| &operation.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|fragment| &fragment.node.selection_set.node),
        )
        .collect();
    while let Some(set) = sets.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => sets.push(&field.node.selection_set.node),
                Selection::InlineFragment(fragment) => sets.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
            visit(&item.node);
        }
    }
}

/// What the input values of one request may still hold: every argument,
/// directive argument and default of every definition, used or not
/// (validation visits them all), and every variable given.
struct InputBudget {
    objects: usize,
    max_objects: usize,
}

impl InputBudget {
    /// Counts the objects of `value` and checks its depth, iteratively (so
    /// that measuring cannot overflow the stack either); a refusal names
    /// `field`.
    fn take<V: Nested>(&mut self, value: &V, field: &str) -> Result<(), Refusal> {
        let mut pending = vec![(value, 1)];
        while let Some((value, depth)) = pending.pop() {
            if depth > MAX_INPUT_DEPTH {
                return Err(Refusal::bad_input(
                    format!(
                        "Input values may nest lists and objects at most {MAX_INPUT_DEPTH} deep."
                    ),
                    Some(field.to_owned()),
                ));
            }
            if value.is_object() {
                self.objects += 1;
                if self.objects > self.max_objects {
                    return Err(Refusal::bad_input(
                        format!(
                            "The input values of a request may hold at most {} objects.",
                            self.max_objects
                        ),
                        Some(field.to_owned()),
                    ));
                }
            }
            value.for_each_item(|item| pending.push((item, depth + 1)));
        }
        Ok(())
    }

    fn take_arguments(
        &mut self,
        arguments: &[(Positioned<Name>, Positioned<async_graphql_value::Value>)],
    ) -> Result<(), Refusal> {
        for (name, value) in arguments {
            self.take(&value.node, name.node.as_str())?;
        }
        Ok(())
    }

    fn take_directives(&mut self, directives: &[Positioned<Directive>]) -> Result<(), Refusal> {
        for directive in directives {
            self.take_arguments(&directive.node.arguments)?;
        }
        Ok(())
    }
}

/// Refuses a request whose input values nest deeper than
/// [`MAX_INPUT_DEPTH`] or hold more than `ROSTER_MAX_INPUT_OBJECTS` objects,
/// before async-graphql coerces them (recursively, into structs of a few
/// hundred bytes each: a filter nested 120 deep overflowed a worker's
/// stack, and one of 20,000 `or` branches took 170 MiB). A variable's
/// refusal is reported under the argument it is given to.
fn check_inputs(
    document: &ExecutableDocument,
    variables: &Variables,
    max_objects: usize,
    request: &mut RequestBudget,
) -> Result<(), Refusal> {
    let mut budget = InputBudget {
        objects: request.input_objects,
        max_objects,
    };
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        for variable in &operation.variable_definitions {
            let variable = &variable.node;
            budget.take_directives(&variable.directives)?;
            if let Some(default) = &variable.default_value {
                budget.take(&default.node, variable.name.node.as_str())?;
            }
        }
        budget.take_directives(&operation.directives)?;
    }
    for fragment in document.fragments.values() {
        budget.take_directives(&fragment.node.directives)?;
    }
    let mut given_to: HashMap<&str, &str> = HashMap::new();
    let mut refused = Ok(());
    each_selection(document, |selection| {
        if refused.is_err() {
            return;
        }
        refused = match selection {
            Selection::Field(field) => {
                let field = &field.node;
                for (name, value) in &field.arguments {
                    if let async_graphql_value::Value::Variable(variable) = &value.node {
                        given_to
                            .entry(variable.as_str())
                            .or_insert(name.node.as_str());
                    }
                }
                budget
                    .take_arguments(&field.arguments)
                    .and_then(|()| budget.take_directives(&field.directives))
            }
            Selection::InlineFragment(fragment) => {
                budget.take_directives(&fragment.node.directives)
            }
            Selection::FragmentSpread(spread) => budget.take_directives(&spread.node.directives),
        };
    });
    refused?;
    for (name, value) in variables.iter() {
        let field = given_to
            .get(name.as_str())
            .copied()
            .unwrap_or(name.as_str());
        budget.take(value, field)?;
    }
    request.input_objects = budget.objects;
    Ok(())
}

/// The measure of a selection set, or of a field within one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Measure {
    /// Complexity outside introspection.
    cost: u64,
    /// The part of `cost` that is paid once per connection, not per row
    /// (`totalCount` directly in this set).
    once: u64,
    /// Argument values, as the document expands and rows multiply.
    values: u64,
    /// The deepest field outside introspection.
    depth: u64,
    introspection_cost: u64,
    introspection_depth: u64,
    /// Fields directly in this set (through fragments).
    fields: u64,
    /// Whether this set selects `edges` or `nodes` directly (through
    /// fragments): the field it belongs to is a page.
    pages: bool,
    /// `__schema` fields.
    schemas: u64,
    aliases: u64,
    directives: u64,
    selections: u64,
}

impl Measure {
    fn add(&mut self, other: &Measure) {
        self.cost = self.cost.saturating_add(other.cost);
        self.once = self.once.saturating_add(other.once);
        self.values = self.values.saturating_add(other.values);
        self.depth = self.depth.max(other.depth);
        self.introspection_cost = self
            .introspection_cost
            .saturating_add(other.introspection_cost);
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
        self.fields = self.fields.saturating_add(other.fields);
        self.pages |= other.pages;
        self.schemas = self.schemas.saturating_add(other.schemas);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.directives = self.directives.saturating_add(other.directives);
        self.selections = self.selections.saturating_add(other.selections);
    }
}

/// A fragment's measure in one context (inside introspection or not), or
/// the note that it is being measured (seen again: a cycle).
enum Fragment {
    Measuring,
    Measured(Measure),
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a Value>,
    /// How many values each variable holds, as given or by default.
    variable_values: HashMap<&'a str, u64>,
    sizes: &'a IntrospectionSizes,
    scan_cost: u64,
    fragments: HashMap<(&'a str, bool), Fragment>,
    nesting: usize,
}

impl<'a> Walk<'a> {
    /// The measure of `set`; `introspection` when it lies under `__schema`
    /// or `__type`.
    fn set(&mut self, set: &'a SelectionSet, introspection: bool) -> Result<Measure, Refusal> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(Refusal::too_complex(format!(
                "The query nests selections and fragments more than {MAX_NESTING} deep."
            )));
        }
        let mut total = Measure::default();
        for item in &set.items {
            let mut part = match &item.node {
                Selection::Field(field) => self.field(&field.node, introspection)?,
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let mut part = self.set(&fragment.selection_set.node, introspection)?;
                    part.directives = part
                        .directives
                        .saturating_add(fragment.directives.len() as u64);
                    part
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let mut part = self.spread(&spread.fragment_name.node, introspection)?;
                    part.directives = part
                        .directives
                        .saturating_add(spread.directives.len() as u64);
                    part
                }
            };
            part.selections = part.selections.saturating_add(1);
            total.add(&part);
        }
        self.nesting -= 1;
        Ok(total)
    }

    fn spread(&mut self, name: &'a Name, introspection: bool) -> Result<Measure, Refusal> {
        let Some(fragment) = self.document.fragments.get(name) else {
            // Unknown: validation reports it.
            return Ok(Measure::default());
        };
        let key = (name.as_str(), introspection);
        match self.fragments.get(&key) {
            Some(Fragment::Measured(measure)) => return Ok(*measure),
            Some(Fragment::Measuring) => {
                return Err(invalid(format!(
                    "Cannot spread fragment \"{name}\" within itself."
                )));
            }
            None => {}
        }
        self.fragments.insert(key, Fragment::Measuring);
        let fragment = &fragment.node;
        let mut measure = self.set(&fragment.selection_set.node, introspection)?;
        measure.directives = measure
            .directives
            .saturating_add(fragment.directives.len() as u64);
        self.fragments.insert(key, Fragment::Measured(measure));
        Ok(measure)
    }

    fn field(&mut self, field: &'a Field, introspection: bool) -> Result<Measure, Refusal> {
        let name = field.name.node.as_str();
        let mut own = Measure {
            fields: 1,
            aliases: u64::from(field.alias.is_some()),
            directives: field.directives.len() as u64,
            depth: 1,
            pages: !introspection && matches!(name, "edges" | "nodes"),
            schemas: u64::from(!introspection && name == "__schema"),
            ..Measure::default()
        };
        // What its arguments hold: async-graphql walks them at each use and
        // parses them again for every row.
        own.values = self.argument_values(field);
        let children = &field.selection_set.node;
        if name == "__typename" && children.items.is_empty() {
            return Ok(own);
        }
        // Under `__schema`, one introspection of this schema is free; `__type`
        // is measured the same way but paid for.
        let entering = !introspection && (name == "__schema" || name == "__type");
        let inside = introspection || entering;
        // A count, a search or a filter reads every row that might match.
        let scans = !inside
            && (name == "totalCount"
                || field.get_argument("search").is_some()
                || field.get_argument("filter").is_some());
        let once = if scans { self.scan_cost } else { 0 };
        if children.items.is_empty() {
            own.cost = if name == "__typename" { 0 } else { once.max(1) };
        } else {
            let inner = self.set(children, inside)?;
            let per_item = if introspection {
                self.sizes.length(name)
            } else if entering {
                1
            } else {
                self.page_size(field, &inner)
            };
            let per_row = inner.cost.saturating_sub(inner.once);
            own.cost = 1u64
                .saturating_add(per_row.saturating_mul(per_item))
                .saturating_add(inner.once)
                .saturating_add(once);
            own.values = own
                .values
                .saturating_add(inner.values.saturating_mul(per_item));
            own.depth = inner.depth.saturating_add(1);
            own.introspection_cost = inner.introspection_cost;
            if inner.introspection_depth > 0 {
                own.introspection_depth = inner.introspection_depth.saturating_add(1);
            }
            own.aliases = own.aliases.saturating_add(inner.aliases);
            own.directives = own.directives.saturating_add(inner.directives);
            own.selections = inner.selections;
            own.schemas = own.schemas.saturating_add(inner.schemas);
        }
        // `totalCount` is counted once per connection, not once per row.
        own.once = if name == "totalCount" { own.cost } else { 0 };
        if entering {
            if name == "__schema" {
                own.introspection_cost = own.introspection_cost.saturating_add(own.cost);
                own.cost = 0;
            }
            own.introspection_depth = own.introspection_depth.max(own.depth);
            own.depth = 0;
        }
        Ok(own)
    }

    /// How many values the arguments of `field` hold (a list and an object
    /// count as one each, plus their items), a variable's as given.
    fn argument_values(&self, field: &Field) -> u64 {
        let mut count: u64 = 0;
        let mut pending: Vec<&async_graphql_value::Value> = field
            .arguments
            .iter()
            .map(|(_, value)| &value.node)
            .collect();
        while let Some(value) = pending.pop() {
            match value {
                async_graphql_value::Value::Variable(variable) => {
                    let given = self.variable_values.get(variable.as_str());
                    count = count.saturating_add(given.copied().unwrap_or(1));
                }
                other => {
                    count = count.saturating_add(1);
                    other.for_each_item(|item| pending.push(item));
                }
            }
        }
        count
    }

    /// Rows a list field returns at most: its `first`, `last` or `limit`,
    /// else the default page for a connection (one that selects `edges` or
    /// `nodes`), else 1.
    fn page_size(&self, field: &Field, inner: &Measure) -> u64 {
        let argument = ["first", "last", "limit"].iter().find_map(|name| {
            match &field.get_argument(name)?.node {
                async_graphql_value::Value::Number(n) => n.as_u64(),
                async_graphql_value::Value::Variable(variable) => {
                    let value = match self.variables.get(variable) {
                        Some(value) => value,
                        None => *self.defaults.get(variable.as_str())?,
                    };
                    match value {
                        Value::Number(n) => n.as_u64(),
                        _ => None,
                    }
                }
                _ => None,
            }
        });
        let listed = inner.pages || self.sizes.lists.contains(field.name.node.as_str());
        argument
            .unwrap_or(if listed { DEFAULT_PAGE_SIZE } else { 1 })
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::new(
            &Config::with_database("sqlite::memory:"),
            IntrospectionSizes::default(),
        )
    }

    fn check(text: &str, operation: Option<&str>) -> Result<ExecutableDocument, Refusal> {
        let document = async_graphql::parser::parse_query(text).map_err(|e| Refusal {
            code: "GRAPHQL_PARSE_FAILED",
            message: e.to_string(),
            field: None,
        })?;
        let mut budget = RequestBudget::default();
        limits().check(&document, operation, &Variables::default(), &mut budget)
    }

    #[test]
    fn a_fragment_spread_many_times_is_measured_once() {
        // 3^40 selections once expanded: refused at once, not walked.
        let mut text = String::from("{ me { ...F0 } }");
        for i in 0..40 {
            let next = i + 1;
            text.push_str(&format!(
                " fragment F{i} on User {{ ...F{next} ...F{next} ...F{next} }}"
            ));
        }
        text.push_str(" fragment F40 on User { id }");
        let started = std::time::Instant::now();
        assert_eq!(
            check(&text, None).err().map(|r| r.code),
            Some("QUERY_TOO_COMPLEX")
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_document_kept_is_the_operation_and_the_fragments_it_reaches() {
        let text = "query A { ...X } query B { ...Y } fragment X on Query { ...Z } \
                    fragment Z on Query { __typename } fragment Y on Query { __typename }";
        let kept = check(text, Some("A")).map_err(|r| r.message);
        let kept = kept.as_ref().map(|d| {
            let mut names: Vec<&str> = d.fragments.keys().map(Name::as_str).collect();
            names.sort_unstable();
            (d.operations.iter().count(), names)
        });
        assert_eq!(kept, Ok((1, vec!["X", "Z"])));
        assert_eq!(
            check(text, None).err().map(|r| r.message),
            Some("Operation name required in request.".to_owned())
        );
    }

    #[test]
    fn the_writing_fields_of_a_mutation_are_found_through_fragments() {
        let keys = |text: &str| {
            let mut keys = check(text, None).map(|d| writers(&d)).unwrap_or_default();
            keys.sort_unstable();
            keys
        };
        assert_eq!(
            keys(
                "mutation { __typename a: logout(refreshToken: \"x\") b: deleteUser(id: \"1\") c: deleteUser(id: \"2\") }"
            ),
            vec!["b", "c"]
        );
        assert_eq!(
            keys(
                "mutation { ...M } fragment M on Mutation { __typename d: deleteGroup(id: \"1\") }"
            ),
            vec!["d"]
        );
        assert!(keys("mutation { __typename }").is_empty());
        assert!(keys("{ me { id } }").is_empty());
    }

    #[test]
    fn only_what_other_processes_check_is_announced() {
        let announced = |text: &str| check(text, None).is_ok_and(|d| !announcers(&d).is_empty());
        let session = "login(input: {username: \"a\", password: \"b\"}) { tokenType } \
                       refreshToken(refreshToken: \"x\") { tokenType } logout(refreshToken: \"x\")";
        assert!(!announced(&format!("mutation {{ {session} }}")));
        assert!(!announced(
            "mutation { register(input: {username: \"a\", email: \"a@b.c\", password: \"p\"}) { id } }"
        ));
        assert!(announced(&format!(
            "mutation {{ {session} changePassword(currentPassword: \"a\", newPassword: \"b\") }}"
        )));
        assert!(announced(
            "mutation { ...M } fragment M on Mutation { deactivateUser(id: \"1\") { id } }"
        ));
        assert!(!announced("{ me { id } }"));
    }

    #[test]
    fn text_nesting_skips_strings_and_comments() {
        let deep = |n: usize| "{".repeat(n) + &"}".repeat(n);
        assert!(check_text(&deep(MAX_TEXT_NESTING)).is_ok());
        assert!(check_text(&deep(MAX_TEXT_NESTING + 1)).is_err());
        let hidden = format!(
            "{{ a(s: \"{0}\", t: \"\\\"{0}\") # {0}\n b(u: \"\"\"{0} \\\"\"\" {0}\"\"\") }}",
            "{".repeat(100)
        );
        assert_eq!(check_text(&hidden), Ok(()));
        assert!(check_text(&"[".repeat(1_000_000)).is_err());
        // An unterminated block string: the parser reads on from its quotes.
        let open = format!("{{ a(x: [\"\"\"x\" {} ]) }}", "[".repeat(10));
        assert_eq!(
            check_text(&open).map_err(|r| r.code),
            Err("GRAPHQL_PARSE_FAILED")
        );
        // A plain string ends at a carriage return as at a newline.
        let cr = format!("{{ a(x: \"x\\r{} }}", "[".repeat(100));
        assert!(check_text(&cr.replace("\\r", "\r")).is_err());
    }
}
