//! A provider session with an integration's grant, for a sync run and for the API's live
//! reads (the scope's group picker): the sealed refresh token opened, and a token the provider
//! rotates stored the moment it is issued.

use crate::{
    directory::connect, error::DomainResult, providers::http::Session, services::Services, store,
};
use entity::integration;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// A session of `integration`'s provider with its grant (`INVALID_INPUT` on `id` when it holds
/// none).
pub fn open(
    db: &DatabaseConnection,
    services: &Arc<Services>,
    integration: &integration::Model,
) -> DomainResult<Arc<Session>> {
    let refresh_token = connect::open_refresh_token(&services.secrets, integration)?;
    let store = {
        let (db, services, id) = (db.clone(), services.clone(), integration.id);
        Arc::new(move |token: String| {
            let (db, services) = (db.clone(), services.clone());
            Box::pin(async move {
                if let Err(err) = store_refresh_token(&db, &services, id, &token).await {
                    tracing::error!(error = %err, integration = id, "cannot store a rotated refresh token");
                }
            }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        })
    };
    Ok(Arc::new(
        Session::new(
            services.http.clone(),
            services.providers.clone(),
            integration.kind,
            integration.tenant.clone(),
            refresh_token,
        )
        .on_rotate(store),
    ))
}

async fn store_refresh_token(
    db: &DatabaseConnection,
    services: &Services,
    id: i64,
    token: &str,
) -> DomainResult<()> {
    let sealed = connect::seal_refresh_token(&services.secrets, id, token);
    Ok(store::integrations::set_refresh_token(db, id, sealed).await?)
}
