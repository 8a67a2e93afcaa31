//! The object store for images: a local directory by default (shared storage makes instances stateless).
use std::path::{Path, PathBuf};

/// Stores blobs under keys like `contrast/<certify_id>`; writes are atomic (temporary file, then rename).
#[derive(Clone, Debug)]
pub struct ObjectStore {
    root: PathBuf,
}

impl ObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> ObjectStore {
        ObjectStore { root: root.into() }
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

    pub async fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            key.replace('/', "_"),
            rand::random::<u64>()
        ));
        tokio::fs::write(&tmp, bytes).await?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(())
    }

    pub async fn get(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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

    #[tokio::test]
    async fn put_get_delete_and_key_safety() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path());
        store.put("contrast/abc", b"img").await.unwrap();
        assert_eq!(
            store.get("contrast/abc").await.unwrap().as_deref(),
            Some(&b"img"[..])
        );
        store.delete("contrast/abc").await.unwrap();
        store.delete("contrast/abc").await.unwrap();
        assert_eq!(store.get("contrast/abc").await.unwrap(), None);
        for bad in ["", "../x", "a//b", "a/../b", "/abs"] {
            assert!(store.put(bad, b"x").await.is_err(), "{bad}");
        }
    }
}
