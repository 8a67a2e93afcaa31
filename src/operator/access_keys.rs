//! Access keys of the cloud ID-verification API: create (the secret shown once), list, disable.
use super::{Error, Operator, Result, StoredKey};
use crate::access_keys::{Secret, SecretBox};
use crate::db::cloud_keys;

impl Operator {
    /// A new access key of an existing app: its id and its secret (stored sealed by `secrets`).
    pub async fn create_access_key(
        &self,
        secrets: &SecretBox,
        app_id: &str,
    ) -> Result<(String, Secret)> {
        self.existing_app(app_id).await?;
        crate::access_keys::create_key(&self.db, secrets, app_id, self.now())
            .await
            .map_err(Error::Unavailable)
    }

    /// The access keys of an app (their secrets stay sealed).
    pub async fn access_keys(&self, app_id: &str) -> Result<Vec<StoredKey>> {
        Ok(cloud_keys::list(&self.db, app_id).await?)
    }

    /// Disables an access key: its calls are then refused.
    pub async fn disable_access_key(&self, key_id: &str) -> Result<()> {
        if cloud_keys::disable(&self.db, key_id).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("no access key with id {key_id}")))
        }
    }
}
