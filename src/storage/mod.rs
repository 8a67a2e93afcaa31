//! The object store for images: a local directory by default (shared storage makes instances stateless).
use std::path::{Path, PathBuf};

use crate::domain::seal::{self, OpenError};
use crate::privacy::DataKeys;

/// Stores blobs under keys like `contrast/<certify_id>`, sealed under the data key with the object key as context
/// (they are people's faces: a copy of the directory shows nothing, and an object moved to another key does not
/// open). Writes are atomic (temporary file, then rename); directories are created 0700 and objects 0600.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    root: PathBuf,
    keys: DataKeys,
}

fn open_error(key: &str, e: OpenError) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("object {key}: {e}"),
    )
}

impl ObjectStore {
    pub fn new(root: impl Into<PathBuf>, keys: DataKeys) -> ObjectStore {
        ObjectStore {
            root: root.into(),
            keys,
        }
    }

    /// The data keys the store seals with; the repositories seal personal columns with the same keys.
    pub fn keys(&self) -> &DataKeys {
        &self.keys
    }

    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !safe {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "invalid object key",
            ));
        }
        Ok(self.root.join(key))
    }

    /// Stores `bytes` sealed under the current data key.
    pub async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let sealed = self.keys.ring().seal_bytes(key, bytes);
        self.put_raw(key, &sealed).await
    }

    async fn put_raw(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::files::create_dir_async(dir).await?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            key.replace('/', "_"),
            rand::random::<u64>()
        ));
        if let Err(e) = crate::files::write_new_async(&tmp, bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(())
    }

    /// The object in clear. An object stored before sealing existed opens as it is, until the start-up pass seals it.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(raw) = self.get_raw(key).await? else {
            return Ok(None);
        };
        match self.keys.ring().open_bytes(key, &raw) {
            Ok(clear) => Ok(Some(clear)),
            Err(OpenError::NotSealed) => Ok(Some(raw)),
            Err(e) => Err(open_error(key, e)),
        }
    }

    async fn get_raw(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Seals an object under the current data key when it is clear or sealed under an older key; true when it was
    /// rewritten (a missing object is nothing to do).
    pub async fn reseal(&self, key: &str) -> std::io::Result<bool> {
        let Some(raw) = self.get_raw(key).await? else {
            return Ok(false);
        };
        let ring = self.keys.ring();
        if seal::key_id_of_bytes(&raw) == Some(ring.current().id()) {
            return Ok(false);
        }
        let clear = match ring.open_bytes(key, &raw) {
            Ok(clear) => clear,
            Err(OpenError::NotSealed) => raw,
            Err(e) => return Err(open_error(key, e)),
        };
        self.put_raw(key, &ring.seal_bytes(key, &clear)).await?;
        Ok(true)
    }

    pub async fn delete(&self, key: &str) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> DataKeys {
        DataKeys::fixed(seal::KeyRing::new(
            seal::DataKey::from_bytes(&[b; 32]),
            vec![],
        ))
    }

    #[tokio::test]
    async fn objects_are_sealed_and_resealed() {
        let dir = tempfile::tempdir().unwrap();
        let old = ObjectStore::new(dir.path(), keys(1));
        let jpeg = b"\xff\xd8\xff\xe0 a face";
        old.put("faces/a", jpeg).await.unwrap();
        let on_disk = std::fs::read(dir.path().join("faces/a")).unwrap();
        assert!(!on_disk.windows(4).any(|w| w == &jpeg[..4]));
        assert_eq!(old.get("faces/a").await.unwrap().unwrap(), jpeg);
        // Moved to another key, it does not open.
        std::fs::copy(dir.path().join("faces/a"), dir.path().join("faces/b")).unwrap();
        assert!(old.get("faces/b").await.is_err());
        // A clear object from before sealing opens, and the pass seals it.
        std::fs::write(dir.path().join("faces/c"), jpeg).unwrap();
        assert_eq!(old.get("faces/c").await.unwrap().unwrap(), jpeg);
        assert!(old.reseal("faces/c").await.unwrap());
        assert!(!old.reseal("faces/c").await.unwrap());
        assert_ne!(std::fs::read(dir.path().join("faces/c")).unwrap(), jpeg);
        // A rotation: the new ring opens the old key's objects and reseals them; the old key alone no longer can.
        let rotating = ObjectStore::new(
            dir.path(),
            DataKeys::fixed(seal::KeyRing::new(
                seal::DataKey::from_bytes(&[2; 32]),
                vec![seal::DataKey::from_bytes(&[1; 32])],
            )),
        );
        assert_eq!(rotating.get("faces/a").await.unwrap().unwrap(), jpeg);
        assert!(rotating.reseal("faces/a").await.unwrap());
        assert!(old.get("faces/a").await.is_err());
        assert_eq!(
            ObjectStore::new(dir.path(), keys(2))
                .get("faces/a")
                .await
                .unwrap()
                .unwrap(),
            jpeg
        );
        assert!(!rotating.reseal("faces/missing").await.unwrap());
    }

    #[tokio::test]
    async fn put_get_delete_and_key_safety() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path(), keys(1));
        store.put("contrast/abc", b"img").await.unwrap();
        assert_eq!(
            store.get("contrast/abc").await.unwrap().as_deref(),
            Some(&b"img"[..])
        );
        store.delete("contrast/abc").await.unwrap();
        store.delete("contrast/abc").await.unwrap();
        assert_eq!(store.get("contrast/abc").await.unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            store.put("faces/x", b"img").await.unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("faces")), 0o700);
            assert_eq!(mode(&dir.path().join("faces/x")), 0o600);
        }
        for bad in ["", "../x", "a//b", "a/../b", "/abs"] {
            assert!(store.put(bad, b"x").await.is_err(), "{bad}");
        }
    }
}
