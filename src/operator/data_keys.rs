//! The data keys that seal personal data at rest: what is in use, and the rotation to a new key.
use std::time::Duration;

use super::{Operator, Result};
use crate::privacy::{self, Pending, ResealReport};

/// The keys as `shiren keys status` shows them.
pub struct DataKeyStatus {
    pub current: String,
    /// Keys that still open values (a rotation is not finished).
    pub older: Vec<String>,
    /// Keys the database knows.
    pub registered: Vec<String>,
    pub pending: Pending,
}

/// What a rotation did.
pub struct RotationReport {
    pub current: String,
    pub resealed: ResealReport,
    /// Keys no longer in use (removed from the key file and from the database's registry).
    pub retired: Vec<String>,
}

/// How long a rotation waits after putting a new key in the key file before it reseals: running servers re-read
/// the file every two seconds, and from then on seal under the new key.
const SETTLE: Duration = Duration::from_secs(5);

impl Operator {
    pub async fn data_key_status(&self) -> Result<DataKeyStatus> {
        let ring = self.store.keys().ring();
        let ids = ring.ids();
        Ok(DataKeyStatus {
            current: ids[0].to_string(),
            older: ids[1..].iter().map(|s| s.to_string()).collect(),
            registered: crate::db::data_keys::list(&self.db)
                .await?
                .into_iter()
                .map(|k| k.key_id)
                .collect(),
            pending: privacy::pending(&self.db, &ring)
                .await
                .map_err(super::Error::Unavailable)?,
        })
    }

    /// Moves every sealed value to a new data key. With the key file: adds a new key at its head (unless an
    /// interrupted rotation left older keys there: then it resumes), reseals in batches until nothing is left under
    /// an older key, then removes the older keys from the file and the database. With configured keys the operator
    /// has set the new key and the old ones (`previous_data_keys`); this reseals, and the old keys can then be
    /// removed from the configuration. `step` hears what happens, `progress` each batch.
    pub async fn rotate_data_keys(
        &self,
        mut step: impl FnMut(&str),
        mut progress: impl FnMut(&str, u64, u64),
    ) -> anyhow::Result<RotationReport> {
        let keys = self.store.keys();
        if keys.ring().ids().len() == 1 {
            let id = keys.add_key()?;
            step(&format!(
                "new data key {id} written to the key file; waiting {}s for running servers to load it",
                SETTLE.as_secs()
            ));
            privacy::admit(&self.db, keys, self.now()).await?;
            tokio::time::sleep(SETTLE).await;
        } else {
            privacy::admit(&self.db, keys, self.now()).await?;
            step(&format!(
                "resuming: moving values from {} to {}",
                keys.ring().ids()[1..].join(", "),
                keys.ring().current().id()
            ));
        }
        let mut total = ResealReport::default();
        // A pass can miss values another server sealed under an older key while it ran (one that had not yet
        // loaded the new key): passes repeat until one finds nothing.
        loop {
            let pass = privacy::reseal(&self.db, &self.store, keys, true, &mut progress).await?;
            total.verifications += pass.verifications;
            total.identities += pass.identities;
            total.objects += pass.objects;
            total.failed += pass.failed;
            if pass.failed > 0 {
                anyhow::bail!(
                    "{} value(s) could not be opened (see the log); the older keys stay until they are dealt \
                     with",
                    pass.failed
                );
            }
            if pass.total() == 0 {
                break;
            }
        }
        let current = keys.ring().current().id().to_string();
        let mut retired = keys.drop_older_keys()?;
        let registered: Vec<String> = crate::db::data_keys::list(&self.db)
            .await?
            .into_iter()
            .map(|k| k.key_id)
            .filter(|id| *id != current)
            .collect();
        crate::db::data_keys::retire(&self.db, &registered).await?;
        for id in registered {
            if !retired.contains(&id) {
                retired.push(id);
            }
        }
        privacy::audit(
            &self.db,
            crate::domain::audit::AuditRecord {
                at: self.now(),
                actor: "cli".into(),
                action: crate::domain::audit::AuditAction::KeysRotated,
                target: current.clone(),
                detail: format!(
                    "{} verification(s), {} identit(ies), {} object(s) resealed; retired: {}",
                    total.verifications,
                    total.identities,
                    total.objects,
                    retired.join(", ")
                ),
            },
        )
        .await?;
        if matches!(keys.source(), privacy::keys::KeySource::Config) && keys.ring().ids().len() > 1
        {
            step("everything is sealed under the current key: remove privacy.previous_data_keys (SHIREN_PREVIOUS_DATA_KEYS) from the configuration");
        }
        Ok(RotationReport {
            current,
            resealed: total,
            retired,
        })
    }
}
