//! Merchant apps: register, list, disable.
use super::{App, AppStatus, Error, Operator, Result};
use crate::db::apps::{self, AppStoreError, NewApp};

impl Operator {
    /// Registers an app after checking what the operator typed; `public_key` is the text of its RSA public key,
    /// `return_urls` the allowed prefixes of its return URLs (none: every http(s) URL).
    pub async fn create_app(
        &self,
        app_id: &str,
        name: &str,
        public_key: &str,
        return_urls: Vec<String>,
    ) -> Result<App> {
        let new = NewApp::parse(
            app_id,
            name,
            public_key,
            return_urls,
            self.settings.allow_legacy_rsa_keys,
        )
        .map_err(Error::Invalid)?;
        match apps::insert(&self.db, new, self.now()).await {
            Ok(app) => Ok(app),
            Err(e @ AppStoreError::Exists(_)) => Err(Error::Conflict(e.to_string())),
            Err(AppStoreError::Db(e)) => Err(e.into()),
        }
    }

    /// Every registered app.
    pub async fn apps(&self) -> Result<Vec<App>> {
        Ok(apps::list(&self.db).await?)
    }

    pub async fn find_app(&self, app_id: &str) -> Result<Option<App>> {
        Ok(apps::find(&self.db, app_id).await?)
    }

    /// The app, or `NotFound` naming it.
    pub(super) async fn existing_app(&self, app_id: &str) -> Result<App> {
        self.find_app(app_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no app with id {app_id}")))
    }

    /// Disables an app: its calls are then refused.
    pub async fn disable_app(&self, app_id: &str) -> Result<()> {
        if apps::set_status(&self.db, app_id, AppStatus::Disabled, self.now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no app with id {app_id}")))
        }
    }

    /// The name the hosted page shows for an app (empty when it cannot be read).
    pub async fn merchant_name(&self, app_id: &str) -> String {
        apps::find(&self.db, app_id)
            .await
            .ok()
            .flatten()
            .map(|a| a.name)
            .unwrap_or_default()
    }
}
