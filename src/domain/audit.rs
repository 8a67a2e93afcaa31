//! The audit log's chain: each entry carries the hash of the one before it, so that an entry removed from the
//! middle, inserted, reordered or altered is found by walking the chain. Pure: storing entries is `db::audit`'s.
use sha2::{Digest, Sha256};

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    /// A verification's personal data deleted on instruction.
    VerificationDeleted,
    /// Personal data of verifications past their scene's retention deleted.
    RetentionPurged,
    /// The data key rotated.
    KeysRotated,
    /// An operator was shown a verification's personal data.
    PersonalDataViewed,
}

impl AuditAction {
    pub const ALL: [AuditAction; 4] = [
        AuditAction::VerificationDeleted,
        AuditAction::RetentionPurged,
        AuditAction::KeysRotated,
        AuditAction::PersonalDataViewed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::VerificationDeleted => "verification.delete",
            AuditAction::RetentionPurged => "retention.purge",
            AuditAction::KeysRotated => "keys.rotate",
            AuditAction::PersonalDataViewed => "personal_data.view",
        }
    }

    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry says, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    /// Who: `console`, `admin-api`, `cli`, `cloud-api:<app_id>`, `system`.
    pub actor: String,
    pub action: AuditAction,
    /// What: a certify_id, a key id, a count.
    pub target: String,
    /// Further facts (never personal data).
    pub detail: String,
}

/// A stored entry: its place in the chain and the hashes that link it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over the previous hash and every field, each length-prefixed (so that no two
/// different entries hash alike by moving text between fields).
pub fn entry_hash(prev_hash: &str, seq: i64, r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash.as_bytes(),
        &seq.to_be_bytes(),
        &r.at.to_be_bytes(),
        r.actor.as_bytes(),
        r.action.as_str().as_bytes(),
        r.target.as_bytes(),
        r.detail.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// The entry that follows `last` (none: the first).
pub fn next_entry(last: Option<&AuditEntry>, record: AuditRecord) -> AuditEntry {
    let (seq, prev_hash) = match last {
        Some(e) => (e.seq + 1, e.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    AuditEntry {
        hash: entry_hash(&prev_hash, seq, &record),
        seq,
        record,
        prev_hash,
    }
}

/// Where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error(
        "entry {found} follows entry {after}: entries between them are missing or were inserted"
    )]
    Gap { after: i64, found: i64 },
    #[error("entry {0} does not link to the entry before it: that one was altered or removed")]
    BrokenLink(i64),
    #[error("entry {0} was altered after it was written")]
    Altered(i64),
}

/// Walks a chain entry by entry, in order of `seq`.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    last_seq: i64,
    last_hash: String,
    pub checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            last_seq: 0,
            last_hash: GENESIS.to_string(),
            checked: 0,
        }
    }
}

impl ChainVerifier {
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainError> {
        if e.seq != self.last_seq + 1 {
            return Err(ChainError::Gap {
                after: self.last_seq,
                found: e.seq,
            });
        }
        if e.prev_hash != self.last_hash {
            return Err(ChainError::BrokenLink(e.seq));
        }
        if entry_hash(&e.prev_hash, e.seq, &e.record) != e.hash {
            return Err(ChainError::Altered(e.seq));
        }
        self.last_seq = e.seq;
        self.last_hash = e.hash.clone();
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> AuditRecord {
        AuditRecord {
            at: 1_700_000_000 + i,
            actor: "console".into(),
            action: AuditAction::ALL[(i % 4) as usize],
            target: format!("cid{i}"),
            detail: String::new(),
        }
    }

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let e = next_entry(out.last(), record(i));
            out.push(e);
        }
        out
    }

    fn verify(entries: &[AuditEntry]) -> Result<u64, ChainError> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn a_whole_chain_verifies() {
        assert_eq!(verify(&chain(10)), Ok(10));
        assert_eq!(verify(&[]), Ok(0));
        assert_eq!(chain(1)[0].prev_hash, GENESIS);
    }

    #[test]
    fn every_field_is_covered() {
        let base = chain(3);
        let edits: [fn(&mut AuditRecord); 5] = [
            |r| r.at += 1,
            |r| r.actor.push('x'),
            |r| r.action = AuditAction::KeysRotated,
            |r| r.target.push('x'),
            |r| r.detail.push('x'),
        ];
        for edit in edits {
            let mut c = base.clone();
            edit(&mut c[1].record);
            if c[1].record == base[1].record {
                continue;
            }
            assert_eq!(verify(&c), Err(ChainError::Altered(2)));
        }
        // Re-hashing the altered entry does not help: the next one no longer links.
        let mut c = base.clone();
        c[1].record.target = "other".into();
        c[1].hash = entry_hash(&c[1].prev_hash, 2, &c[1].record);
        assert_eq!(verify(&c), Err(ChainError::BrokenLink(3)));
    }

    #[test]
    fn removal_insertion_and_reordering_are_found() {
        let base = chain(4);
        let mut removed = base.clone();
        removed.remove(1);
        assert_eq!(
            verify(&removed),
            Err(ChainError::Gap { after: 1, found: 3 })
        );
        let mut renumbered = removed.clone();
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as i64 + 1;
        }
        assert!(verify(&renumbered).is_err());
        let mut swapped = base.clone();
        swapped.swap(1, 2);
        assert!(verify(&swapped).is_err());
        let mut first_gone = base.clone();
        first_gone.remove(0);
        assert_eq!(
            verify(&first_gone),
            Err(ChainError::Gap { after: 0, found: 2 })
        );
    }

    #[test]
    fn fields_cannot_trade_text() {
        let mut a = record(0);
        let mut b = record(0);
        a.actor = "ab".into();
        a.target = "c".into();
        b.actor = "a".into();
        b.target = "bc".into();
        assert_ne!(entry_hash(GENESIS, 1, &a), entry_hash(GENESIS, 1, &b));
    }

    #[test]
    fn actions_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("x"), None);
    }
}
