//! The local registry: identities imported from a CSV of `cert_no,cert_name,photo` with photos beside it.
use sea_orm::DatabaseConnection;

use super::{same_name, Authority, AuthorityError, Lookup, ReferenceFace};
use crate::db::identities;
use crate::domain::sensitive::Sensitive;
use crate::storage::ObjectStore;

pub struct LocalRegistry {
    db: DatabaseConnection,
    store: ObjectStore,
    /// The recogniser in use: stored embeddings of another recogniser are ignored and the photo is analysed.
    recogniser: String,
}

impl LocalRegistry {
    pub fn new(db: DatabaseConnection, store: ObjectStore, recogniser: String) -> LocalRegistry {
        LocalRegistry {
            db,
            store,
            recogniser,
        }
    }
}

/// Object-store key of an identity's photo: a blind index of the number (under the data key), so that the store's
/// listing neither shows the number nor lets a guess of it be checked.
pub fn photo_key(keys: &crate::domain::seal::KeyRing, cert_no: &str) -> String {
    format!("identities/{}", keys.index("identity photo", cert_no))
}

#[async_trait::async_trait]
impl Authority for LocalRegistry {
    async fn lookup(&self, cert_no: &str, cert_name: &str) -> Result<Lookup, AuthorityError> {
        let found = identities::find(&self.db, &self.store.keys().ring(), cert_no)
            .await
            .map_err(|e| AuthorityError::Unavailable(e.to_string()))?;
        let Some(i) = found else {
            return Ok(Lookup::NotFound);
        };
        if !same_name(&i.cert_name, cert_name) {
            return Ok(Lookup::NameMismatch);
        }
        if !i.embedding.is_empty() && i.embedding_model == self.recogniser {
            return Ok(Lookup::Match(ReferenceFace::Embedding {
                model: i.embedding_model,
                vector: i.embedding,
            }));
        }
        match self.store.get(&i.photo_key).await {
            Ok(Some(bytes)) => Ok(Lookup::Match(ReferenceFace::Photo(Sensitive::new(bytes)))),
            Ok(None) => Err(AuthorityError::BadAnswer(
                "registered photo missing from the object store".into(),
            )),
            Err(e) => Err(AuthorityError::Unavailable(e.to_string())),
        }
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}
