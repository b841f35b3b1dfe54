//! SCIM PATCH (RFC 7644 §3.5.2): `add`, `remove`, `replace`, with and without `path`, value
//! filters in paths, and the dialects real clients send — Entra's capitalised ops, booleans as
//! strings and path-less `replace` with dotted or URN-prefixed keys; Okta's path-less
//! `{"active": false}`. Operations apply to the resource's JSON; the caller then checks the
//! result against the schema, so an operation that leaves an invalid resource changes nothing.

use crate::scim_filter::{Filter, Op, PatchPath, get_ci, parse_path};
use serde_json::{Map, Value};

/// Why a PATCH is refused: a SCIM `scimType` and a detail.
#[derive(Debug)]
pub struct PatchError {
    pub scim_type: &'static str,
    pub detail: String,
}

fn error(scim_type: &'static str, detail: impl Into<String>) -> PatchError {
    PatchError {
        scim_type,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

/// Whether `path` names something the caller accepts (checked before anything is applied).
pub type KnownPath<'a> = &'a dyn Fn(&PatchPath) -> bool;

/// Most operations in one PATCH request.
pub const MAX_OPERATIONS: usize = 1_000;

/// Applies a PatchOp body's `Operations` to `resource`, in order.
pub fn apply(resource: &mut Value, body: &Value, known: KnownPath<'_>) -> Result<(), PatchError> {
    for op in operations(body)? {
        apply_operation(resource, op, known)?;
    }
    Ok(())
}

/// The `Operations` of a PatchOp body, checked: an object naming the PatchOp schema, at most
/// [`MAX_OPERATIONS`] of them.
fn operations(body: &Value) -> Result<&Vec<Value>, PatchError> {
    let Some(body) = body.as_object() else {
        return Err(error("invalidSyntax", "the body must be a JSON object"));
    };
    let member = |name: &str| {
        body.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_array())
    };
    let patch_op = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case(super::schema::PATCH_OP))
    };
    if !member("schemas").is_some_and(|s| s.iter().any(patch_op)) {
        return Err(error(
            "invalidSyntax",
            format!("`schemas` must be [\"{}\"]", super::schema::PATCH_OP),
        ));
    }
    let Some(ops) = member("Operations") else {
        return Err(error("invalidSyntax", "`Operations` must be a list"));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(error(
            "tooMany",
            format!("a PATCH may carry at most {MAX_OPERATIONS} operations"),
        ));
    }
    Ok(ops)
}

/// Applies one operation to `resource`.
fn apply_operation(
    resource: &mut Value,
    op: &Value,
    known: KnownPath<'_>,
) -> Result<(), PatchError> {
    let kind = match get_ci(op, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
    {
        Some(k) if k == "add" => Kind::Add,
        Some(k) if k == "replace" => Kind::Replace,
        Some(k) if k == "remove" => Kind::Remove,
        other => {
            return Err(error(
                "invalidSyntax",
                format!("unknown operation {other:?}: use add, replace or remove"),
            ));
        }
    };
    let value = get_ci(op, "value").cloned();
    match get_ci(op, "path").and_then(Value::as_str) {
        // The whole enterprise extension at once.
        Some(path) if path.eq_ignore_ascii_case(super::schema::ENTERPRISE) => {
            apply_extension(resource, kind, path, value)
        }
        Some(path) => {
            let parsed = parse_path(path).map_err(|e| error("invalidPath", e))?;
            if !known(&parsed) {
                return Err(error(
                    "invalidPath",
                    format!("`{path}` is not an attribute"),
                ));
            }
            apply_at(resource, kind, &parsed, value)
        }
        None => {
            if kind == Kind::Remove {
                return Err(error("noTarget", "a remove needs a path"));
            }
            let Some(Value::Object(fields)) = value else {
                return Err(error(
                    "invalidValue",
                    "an operation without a path needs an object value",
                ));
            };
            for (key, v) in fields {
                apply_pathless(resource, kind, &key, v, known)?;
            }
            Ok(())
        }
    }
}

fn apply_extension(
    resource: &mut Value,
    kind: Kind,
    uri: &str,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let Some(root) = resource.as_object_mut() else {
        return Err(error("invalidSyntax", "the resource is not an object"));
    };
    let key = find_key(root, uri).unwrap_or_else(|| super::schema::ENTERPRISE.to_owned());
    match (kind, value) {
        (Kind::Remove, _) => {
            root.remove(&key);
        }
        (_, Some(Value::Object(fields))) => {
            let target = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if kind == Kind::Replace {
                *target = Value::Object(Map::new());
            }
            let target = object_mut(target);
            for (k, v) in fields {
                set_ci(target, &k, v);
            }
        }
        _ => {
            return Err(error(
                "invalidValue",
                "the extension's value must be an object",
            ));
        }
    }
    Ok(())
}

/// One key of a path-less operation: a plain attribute, a dotted one (`name.givenName`), a
/// URN-prefixed one, or an extension URN whose value is an object of its attributes.
fn apply_pathless(
    resource: &mut Value,
    kind: Kind,
    key: &str,
    value: Value,
    known: KnownPath<'_>,
) -> Result<(), PatchError> {
    let is_extension_object = key.to_ascii_lowercase().starts_with("urn:")
        && !key.to_ascii_lowercase().contains(":core:")
        && value.is_object()
        && key
            .rsplit(':')
            .next()
            .is_some_and(|last| last.eq_ignore_ascii_case("User"));
    if is_extension_object {
        for (k, v) in value.as_object().cloned().unwrap_or_default() {
            apply_pathless(resource, kind, &format!("{key}:{k}"), v, known)?;
        }
        return Ok(());
    }
    let parsed = parse_path(key).map_err(|e| error("invalidPath", e))?;
    if !known(&parsed) {
        return Err(error("invalidPath", format!("`{key}` is not an attribute")));
    }
    // Without a path, `add`/`replace` of a complex value merges into what is there.
    if parsed.attr.sub.is_none() && value.is_object() {
        let container = container_mut(resource, &parsed);
        if let Some(existing) = find_key(container, &parsed.attr.attr)
            .and_then(|k| container.get_mut(&k))
            .filter(|e| e.is_object())
        {
            for (k, v) in value.as_object().cloned().unwrap_or_default() {
                set_ci(object_mut(existing), &k, v);
            }
            return Ok(());
        }
    }
    apply_at(resource, kind, &parsed, Some(value))
}

fn find_key(object: &Map<String, Value>, name: &str) -> Option<String> {
    object
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// `value` as a JSON object: made an empty one first when it is anything else.
pub(super) fn object_mut(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object just above"),
    }
}

fn set_ci(object: &mut Map<String, Value>, name: &str, value: Value) {
    let key = find_key(object, name).unwrap_or_else(|| name.to_owned());
    object.insert(key, value);
}

/// The object holding the path's attribute: the resource, or its extension object.
fn container_mut<'a>(resource: &'a mut Value, path: &PatchPath) -> &'a mut Map<String, Value> {
    let root = object_mut(resource);
    match &path.attr.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
            let key = find_key(root, uri).unwrap_or_else(|| uri.clone());
            object_mut(root.entry(key).or_insert_with(|| Value::Object(Map::new())))
        }
        _ => root,
    }
}

fn same_item(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn apply_at(
    resource: &mut Value,
    kind: Kind,
    path: &PatchPath,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let container = container_mut(resource, path);
    let attr = &path.attr.attr;
    let key = find_key(container, attr).unwrap_or_else(|| attr.clone());
    if kind != Kind::Remove && value.is_none() {
        return Err(error("invalidValue", format!("`{attr}` needs a value")));
    }
    match (&path.filter, &path.attr.sub) {
        (None, Some(sub)) => {
            let holder = container
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            let holder = object_mut(holder);
            match kind {
                Kind::Remove => {
                    if let Some(k) = find_key(holder, sub) {
                        holder.remove(&k);
                    }
                }
                _ => set_ci(holder, sub, value.unwrap_or(Value::Null)),
            }
            Ok(())
        }
        (None, None) => {
            apply_to_attribute(container, key, kind, value);
            Ok(())
        }
        (Some(filter), _) => {
            let items = match container.get_mut(&key) {
                Some(Value::Array(items)) => items,
                _ if kind == Kind::Remove => {
                    return Err(error("noTarget", format!("no `{attr}` matches the filter")));
                }
                _ => {
                    container.insert(key.clone(), Value::Array(Vec::new()));
                    match container.get_mut(&key) {
                        Some(Value::Array(items)) => items,
                        _ => unreachable!("just inserted"),
                    }
                }
            };
            apply_to_matching(items, attr, filter, &path.sub, kind, value)
        }
    }
}

/// An operation on a whole attribute (`members`, `displayName`).
fn apply_to_attribute(
    container: &mut Map<String, Value>,
    key: String,
    kind: Kind,
    value: Option<Value>,
) {
    match kind {
        Kind::Remove => match (value, container.get_mut(&key)) {
            // Entra: remove some members by value.
            (Some(Value::Array(gone)), Some(Value::Array(items))) => {
                items.retain(|item| !gone.iter().any(|g| same_item(item, g)));
            }
            _ => {
                container.remove(&key);
            }
        },
        Kind::Add => {
            let value = value.unwrap_or(Value::Null);
            match (container.get_mut(&key), value) {
                (Some(Value::Array(items)), Value::Array(new)) => {
                    for item in new {
                        if !items.iter().any(|i| same_item(i, &item)) {
                            items.push(item);
                        }
                    }
                }
                (Some(Value::Object(existing)), Value::Object(new)) => {
                    for (k, v) in new {
                        set_ci(existing, &k, v);
                    }
                }
                (_, value) => {
                    container.insert(key, value);
                }
            }
        }
        Kind::Replace => {
            container.insert(key, value.unwrap_or(Value::Null));
        }
    }
}

/// An operation on the items of a multi-valued attribute that `filter` matches
/// (`emails[type eq "work"]`, with `sub` its `.value`).
fn apply_to_matching(
    items: &mut Vec<Value>,
    attr: &str,
    filter: &Filter,
    sub: &Option<String>,
    kind: Kind,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let matching: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| filter.matches(item))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        // `emails[type eq "work"].value` on a user without a work email: add one.
        if kind != Kind::Remove
            && let (Some(sub), Filter::Compare(p, Op::Eq, wanted)) = (sub, filter)
        {
            let mut item = Map::new();
            item.insert(p.attr.clone(), wanted.clone());
            item.insert(sub.clone(), value.unwrap_or(Value::Null));
            items.push(Value::Object(item));
            return Ok(());
        }
        return Err(error("noTarget", format!("no `{attr}` matches the filter")));
    }
    match (kind, sub) {
        (Kind::Remove, None) => {
            let mut i = 0;
            items.retain(|_| {
                let keep = !matching.contains(&i);
                i += 1;
                keep
            });
        }
        (Kind::Remove, Some(sub)) => {
            for i in matching {
                if let Some(obj) = items[i].as_object_mut()
                    && let Some(k) = find_key(obj, sub)
                {
                    obj.remove(&k);
                }
            }
        }
        (_, Some(sub)) => {
            for i in matching {
                if let Some(obj) = items[i].as_object_mut() {
                    set_ci(obj, sub, value.clone().unwrap_or(Value::Null));
                }
            }
        }
        (_, None) => {
            let value = value.unwrap_or(Value::Null);
            for i in matching {
                match (items[i].as_object_mut(), value.as_object()) {
                    (Some(obj), Some(new)) if kind == Kind::Add => {
                        for (k, v) in new {
                            set_ci(obj, k, v.clone());
                        }
                    }
                    _ => items[i] = value.clone(),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(resource: Value, ops: Value) -> Result<Value, PatchError> {
        let mut r = resource;
        let body = json!({ "schemas": [super::super::schema::PATCH_OP], "Operations": ops });
        apply(&mut r, &body, &|_| true)?;
        Ok(r)
    }

    #[test]
    fn entra_default_dialect() {
        let r = patch(
            json!({ "userName": "a", "active": true, "emails": [{ "type": "work", "value": "a@x" }] }),
            json!([
                { "op": "Replace", "path": "active", "value": "False" },
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x" },
                { "op": "Add", "path": "name.givenName", "value": "Bea" }
            ]),
        )
        .unwrap();
        assert_eq!(r["active"], "False", "the schema check turns it into false");
        assert_eq!(r["emails"][0]["value"], "b@x");
        assert_eq!(r["name"]["givenName"], "Bea");
    }

    #[test]
    fn entra_pathless_replace_with_dotted_and_urn_keys() {
        let r = patch(
            json!({ "userName": "a", "name": { "familyName": "V" } }),
            json!([{ "op": "replace", "value": {
                "name.givenName": "Adele",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Retail",
                "active": false
            } }]),
        )
        .unwrap();
        assert_eq!(
            r["name"],
            json!({ "familyName": "V", "givenName": "Adele" })
        );
        assert_eq!(
            r["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Retail"
        );
        assert_eq!(r["active"], false);
    }

    #[test]
    fn members_add_and_remove_both_ways() {
        let r = patch(
            json!({ "displayName": "G", "members": [{ "value": "1" }, { "value": "2" }] }),
            json!([
                { "op": "add", "path": "members", "value": [{ "value": "3" }, { "value": "1" }] },
                { "op": "remove", "path": "members[value eq \"2\"]" },
                { "op": "Remove", "path": "members", "value": [{ "value": "3" }] }
            ]),
        )
        .unwrap();
        assert_eq!(r["members"], json!([{ "value": "1" }]));
        let none = patch(
            json!({ "displayName": "G" }),
            json!([{ "op": "remove", "path": "members[value eq \"9\"]" }]),
        );
        assert_eq!(none.unwrap_err().scim_type, "noTarget");
    }

    #[test]
    fn bad_operations_are_refused() {
        for ops in [
            json!([{ "op": "move", "path": "userName", "value": "x" }]),
            json!([{ "op": "remove" }]),
            json!([{ "op": "replace", "path": "emails[type eq", "value": "x" }]),
            json!([{ "op": "replace", "value": "not an object" }]),
        ] {
            assert!(patch(json!({}), ops.clone()).is_err(), "{ops}");
        }
        let mut r = json!({});
        assert!(apply(&mut r, &json!({ "Operations": [] }), &|_| true).is_err());
        let unknown = apply(
            &mut r,
            &json!({ "schemas": [super::super::schema::PATCH_OP], "Operations": [{ "op": "add", "path": "shoeSize", "value": "9" }] }),
            &|p| p.attr.attr != "shoeSize",
        );
        assert_eq!(unknown.unwrap_err().scim_type, "invalidPath");
    }
}
