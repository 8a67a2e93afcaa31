//! Access keys of the cloud API: new key pairs, and the sealing of their secrets. A secret is stored encrypted
//! (ChaCha20-Poly1305, the key id as associated data) under a key that is never in the database: the config value
//! `cloud.secret_key` / `SHIREN_CLOUD_SECRET_KEY` (64 hex digits) when set, else a file `cloud_secret.key` in the
//! data dir, created on first use with mode 0600. A database dump alone therefore cannot sign requests.
use std::path::Path;

use anyhow::Context;
use base64::Engine;
use rand::Rng;
use ring::aead;
use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::privacy::keys::parse_key;

/// The prefix of every access key id this server issues.
pub const KEY_ID_PREFIX: &str = "SRAK";
const SEALED_PREFIX: &str = "v1:";

/// An AccessKeySecret in clear. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Seals and opens stored secrets.
#[derive(Clone)]
pub struct SecretBox {
    key: std::sync::Arc<aead::LessSafeKey>,
    /// Derives further keys from the same secret (see [`SecretBox::derive_key`]).
    root: std::sync::Arc<ring::hmac::Key>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A box with this 32-byte key.
    pub fn from_key(bytes: &[u8; 32]) -> SecretBox {
        let unbound = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, bytes).unwrap_or_else(|_| {
            unreachable!("a 32-byte key is always valid for ChaCha20-Poly1305")
        });
        SecretBox {
            key: std::sync::Arc::new(aead::LessSafeKey::new(unbound)),
            root: std::sync::Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes)),
        }
    }

    /// A 32-byte key for `purpose` (HMAC-SHA256 of the purpose under this box's key): the same on every instance
    /// that shares the box's key, unrelated to it and to the keys of other purposes.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.root, purpose.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The box the config names: `cloud.secret_key` when set, else the key file in the data dir (created if need be).
    pub fn from_config(config: &Config) -> anyhow::Result<SecretBox> {
        match &config.cloud.secret_key {
            Some(text) => Ok(SecretBox::from_key(&parse_key(text).context(
                "cloud.secret_key (SHIREN_CLOUD_SECRET_KEY) must be 64 hex digits (32 bytes)",
            )?)),
            None => load_or_create(&config.data_dir.join("cloud_secret.key")),
        }
    }

    /// Encrypts `secret` for the key `access_key_id`.
    pub fn seal(&self, access_key_id: &str, secret: &Secret) -> String {
        let nonce_bytes: [u8; 12] = rand::random();
        let mut data = secret.0.as_bytes().to_vec();
        // Sealing into a Vec cannot fail for inputs far below the algorithm's limits.
        let sealed = self.key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce_bytes),
            aead::Aad::from(access_key_id.as_bytes()),
            &mut data,
        );
        if sealed.is_err() {
            data.clear();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Decrypts a stored secret; None when it was sealed under another key, for another key id, or is damaged.
    pub fn open(&self, access_key_id: &str, sealed: &str) -> Option<Secret> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if raw.len() < 12 + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, rest) = raw.split_at(12);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aead::Aad::from(access_key_id.as_bytes()), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok().map(Secret)
    }
}

/// Reads the key file, or creates it (32 random bytes as hex, mode 0600) when it does not exist.
pub fn load_or_create(path: &Path) -> anyhow::Result<SecretBox> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SecretBox::from_key(&parse_key(&text).with_context(
            || format!("{} must hold 64 hex digits (32 bytes)", path.display()),
        )?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn create(path: &Path) -> anyhow::Result<SecretBox> {
    let key: [u8; 32] = rand::random();
    let created =
        crate::files::create_private_file_once(path, format!("{}\n", hex::encode(key)).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    if !created {
        // Another process created it meanwhile: everyone uses the first one.
        return load_or_create(path);
    }
    tracing::info!(path = %path.display(), "created the cloud access-key encryption key");
    Ok(SecretBox::from_key(&key))
}

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHANUMERIC[rng.gen_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

/// A new pair: the id (`SRAK` + 20 letters and digits) and the secret (30 letters and digits).
pub fn generate() -> (String, Secret) {
    (
        format!("{KEY_ID_PREFIX}{}", random_text(20)),
        Secret(random_text(30)),
    )
}

/// Creates and stores a new access key of `app_id`; the secret is returned once and stored sealed.
pub async fn create_key(
    db: &DatabaseConnection,
    secrets: &SecretBox,
    app_id: &str,
    now: i64,
) -> anyhow::Result<(String, Secret)> {
    let (id, secret) = generate();
    crate::db::cloud_keys::insert(db, &id, app_id, secrets.seal(&id, &secret), now).await?;
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let b = SecretBox::from_key(&[7; 32]);
        let (id, secret) = generate();
        assert!(id.starts_with("SRAK") && id.len() == 24);
        assert_eq!(secret.expose().len(), 30);
        let sealed = b.seal(&id, &secret);
        assert!(!sealed.contains(secret.expose()));
        assert_eq!(b.open(&id, &sealed), Some(secret.clone()));
        // Another key id, another box key, or damage: nothing.
        assert_eq!(b.open("SRAKother", &sealed), None);
        assert_eq!(SecretBox::from_key(&[8; 32]).open(&id, &sealed), None);
        let mut damaged = sealed.clone().into_bytes();
        let last = damaged.len() - 3;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(b.open(&id, &String::from_utf8(damaged).unwrap()), None);
        assert_eq!(b.open(&id, "v1:"), None);
        assert_eq!(b.open(&id, "garbage"), None);
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(b.seal(&id, &secret), sealed);
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert!(!format!("{b:?}").contains('7'));
    }

    #[test]
    fn derived_keys_depend_on_the_box_key_and_the_purpose() {
        let a = SecretBox::from_key(&[7; 32]);
        assert_eq!(
            a.derive_key("x"),
            SecretBox::from_key(&[7; 32]).derive_key("x")
        );
        assert_ne!(a.derive_key("x"), a.derive_key("y"));
        assert_ne!(
            a.derive_key("x"),
            SecretBox::from_key(&[8; 32]).derive_key("x")
        );
        assert_ne!(a.derive_key("x"), [7; 32]);
    }

    #[test]
    fn key_file_created_once_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cloud_secret.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        let s = Secret("abc".into());
        assert_eq!(b.open("K", &a.seal("K", &s)), Some(s));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        assert!(load_or_create(&path).is_err());
    }

    #[test]
    fn config_key_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        c.cloud.secret_key = Some("11".repeat(32));
        let b = SecretBox::from_config(&c).unwrap();
        let s = Secret("x".into());
        assert_eq!(
            SecretBox::from_key(&[0x11; 32]).open("K", &b.seal("K", &s)),
            Some(s)
        );
        assert!(!dir.path().join("cloud_secret.key").exists());
        c.cloud.secret_key = Some("nothex".into());
        assert!(SecretBox::from_config(&c).is_err());
    }
}
