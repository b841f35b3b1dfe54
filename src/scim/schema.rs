//! The schemas dirgate's SCIM endpoint serves (RFC 7643 §4, §8.7): the core User schema with
//! the enterprise extension, and the core Group schema. One table describes each attribute;
//! `/Schemas` is rendered from it, and incoming resources are checked and given canonical
//! attribute names with it (names are case-insensitive on the wire).

use serde_json::{Map, Value, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// An attribute's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Complex,
    Reference,
    Binary,
    DateTime,
}

/// One attribute of a schema.
#[derive(Debug, Clone)]
pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    /// `readWrite`, `readOnly`, `writeOnly`, `immutable`.
    pub mutability: &'static str,
    /// `always`, `default`, `never`.
    pub returned: &'static str,
    /// `none`, `server`.
    pub uniqueness: &'static str,
    pub canonical: &'static [&'static str],
    /// For references: what they point to (`external`, `User`, ...).
    pub ref_types: &'static [&'static str],
    pub sub: Vec<Attr>,
}

fn attr(name: &'static str, kind: Kind) -> Attr {
    Attr {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: "readWrite",
        returned: "default",
        uniqueness: "none",
        canonical: &[],
        ref_types: &["external"],
        sub: Vec::new(),
    }
}

fn s(name: &'static str) -> Attr {
    attr(name, Kind::String)
}

fn complex(name: &'static str, sub: Vec<Attr>) -> Attr {
    Attr {
        sub,
        ..attr(name, Kind::Complex)
    }
}

fn multi(name: &'static str, sub: Vec<Attr>) -> Attr {
    Attr {
        multi: true,
        ..complex(name, sub)
    }
}

fn typed(types: &'static [&'static str]) -> Attr {
    Attr {
        canonical: types,
        ..s("type")
    }
}

/// `value`, `display`, `type`, `primary`: the usual multi-valued sub-attributes.
fn plural(types: &'static [&'static str], value: Kind) -> Vec<Attr> {
    vec![
        attr("value", value),
        s("display"),
        typed(types),
        attr("primary", Kind::Boolean),
    ]
}

impl Attr {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "type": match self.kind {
                Kind::String => "string",
                Kind::Boolean => "boolean",
                Kind::Complex => "complex",
                Kind::Reference => "reference",
                Kind::Binary => "binary",
                Kind::DateTime => "dateTime",
            },
            "multiValued": self.multi,
            "description": self.name,
            "required": self.required,
            "mutability": self.mutability,
            "returned": self.returned,
        });
        if self.kind != Kind::Complex && self.kind != Kind::Boolean {
            v["caseExact"] = json!(self.case_exact);
            v["uniqueness"] = json!(self.uniqueness);
        }
        if !self.canonical.is_empty() {
            v["canonicalValues"] = json!(self.canonical);
        }
        if self.kind == Kind::Reference {
            v["referenceTypes"] = json!(self.ref_types);
        }
        if !self.sub.is_empty() {
            v["subAttributes"] = Value::Array(self.sub.iter().map(Attr::to_json).collect());
        }
        v
    }
}

/// The core User attributes dirgate stores.
pub fn user_attributes() -> Vec<Attr> {
    vec![
        Attr {
            required: true,
            uniqueness: "server",
            ..s("userName")
        },
        complex(
            "name",
            vec![
                s("formatted"),
                s("familyName"),
                s("givenName"),
                s("middleName"),
                s("honorificPrefix"),
                s("honorificSuffix"),
            ],
        ),
        s("displayName"),
        s("nickName"),
        attr("profileUrl", Kind::Reference),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", Kind::Boolean),
        Attr {
            mutability: "writeOnly",
            returned: "never",
            ..s("password")
        },
        multi("emails", plural(&["work", "home", "other"], Kind::String)),
        multi(
            "phoneNumbers",
            plural(
                &["work", "home", "mobile", "fax", "pager", "other"],
                Kind::String,
            ),
        ),
        multi(
            "ims",
            plural(
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
                Kind::String,
            ),
        ),
        multi("photos", plural(&["photo", "thumbnail"], Kind::Reference)),
        multi(
            "addresses",
            vec![
                s("formatted"),
                s("streetAddress"),
                s("locality"),
                s("region"),
                s("postalCode"),
                s("country"),
                typed(&["work", "home", "other"]),
                attr("primary", Kind::Boolean),
            ],
        ),
        multi("entitlements", plural(&[], Kind::String)),
        multi("roles", plural(&[], Kind::String)),
        multi("x509Certificates", plural(&[], Kind::Binary)),
        Attr {
            mutability: "readOnly",
            ..multi(
                "groups",
                vec![
                    s("value"),
                    attr("$ref", Kind::Reference),
                    s("display"),
                    typed(&["direct", "indirect"]),
                ],
            )
        },
    ]
}

/// The enterprise extension's attributes.
pub fn enterprise_attributes() -> Vec<Attr> {
    vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        complex(
            "manager",
            vec![
                s("value"),
                Attr {
                    mutability: "readOnly",
                    ..s("displayName")
                },
            ],
        ),
    ]
}

/// The core Group attributes.
pub fn group_attributes() -> Vec<Attr> {
    vec![
        Attr {
            required: true,
            ..s("displayName")
        },
        multi(
            "members",
            vec![
                Attr {
                    mutability: "immutable",
                    case_exact: true,
                    ..s("value")
                },
                Attr {
                    mutability: "immutable",
                    ref_types: &["User", "Group"],
                    ..attr("$ref", Kind::Reference)
                },
                // A member is a user, or a group nested in this one.
                Attr {
                    mutability: "immutable",
                    canonical: &["User", "Group"],
                    ..s("type")
                },
            ],
        ),
    ]
}

fn schema_json(id: &str, name: &str, description: &str, attrs: Vec<Attr>, base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(Attr::to_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

/// `/Schemas`.
pub fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema_json(USER, "User", "User Account", user_attributes(), base),
        schema_json(
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise User",
            enterprise_attributes(),
            base,
        ),
        schema_json(GROUP, "Group", "Group", group_attributes(), base),
    ]
}

/// `/ResourceTypes`.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER,
            "schemaExtensions": [{ "schema": ENTERPRISE, "required": false }],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP,
            "schemaExtensions": [],
            "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
        }),
    ]
}

/// `/ServiceProviderConfig`: exactly what is supported.
pub fn service_provider_config(base: &str, max_results: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/dirgate/dirgate#scim",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": max_results },
        // RFC 7643 has no place for the PATCH or per-attribute caps; README lists them.
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The integration's SCIM token, in an Authorization: Bearer header",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// Most values of one multi-valued attribute of a user or a group other than `members`
/// (emails, phone numbers, addresses, ...).
pub const MAX_VALUES: usize = 100;
/// Most items in any list of one request body (a group's `members`, a PATCH's values).
pub const MAX_LIST_ITEMS: usize = 10_000;
/// Deepest nesting of a request body (a SCIM resource needs 4).
pub const MAX_BODY_NESTING: usize = 16;
/// Longest string in a request body, in characters (so the indexed columns a value lands in
/// stay under PostgreSQL's B-tree row limit of 2,704 bytes even in 4-byte characters).
pub const MAX_STRING_CHARS: usize = 512;
/// Longest value of `x509Certificates` (base64 DER), in characters.
pub const MAX_CERTIFICATE_CHARS: usize = 16_384;

/// Checks every value of a request body before anything reads it: nesting, list lengths, and
/// every string (and key) against the text policy; multi-line text only in `formatted`.
/// Iterative, so no body can overflow the stack.
pub fn check_body(body: &Value) -> Result<(), Invalid> {
    use crate::text::{Lines, check_len};
    // (value, its key, the top-level attribute it is under, depth)
    let mut stack = vec![(body, "", "", 0usize)];
    while let Some((value, key, top, depth)) = stack.pop() {
        if depth > MAX_BODY_NESTING {
            return Err(invalid(
                "invalidSyntax",
                format!("the body nests deeper than {MAX_BODY_NESTING} levels"),
            ));
        }
        match value {
            Value::String(text) => {
                let lines = if key.to_ascii_lowercase().ends_with("formatted") {
                    Lines::Multi
                } else {
                    Lines::Single
                };
                // Certificates are long base64 and land in no indexed column.
                let max = if top.eq_ignore_ascii_case("x509Certificates") {
                    MAX_CERTIFICATE_CHARS
                } else {
                    MAX_STRING_CHARS
                };
                check_len(text, lines, max).map_err(|refusal| {
                    invalid("invalidValue", format!("the value of `{key}` {refusal}"))
                })?;
            }
            Value::Array(items) => {
                if items.len() > MAX_LIST_ITEMS {
                    return Err(invalid(
                        "invalidValue",
                        format!("`{key}` has more than {MAX_LIST_ITEMS} values"),
                    ));
                }
                stack.extend(items.iter().map(|v| (v, key, top, depth + 1)));
            }
            Value::Object(fields) => {
                for (k, v) in fields {
                    check_len(k, Lines::Single, MAX_STRING_CHARS).map_err(|refusal| {
                        invalid("invalidSyntax", format!("an attribute name {refusal}"))
                    })?;
                    let top = if depth == 0 { k.as_str() } else { top };
                    stack.push((v, k.as_str(), top, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Why a resource body is refused.
#[derive(Debug)]
pub struct Invalid {
    /// `invalidSyntax`, `invalidValue`, `mutability`.
    pub scim_type: &'static str,
    pub detail: String,
}

fn invalid(scim_type: &'static str, detail: impl Into<String>) -> Invalid {
    Invalid {
        scim_type,
        detail: detail.into(),
    }
}

/// Checks `value` against `attr` and returns it with canonical sub-attribute names; `None`
/// for a value to drop (`null`, read-only, or write-only that is never stored).
fn canonical_value(attr: &Attr, value: &Value, path: &str) -> Result<Option<Value>, Invalid> {
    if value.is_null() || attr.mutability == "readOnly" || attr.mutability == "writeOnly" {
        return Ok(None);
    }
    if attr.multi {
        let items = match value {
            Value::Array(items) => items.clone(),
            // A single value where a list is expected: accepted as a list of one.
            other => vec![other.clone()],
        };
        // A group's members are bounded per request (`check_body`), not per resource: a big
        // group grows over many requests.
        if attr.name != "members" && items.len() > MAX_VALUES {
            return Err(invalid(
                "invalidValue",
                format!("`{path}` has more than {MAX_VALUES} values"),
            ));
        }
        let mut out = Vec::new();
        for item in &items {
            if let Some(v) = canonical_single(attr, item, path)? {
                out.push(v);
            }
        }
        return Ok(Some(Value::Array(out)));
    }
    canonical_single(attr, value, path)
}

fn canonical_single(attr: &Attr, value: &Value, path: &str) -> Result<Option<Value>, Invalid> {
    match attr.kind {
        Kind::Complex => {
            let Value::Object(fields) = value else {
                return Err(invalid(
                    "invalidValue",
                    format!("`{path}` must be an object"),
                ));
            };
            let mut out = Map::new();
            for (key, v) in fields {
                // Some clients repeat an extension's `schemas` inside it.
                if key == "schemas" {
                    continue;
                }
                let Some(sub) = attr.sub.iter().find(|a| a.name.eq_ignore_ascii_case(key)) else {
                    return Err(invalid(
                        "invalidSyntax",
                        format!("`{path}.{key}` is not an attribute of this schema"),
                    ));
                };
                if let Some(v) = canonical_value(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            // Entra's default dialect sends booleans as strings.
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(invalid(
                "invalidValue",
                format!("`{path}` must be a boolean"),
            )),
        },
        _ => match value {
            Value::String(_) => Ok(Some(value.clone())),
            _ => Err(invalid(
                "invalidValue",
                format!("`{path}` must be a string"),
            )),
        },
    }
}

/// A resource body, checked against `attrs` (and, for users, the enterprise extension) and
/// with canonical attribute names. `id`, `meta` and `schemas` are left out (the server's);
/// `externalId` is kept; anything else unknown is refused.
pub fn canonical_resource(
    body: &Value,
    attrs: &[Attr],
    core: &str,
    extension: Option<(&str, Vec<Attr>)>,
) -> Result<Map<String, Value>, Invalid> {
    let Value::Object(fields) = body else {
        return Err(invalid("invalidSyntax", "the body must be a JSON object"));
    };
    if let Some(schemas) = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
        .map(|(_, v)| v)
    {
        let listed: Vec<&str> = schemas
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !listed.iter().any(|s| s.eq_ignore_ascii_case(core)) {
            return Err(invalid(
                "invalidSyntax",
                format!("`schemas` must list {core}"),
            ));
        }
        for s in &listed {
            let known = s.eq_ignore_ascii_case(core)
                || extension
                    .as_ref()
                    .is_some_and(|(uri, _)| s.eq_ignore_ascii_case(uri));
            if !known {
                return Err(invalid("invalidSyntax", format!("unknown schema `{s}`")));
            }
        }
    } else {
        return Err(invalid("invalidSyntax", "`schemas` is required"));
    }
    let mut out = Map::new();
    for (key, value) in fields {
        if ["schemas", "id", "meta"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
        {
            continue;
        }
        if key.eq_ignore_ascii_case("externalId") {
            match value {
                Value::String(_) => {
                    out.insert("externalId".into(), value.clone());
                }
                Value::Null => {}
                _ => return Err(invalid("invalidValue", "`externalId` must be a string")),
            }
            continue;
        }
        if let Some((uri, ext_attrs)) = &extension
            && key.eq_ignore_ascii_case(uri)
        {
            let holder = Attr {
                sub: ext_attrs.clone(),
                ..complex("extension", Vec::new())
            };
            if let Some(v) = canonical_value(&holder, value, uri)? {
                out.insert((*uri).to_owned(), v);
            }
            continue;
        }
        let Some(a) = attrs.iter().find(|a| a.name.eq_ignore_ascii_case(key)) else {
            return Err(invalid(
                "invalidSyntax",
                format!("`{key}` is not an attribute of this schema"),
            ));
        };
        if let Some(v) = canonical_value(a, value, a.name)? {
            out.insert(a.name.to_owned(), v);
        }
    }
    Ok(out)
}
