//! Sealing of personal data at rest: AES-256-GCM with the data key (`FLEETFRONT_DATA_KEY`),
//! used for drivers' bank details.
//!
//! Each value gets a fresh random 96-bit nonce, stored beside the ciphertext, and is bound to
//! its owner by associated data (the driver's id), so a ciphertext copied onto another row
//! does not open. The key never appears in `Debug` output or logs.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

/// Length of a nonce, in bytes.
pub const NONCE_LEN: usize = 12;

/// Why a data key or a sealed value is refused.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key text is not 32 bytes as hex or base64.
    #[error("expected 32 bytes written as 64 hex digits or as base64")]
    InvalidKey,
    /// The ciphertext does not open with this key and owner (tampered, moved or another key).
    #[error("the sealed value does not open with this key")]
    Unsealable,
}

/// A value sealed for storage.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
    /// The nonce it was sealed with.
    pub nonce: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// The 256-bit key that seals personal data.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }

    /// Parses a key written as 64 hex digits or as base64 of 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`].
    pub fn parse(text: &str) -> Result<DataKey, CryptoError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| CryptoError::InvalidKey)?
        } else {
            STANDARD.decode(text).map_err(|_| CryptoError::InvalidKey)?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(DataKey::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate() -> DataKey {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        DataKey::from_bytes(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.0))
    }

    /// The key as hex, to be written to a private file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Seals `plaintext` for `owner`.
    ///
    /// # Errors
    /// Never in practice; AES-GCM refuses only inputs of gigabytes.
    pub fn seal(&self, owner: &[u8], plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: owner,
                },
            )
            .map_err(|_| CryptoError::Unsealable)?;
        Ok(Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
        })
    }

    /// Opens a value sealed for `owner`.
    ///
    /// # Errors
    /// [`CryptoError::Unsealable`] for another key, another owner, or changed bytes.
    pub fn open(&self, owner: &[u8], sealed: &Sealed) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Unsealable)?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: owner,
                },
            )
            .map_err(|_| CryptoError::Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_key_and_owner() {
        let key = DataKey::generate();
        let sealed = key.seal(b"driver-1", b"FI2112345600000785").expect("seals");
        assert_ne!(sealed.ciphertext, b"FI2112345600000785".to_vec());
        assert_eq!(
            key.open(b"driver-1", &sealed).expect("opens"),
            b"FI2112345600000785"
        );
        assert!(key.open(b"driver-2", &sealed).is_err());
        assert!(DataKey::generate().open(b"driver-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(key.open(b"driver-1", &tampered).is_err());
        let again = key.seal(b"driver-1", b"FI2112345600000785").expect("seals");
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce every time");
    }

    #[test]
    fn keys_parse_from_hex_or_base64() {
        let key = DataKey::generate();
        let hex = key.to_hex();
        assert_eq!(DataKey::parse(&hex).expect("hex").to_hex(), hex);
        let b64 = STANDARD.encode(hex::decode(&hex).expect("hex"));
        assert_eq!(DataKey::parse(&b64).expect("base64").to_hex(), hex);
        assert!(DataKey::parse("short").is_err());
        assert!(DataKey::parse(&STANDARD.encode([0u8; 16])).is_err());
        assert_eq!(format!("{key:?}"), "DataKey(…)");
    }
}
