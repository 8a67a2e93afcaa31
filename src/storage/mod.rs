//! The object store for images: a local directory by default (shared storage makes instances stateless).
use std::path::{Path, PathBuf};

/// Stores blobs under keys like `contrast/<certify_id>`; writes are atomic (temporary file, then rename). Directories
/// are created 0700 and objects 0600: they are people's faces.
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
