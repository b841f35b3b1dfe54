//! GraphiQL at `/`, served from the binary: the assets of `assets/graphiql/` (GraphiQL and
//! React, pinned in `assets/graphiql/refresh.sh`, which refreshes them from npm; their
//! licences beside them) are compiled in, so the page works without any outside network.
//!
//! The page runs no inline script and loads nothing from elsewhere; its
//! `Content-Security-Policy` says so, since admins paste bearer tokens into it. Assets live
//! under a versioned path and are cached for a year. In `dirgate demo` the headers pane opens
//! with the demo's admin token ([`Page::with_token`]).

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// The path segment of the assets: GraphiQL's version and dirgate's, so a new build's own
/// script is never served from a stale cache.
pub const ASSET_VERSION: &str = concat!("4.1.2-", env!("CARGO_PKG_VERSION"));

/// (file name, content type, bytes) of every asset.
const ASSETS: [(&str, &str, &[u8]); 6] = [
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "dirgate-graphiql.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/dirgate-graphiql.js"),
    ),
    (
        "dirgate-graphiql.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/dirgate-graphiql.css"),
    ),
];

const PAGE: &str = include_str!("../../assets/graphiql/index.html");

/// Scripts and styles from this origin only (GraphiQL sets style attributes, hence
/// `'unsafe-inline'` for styles alone), requests to this origin only, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL page, rendered once when the router is built.
#[derive(Clone)]
pub struct Page(std::sync::Arc<str>);

impl Page {
    /// The page with an empty headers pane.
    pub fn new() -> Self {
        Self::render("")
    }

    /// The page with `Authorization: Bearer <token>` in the headers pane (`dirgate demo`).
    pub fn with_token(token: &str) -> Self {
        let headers = serde_json::json!({ "Authorization": format!("Bearer {token}") });
        Self::render(&serde_json::to_string_pretty(&headers).unwrap_or_default())
    }

    fn render(headers: &str) -> Self {
        let attribute = headers
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        Self(
            PAGE.replace("{{VERSION}}", ASSET_VERSION)
                .replace("{{HEADERS}}", &attribute)
                .into(),
        )
    }

    /// The HTTP answer: the page, with its security headers.
    pub fn response(&self) -> Response {
        let mut response = (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            self.0.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /graphiql/{version}/{file}`: an asset of this build; 404 for another version or file.
pub async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|(name, ..)| *name == file);
    match found {
        Some((_, content_type, bytes)) if version == ASSET_VERSION => {
            let mut response = (
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                *bytes,
            )
                .into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        _ => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_this_builds_assets_and_escapes_the_headers() {
        let page = Page::with_token("dg_1_abc\"<x>&");
        assert!(!page.0.contains("{{"));
        assert!(!page.0.contains("http://") && !page.0.contains("https://"));
        for (name, ..) in ASSETS {
            assert!(
                page.0
                    .contains(&format!("/graphiql/{ASSET_VERSION}/{name}")),
                "{name} is linked from the page"
            );
        }
        assert!(page.0.contains("Bearer dg_1_abc\\&quot;&lt;x&gt;&amp;"));
        assert!(Page::new().0.contains("data-headers=\"\""));
    }
}
