//! Deletion on instruction, and the audit log: reading it and checking its chain.
use super::{Error, Operator, Result};
use crate::domain::audit::{AuditEntry, ChainError, ChainVerifier};
use crate::privacy::{self, Erasure};

/// Who asked, as the audit log names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Console,
    AdminApi,
    Cli,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Console => "console",
            Actor::AdminApi => "admin-api",
            Actor::Cli => "cli",
        }
    }
}

/// The result of checking the whole audit log.
#[derive(Debug)]
pub struct ChainReport {
    pub checked: u64,
    pub broken: Option<ChainError>,
}

impl Operator {
    /// Deletes a verification's personal data (name, ID number, kept images); its verdict and billing record stay,
    /// and the audit log records who did it. Deleting twice is refused as a conflict.
    pub async fn delete_verification(&self, certify_id: &str, actor: Actor) -> Result<()> {
        match privacy::erase_verification(
            &self.db,
            &self.store,
            certify_id,
            actor.as_str(),
            self.now(),
        )
        .await
        .map_err(Error::Unavailable)?
        {
            Erasure::Erased { .. } => Ok(()),
            Erasure::AlreadyErased => Err(Error::Conflict(
                "the verification's personal data was deleted before".into(),
            )),
            Erasure::NotFound => Err(Error::NotFound("no such verification".into())),
        }
    }

    /// Records that an operator was shown a verification's personal data.
    pub async fn audit_view(&self, certify_id: &str, actor: Actor, what: &str) -> Result<()> {
        privacy::audit(
            &self.db,
            crate::domain::audit::AuditRecord {
                at: self.now(),
                actor: actor.as_str().to_string(),
                action: crate::domain::audit::AuditAction::PersonalDataViewed,
                target: certify_id.to_string(),
                detail: what.to_string(),
            },
        )
        .await
        .map_err(Error::Unavailable)
    }

    /// Up to `limit` (1–500) entries before `before_seq` (none: the newest), newest first.
    pub async fn audit_entries(
        &self,
        before_seq: Option<i64>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>> {
        if !(1..=500).contains(&limit) {
            return Err(Error::Invalid("limit must be 1 to 500".into()));
        }
        Ok(crate::db::audit::newest(&self.db, before_seq, limit).await?)
    }

    /// Walks the whole audit log and reports the first place its chain breaks. `progress` hears the count so far.
    pub async fn verify_audit_log(&self, mut progress: impl FnMut(u64)) -> Result<ChainReport> {
        let mut v = ChainVerifier::default();
        let mut after = 0;
        loop {
            let page = crate::db::audit::page(&self.db, after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                if let Err(broken) = v.push(e) {
                    return Ok(ChainReport {
                        checked: v.checked,
                        broken: Some(broken),
                    });
                }
            }
            progress(v.checked);
        }
        Ok(ChainReport {
            checked: v.checked,
            broken: None,
        })
    }
}
