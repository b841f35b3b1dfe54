//! What the OAuth and provider steps need, shared by the GraphQL resolvers, the OAuth callback
//! and the sync engine: provider settings, the HTTP client, the secret box and the redirect
//! URI. A leaf of the module graph: `app` builds it, the edges and `sync` read it.

use crate::{crypto::SecretBox, directory::connect::OAuthContext, providers::ProviderSettings};
use std::sync::Arc;

/// What the OAuth and provider steps need.
pub struct Services {
    pub providers: Arc<ProviderSettings>,
    pub http: reqwest::Client,
    pub secrets: SecretBox,
    /// PUBLIC_URL/oauth/callback.
    pub redirect_uri: String,
}

impl Services {
    /// The OAuth context, borrowed.
    pub fn oauth(&self) -> OAuthContext<'_> {
        OAuthContext {
            settings: &self.providers,
            http: &self.http,
            secrets: &self.secrets,
            redirect_uri: &self.redirect_uri,
        }
    }
}
