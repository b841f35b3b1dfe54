//! Listing: `GET /Users`, `GET /Groups` and the `.search` forms take a filter, paging and
//! attribute selection; `store::scim::read` counts and reads one page in the database (the
//! filter as a condition, `store::scim`), and the answers are built here.

use super::{MAX_RESULTS, ScimError, ScimResult, parse_body, schema, scim_json};
use crate::scim_filter as filter;
use crate::store::{
    self,
    scim::{MAX_INEXACT_ROWS, Resource, Translated},
};

pub(super) use crate::store::scim::read::{Paging, Window};
use axum::{body::Bytes, http::StatusCode, response::Response};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The body of `POST /.search` (RFC 7644 §3.4.3).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SearchRequest {
    #[serde(default)]
    schemas: Vec<String>,
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    excluded_attributes: Vec<String>,
}

pub(super) fn search_params(body: &Bytes) -> ScimResult<ListParams> {
    let search: SearchRequest = serde_json::from_value(parse_body(body)?)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("not a SearchRequest: {e}")))?;
    const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    if !search
        .schemas
        .iter()
        .any(|s| s.eq_ignore_ascii_case(SEARCH))
    {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("`schemas` must be [\"{SEARCH}\"]"),
        ));
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(","));
    Ok(ListParams {
        filter: search.filter,
        start_index: search.start_index.map(|n| n.to_string()),
        count: search.count.map(|n| n.to_string()),
        attributes: join(search.attributes),
        excluded_attributes: join(search.excluded_attributes),
    })
}

/// The query parameters of a list or a read.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

/// Most paths one `attributes` or `excludedAttributes` may name: each is applied to every
/// resource of a page.
pub const MAX_ATTRIBUTE_PATHS: usize = 100;

fn attribute_paths(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|p| !p.is_empty())
}

impl ListParams {
    /// The paging of a list; also refuses an attribute selection over
    /// [`MAX_ATTRIBUTE_PATHS`], whose cost a page multiplies.
    pub(super) fn paging(&self) -> ScimResult<Paging> {
        for (name, raw) in [
            ("attributes", &self.attributes),
            ("excludedAttributes", &self.excluded_attributes),
        ] {
            if raw
                .as_deref()
                .is_some_and(|r| attribute_paths(r).count() > MAX_ATTRIBUTE_PATHS)
            {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("`{name}` may name at most {MAX_ATTRIBUTE_PATHS} attributes"),
                ));
            }
        }
        let number = |raw: &Option<String>, name: &str| -> ScimResult<Option<i64>> {
            raw.as_deref()
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        ScimError::bad("invalidValue", format!("`{name}` must be an integer"))
                    })
                })
                .transpose()
        };
        // RFC 7644 §3.4.2.4: below 1 means 1; a negative count means 0.
        let start = number(&self.start_index, "startIndex")?.unwrap_or(1).max(1) as usize;
        let count = number(&self.count, "count")?
            .unwrap_or(MAX_RESULTS as i64)
            .clamp(0, MAX_RESULTS as i64) as usize;
        Ok(Paging { start, count })
    }

    pub(super) fn filter(&self) -> ScimResult<Option<filter::Filter>> {
        self.filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| filter::parse(f).map_err(|e| ScimError::bad("invalidFilter", e)))
            .transpose()
    }

    /// The filter as a condition on `resource` (`None` without a filter).
    pub(super) fn condition(
        &self,
        db: &DatabaseConnection,
        resource: Resource,
    ) -> ScimResult<Option<Translated>> {
        self.filter()?
            .map(|f| {
                store::scim::translate(&f, resource, store::backend(db))
                    .map_err(|e| ScimError::bad("invalidFilter", e))
            })
            .transpose()
    }

    pub(super) fn wants_members(&self) -> bool {
        let listed = |raw: &Option<String>| {
            raw.as_deref().is_some_and(|a| {
                a.split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case("members"))
            })
        };
        if self.attributes.is_some() {
            return listed(&self.attributes);
        }
        !listed(&self.excluded_attributes)
    }

    /// Applies `attributes` / `excludedAttributes` to a rendered resource.
    pub(super) fn project(&self, resource: Value) -> Value {
        if let Some(wanted) = self.attributes.as_deref() {
            let mut out = Map::new();
            for always in ["schemas", "id"] {
                if let Some(v) = resource.get(always) {
                    out.insert(always.into(), v.clone());
                }
            }
            for path in attribute_paths(wanted) {
                copy_path(&resource, &mut out, path);
            }
            return Value::Object(out);
        }
        if let Some(excluded) = self.excluded_attributes.as_deref() {
            let mut resource = resource;
            for path in attribute_paths(excluded) {
                remove_path(&mut resource, path);
            }
            return resource;
        }
        resource
    }
}

pub(super) fn copy_path(from: &Value, to: &mut Map<String, Value>, path: &str) {
    let Ok(parsed) = filter::parse_attr_path(path) else {
        return;
    };
    let (source, target) = match &parsed.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
            let Some((key, ext)) = from
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(uri)))
            else {
                return;
            };
            let holder = to
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            (ext, super::patch::object_mut(holder))
        }
        _ => (from, &mut *to),
    };
    let Some((key, value)) = source
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(&parsed.attr)))
    else {
        return;
    };
    match &parsed.sub {
        None => {
            target.insert(key.clone(), value.clone());
        }
        Some(sub) => {
            let pick = |v: &Value| {
                let mut o = Map::new();
                if let Some((k, x)) = v
                    .as_object()
                    .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub)))
                {
                    o.insert(k.clone(), x.clone());
                }
                Value::Object(o)
            };
            let picked = match value {
                Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
                other => pick(other),
            };
            target.insert(key.clone(), picked);
        }
    }
}

pub(super) fn remove_path(resource: &mut Value, path: &str) {
    let Ok(parsed) = filter::parse_attr_path(path) else {
        return;
    };
    if ["id", "schemas"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&parsed.attr))
        && parsed.uri.is_none()
    {
        return;
    }
    let Some(root) = resource.as_object_mut() else {
        return;
    };
    let scope = match &parsed.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
            match root
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(uri))
                .and_then(|(_, v)| v.as_object_mut())
            {
                Some(ext) => ext,
                None => return,
            }
        }
        _ => root,
    };
    let Some(key) = scope
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&parsed.attr))
        .cloned()
    else {
        return;
    };
    match &parsed.sub {
        None => {
            scope.remove(&key);
        }
        Some(sub) => {
            let strip = |v: &mut Value| {
                if let Some(o) = v.as_object_mut()
                    && let Some(k) = o.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned()
                {
                    o.remove(&k);
                }
            };
            match scope.get_mut(&key) {
                Some(Value::Array(items)) => items.iter_mut().for_each(strip),
                Some(other) => strip(other),
                None => {}
            }
        }
    }
}

/// A list answer paged in memory (discovery lists, and the bounded candidates of an inexact
/// filter).
pub(super) fn list_response(
    params: &ListParams,
    matching: Vec<Value>,
    paging: &Paging,
) -> Response {
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .into_iter()
        .skip(paging.start - 1)
        .take(paging.count)
        .collect();
    page_response(params, total, page, paging)
}

/// A list answer for one page counted in the database.
pub(super) fn page_response(
    params: &ListParams,
    total: u64,
    page: Vec<Value>,
    paging: &Paging,
) -> Response {
    let page: Vec<Value> = page.into_iter().map(|r| params.project(r)).collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [schema::LIST],
            "totalResults": total,
            "startIndex": paging.start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
        None,
    )
}

/// `window` as a list may answer it: candidates past `MAX_INEXACT_ROWS` are `400 tooMany`.
pub(super) fn bounded<M>(window: Window<M>) -> ScimResult<Window<M>> {
    match window {
        Window::Candidates(rows) if rows.len() as u64 > MAX_INEXACT_ROWS => Err(ScimError::bad(
            "tooMany",
            format!(
                "the filter leaves more than {MAX_INEXACT_ROWS} candidates; narrow it by value"
            ),
        )),
        window => Ok(window),
    }
}
