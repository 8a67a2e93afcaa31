//! RSA keys: the gateway's signing key and merchants' public keys, in the formats merchants paste them.
//!
//! Signing and verifying use `ring`: its RSA private-key operation is constant-time, and in `benches/gateway.rs` it
//! signs 3.7x and verifies 7x faster than the `rsa` crate. The `rsa` crate parses and generates keys, and signs the
//! legacy SHA1 `RSA` type, which `ring` cannot sign (with blinding).
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::Digest;

/// The `sign_type` of a request: `RSA2` is SHA256withRSA, `RSA` the legacy SHA1withRSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignType {
    Rsa2,
    Rsa,
}

impl SignType {
    pub fn parse(v: &str) -> Option<SignType> {
        match v {
            "RSA2" => Some(SignType::Rsa2),
            "RSA" => Some(SignType::Rsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Rsa2 => "RSA2",
            SignType::Rsa => "RSA",
        }
    }
}

/// Why a key could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an RSA public key (expected a PEM SubjectPublicKeyInfo, a PKCS#1 PEM or the bare base64 body)")]
    PublicKeyFormat,
    #[error("not an RSA private key (expected a PKCS#8 or PKCS#1 PEM)")]
    PrivateKeyFormat,
    #[error("RSA key of {0} bits is outside the accepted range {1}")]
    KeySize(usize, &'static str),
    #[error("key generation failed: {0}")]
    Generate(String),
}

/// An RSA private key that signs with PKCS#1 v1.5 (the gateway's key; merchants' keys in tests and benchmarks).
pub struct SigningKey {
    private: RsaPrivateKey,
    ring: ring::signature::RsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bits, redacted)", self.private.size() * 8)
    }
}

impl SigningKey {
    /// A fresh 2048-bit key.
    pub fn generate() -> Result<SigningKey, KeyError> {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_rsa(private)
    }

    /// Reads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM, or a bare base64 body of either.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let text = text.trim();
        let private = if text.contains("-----BEGIN") {
            RsaPrivateKey::from_pkcs8_pem(text)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
                .map_err(|_| KeyError::PrivateKeyFormat)?
        } else {
            let der = decode_bare_base64(text).ok_or(KeyError::PrivateKeyFormat)?;
            RsaPrivateKey::from_pkcs8_der(&der)
                .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
                .map_err(|_| KeyError::PrivateKeyFormat)?
        };
        Self::from_rsa(private)
    }

    fn from_rsa(private: RsaPrivateKey) -> Result<SigningKey, KeyError> {
        let bits = private.size() * 8;
        if !(2048..=4096).contains(&bits) {
            return Err(KeyError::KeySize(bits, "2048..=4096"));
        }
        let der = private
            .to_pkcs1_der()
            .map_err(|_| KeyError::PrivateKeyFormat)?;
        let ring = ring::signature::RsaKeyPair::from_der(der.as_bytes())
            .map_err(|_| KeyError::PrivateKeyFormat)?;
        Ok(SigningKey {
            private,
            ring,
            rng: ring::rand::SystemRandom::new(),
        })
    }

    /// The private key as PKCS#8 PEM, for the key file.
    pub fn to_pkcs8_pem(&self) -> String {
        self.private
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default()
    }

    /// The private key as a PKCS#1 PEM (what the Python SDK loads).
    pub fn to_pkcs1_pem(&self) -> String {
        self.private
            .to_pkcs1_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .unwrap_or_default()
    }

    /// The public half.
    pub fn public_key(&self) -> AppPublicKey {
        AppPublicKey::from_rsa(self.private.to_public_key())
            .expect("a 2048..=4096-bit key's public half")
    }

    /// Signs `message` and returns the standard, padded base64 of the signature.
    /// RSA2 goes through `ring`; legacy SHA1 (which `ring` cannot sign) through the `rsa` crate with blinding.
    pub fn sign(&self, sign_type: SignType, message: &[u8]) -> String {
        match sign_type {
            SignType::Rsa2 => {
                let mut sig = vec![0u8; self.ring.public().modulus_len()];
                // ring fails only on a buffer of the wrong size or a broken RNG; both are programming errors.
                self.ring
                    .sign(
                        &ring::signature::RSA_PKCS1_SHA256,
                        &self.rng,
                        message,
                        &mut sig,
                    )
                    .expect("RSA signing with a validated key");
                B64.encode(sig)
            }
            SignType::Rsa => self.sign_with_rsa_crate(sign_type, message),
        }
    }

    /// Signs with the `rsa` crate instead of `ring` (kept for the benchmark's comparison).
    pub fn sign_with_rsa_crate(&self, sign_type: SignType, message: &[u8]) -> String {
        let mut rng = rand::rngs::OsRng;
        let sig = match sign_type {
            SignType::Rsa2 => self.private.sign_with_rng(
                &mut rng,
                Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(message),
            ),
            SignType::Rsa => self.private.sign_with_rng(
                &mut rng,
                Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(message),
            ),
        };
        B64.encode(sig.expect("RSA signing with a validated key"))
    }
}

/// A merchant's RSA public key, used to verify request signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPublicKey(RsaPublicKey, Vec<u8>);

impl AppPublicKey {
    /// Reads a PEM SubjectPublicKeyInfo, a PKCS#1 PEM, or the bare base64 body of either (as merchants paste them).
    pub fn parse(text: &str) -> Result<AppPublicKey, KeyError> {
        let text = text.trim();
        let key = if text.contains("-----BEGIN") {
            RsaPublicKey::from_public_key_pem(text)
                .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
                .map_err(|_| KeyError::PublicKeyFormat)?
        } else {
            let der = decode_bare_base64(text).ok_or(KeyError::PublicKeyFormat)?;
            RsaPublicKey::from_public_key_der(&der)
                .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
                .map_err(|_| KeyError::PublicKeyFormat)?
        };
        Self::from_rsa(key)
    }

    fn from_rsa(key: RsaPublicKey) -> Result<AppPublicKey, KeyError> {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let bits = key.size() * 8;
        if !(1024..=8192).contains(&bits) {
            return Err(KeyError::KeySize(bits, "1024..=8192"));
        }
        let der = key.to_pkcs1_der().map_err(|_| KeyError::PublicKeyFormat)?;
        Ok(AppPublicKey(key, der.as_bytes().to_vec()))
    }

    /// The key as a PEM SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
    pub fn to_pem(&self) -> String {
        self.0.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.0.size() * 8
    }

    /// Checks a signature with the `rsa` crate instead of `ring` (kept for the benchmark's comparison).
    pub fn verify_with_rsa_crate(
        &self,
        sign_type: SignType,
        message: &[u8],
        signature_b64: &str,
    ) -> bool {
        let Some(sig) = decode_bare_base64(signature_b64) else {
            return false;
        };
        match sign_type {
            SignType::Rsa2 => self
                .0
                .verify(
                    Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &sha2::Sha256::digest(message),
                    &sig,
                )
                .is_ok(),
            SignType::Rsa => self
                .0
                .verify(
                    Pkcs1v15Sign::new::<sha1::Sha1>(),
                    &sha1::Sha1::digest(message),
                    &sig,
                )
                .is_ok(),
        }
    }

    /// Checks a base64 PKCS#1 v1.5 signature over `message`.
    pub fn verify(&self, sign_type: SignType, message: &[u8], signature_b64: &str) -> bool {
        let Some(sig) = decode_bare_base64(signature_b64) else {
            return false;
        };
        let alg: &dyn ring::signature::VerificationAlgorithm = match sign_type {
            SignType::Rsa2 => &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            SignType::Rsa => &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        };
        ring::signature::UnparsedPublicKey::new(alg, &self.1)
            .verify(message, &sig)
            .is_ok()
    }
}

/// Decodes base64 that may carry line breaks or spaces (keys pasted from files, signatures from forms).
fn decode_bare_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate().unwrap())
    }

    #[test]
    fn sign_and_verify_both_algorithms_and_libraries() {
        let k = key();
        let pubkey = k.public_key();
        for st in [SignType::Rsa2, SignType::Rsa] {
            let sig = k.sign(st, "实人 a=b".as_bytes());
            assert_eq!(sig.len(), 344);
            assert!(pubkey.verify(st, "实人 a=b".as_bytes(), &sig));
            assert!(pubkey.verify_with_rsa_crate(st, "实人 a=b".as_bytes(), &sig));
            assert!(!pubkey.verify(st, b"other", &sig));
            // PKCS#1 v1.5 is deterministic: both libraries produce the same bytes.
            assert_eq!(sig, k.sign_with_rsa_crate(st, "实人 a=b".as_bytes()));
        }
        let sig = k.sign(SignType::Rsa2, b"m");
        assert!(!pubkey.verify(SignType::Rsa, b"m", &sig));
        assert!(!pubkey.verify(SignType::Rsa2, b"m", "not base64!"));
    }

    #[test]
    fn public_key_formats_merchants_paste() {
        use rsa::pkcs1::EncodeRsaPublicKey;
        let pubkey = key().public_key();
        let spki = pubkey.to_pem();
        let pkcs1 = pubkey.0.to_pkcs1_pem(LineEnding::CRLF).unwrap();
        let bare: String = spki.lines().filter(|l| !l.starts_with("-----")).collect();
        let bare_pkcs1 = B64.encode(pubkey.0.to_pkcs1_der().unwrap().as_bytes());
        for text in [&spki, &pkcs1, &bare, &bare_pkcs1] {
            assert_eq!(AppPublicKey::parse(text).unwrap(), pubkey);
        }
        assert!(AppPublicKey::parse("hello").is_err());
        assert!(AppPublicKey::parse("").is_err());
    }

    #[test]
    fn private_key_round_trips_through_pem() {
        let k = key();
        let again = SigningKey::from_pem(&k.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        let again = SigningKey::from_pem(&k.to_pkcs1_pem()).unwrap();
        assert_eq!(again.public_key(), k.public_key());
        assert!(SigningKey::from_pem("junk").is_err());
        assert!(!format!("{k:?}").contains("BEGIN"));
    }
}
