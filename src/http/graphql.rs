//! GraphQL over HTTP, to the letter of the GraphQL Foundation's spec
//! (<https://graphql.github.io/graphql-over-http/draft/>), checked in CI by `graphql-http`'s
//! audit (`.ci/web/graphql-http-audit.mjs`):
//!
//! - **Content negotiation** ([`Media::negotiate`]): `application/graphql-response+json` when
//!   the `Accept` header names it (and does not rank `application/json` above it);
//!   `application/json` for `application/json`, `*/*`, `application/*` or no `Accept`; 406
//!   when it allows neither.
//! - **Status codes**: under `application/json` every executed request is 200, its errors in
//!   the body; under `application/graphql-response+json` a request error (a document that
//!   does not parse or validate, variables that do not coerce, a bound) is 4xx (5xx for the
//!   server's own failures) and the body has no `data` entry. A request that is not a GraphQL
//!   request (not JSON, `query` missing or not a string, `variables` not a map) is 400 under
//!   both; POST needs `Content-Type: application/json` (415 otherwise); GET runs queries only
//!   (405 for a mutation). Authentication (401) and the rate limit (429) come first, before the
//!   document is read.
//! - A request error never has a `data` entry, under either media type (the GraphQL spec:
//!   "if an error was raised before execution begins, the data entry should not be present").

use crate::{
    app::App,
    auth::bearer_token,
    error::DomainError,
    graphql::{Authentication, error as gql_error, limits},
    http::slots::Proof,
};
use async_graphql::{ErrorExtensions, ServerError, parser};
use axum::{
    Extension,
    body::Bytes,
    extract::{FromRequest, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// The media type of the GraphQL spec's responses.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// The most `Accept` entries looked at; the rest of a longer header is ignored.
const MAX_ACCEPT_ENTRIES: usize = 32;

/// The media type a GraphQL answer is written in, chosen from the request's `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/graphql-response+json`: request errors are 4xx without `data`.
    GraphqlResponse,
    /// `application/json`: every executed request is 200.
    Json,
}

impl Media {
    /// The media type `headers`' `Accept` asks for; `None` when it allows neither (406).
    ///
    /// Each media range's quality is the one of the most specific range that matches it
    /// (RFC 9110 §12.5.1); a tie goes to `application/graphql-response+json`, but only when
    /// it is named (a wildcard answers `application/json`, the safe choice for older clients).
    pub fn negotiate(headers: &HeaderMap) -> Option<Media> {
        let mut ranges = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .take(MAX_ACCEPT_ENTRIES)
            .filter_map(|v| v.parse::<mime::Mime>().ok())
            .peekable();
        if ranges.peek().is_none() {
            return Some(Media::Json);
        }
        // (specificity, quality) of the best match for each type: 3 exact, 2 `type/*`, 1 `*/*`.
        let mut graphql: (u8, f32) = (0, 0.0);
        let mut json: (u8, f32) = (0, 0.0);
        for range in ranges {
            let q = range
                .get_param("q")
                .and_then(|q| q.as_str().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            let specificity = |subtype: &str| match (range.type_().as_str(), range.subtype()) {
                ("*", _) => 1,
                ("application", mime::STAR) => 2,
                ("application", s) if s.as_str() == subtype => 3,
                _ => 0,
            };
            for (best, subtype) in [(&mut graphql, "graphql-response"), (&mut json, "json")] {
                let s = specificity(subtype);
                if s > best.0 || (s == best.0 && s > 0 && q > best.1) {
                    *best = (s, q);
                }
            }
        }
        if graphql.0 == 3 && graphql.1 > 0.0 && graphql.1 >= json.1 {
            Some(Media::GraphqlResponse)
        } else if json.1 > 0.0 {
            Some(Media::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Media::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
            Media::Json => "application/json",
        })
    }

    /// The HTTP answer to an executed (or refused) GraphQL request.
    pub fn answer(self, response: async_graphql::Response) -> Response {
        let request_error = response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(|e| e.path.is_empty());
        let status = match self {
            Media::GraphqlResponse if request_error => request_error_status(&response.errors),
            _ => StatusCode::OK,
        };
        let body = if request_error {
            serde_json::to_vec(&RequestErrors {
                errors: &response.errors,
            })
        } else {
            serde_json::to_vec(&response)
        };
        let body = body.unwrap_or_else(|err| {
            tracing::error!(error = %err, "a GraphQL response did not serialise");
            br#"{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}]}"#
                .to_vec()
        });
        let mut answer = (status, body).into_response();
        answer
            .headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type());
        answer.headers_mut().extend(response.http_headers);
        // The database refused a write for its storage: the client may try again later.
        if response.errors.iter().any(|e| {
            e.extensions.as_ref().and_then(|x| x.get("code"))
                == Some(&async_graphql::Value::from("UNAVAILABLE"))
        }) {
            answer.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::storage::RETRY_AFTER_SECS),
            );
        }
        answer
    }

    /// A request error made outside execution (refused token, rate limit, not a GraphQL
    /// request): `status` under both media types.
    pub fn refuse(self, status: StatusCode, err: ServerError) -> Response {
        crate::metrics::graphql_refused(gql_error::code_of(Some(&err)));
        let body = serde_json::to_vec(&RequestErrors { errors: &[err] }).unwrap_or_default();
        let mut answer = (status, body).into_response();
        answer
            .headers_mut()
            .insert(header::CONTENT_TYPE, self.content_type());
        answer
    }

    fn bad_request(self, message: impl Into<String>) -> Response {
        self.refuse(
            StatusCode::BAD_REQUEST,
            gql_error::coded(message, gql_error::BAD_REQUEST),
        )
    }
}

/// The body of a request error: `errors` and no `data`.
#[derive(serde::Serialize)]
struct RequestErrors<'a> {
    errors: &'a [ServerError],
}

/// The status of a request error under `application/graphql-response+json`, by its code.
fn request_error_status(errors: &[ServerError]) -> StatusCode {
    let code = errors
        .iter()
        .find_map(|e| e.extensions.as_ref()?.get("code").cloned());
    match code {
        Some(async_graphql::Value::String(code)) => match code.as_str() {
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "FORBIDDEN" => StatusCode::FORBIDDEN,
            "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
            "TIMEOUT" | "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The token of an `Authorization: Bearer` header; `Err` for a header of another shape.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, DomainError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = DomainError::Unauthenticated("the Authorization header must be `Bearer <token>`");
    let value = value.to_str().map_err(|_| refused.clone())?;
    bearer_token(value).map(Some).ok_or(refused)
}

pub(super) async fn authenticate(app: &App, headers: &HeaderMap) -> Authentication {
    match bearer(headers) {
        Ok(token) => app.authenticate(token).await,
        Err(err) => Authentication::Refused(err),
    }
}

/// What every GraphQL request passes before its document is read: an acceptable media type
/// (else 406), a valid token (else 401, and the document is never parsed) and the token's
/// rate limit (else 429 with Retry-After).
/// A valid token proves the connection (`proof`): it is then never closed to make room.
async fn admit(
    app: &App,
    headers: &HeaderMap,
    proof: Option<&Proof>,
) -> Result<(Media, Authentication), Response> {
    let Some(media) = Media::negotiate(headers) else {
        let err = gql_error::coded(
            format!(
                "dirgate answers `{GRAPHQL_RESPONSE_JSON}` or `application/json`; the Accept header allows neither"
            ),
            gql_error::BAD_REQUEST,
        );
        return Err(Media::Json.refuse(StatusCode::NOT_ACCEPTABLE, err));
    };
    let auth = authenticate(app, headers).await;
    let caller = auth.caller().map_err(|refused| {
        let err = gql_error::request_error(refused.extend());
        let mut response = media.refuse(StatusCode::UNAUTHORIZED, err);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dirgate\""),
        );
        response
    })?;
    if let Some(proof) = proof {
        proof.prove();
    }
    if let Some(token) = caller.actor().token_id()
        && let Err(wait) = app.limits.graphql(token)
    {
        crate::metrics::rate_limited("graphql");
        let err = gql_error::request_error(DomainError::RateLimited.extend());
        let mut response = media.refuse(StatusCode::TOO_MANY_REQUESTS, err);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(crate::ratelimit::retry_after_secs(wait)),
        );
        return Err(response);
    }
    Ok((media, auth))
}

/// `Content-Type: application/json`, with no charset or `utf-8`.
fn is_json_utf8(headers: &HeaderMap) -> bool {
    let Some(mime) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
    else {
        return false;
    };
    mime.essence_str() == "application/json"
        && mime
            .get_param(mime::CHARSET)
            .is_none_or(|c| c.as_str().eq_ignore_ascii_case("utf-8"))
}

/// A POST body as one GraphQL request: a JSON object with a string `query`, and optional
/// `operationName` (a string), `variables` and `extensions` (maps), each of which may be
/// `null`. serde_json stops at 128 levels of nesting: deeper variables are a typed 400, never
/// a stack overflow; `limits::bounded_document` then bounds them tighter.
fn request_from_body(body: &[u8]) -> Result<async_graphql::Request, String> {
    /// The parameters, typed: read straight from the body into async-graphql's own types, with
    /// no intermediate JSON tree (a body of large variables would be held twice). A field of
    /// the wrong type is a deserialisation error; unknown fields are ignored.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params {
        query: Option<String>,
        operation_name: Option<String>,
        variables: Option<async_graphql::Variables>,
        /// dirgate defines no request extensions: a map is accepted and ignored.
        #[allow(dead_code)]
        extensions: Option<std::collections::HashMap<String, serde::de::IgnoredAny>>,
    }
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        None => return Err("the body is empty; send a JSON object with `query`".into()),
        Some(b'[') => {
            return Err(
                "batched requests are not supported; send one operation per request".into(),
            );
        }
        Some(b'{') => {}
        Some(_) => {
            return Err("the body must be a JSON object with `query` (and optional `variables`, `operationName`)".into());
        }
    }
    let params: Params = serde_json::from_slice(body).map_err(|err| {
        format!("the body is not a GraphQL request (`query` a string; `operationName` a string; `variables` and `extensions` maps; each may be null): {err}")
    })?;
    let query = params
        .query
        .ok_or_else(|| "the request has no `query`".to_owned())?;
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(variables);
    }
    Ok(request)
}

/// The token is checked before the body is read: a client without one cannot hold its
/// connection busy by sending a body slowly.
pub(super) async fn post(State(app): State<App>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let (media, auth) = match admit(&app, &parts.headers, parts.extensions.get()).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    if !is_json_utf8(&parts.headers) {
        return media.refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            gql_error::coded(
                "a POST needs `Content-Type: application/json` (UTF-8)",
                gql_error::BAD_REQUEST,
            ),
        );
    }
    // The extractor's rejections (413 over the size limit, 408 when the body stops coming)
    // are turned into GraphQL errors by `typed_errors`.
    let body = match Bytes::from_request(Request::from_parts(parts, body), &()).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    match request_from_body(&body) {
        Ok(request) => media.answer(app.execute(request, auth).await),
        Err(message) => media.bad_request(message),
    }
}

/// Queries may be sent with GET; mutations only with POST (405).
pub(super) async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    proof: Option<Extension<Proof>>,
    RawQuery(query): RawQuery,
) -> Response {
    let (media, auth) = match admit(&app, &headers, proof.as_deref()).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or("")) {
        Ok(request) => request,
        Err(err) => {
            return media.bad_request(format!(
                "the query string is not a GraphQL request (`query`, and optional `operationName` and `variables` as JSON): {err}"
            ));
        }
    };
    // Bounded before the parser runs; a document over a bound gets its error from `execute`.
    let is_mutation = limits::scan(&request.query).is_ok()
        && parser::parse_query(&request.query).is_ok_and(|doc| {
            doc.operations
                .iter()
                .any(|(_, op)| op.node.ty == parser::types::OperationType::Mutation)
        });
    if is_mutation {
        let err = DomainError::invalid("query", "mutations must be sent with POST").extend();
        let mut response = media.refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            gql_error::request_error(err),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    media.answer(app.execute(request, auth).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Media> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        Media::negotiate(&headers)
    }

    #[test]
    fn negotiation_follows_the_accept_header() {
        use Media::*;
        assert_eq!(Media::negotiate(&HeaderMap::new()), Some(Json));
        assert_eq!(accept("application/json"), Some(Json));
        assert_eq!(accept("*/*"), Some(Json));
        assert_eq!(accept("application/*"), Some(Json));
        assert_eq!(accept(GRAPHQL_RESPONSE_JSON), Some(GraphqlResponse));
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            Some(GraphqlResponse)
        );
        assert_eq!(
            accept("application/graphql-response+json;q=0.5, application/json"),
            Some(Json)
        );
        assert_eq!(
            accept("application/graphql-response+json, application/json, multipart/mixed"),
            Some(GraphqlResponse),
            "GraphiQL's Accept"
        );
        assert_eq!(accept("text/html"), None);
        assert_eq!(accept("application/json;q=0"), None);
        assert_eq!(accept("*/*;q=0, application/json;q=0.1"), Some(Json));
        assert_eq!(accept("not a type, application/json"), Some(Json));
        assert_eq!(accept(",,,"), Some(Json), "no usable entry is no Accept");
    }

    #[test]
    fn content_type_must_be_json_in_utf8() {
        let check = |value: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            }
            is_json_utf8(&headers)
        };
        assert!(check(Some("application/json")));
        assert!(check(Some("application/json; charset=utf-8")));
        assert!(check(Some("application/json; charset=UTF-8")));
        assert!(!check(Some("application/json; charset=latin1")));
        assert!(!check(Some("text/plain")));
        assert!(!check(Some("application/graphql")));
        assert!(!check(None));
    }

    #[test]
    fn a_body_is_one_request_with_typed_parameters() {
        let ok = |body: &str| request_from_body(body.as_bytes()).is_ok();
        assert!(ok(r#"{"query":"{ __typename }"}"#));
        assert!(ok(
            r#"{"query":"{ __typename }","variables":null,"operationName":null,"extensions":null}"#
        ));
        assert!(ok(
            r#"{"query":"query Q { __typename }","operationName":"Q","variables":{"a":1},"extensions":{"x":1}}"#
        ));
        for bad in [
            "",
            "{ \"not a JSON",
            "[]",
            "1",
            r#"{"notquery":"{ __typename }"}"#,
            r#"{"query":{"obj":"ect"}}"#,
            r#"{"query":0}"#,
            r#"{"query":false}"#,
            r#"{"query":["array"]}"#,
            r#"{"query":"{ __typename }","operationName":0}"#,
            r#"{"query":"{ __typename }","variables":"string"}"#,
            r#"{"query":"{ __typename }","variables":["array"]}"#,
            r#"{"query":"{ __typename }","extensions":false}"#,
        ] {
            assert!(request_from_body(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
