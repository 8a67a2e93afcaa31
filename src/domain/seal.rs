//! Personal data at rest: values sealed with an AEAD (ChaCha20-Poly1305) under a data key, and blind indexes (a
//! keyed HMAC) for the lookups that need a value's equality without its clear text. Pure: no I/O; where the keys
//! come from is `crate::privacy`'s business.
//!
//! Every sealed value names the key it was sealed under, so that a key ring of one current and some older keys opens
//! everything while a rotation moves values to the current key. Every value is bound to a context (the column and
//! the row, or the object's key) as associated data: a sealed value copied into another row or object does not open.
//!
//! Text form: `s1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`; the empty string stays empty (it holds nothing:
//! a product that collects no name, or a value already purged). Byte form: `SHS1` ‖ key id (16 ASCII hex) ‖ nonce
//! ‖ ciphertext ‖ tag. Neither can be mistaken for a clear value: names and ID numbers never start with `s1.`, and
//! images start with their format's magic, never `SHS1`.
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::{aead, hmac};

const TEXT_PREFIX: &str = "s1.";
const BYTES_MAGIC: &[u8; 4] = b"SHS1";
const KEY_ID_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// One data key: its id (public, derived from the key) and the sealing and indexing keys derived from it.
pub struct DataKey {
    id: String,
    aead: aead::LessSafeKey,
    index: hmac::Key,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

fn derive(root: &hmac::Key, purpose: &str) -> [u8; 32] {
    let tag = hmac::sign(root, purpose.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl DataKey {
    /// The key with these 32 bytes. Sealing, indexing and the id each use their own key derived from them, so that
    /// none of the three tells anything about another.
    pub fn from_bytes(bytes: &[u8; 32]) -> DataKey {
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let id = hex::encode(&derive(&root, "shiren data key id")[..KEY_ID_LEN / 2]);
        let unbound = aead::UnboundKey::new(
            &aead::CHACHA20_POLY1305,
            &derive(&root, "shiren data sealing"),
        )
        .unwrap_or_else(|_| unreachable!("a 32-byte key is always valid for ChaCha20-Poly1305"));
        DataKey {
            id,
            aead: aead::LessSafeKey::new(unbound),
            index: hmac::Key::new(hmac::HMAC_SHA256, &derive(&root, "shiren blind index")),
        }
    }

    /// 16 hex digits that name this key in every value sealed under it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, context: &str, clear: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut data = clear.to_vec();
        // Sealing cannot fail below the algorithm's limit of 256 GiB per value.
        if self
            .aead
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut data,
            )
            .is_err()
        {
            unreachable!("a value far below 256 GiB always seals");
        }
        let mut out = Vec::with_capacity(NONCE_LEN + data.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        out
    }

    fn open(&self, context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let len = self
            .aead
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut data)
            .ok()?
            .len();
        data.truncate(len);
        Some(data)
    }

    fn index(&self, purpose: &str, value: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(&(purpose.len() as u64).to_be_bytes());
        ctx.update(purpose.as_bytes());
        ctx.update(value.as_bytes());
        // 128 bits: no collisions among any realistic number of values, and short in an index.
        hex::encode(&ctx.sign().as_ref()[..16])
    }
}

/// Why a stored value did not open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The value is not sealed at all (data written before sealing existed, not yet sealed by the start-up pass).
    NotSealed,
    /// Sealed under a key this ring does not hold.
    UnknownKey(String),
    /// Sealed under a key of the ring but it does not open: damaged, or copied from another row or object.
    Damaged,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotSealed => f.write_str("the stored value is not sealed"),
            OpenError::UnknownKey(id) => write!(
                f,
                "the stored value is sealed under data key {id}, which this server does not have"
            ),
            OpenError::Damaged => f.write_str("the stored value is damaged or out of place"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The data keys a server holds: the current one, which seals, and older ones, which only open (while a rotation
/// moves their values to the current key). Cheap to clone.
#[derive(Clone)]
pub struct KeyRing {
    keys: Arc<Vec<DataKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

/// Which key a sealed value names, or none when the value is clear (or empty).
pub fn key_id_of_text(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(TEXT_PREFIX)?;
    let (id, _) = rest.split_once('.')?;
    (id.len() == KEY_ID_LEN).then_some(id)
}

/// Which key sealed bytes name, or none when the bytes are not sealed.
pub fn key_id_of_bytes(stored: &[u8]) -> Option<&str> {
    let rest = stored.strip_prefix(BYTES_MAGIC.as_slice())?;
    let id = std::str::from_utf8(rest.get(..KEY_ID_LEN)?).ok()?;
    id.bytes().all(|b| b.is_ascii_hexdigit()).then_some(id)
}

impl KeyRing {
    /// A ring of `current` (which seals) and `older` keys (which only open). Duplicates of a key are dropped.
    pub fn new(current: DataKey, older: Vec<DataKey>) -> KeyRing {
        let mut keys = vec![current];
        for k in older {
            if keys.iter().all(|have| have.id != k.id) {
                keys.push(k);
            }
        }
        KeyRing {
            keys: Arc::new(keys),
        }
    }

    pub fn current(&self) -> &DataKey {
        &self.keys[0]
    }

    /// The ids of all keys, the current one first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    fn key(&self, id: &str) -> Option<&DataKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Seals text for `context` under the current key. The empty string stays empty.
    pub fn seal_text(&self, context: &str, clear: &str) -> String {
        if clear.is_empty() {
            return String::new();
        }
        let key = self.current();
        format!(
            "{TEXT_PREFIX}{}.{}",
            key.id,
            B64.encode(key.seal(context, clear.as_bytes()))
        )
    }

    /// Opens text sealed for `context`. The empty string opens as empty.
    pub fn open_text(&self, context: &str, stored: &str) -> Result<String, OpenError> {
        if stored.is_empty() {
            return Ok(String::new());
        }
        let id = key_id_of_text(stored).ok_or(OpenError::NotSealed)?;
        let key = self
            .key(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_string()))?;
        let body = &stored[TEXT_PREFIX.len() + KEY_ID_LEN + 1..];
        let raw = B64.decode(body).map_err(|_| OpenError::Damaged)?;
        let clear = key.open(context, &raw).ok_or(OpenError::Damaged)?;
        String::from_utf8(clear).map_err(|_| OpenError::Damaged)
    }

    /// Seals bytes (an image) for `context` under the current key.
    pub fn seal_bytes(&self, context: &str, clear: &[u8]) -> Vec<u8> {
        let key = self.current();
        let sealed = key.seal(context, clear);
        let mut out = Vec::with_capacity(BYTES_MAGIC.len() + KEY_ID_LEN + sealed.len());
        out.extend_from_slice(BYTES_MAGIC);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens bytes sealed for `context`.
    pub fn open_bytes(&self, context: &str, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        let id = key_id_of_bytes(stored).ok_or(OpenError::NotSealed)?;
        let key = self
            .key(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_string()))?;
        key.open(context, &stored[BYTES_MAGIC.len() + KEY_ID_LEN..])
            .ok_or(OpenError::Damaged)
    }

    /// Whether a stored text is what the current key would hold: sealed under it, or empty.
    pub fn is_current_text(&self, stored: &str) -> bool {
        stored.is_empty() || key_id_of_text(stored) == Some(self.current().id())
    }

    /// The blind index of `value` for `purpose` under the current key: equal values give equal indexes, and
    /// without the key an index tells nothing about the value (a guess of an ID number cannot be checked).
    pub fn index(&self, purpose: &str, value: &str) -> String {
        self.current().index(purpose, value)
    }

    /// The value's index under every key of the ring, the current key's first: a lookup matches rows indexed under
    /// any of them while a rotation is under way.
    pub fn indexes(&self, purpose: &str, value: &str) -> Vec<String> {
        self.keys.iter().map(|k| k.index(purpose, value)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(current: u8, older: &[u8]) -> KeyRing {
        KeyRing::new(
            DataKey::from_bytes(&[current; 32]),
            older
                .iter()
                .map(|b| DataKey::from_bytes(&[*b; 32]))
                .collect(),
        )
    }

    #[test]
    fn text_round_trip_bound_to_its_context() {
        let r = ring(1, &[]);
        let sealed = r.seal_text("verifications.cert_name|A", "张三");
        assert!(sealed.starts_with("s1."));
        assert!(!sealed.contains("张三"));
        assert_eq!(key_id_of_text(&sealed), Some(r.current().id()));
        assert_eq!(
            r.open_text("verifications.cert_name|A", &sealed).unwrap(),
            "张三"
        );
        assert_eq!(
            r.open_text("verifications.cert_name|B", &sealed),
            Err(OpenError::Damaged)
        );
        // Fresh nonces: two seals of one value differ.
        assert_ne!(sealed, r.seal_text("verifications.cert_name|A", "张三"));
        assert!(r.is_current_text(&sealed));
    }

    #[test]
    fn empty_stays_empty_and_clear_is_reported() {
        let r = ring(1, &[]);
        assert_eq!(r.seal_text("c", ""), "");
        assert_eq!(r.open_text("c", "").unwrap(), "");
        assert!(r.is_current_text(""));
        assert_eq!(
            r.open_text("c", "110101199003070011"),
            Err(OpenError::NotSealed)
        );
        assert!(!r.is_current_text("110101199003070011"));
        assert_eq!(
            r.open_bytes("c", b"\xff\xd8\xff\xe0"),
            Err(OpenError::NotSealed)
        );
        assert_eq!(r.open_bytes("c", b""), Err(OpenError::NotSealed));
    }

    #[test]
    fn damage_anywhere_is_detected() {
        let r = ring(1, &[]);
        let sealed = r.seal_text("c", "110101199003070011");
        for i in TEXT_PREFIX.len() + KEY_ID_LEN + 1..sealed.len() {
            let mut b = sealed.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let damaged = String::from_utf8(b).unwrap();
            assert!(r.open_text("c", &damaged).is_err(), "byte {i}");
        }
        assert_eq!(
            r.open_text("c", &sealed[..sealed.len() - 1]),
            Err(OpenError::Damaged)
        );
        let cut = format!("{TEXT_PREFIX}{}.", r.current().id());
        assert_eq!(r.open_text("c", &cut), Err(OpenError::Damaged));
        assert_eq!(
            r.open_text("c", &format!("{cut}!!")),
            Err(OpenError::Damaged)
        );
        let bytes = r.seal_bytes("o", b"\xff\xd8\xff\xe0 jpeg");
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(r.open_bytes("o", &b).is_err(), "byte {i}");
        }
        assert!(r
            .open_bytes("o", &bytes[..BYTES_MAGIC.len() + KEY_ID_LEN + 5])
            .is_err());
    }

    #[test]
    fn bytes_round_trip_without_magic() {
        let r = ring(1, &[]);
        for clear in [
            &b""[..],
            b"\xff\xd8\xff",
            b"\x89PNG\r\n\x1a\n",
            b"RIFF....WEBP",
        ] {
            let sealed = r.seal_bytes("contrast/X", clear);
            assert_eq!(&sealed[..4], b"SHS1");
            assert_eq!(key_id_of_bytes(&sealed), Some(r.current().id()));
            assert_eq!(r.open_bytes("contrast/X", &sealed).unwrap(), clear);
            assert_eq!(r.open_bytes("contrast/Y", &sealed), Err(OpenError::Damaged));
        }
    }

    #[test]
    fn older_keys_open_current_seals_unknown_is_named() {
        let old = ring(1, &[]);
        let sealed_old = old.seal_text("c", "x");
        let bytes_old = old.seal_bytes("c", b"y");
        let rotating = ring(2, &[1]);
        assert_eq!(rotating.open_text("c", &sealed_old).unwrap(), "x");
        assert_eq!(rotating.open_bytes("c", &bytes_old).unwrap(), b"y");
        assert!(!rotating.is_current_text(&sealed_old));
        let sealed_new = rotating.seal_text("c", "x");
        assert!(rotating.is_current_text(&sealed_new));
        assert_eq!(
            old.open_text("c", &sealed_new),
            Err(OpenError::UnknownKey(rotating.current().id().to_string()))
        );
        let wrong = ring(3, &[]);
        assert!(matches!(
            wrong.open_text("c", &sealed_old),
            Err(OpenError::UnknownKey(_))
        ));
        assert!(matches!(
            wrong.open_bytes("c", &bytes_old),
            Err(OpenError::UnknownKey(_))
        ));
        assert_eq!(
            rotating.ids(),
            vec![rotating.current().id(), old.current().id()]
        );
        assert_eq!(ring(1, &[1, 1]).ids().len(), 1);
    }

    #[test]
    fn key_ids_are_stable_distinct_and_reveal_nothing() {
        let a = DataKey::from_bytes(&[1; 32]);
        assert_eq!(a.id(), DataKey::from_bytes(&[1; 32]).id());
        assert_ne!(a.id(), DataKey::from_bytes(&[2; 32]).id());
        assert_eq!(a.id().len(), KEY_ID_LEN);
        assert!(a.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!hex::encode([1u8; 32]).contains(a.id()));
        assert_eq!(format!("{a:?}"), format!("DataKey({})", a.id()));
    }

    #[test]
    fn blind_indexes() {
        let r = ring(1, &[]);
        let i = r.index("cert_no", "110101199003070011");
        assert_eq!(i, r.index("cert_no", "110101199003070011"));
        assert_eq!(i.len(), 32);
        assert_ne!(i, r.index("cert_no", "110101199003070012"));
        assert_ne!(i, r.index("other", "110101199003070011"));
        // Purpose and value cannot be traded against each other.
        assert_ne!(r.index("ab", "c"), r.index("a", "bc"));
        assert_ne!(i, ring(2, &[]).index("cert_no", "110101199003070011"));
        let rotating = ring(2, &[1]);
        let all = rotating.indexes("cert_no", "110101199003070011");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], rotating.index("cert_no", "110101199003070011"));
        assert_eq!(all[1], i);
    }
}
