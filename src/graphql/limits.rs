//! The bounds every GraphQL document passes before async-graphql parses or validates it, as
//! one schema extension ([`Guard`]), so HTTP, GET and WebSocket requests meet the same ones.
//!
//! In order, each before any work that grows with the next:
//! 1. the caller must be authenticated: an anonymous document is never parsed;
//! 2. a lexical scan, linear in the bytes, bounds the document's size, its tokens and the
//!    nesting of its brackets (selection sets, list and object literals, arguments), so the
//!    recursive parser never meets more than [`MAX_NESTING`] levels;
//! 3. after parsing, one pass over the document with each fragment counted once (memoised)
//!    bounds the fields the document expands to ([`MAX_FIELDS`]: a fragment spread twice per
//!    level doubles), the aliases, the directives and the depth (introspection's own `ofType`
//!    chain has a bound of its own, [`MAX_INTROSPECTION_DEPTH`], so the graphql-js standard
//!    introspection query loads), and refuses fragment cycles;
//! 4. every string in arguments and variables passes the text policy (`crate::text`), and
//!    variables nest at most [`MAX_VALUE_NESTING`] deep.
//!
//! Only then do async-graphql's validation (with its complexity limit) and execution run; a
//! wall-clock budget per request (`App::execute`) drops whatever is left after it. Parse errors
//! carry `GRAPHQL_PARSE_FAILED`, validation errors `GRAPHQL_VALIDATION_FAILED`, a bound
//! `LIMIT_EXCEEDED` with `extensions.limit` and `extensions.max`.

use super::{Authentication, error as gql_error};
use crate::{
    error::DomainError,
    text::{self, Lines},
};
use async_graphql::{
    ErrorExtensions, Name, Positioned, ServerError, ServerResult, ValidationResult, Value,
    Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation},
    parser::{
        self, Pos,
        types::{ExecutableDocument, Selection, SelectionSet},
    },
};
use std::{collections::HashMap, sync::Arc};

/// An argument literal: its strings (variables inside it are checked with the variables).
macro_rules! check_argument {
    ($name:expr, $value:expr) => {{
        let value = $value
            .clone()
            .into_const_with(|_| Ok::<_, std::convert::Infallible>(Value::Null))
            .unwrap_or(Value::Null);
        check_value($name, &value, MAX_NESTING)
    }};
}

/// Largest document, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most lexical tokens in a document.
pub const MAX_TOKENS: usize = 5_000;
/// Deepest nesting of brackets (`{`, `[`, `(`) in a document.
pub const MAX_NESTING: usize = 32;
/// Most fields a document expands to, every fragment spread counted in full.
pub const MAX_FIELDS: usize = 2_000;
/// Most aliases in a document.
pub const MAX_ALIASES: usize = 50;
/// Most directives in a document.
pub const MAX_DIRECTIVES: usize = 50;
/// Deepest query, in fields (introspection fields below `__schema`/`__type` not counted).
pub const MAX_DEPTH: usize = 12;
/// Deepest query counting introspection too (the standard introspection query needs 13).
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Deepest nesting of a variable's value (lists and input objects).
pub const MAX_VALUE_NESTING: usize = 16;
/// Longest string in an argument or a variable, in characters; fields have tighter caps.
pub const MAX_STRING_CHARS: usize = 4_096;

/// The schema extension that applies the bounds.
pub struct Guard;

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Guard)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Guard {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        _next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // async-graphql's own parse step walks every fragment spread in full (its recursion
        // and directive checks), which is exponential in a fragment-doubling document; this
        // hook replaces it, and checks what it checked within the bounds above.
        let auth = ctx
            .data_opt::<Authentication>()
            .unwrap_or(&Authentication::Missing);
        bounded_document(auth, query, variables)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(gql_error::validation_failed)
                .collect()
        })
    }
}

/// The caller's check, then every bound, then the parsed document: what the Guard does in
/// place of async-graphql's parse step, and what `App::execute` does before it runs a
/// request on the schema without extensions.
pub fn bounded_document(
    auth: &Authentication,
    query: &str,
    variables: &Variables,
) -> ServerResult<ExecutableDocument> {
    auth.caller()
        .map_err(|refused| gql_error::request_error(refused.extend()))?;
    scan(query)?;
    let document = parser::parse_query(query).map_err(gql_error::parse_failed)?;
    check_document(&document)?;
    check_variables(variables)?;
    Ok(document)
}

/// Gives a validation error the code the Guard's validation hook would have given it: for
/// responses of the schema without extensions, where async-graphql's own errors (validation,
/// complexity) come back without one.
pub fn code_uncoded(err: ServerError) -> ServerError {
    let coded = err
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if coded {
        err
    } else {
        gql_error::validation_failed(err)
    }
}

fn exceeded(limit: &'static str, max: usize) -> ServerError {
    gql_error::request_error(DomainError::LimitExceeded { limit, max }.extend())
}

/// Step 2: size, tokens and bracket nesting, in one linear pass over the bytes.
pub fn scan(document: &str) -> ServerResult<()> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(exceeded("documentBytes", MAX_DOCUMENT_BYTES));
    }
    let bytes = document.as_bytes();
    let (mut i, mut tokens, mut depth) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(exceeded("nesting", MAX_NESTING));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'+'))
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(exceeded("tokens", MAX_TOKENS));
        }
    }
    Ok(())
}

/// What a selection set (or a fragment) expands to.
#[derive(Debug, Clone, Copy, Default)]
struct Extent {
    /// Fields, every spread counted in full (saturating).
    fields: usize,
    /// Depth in fields, not counting below `__schema`/`__type`.
    depth: usize,
    /// Depth in fields, counting everything.
    full_depth: usize,
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    done: HashMap<&'a Name, Extent>,
    /// Fragments being expanded (a spread of one of these is a cycle).
    open: Vec<&'a Name>,
    aliases: usize,
    directives: usize,
}

/// Step 3: expansion, aliases, directives, depth, cycles; then the strings of the document.
pub fn check_document(document: &ExecutableDocument) -> ServerResult<()> {
    let mut walk = Walk {
        document,
        done: HashMap::new(),
        open: Vec::new(),
        aliases: 0,
        directives: 0,
    };
    let mut total = 0usize;
    for (_, operation) in document.operations.iter() {
        walk.directives += operation.node.directives.len();
        for variable in &operation.node.variable_definitions {
            walk.directives += variable.node.directives.len();
            if let Some(default) = &variable.node.default_value {
                check_value(&variable.node.name.node, &default.node, MAX_NESTING)?;
            }
        }
        let extent = walk.selection_set(&operation.node.selection_set)?;
        if extent.depth > MAX_DEPTH {
            return Err(too_deep(MAX_DEPTH, extent.depth));
        }
        if extent.full_depth > MAX_INTROSPECTION_DEPTH {
            return Err(too_deep(MAX_INTROSPECTION_DEPTH, extent.full_depth));
        }
        total = total.saturating_add(extent.fields);
    }
    for (name, fragment) in &document.fragments {
        walk.directives += fragment.node.directives.len();
        let extent = walk.fragment(name, fragment.pos)?;
        total = total.saturating_add(extent.fields);
    }
    if total > MAX_FIELDS {
        return Err(exceeded("fields", MAX_FIELDS));
    }
    if walk.aliases > MAX_ALIASES {
        return Err(exceeded("aliases", MAX_ALIASES));
    }
    if walk.directives > MAX_DIRECTIVES {
        return Err(exceeded("directives", MAX_DIRECTIVES));
    }
    Ok(())
}

fn too_deep(max: usize, found: usize) -> ServerError {
    let mut err = exceeded("depth", max);
    err.message = format!("Query is nested too deep: {found} levels, at most {max}");
    err
}

impl<'a> Walk<'a> {
    fn fragment(&mut self, name: &'a Name, pos: Pos) -> ServerResult<Extent> {
        if let Some(extent) = self.done.get(name) {
            return Ok(*extent);
        }
        if self.open.contains(&name) {
            return Err(gql_error::validation_failed(ServerError::new(
                format!("Cannot spread fragment \"{name}\" within itself"),
                Some(pos),
            )));
        }
        // Spreads nest at most as deep as the document has fragments; bound the recursion.
        if self.open.len() >= MAX_NESTING {
            return Err(exceeded("nesting", MAX_NESTING));
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            // An unknown fragment: validation names it.
            return Ok(Extent::default());
        };
        self.open.push(name);
        let extent = self.selection_set(&fragment.node.selection_set);
        self.open.pop();
        let extent = extent?;
        self.done.insert(name, extent);
        Ok(extent)
    }

    fn selection_set(&mut self, set: &'a Positioned<SelectionSet>) -> ServerResult<Extent> {
        let mut out = Extent::default();
        for item in &set.node.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.aliases += usize::from(field.alias.is_some());
                    self.directives += field.directives.len();
                    for (name, value) in &field.arguments {
                        check_argument!(&name.node, value.node)?;
                    }
                    for directive in &field.directives {
                        for (name, value) in &directive.node.arguments {
                            check_argument!(&name.node, value.node)?;
                        }
                    }
                    let below = self.selection_set(&field.selection_set)?;
                    let introspection = matches!(field.name.node.as_str(), "__schema" | "__type");
                    Extent {
                        fields: below.fields.saturating_add(1),
                        depth: if introspection { 1 } else { below.depth + 1 },
                        full_depth: below.full_depth + 1,
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.directives += spread.node.directives.len();
                    self.fragment(&spread.node.fragment_name.node, spread.pos)?
                }
                Selection::InlineFragment(inline) => {
                    self.directives += inline.node.directives.len();
                    self.selection_set(&inline.node.selection_set)?
                }
            };
            out.fields = out.fields.saturating_add(inner.fields);
            out.depth = out.depth.max(inner.depth);
            out.full_depth = out.full_depth.max(inner.full_depth);
            if out.fields > MAX_FIELDS {
                return Err(exceeded("fields", MAX_FIELDS));
            }
        }
        Ok(out)
    }
}

/// Step 4: every variable's nesting and strings.
pub fn check_variables(variables: &Variables) -> ServerResult<()> {
    for (name, value) in variables.iter() {
        check_value(name, value, MAX_VALUE_NESTING)?;
    }
    Ok(())
}

/// Walks `value` without recursion: nesting at most `max_nesting`, every string (and object
/// key) within the text policy and [`MAX_STRING_CHARS`].
fn check_value(field: &str, value: &Value, max_nesting: usize) -> ServerResult<()> {
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > max_nesting {
            return Err(exceeded("valueNesting", max_nesting));
        }
        match value {
            Value::String(s) => check_string(field, s)?,
            Value::Enum(s) => check_string(field, s)?,
            Value::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(fields) => {
                for (key, v) in fields {
                    check_string(field, key)?;
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_string(field: &str, value: &str) -> ServerResult<()> {
    text::check_len(value, Lines::Multi, MAX_STRING_CHARS)
        .map_err(|refusal| gql_error::invalid_argument(field, &format!("`{field}` {refusal}")))
}

/// The type of the operation `name` selects in `document` (the only one when `name` is
/// `None`), as the metrics label it: `query`, `mutation`, `subscription`, or `none` when no
/// operation matches (execution then answers the error).
pub fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> &'static str {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let ty = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    };
    match ty {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: &ServerError) -> String {
        err.extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    fn check(query: &str) -> ServerResult<()> {
        scan(query)?;
        let doc = parser::parse_query(query).map_err(gql_error::parse_failed)?;
        check_document(&doc)
    }

    #[test]
    fn scan_refuses_nesting_at_ten_times_the_cap() {
        let deep = format!(
            "{{ users(after: {}1{}) {{ totalCount }} }}",
            "[".repeat(320),
            "]".repeat(320)
        );
        let err = scan(&deep).unwrap_err();
        assert_eq!(code(&err), "\"LIMIT_EXCEEDED\"");
        let objects = format!(
            "{{ users(filter: {}) {{ totalCount }} }}",
            "{a:".repeat(320) + "1" + &"}".repeat(320)
        );
        assert!(scan(&objects).is_err());
    }

    #[test]
    fn scan_ignores_brackets_in_strings_and_comments() {
        let query = format!(
            "# {}\n{{ users(filter: {{search: \"{}\"}}) {{ totalCount }} }}",
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(scan(&query).is_ok());
        let block = format!("{{ a(x: \"\"\" {} \\\"\"\" \"\"\") }}", "(".repeat(100));
        assert!(scan(&block).is_ok());
    }

    #[test]
    fn scan_refuses_too_many_tokens_and_bytes() {
        let tokens = format!("{{ {} }}", "a ".repeat(MAX_TOKENS * 10));
        assert!(scan(&tokens).is_err());
        let bytes = format!("# {}\n{{ a }}", "x".repeat(MAX_DOCUMENT_BYTES * 10));
        assert!(scan(&bytes).is_err());
    }

    /// `query { ...F0 }` where each fragment spreads the next one twice: 2^n fields.
    fn doubling(n: usize) -> String {
        let mut query = String::from("query { ...F0 }\n");
        for i in 0..n {
            let next = i + 1;
            query.push_str(&format!(
                "fragment F{i} on Query {{ ...F{next} ...F{next} }}\n"
            ));
        }
        query.push_str(&format!("fragment F{n} on Query {{ __typename }}"));
        query
    }

    #[test]
    fn check_document_refuses_fragment_doubling_without_expanding_it() {
        // 300 fragments nest deeper than spreads may.
        let err = check(&doubling(300)).unwrap_err();
        assert_eq!(code(&err), "\"LIMIT_EXCEEDED\"");
        // 2^20 fields, counted with each fragment once.
        let err = check(&doubling(20)).unwrap_err();
        assert!(err.message.contains("fields"), "{}", err.message);
        assert!(
            check(&doubling(9)).is_ok(),
            "512 fields are within the bound"
        );
    }

    #[test]
    fn check_document_refuses_fragment_cycles() {
        let err = check("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .unwrap_err();
        assert_eq!(code(&err), "\"GRAPHQL_VALIDATION_FAILED\"");
    }

    #[test]
    fn check_document_counts_aliases_and_depth() {
        let aliases: String = (0..=MAX_ALIASES)
            .map(|i| format!("a{i}: __typename "))
            .collect();
        assert!(check(&format!("{{ {aliases} }}")).is_err());
        let mut deep = String::from("id");
        for _ in 0..MAX_DEPTH {
            deep = format!("a {{ {deep} }}");
        }
        let err = check(&format!("{{ {deep} }}")).unwrap_err();
        assert!(err.message.contains("nested too deep"), "{}", err.message);
    }

    #[test]
    fn check_document_refuses_control_characters_in_arguments() {
        let err = check(r#"{ users(filter: {search: "a\u0000b"}) { totalCount } }"#).unwrap_err();
        assert_eq!(code(&err), "\"INVALID_INPUT\"");
        let err = check("{ a(name: \"x\u{202E}y\") }").unwrap_err();
        assert_eq!(code(&err), "\"INVALID_INPUT\"");
    }

    #[test]
    fn check_variables_bounds_nesting_without_recursion() {
        let mut value = Value::from(1);
        for _ in 0..(MAX_VALUE_NESTING * 10) {
            value = Value::List(vec![value]);
        }
        let variables = Variables::from_value(Value::Object(
            [(Name::new("v"), value)].into_iter().collect(),
        ));
        assert!(check_variables(&variables).is_err());
    }
}
