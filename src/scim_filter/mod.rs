//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): a parser to an AST (here) and an
//! evaluator over a resource's JSON (`eval.rs`). Attribute names are case-insensitive; `eq`, `ne`, `co`,
//! `sw`, `ew`, `gt`, `ge`, `lt`, `le`, `pr`, `and`, `or`, `not`, parentheses, sub-attributes,
//! schema-URN prefixes and value filters (`emails[type eq "work"]`, and Entra's
//! `emails[type eq "work"].value eq "…"`). Precedence: `not`, then `and`, then `or`.

mod eval;

pub use eval::get_ci;
use serde_json::Value;

/// Longest filter (or PATCH path) accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 8 * 1024;
/// Deepest nesting of `(`, `not (` and `[` in a filter (kanidm's `SCIM_FILTER_MAX_DEPTH`).
pub const MAX_FILTER_DEPTH: usize = 128;
/// Most comparisons (`attr op value`, `attr pr`) in one filter.
pub const MAX_FILTER_TERMS: usize = 64;

/// An attribute path: `[urn:…:]attr[.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// The schema URN, when given.
    pub uri: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(AttrPath, Op, Value),
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`.
    ValuePath(AttrPath, Box<Filter>),
}

/// A PATCH target: `attr[.sub]`, or `attr[filter][.sub]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    LBracket,
    RBracket,
    /// `.sub` right after `]`.
    Dot(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    if input.len() > MAX_FILTER_BYTES {
        return Err(format!(
            "the filter is longer than {MAX_FILTER_BYTES} bytes"
        ));
    }
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '[' => {
                tokens.push(Token::LBracket);
                i += 1;
            }
            ']' => {
                tokens.push(Token::RBracket);
                i += 1;
                if chars.get(i) == Some(&'.') {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                        end += 1;
                    }
                    if end == start {
                        return Err("a sub-attribute name must follow `].`".into());
                    }
                    tokens.push(Token::Dot(chars[start..end].iter().collect()));
                    i = end;
                }
            }
            '"' => {
                // A JSON string: find its end, honouring escapes, and let serde decode it.
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < chars.len() {
                    match chars[i] {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => break,
                        _ => escaped = false,
                    }
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("a string is not closed".into());
                }
                let raw: String = chars[start..=i].iter().collect();
                let value: String =
                    serde_json::from_str(&raw).map_err(|e| format!("bad string {raw}: {e}"))?;
                crate::text::check(&value, crate::text::Lines::Single)
                    .map_err(|refusal| format!("a filter value {refusal}"))?;
                tokens.push(Token::Str(value));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ' ' | '(' | ')' | '[' | ']' | '"') {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

/// Parses `[urn:…:]attr[.sub]`.
pub fn parse_attr_path(word: &str) -> Result<AttrPath, String> {
    let (uri, rest) = if word.to_ascii_lowercase().starts_with("urn:") {
        match word.rfind(':') {
            Some(i) => (Some(word[..i].to_owned()), &word[i + 1..]),
            None => (None, word),
        }
    } else {
        (None, word)
    };
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s.to_owned())),
        None => (rest, None),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !valid(attr) || sub.as_deref().is_some_and(|s| !valid(s)) {
        return Err(format!("`{word}` is not an attribute path"));
    }
    Ok(AttrPath {
        uri,
        attr: attr.to_owned(),
        sub,
    })
}

fn op_of(word: &str) -> Option<Op> {
    Some(match word.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "co" => Op::Co,
        "sw" => Op::Sw,
        "ew" => Op::Ew,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        _ => return None,
    })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Open `(`, `not (` and `[` around the current position.
    depth: usize,
    /// Comparisons read so far.
    terms: usize,
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Self {
        Self {
            tokens,
            pos: 0,
            depth: 0,
            terms: 0,
        }
    }

    /// `inner` one nesting level down, refused past [`MAX_FILTER_DEPTH`].
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<T, String> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(format!(
                "the filter nests deeper than {MAX_FILTER_DEPTH} levels"
            ));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn term(&mut self) -> Result<(), String> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(format!(
                "the filter has more than {MAX_FILTER_TERMS} comparisons"
            ));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.pos += 1;
            return match self.next() {
                Some(Token::Open) => {
                    let inner = self.nested(Self::or)?;
                    self.expect_close()?;
                    Ok(Filter::Not(Box::new(inner)))
                }
                _ => Err("`not` must be followed by `(`".into()),
            };
        }
        match self.next() {
            Some(Token::Open) => {
                let inner = self.nested(Self::or)?;
                self.expect_close()?;
                Ok(inner)
            }
            Some(Token::Word(word)) => self.attr_expression(&word),
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("the filter ends too soon".into()),
        }
    }

    fn expect_close(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Token::Close) => Ok(()),
            _ => Err("a `(` is not closed".into()),
        }
    }

    fn attr_expression(&mut self, word: &str) -> Result<Filter, String> {
        let path = parse_attr_path(word)?;
        if self.peek() == Some(&Token::LBracket) {
            self.pos += 1;
            let inner = self.nested(Self::or)?;
            match self.next() {
                Some(Token::RBracket) => {}
                _ => return Err("a `[` is not closed".into()),
            }
            // Entra's form: `emails[type eq "work"].value eq "…"`.
            if let Some(Token::Dot(sub)) = self.peek().cloned() {
                self.pos += 1;
                let sub_path = AttrPath {
                    uri: None,
                    attr: sub,
                    sub: None,
                };
                let tail = self.comparison(sub_path)?;
                return Ok(Filter::ValuePath(
                    path,
                    Box::new(Filter::And(Box::new(inner), Box::new(tail))),
                ));
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, String> {
        self.term()?;
        let op = match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                return Ok(Filter::Present(path));
            }
            Some(Token::Word(w)) => op_of(&w).ok_or_else(|| format!("`{w}` is not an operator"))?,
            _ => return Err("an operator must follow the attribute".into()),
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                number => serde_json::from_str::<serde_json::Number>(number)
                    .map(Value::Number)
                    .map_err(|_| format!("`{number}` is not a value"))?,
            },
            _ => return Err("a value must follow the operator".into()),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// Parses a filter; the error says why it is not one (`400 invalidFilter`).
pub fn parse(input: &str) -> Result<Filter, String> {
    let mut parser = Parser::new(tokenize(input)?);
    let filter = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return Err(format!(
            "unexpected {:?} after the filter",
            parser.tokens[parser.pos]
        ));
    }
    Ok(filter)
}

/// Parses a PATCH path (`400 invalidPath` on error).
pub fn parse_path(input: &str) -> Result<PatchPath, String> {
    let tokens = tokenize(input)?;
    let mut iter = tokens.into_iter();
    let Some(Token::Word(word)) = iter.next() else {
        return Err(format!("`{input}` is not a path"));
    };
    let attr = parse_attr_path(&word)?;
    let rest: Vec<Token> = iter.collect();
    if rest.is_empty() {
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    }
    if rest.first() != Some(&Token::LBracket) {
        return Err(format!("`{input}` is not a path"));
    }
    let close = rest
        .iter()
        .rposition(|t| *t == Token::RBracket)
        .ok_or("a `[` is not closed")?;
    let mut parser = Parser::new(rest[1..close].to_vec());
    let filter = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return Err(format!("`{input}` is not a path"));
    }
    let sub = match &rest[close + 1..] {
        [] => None,
        [Token::Dot(sub)] => Some(sub.clone()),
        _ => return Err(format!("`{input}` is not a path")),
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName zz "x""#,
            r#"(userName eq "x""#,
            r#"userName eq "x" and"#,
            r#"emails[type eq "work""#,
            r#"userName eq "unterminated"#,
            "not userName pr",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = parse_path(r#"members[value eq "abc"]"#).unwrap();
        assert_eq!(p.attr.attr, "members");
        assert!(p.filter.is_some());
        let p = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_path("name.givenName").unwrap();
        assert_eq!(p.attr.sub.as_deref(), Some("givenName"));
        let p =
            parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .unwrap();
        assert_eq!(p.attr.attr, "manager");
        assert_eq!(p.attr.sub.as_deref(), Some("value"));
        assert!(parse_path("members[value eq").is_err());
        assert!(parse_path("9bad").is_err());
    }

    #[test]
    fn parse_refuses_nesting_at_ten_times_the_cap() {
        let depth = MAX_FILTER_DEPTH * 10;
        for (open, close) in [("(", ")"), ("not (", ")"), ("emails[", "]")] {
            let filter = format!(
                "{}userName eq \"a\"{}",
                open.repeat(depth),
                close.repeat(depth)
            );
            let input = &filter[..filter.len().min(MAX_FILTER_BYTES)];
            let err = parse(input).unwrap_err();
            assert!(err.contains("deeper") || err.contains("longer"), "{err}");
        }
        let at_cap = format!(
            "{}userName eq \"a\"{}",
            "(".repeat(MAX_FILTER_DEPTH),
            ")".repeat(MAX_FILTER_DEPTH)
        );
        assert!(parse(&at_cap).is_ok());
    }

    #[test]
    fn parse_refuses_too_many_terms_and_too_long_filters() {
        let terms = |n: usize| vec!["userName eq \"a\""; n].join(" or ");
        assert!(parse(&terms(MAX_FILTER_TERMS)).is_ok());
        let err = parse(&terms(MAX_FILTER_TERMS + 1)).unwrap_err();
        assert!(err.contains("comparisons"), "{err}");
        // The report's payload: 40,000 `or` terms (930 KB).
        let err = parse(&terms(40_000)).unwrap_err();
        assert!(err.contains("longer"), "{err}");
        let err = parse_path(&format!("members[{}]", terms(MAX_FILTER_TERMS * 10))).unwrap_err();
        assert!(
            err.contains("comparisons") || err.contains("longer"),
            "{err}"
        );
    }

    #[test]
    fn parse_refuses_control_characters_in_values() {
        assert!(parse(r#"userName eq "a\u0000b""#).is_err());
        assert!(parse("userName eq \"a\u{202E}b\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_any_text(input in "\\PC{0,300}") {
            let _ = parse(&input);
            let _ = parse_path(&input);
        }

        #[test]
        fn parse_never_panics_on_filter_shaped_text(
            input in r#"((not ?)?\(|emails\[|\)|\]|\]\.value|userName|eq|sw|pr|and|or| |"x"|"\\"|true|1|urn:ietf:params:scim:schemas:core:2.0:User:)*"#
        ) {
            let _ = parse(&input);
            let _ = parse_path(&input);
        }

        #[test]
        fn parse_bounds_any_nesting(depth in 0usize..2_000, open in 0usize..3) {
            let (o, c) = [("(", ")"), ("not(", ")"), ("emails[", "]")][open];
            let filter = format!("{}userName eq \"a\"{}", o.repeat(depth), c.repeat(depth));
            let parsed = parse(&filter);
            proptest::prop_assert_eq!(parsed.is_ok(), depth <= MAX_FILTER_DEPTH && filter.len() <= MAX_FILTER_BYTES);
        }
    }
}
