//! Evaluating a parsed SCIM filter over a resource's JSON: case-insensitive attribute names,
//! case-exact comparison for ids and `value`, case-insensitive for every other string.

use super::{AttrPath, Filter, Op};
use serde_json::Value;
use std::cmp::Ordering;

/// `object[name]`, ignoring case.
pub fn get_ci<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Attributes compared exactly; every other string compares ignoring case.
fn case_exact(attr: &str) -> bool {
    ["id", "externalId", "value", "$ref"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(attr))
}

/// The values `path` names in `resource` (several for a multi-valued attribute).
fn values_at<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let scope = match &path.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => match get_ci(resource, uri) {
            Some(ext) => ext,
            None => return Vec::new(),
        },
        _ => resource,
    };
    let Some(value) = get_ci(scope, &path.attr) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    match &path.sub {
        Some(sub) => items.into_iter().filter_map(|v| get_ci(v, sub)).collect(),
        // A multi-valued attribute compared as a whole compares its elements' `value`.
        None if value.is_array() => items
            .into_iter()
            .map(|v| get_ci(v, "value").unwrap_or(v))
            .collect(),
        None => items,
    }
}

fn compare(found: &Value, op: Op, wanted: &Value, exact: bool) -> bool {
    match (found, wanted) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact {
                (a.clone(), b.clone())
            } else {
                (a.to_lowercase(), b.to_lowercase())
            };
            match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                Op::Co => a.contains(&b),
                Op::Sw => a.starts_with(&b),
                Op::Ew => a.ends_with(&b),
                Op::Gt => a > b,
                Op::Ge => a >= b,
                Op::Lt => a < b,
                Op::Le => a <= b,
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let ordering = a
                .as_f64()
                .zip(b.as_f64())
                .and_then(|(a, b)| a.partial_cmp(&b));
            match (op, ordering) {
                (Op::Eq, Some(o)) => o == Ordering::Equal,
                (Op::Ne, Some(o)) => o != Ordering::Equal,
                (Op::Gt, Some(o)) => o == Ordering::Greater,
                (Op::Ge, Some(o)) => o != Ordering::Less,
                (Op::Lt, Some(o)) => o == Ordering::Less,
                (Op::Le, Some(o)) => o != Ordering::Greater,
                _ => false,
            }
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            _ => false,
        },
        // Entra sends booleans as strings ("True").
        (Value::Bool(a), Value::String(b)) => match b.to_ascii_lowercase().as_str() {
            "true" => compare(&Value::Bool(*a), op, &Value::Bool(true), exact),
            "false" => compare(&Value::Bool(*a), op, &Value::Bool(false), exact),
            _ => false,
        },
        (_, Value::Null) => match op {
            Op::Eq => found.is_null(),
            Op::Ne => !found.is_null(),
            _ => false,
        },
        _ => op == Op::Ne,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl Filter {
    /// Whether `resource` matches.
    pub fn matches(&self, resource: &Value) -> bool {
        match self {
            Filter::Compare(path, op, wanted) => {
                let exact = case_exact(path.sub.as_deref().unwrap_or(&path.attr));
                let found = values_at(resource, path);
                if found.is_empty() {
                    return *op == Op::Ne && !wanted.is_null()
                        || (*op == Op::Eq && wanted.is_null());
                }
                if *op == Op::Ne {
                    return found.iter().all(|v| compare(v, Op::Ne, wanted, exact));
                }
                found.iter().any(|v| compare(v, *op, wanted, exact))
            }
            Filter::Present(path) => values_at(resource, path).iter().any(|v| !is_empty(v)),
            Filter::And(a, b) => a.matches(resource) && b.matches(resource),
            Filter::Or(a, b) => a.matches(resource) || b.matches(resource),
            Filter::Not(inner) => !inner.matches(resource),
            Filter::ValuePath(path, inner) => {
                let scope = match &path.uri {
                    Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
                        get_ci(resource, uri)
                    }
                    _ => Some(resource),
                };
                match scope.and_then(|s| get_ci(s, &path.attr)) {
                    Some(Value::Array(items)) => items.iter().any(|item| inner.matches(item)),
                    Some(single @ Value::Object(_)) => inner.matches(single),
                    _ => false,
                }
            }
        }
    }

    /// The address an `emails[… value eq "x" …]` or `emails[…].value eq "x"` filter requires,
    /// when it requires one (a database lookup can narrow the candidates to it).
    pub fn email_eq(&self) -> Option<&str> {
        fn required_value(f: &Filter) -> Option<&str> {
            match f {
                Filter::Compare(p, Op::Eq, Value::String(v))
                    if p.attr.eq_ignore_ascii_case("value") && p.sub.is_none() =>
                {
                    Some(v)
                }
                Filter::And(a, b) => required_value(a).or_else(|| required_value(b)),
                _ => None,
            }
        }
        match self {
            Filter::ValuePath(p, inner) if p.attr.eq_ignore_ascii_case("emails") => {
                required_value(inner)
            }
            Filter::Compare(p, Op::Eq, Value::String(v))
                if p.attr.eq_ignore_ascii_case("emails")
                    && p.sub
                        .as_deref()
                        .is_none_or(|s| s.eq_ignore_ascii_case("value")) =>
            {
                Some(v)
            }
            Filter::And(a, b) => a.email_eq().or_else(|| b.email_eq()),
            _ => None,
        }
    }

    /// `Some((attribute, value))` when the filter is one `attr eq "value"` on a top-level
    /// attribute: the case a database index can answer (Okta's and Entra's lookups).
    pub fn simple_eq(&self) -> Option<(&str, &str)> {
        match self {
            Filter::Compare(path, Op::Eq, Value::String(value))
                if path.sub.is_none()
                    && path
                        .uri
                        .as_deref()
                        .is_none_or(|u| u.to_ascii_lowercase().contains(":core:")) =>
            {
                Some((path.attr.as_str(), value.as_str()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use serde_json::{Value, json};

    fn user() -> Value {
        json!({
            "userName": "Adele@Contoso.example",
            "externalId": "ext-1",
            "active": true,
            "name": { "givenName": "Adele", "familyName": "Vance" },
            "emails": [
                { "value": "adele@contoso.example", "type": "work", "primary": true },
                { "value": "adele@home.example", "type": "home" }
            ],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Retail" }
        })
    }

    fn check(filter: &str) -> bool {
        parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(&user())
    }

    #[test]
    fn operators_and_case() {
        assert!(check(r#"userName eq "adele@contoso.example""#));
        assert!(check(r#"USERNAME Eq "ADELE@CONTOSO.EXAMPLE""#));
        assert!(
            !check(r#"externalId eq "EXT-1""#),
            "externalId is case-exact"
        );
        assert!(check(r#"userName co "contoso""#));
        assert!(check(r#"userName sw "adele""#));
        assert!(check(r#"userName ew ".example""#));
        assert!(check(r#"userName ne "someone""#));
        assert!(check("name.givenName pr"));
        assert!(!check("title pr"));
        assert!(check("active eq true"));
        assert!(check(r#"userName gt "a" and userName lt "b""#));
    }

    #[test]
    fn logic_precedence_and_grouping() {
        assert!(check(
            r#"userName eq "x" or userName sw "adele" and active eq true"#
        ));
        assert!(!check(
            r#"(userName eq "x" or userName sw "adele") and active eq false"#
        ));
        assert!(check(r#"not (userName eq "x")"#));
    }

    #[test]
    fn value_paths_and_urns() {
        assert!(check(r#"emails[type eq "work" and value co "contoso"]"#));
        assert!(!check(r#"emails[type eq "work" and value co "home"]"#));
        assert!(check(
            r#"emails[type eq "work"].value eq "adele@contoso.example""#
        ));
        assert!(check(r#"emails eq "adele@home.example""#));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "retail""#
        ));
        assert!(check(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "adele""#
        ));
    }
}
