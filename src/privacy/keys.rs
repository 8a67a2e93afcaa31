//! Where the data keys come from: `[privacy] data_key` (+ `previous_data_keys`) or the key file `data.key` in the
//! data dir, created on first start. A key file is re-read when it changes, so that a rotation started on one
//! machine reaches every instance that shares the file without a restart.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::config::Config;
use crate::domain::seal::{DataKey, KeyRing};

/// The name of the key file in the data dir.
pub const KEY_FILE: &str = "data.key";

const FILE_HEADER: &str = "# shiren data keys (64 hex digits each). The first seals; the others only open, while \
`shiren keys rotate` moves their values to the first.\n# Keep this file out of database and object-store backups.\n";

/// Parses a key file: one key per line (64 hex digits), `#` comments and blank lines ignored; at least one key.
pub fn parse_key_file(text: &str) -> Result<Vec<[u8; 32]>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(
            parse_key(line).ok_or_else(|| {
                format!("line {} is not a key of 64 hex digits (32 bytes)", n + 1)
            })?,
        );
    }
    if keys.is_empty() {
        return Err("it holds no key".into());
    }
    Ok(keys)
}

/// The text of a key file holding `keys`, the current one first.
pub fn key_file_text(keys: &[[u8; 32]]) -> String {
    let mut out = FILE_HEADER.to_string();
    for k in keys {
        out.push_str(&hex::encode(k));
        out.push('\n');
    }
    out
}

pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

fn ring_of(keys: &[[u8; 32]]) -> KeyRing {
    KeyRing::new(
        DataKey::from_bytes(&keys[0]),
        keys[1..].iter().map(DataKey::from_bytes).collect(),
    )
}

/// Where a server's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `[privacy]` / the environment: fixed for the life of the process.
    Config,
    /// The key file, re-read when it changes.
    File(PathBuf),
}

struct Inner {
    ring: RwLock<KeyRing>,
    source: KeySource,
    /// The key file as it was when last read (a replaced file is a new inode).
    read_at: Mutex<Option<Stamp>>,
}

/// The data keys of a server: a key ring, re-read from the key file when that changes. Cheap to clone.
#[derive(Clone)]
pub struct DataKeys {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKeys({:?})", self.ring())
    }
}

/// What tells that a file changed: its modification time (coarse: a few ms), its size and its inode.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok()?, m.len(), inode))
}

fn read_file(path: &Path) -> anyhow::Result<Vec<[u8; 32]>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the data key file {}", path.display()))?;
    parse_key_file(&text)
        .map_err(|e| anyhow::anyhow!("the data key file {} is not valid: {e}", path.display()))
}

impl DataKeys {
    /// Keys that never change (tests, and servers configured with `[privacy] data_key`).
    pub fn fixed(ring: KeyRing) -> DataKeys {
        DataKeys {
            inner: Arc::new(Inner {
                ring: RwLock::new(ring),
                source: KeySource::Config,
                read_at: Mutex::new(None),
            }),
        }
    }

    /// The keys the config names: `[privacy] data_key` when set, else the key file in the data dir (created with a
    /// new random key when it does not exist).
    pub fn from_config(config: &Config) -> anyhow::Result<DataKeys> {
        let p = &config.privacy;
        match &p.data_key {
            Some(current) => {
                let mut keys = vec![parse_key(current).context(
                    "privacy.data_key (SHIREN_DATA_KEY) must be 64 hex digits (32 bytes)",
                )?];
                for (n, k) in p.previous_data_keys.iter().enumerate() {
                    keys.push(parse_key(k).with_context(|| {
                        format!(
                            "privacy.previous_data_keys (SHIREN_PREVIOUS_DATA_KEYS): key {} is not 64 hex digits",
                            n + 1
                        )
                    })?);
                }
                Ok(DataKeys::fixed(ring_of(&keys)))
            }
            None if !p.previous_data_keys.is_empty() => bail!(
                "privacy.previous_data_keys (SHIREN_PREVIOUS_DATA_KEYS) is set without privacy.data_key \
                 (SHIREN_DATA_KEY): give the current key too"
            ),
            None => DataKeys::from_file(&config.data_dir.join(KEY_FILE)),
        }
    }

    /// The keys of a key file, created with one new random key when missing.
    pub fn from_file(path: &Path) -> anyhow::Result<DataKeys> {
        let key: [u8; 32] = rand::random();
        if crate::files::create_private_file_once(path, key_file_text(&[key]).as_bytes())
            .with_context(|| format!("cannot create the data key file {}", path.display()))?
        {
            tracing::info!(path = %path.display(), "created the data key file");
        }
        let read_at = stamp(path);
        let keys = read_file(path)?;
        Ok(DataKeys {
            inner: Arc::new(Inner {
                ring: RwLock::new(ring_of(&keys)),
                source: KeySource::File(path.to_path_buf()),
                read_at: Mutex::new(read_at),
            }),
        })
    }

    /// The keys now.
    pub fn ring(&self) -> KeyRing {
        self.inner
            .ring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn source(&self) -> &KeySource {
        &self.inner.source
    }

    /// Re-reads the key file when it changed since it was last read; true when the ring changed. A file that has
    /// become unreadable or invalid keeps the keys in use (and is reported).
    pub fn reload(&self) -> anyhow::Result<bool> {
        let KeySource::File(path) = &self.inner.source else {
            return Ok(false);
        };
        let now = stamp(path);
        {
            let read_at = self.inner.read_at.lock().unwrap_or_else(|e| e.into_inner());
            if now.is_some() && *read_at == now {
                return Ok(false);
            }
        }
        self.load(path, now)
    }

    /// Reads the key file now and uses its keys; true when the ring changed.
    fn load(&self, path: &Path, now: Option<Stamp>) -> anyhow::Result<bool> {
        let keys = read_file(path)?;
        let ring = ring_of(&keys);
        *self.inner.read_at.lock().unwrap_or_else(|e| e.into_inner()) = now;
        let mut current = self.inner.ring.write().unwrap_or_else(|e| e.into_inner());
        let changed = current.ids() != ring.ids();
        if changed {
            tracing::info!(keys = ?ring.ids(), "data keys reloaded");
        }
        *current = ring;
        Ok(changed)
    }

    /// Re-reads the key file every `every` for as long as the process runs (nothing to do for fixed keys).
    pub fn spawn_reload(&self, every: Duration) {
        if !matches!(self.inner.source, KeySource::File(_)) {
            return;
        }
        let keys = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = keys.reload() {
                    tracing::error!(error = %e, "the data key file cannot be reloaded; the keys in use stay");
                }
            }
        });
    }

    /// Puts a new random key at the head of the key file (the others stay, to open what is still sealed under
    /// them) and uses it; returns its id. Only for keys from a file: configured keys are the operator's to change.
    pub fn add_key(&self) -> anyhow::Result<String> {
        let KeySource::File(path) = &self.inner.source else {
            bail!(
                "the data key comes from privacy.data_key (SHIREN_DATA_KEY): to rotate, set the new key there and \
                 the old one in privacy.previous_data_keys (SHIREN_PREVIOUS_DATA_KEYS), restart, then run \
                 `shiren keys rotate` again"
            );
        };
        let mut keys = read_file(path)?;
        let new: [u8; 32] = rand::random();
        keys.insert(0, new);
        crate::files::replace_private_file(path, key_file_text(&keys).as_bytes())
            .with_context(|| format!("cannot write the data key file {}", path.display()))?;
        self.load(path, stamp(path))?;
        Ok(DataKey::from_bytes(&new).id().to_string())
    }

    /// Removes every key but the current one from the key file (after a rotation has moved everything to it).
    /// Returns the ids removed.
    pub fn drop_older_keys(&self) -> anyhow::Result<Vec<String>> {
        let KeySource::File(path) = &self.inner.source else {
            return Ok(Vec::new());
        };
        let keys = read_file(path)?;
        if keys.len() == 1 {
            return Ok(Vec::new());
        }
        crate::files::replace_private_file(path, key_file_text(&keys[..1]).as_bytes())
            .with_context(|| format!("cannot write the data key file {}", path.display()))?;
        self.load(path, stamp(path))?;
        Ok(keys[1..]
            .iter()
            .map(|k| DataKey::from_bytes(k).id().to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_format() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let text = key_file_text(&[a, b]);
        assert!(text.starts_with('#'));
        assert_eq!(parse_key_file(&text).unwrap(), vec![a, b]);
        assert_eq!(
            parse_key_file(&format!("\n  {}  \n# c\n", hex::encode(a))).unwrap(),
            vec![a]
        );
        assert!(parse_key_file("# nothing\n")
            .unwrap_err()
            .contains("no key"));
        assert!(parse_key_file("abcd\n").unwrap_err().contains("line 1"));
        assert!(parse_key_file(&format!("{}\nzz\n", hex::encode(a)))
            .unwrap_err()
            .contains("line 2"));
    }

    #[test]
    fn file_created_once_private_then_rotated_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(KEY_FILE);
        let a = DataKeys::from_file(&path).unwrap();
        let b = DataKeys::from_file(&path).unwrap();
        assert_eq!(a.ring().ids(), b.ring().ids());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let first = a.ring().current().id().to_string();
        let new = a.add_key().unwrap();
        assert_eq!(a.ring().ids(), vec![new.as_str(), first.as_str()]);
        // Another holder of the file sees the new key once it reloads (mtime granularity aside: force it).
        *b.inner.read_at.lock().unwrap() = None;
        assert!(b.reload().unwrap());
        assert_eq!(b.ring().ids(), a.ring().ids());
        assert_eq!(a.drop_older_keys().unwrap(), vec![first]);
        assert_eq!(a.ring().ids(), vec![new.as_str()]);
        // A damaged file is refused and the keys in use stay.
        std::fs::write(&path, "garbage").unwrap();
        *a.inner.read_at.lock().unwrap() = None;
        assert!(a.reload().is_err());
        assert_eq!(a.ring().ids(), vec![new.as_str()]);
        assert!(DataKeys::from_file(&path).is_err());
    }

    #[test]
    fn configured_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        c.privacy.data_key = Some("11".repeat(32));
        c.privacy.previous_data_keys = vec!["22".repeat(32)];
        let k = DataKeys::from_config(&c).unwrap();
        assert_eq!(k.ring().ids().len(), 2);
        assert_eq!(
            k.ring().current().id(),
            DataKey::from_bytes(&[0x11; 32]).id()
        );
        assert!(!dir.path().join(KEY_FILE).exists());
        assert!(k.add_key().is_err());
        c.privacy.previous_data_keys = vec!["zz".into()];
        assert!(DataKeys::from_config(&c).is_err());
        c.privacy.data_key = None;
        assert!(DataKeys::from_config(&c).is_err());
        c.privacy.previous_data_keys.clear();
        DataKeys::from_config(&c).unwrap();
        assert!(dir.path().join(KEY_FILE).exists());
    }
}
