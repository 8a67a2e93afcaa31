//! The local identity registry the decision compares against: import, list, delete.
use std::path::Path;

use super::{Error, Identity, Operator, Result};
use crate::authority::import::{self, Report};
use crate::face::engine::FaceEngine;

impl Operator {
    /// Imports a CSV of identities with their photos; `progress(done, total)` is called as rows are done.
    pub async fn import_identities(
        &self,
        engine: &dyn FaceEngine,
        csv: &Path,
        progress: impl FnMut(usize, usize),
    ) -> anyhow::Result<Report> {
        import::import_csv(&self.db, &self.store, engine, csv, self.now(), progress).await
    }

    /// Every registered identity, by ID number.
    pub async fn identities(&self) -> Result<Vec<Identity>> {
        Ok(crate::db::identities::list(&self.db, &self.store.keys().ring()).await?)
    }

    /// Deletes an identity and, as far as it can, its photo; the deleted identity and whether its photo stays.
    pub async fn delete_identity(
        &self,
        cert_no: &str,
    ) -> Result<(Identity, Option<anyhow::Error>)> {
        let cert_no = cert_no.trim().to_ascii_uppercase();
        let Some(i) =
            crate::db::identities::delete(&self.db, &self.store.keys().ring(), &cert_no).await?
        else {
            return Err(Error::NotFound("no identity with that ID number".into()));
        };
        let photo = self
            .store
            .delete(&i.photo_key)
            .await
            .err()
            .map(anyhow::Error::from);
        Ok((i, photo))
    }
}
