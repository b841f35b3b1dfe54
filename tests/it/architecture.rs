//! The module graph of `src/`, read from the source: every `crate::…` and `super::…` path
//! (in `use` trees and inline) is an edge from the module that writes it to the module it
//! names. Two rules, as ARCHITECTURE.md states them:
//!
//! - no cycle between sibling modules, at any level (`sync::engine` ⇄ `sync::run` would be
//!   one; a module and its own children are not siblings);
//! - the top level runs one way: edges (`cli`, `http`, `app`, `graphql`, `scim`) → domain
//!   (`directory`, `sync`, `services`) → providers and storage (everything else) → `entity`.
//!
//! Unit-test code (`#[cfg(test)] mod tests` at the end of a file, and `testing.rs` helpers) is
//! left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "testing.rs")
        {
            out.push(path);
        }
    }
}

/// `src/sync/reconcile/full.rs` → `sync::reconcile::full`; `mod.rs` is its folder.
fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    parts
}

/// The source without its unit tests, comments and string contents.
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut prev = ' ';
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                    out.push('"');
                }
            } else if c == '/' && prev == '/' {
                out.pop();
                break;
            } else {
                if c == '"' {
                    in_string = true;
                }
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// A tiny reader of use trees: `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token.as_bytes()) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.at;
        while self.at < self.text.len()
            && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
        {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    /// The paths of one use tree (or one inline path), relative to where it starts.
    fn tree(&mut self) -> Vec<Vec<String>> {
        let mut prefix = Vec::new();
        loop {
            if self.eat("{") {
                let mut out = Vec::new();
                loop {
                    if self.eat("}") {
                        return out;
                    }
                    for path in self.tree() {
                        out.push(prefix.iter().cloned().chain(path).collect());
                    }
                    if !self.eat(",") {
                        self.eat("}");
                        return out;
                    }
                }
            }
            if self.eat("*") {
                return vec![prefix];
            }
            match self.ident() {
                Some(segment) => prefix.push(segment),
                None => return vec![prefix],
            }
            if !self.eat("::") {
                return vec![prefix];
            }
        }
    }
}

/// Names the crate root re-exports, and the modules they come from.
fn reexported(name: &str) -> Option<&'static str> {
    match name {
        "App" | "Core" => Some("app"),
        "Config" => Some("config"),
        "DomainError" => Some("error"),
        _ => None,
    }
}

/// Every (from, to) module pair of the crate.
fn edges() -> BTreeSet<(Module, Module)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut edges = BTreeSet::new();
    for file in files {
        let me = module_of(&root, &file);
        let text = code(&std::fs::read_to_string(&file).expect("read source"));
        let bytes = text.as_bytes();
        let mut at = 0;
        while let Some(found) = text[at..].find(['c', 's']).map(|i| at + i) {
            at = found + 1;
            let boundary = found == 0
                || !(bytes[found - 1].is_ascii_alphanumeric() || bytes[found - 1] == b'_');
            let rest = &text[found..];
            let (mut base, mut skip) = if boundary && rest.starts_with("crate::") {
                (Vec::new(), "crate::".len())
            } else if boundary && rest.starts_with("super::") {
                (me[..me.len().saturating_sub(1)].to_vec(), "super::".len())
            } else {
                continue;
            };
            while text[found + skip..].starts_with("super::") {
                base.pop();
                skip += "super::".len();
            }
            let mut reader = Reader {
                text: bytes,
                at: found + skip,
            };
            for path in reader.tree() {
                let mut target: Module = base.iter().cloned().chain(path).collect();
                if let Some(module) = target.first().and_then(|n| reexported(n)) {
                    target = vec![module.to_owned()];
                }
                edges.insert((me.clone(), target));
            }
            at = reader.at.max(at);
        }
    }
    edges
}

/// The graph among the children of `parent`: child → children it names.
fn siblings(
    edges: &BTreeSet<(Module, Module)>,
    parent: &[String],
) -> BTreeMap<String, BTreeSet<String>> {
    let depth = parent.len();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        if from.len() > depth
            && to.len() > depth
            && from[..depth] == *parent
            && to[..depth] == *parent
            && from[depth] != to[depth]
        {
            graph
                .entry(from[depth].clone())
                .or_default()
                .insert(to[depth].clone());
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str())
            && let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn architecture_has_no_cycle_between_sibling_modules() {
    let edges = edges();
    assert!(
        edges.len() > 100,
        "the reader found only {} edges: is it still reading src/?",
        edges.len()
    );
    let parents: BTreeSet<Module> = edges
        .iter()
        .flat_map(|(from, _)| (0..from.len()).map(|n| from[..n].to_vec()))
        .collect();
    let mut cycles = Vec::new();
    for parent in &parents {
        if let Some(cycle) = find_cycle(&siblings(&edges, parent)) {
            let at = if parent.is_empty() {
                "crate".to_owned()
            } else {
                parent.join("::")
            };
            cycles.push(format!("{at}: {}", cycle.join(" → ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

/// The layer of a top-level module: a module may name modules of its own layer or lower.
fn layer(module: &str) -> u8 {
    match module {
        "cli" | "http" | "app" | "graphql" | "scim" | "main" => 3,
        "directory" | "sync" | "services" | "webhooks" => 2,
        _ => 1,
    }
}

#[test]
fn architecture_runs_from_edges_to_domain_to_providers() {
    let top = siblings(&edges(), &[]);
    let mut wrong = Vec::new();
    for (from, targets) in &top {
        for to in targets {
            if layer(to) > layer(from) {
                wrong.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules that name a layer above their own:\n{}",
        wrong.join("\n")
    );
    // The reader sees the edges it must: a check that cannot fail is no check.
    assert!(top["sync"].contains("directory"));
    assert!(top["graphql"].contains("directory"));
    assert!(top["directory"].contains("providers"));
}

#[test]
fn architecture_reader_expands_use_trees() {
    let text = "a::{b, c::{d, e}, f::*}, g";
    let mut reader = Reader {
        text: text.as_bytes(),
        at: 0,
    };
    let paths: Vec<String> = reader.tree().iter().map(|p| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "a::c::d", "a::c::e", "a::f"]);
    assert_eq!(
        code("let a = \"crate::x // y\"; // crate::z\nuse crate::w;"),
        "let a = \"\"; \nuse crate::w;\n"
    );
}

/// The most lines a file of `src/` may have (unit tests may move to a `tests.rs` beside it).
const MAX_FILE_LINES: usize = 600;
/// The most lines a function of `src/` may have.
const MAX_FN_LINES: usize = 80;

/// Every function of `code` (see [`code`]) as (name, lines from its `fn` to its closing brace).
fn functions(code: &str) -> Vec<(String, usize)> {
    // Braces in char literals are not blocks.
    let code = code.replace("'{'", "' '").replace("'}'", "' '");
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let Some(at) = line.find("fn ") else {
            continue;
        };
        let before = &line[..at];
        let is_item = before.split_whitespace().all(|w| {
            [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
            ]
            .contains(&w)
                || w.starts_with("pub(")
        });
        let name: String = line[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !is_item || name.is_empty() {
            continue;
        }
        // The body starts at the first `{` before any `;` (a trait's declaration has none).
        let mut depth = 0usize;
        let mut opened = false;
        let mut end = None;
        'scan: for (i, l) in lines.iter().enumerate().skip(start) {
            for c in l.chars() {
                match c {
                    ';' if !opened => break 'scan,
                    '{' => {
                        opened = true;
                        depth += 1;
                    }
                    '}' if opened => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i);
                            break 'scan;
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(end) = end {
            out.push((name, end - start + 1));
        }
    }
    out
}

#[test]
fn architecture_keeps_files_and_functions_short() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut long_files = Vec::new();
    let mut long_functions = Vec::new();
    for file in &files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(file).expect("read");
        let rel = file
            .strip_prefix(&root)
            .expect("under src")
            .display()
            .to_string();
        let lines = source.lines().count();
        if lines > MAX_FILE_LINES {
            long_files.push(format!("{rel}: {lines} lines"));
        }
        for (name, lines) in functions(&code(&source)) {
            if lines > MAX_FN_LINES {
                long_functions.push((format!("{rel}::{name}"), lines));
            }
        }
    }
    assert!(
        long_files.is_empty(),
        "files over {MAX_FILE_LINES} lines (move unit tests to a tests.rs, or split the concept):\n{}",
        long_files.join("\n")
    );
    let long: Vec<String> = long_functions
        .iter()
        .map(|(name, lines)| format!("{name}: {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them into named steps):\n{}",
        long.join("\n")
    );
}

/// The measure of a function sees its body, not its braces in strings or char literals,
/// and stops at a declaration without one: a check that cannot fail is no check.
#[test]
fn architecture_measures_functions() {
    let source = "pub async fn a(x: u8) -> u8 {\n    let s = \"}}}\";\n    let c = '}';\n    if x > 1 {\n        x\n    } else {\n        0\n    }\n}\n\nfn declared(&self);\n\nfn b() {}\n";
    let found = functions(&code(source));
    assert_eq!(found, vec![("a".to_owned(), 9), ("b".to_owned(), 1)]);
    let long = format!("fn long() {{\n{}}}\n", "    step();\n".repeat(MAX_FN_LINES));
    assert_eq!(
        functions(&code(&long)),
        vec![("long".to_owned(), MAX_FN_LINES + 2)]
    );
}

/// What building or running a statement looks like in code: sea-query, raw statements, the
/// connection traits, entity queries (`Entity::find()`, `insert_many`, an active model's
/// `save`/`insert`/`update`/`delete` through `ActiveModelTrait`, ...), and the traits a
/// query is built or run with (`QueryFilter`, `PaginatorTrait`, ...), without which no
/// select can be narrowed or counted.
const SQL_MARKERS: &[&str] = &[
    "sea_query",
    "Statement",
    "ConnectionTrait",
    "ActiveModelTrait",
    "EntityTrait",
    "QueryFilter",
    "QuerySelect",
    "QueryOrder",
    "QueryTrait",
    "PaginatorTrait",
    "Entity::find",
    "Entity::insert",
    "Entity::update",
    "Entity::delete",
    "find_by_id",
    "insert_many",
    "update_many",
    "delete_many",
    "execute_raw",
    "execute_unprepared",
    "query_all_raw",
    "query_one_raw",
    "from_raw_sql",
];

/// The markers of [`SQL_MARKERS`] in code (comments and string contents left out).
fn statements_in(code: &str) -> Vec<&'static str> {
    SQL_MARKERS
        .iter()
        .copied()
        .filter(|marker| {
            code.match_indices(marker).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                let after = code[at + marker.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
                !word(before) && !word(after)
            })
        })
        .collect()
}

#[test]
fn architecture_keeps_statements_in_the_store() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut outside = BTreeMap::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .expect("under src")
            .display()
            .to_string();
        if rel.starts_with("store/") || file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let source = std::fs::read_to_string(file).expect("read");
        let found = statements_in(&code(&source));
        if !found.is_empty() {
            outside.insert(rel, found);
        }
    }
    let found: Vec<String> = outside
        .iter()
        .map(|(file, found)| format!("{file}: {found:?}"))
        .collect();
    assert!(
        found.is_empty(),
        "statements outside src/store/ (move them to a store module and call it):\n{}",
        found.join("\n")
    );
}

/// The statement finder sees code, not comments, strings or longer names: a check that
/// cannot fail is no check.
#[test]
fn architecture_finds_statements() {
    let source = "// Entity::find() in a comment\nfn a() {\n    let s = \"sea_query\";\n    let m = user::Entity::find().all(db);\n    let t: &dyn MyConnectionTraitLike = x;\n}\n";
    assert_eq!(statements_in(&code(source)), ["Entity::find"]);
    let raw =
        "async fn b<C: ConnectionTrait>(db: &C) { db.execute_raw(Statement::from_string(b, q)); }";
    assert_eq!(
        statements_in(&code(raw)),
        ["Statement", "ConnectionTrait", "execute_raw"]
    );
    assert!(statements_in(&code("fn c() { let n = page.items.len(); }")).is_empty());
    let built =
        "use sea_orm::{EntityTrait, QueryFilter};\nfn d() { users::Entity::find().filter(x); }";
    assert_eq!(
        statements_in(&code(built)),
        ["EntityTrait", "QueryFilter", "Entity::find"]
    );
}
