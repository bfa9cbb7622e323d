//! Sealing of secret values with XChaCha20-Poly1305: a random 192-bit nonce per seal, and the
//! installation id and field name as associated data, so a sealed value opens only for the
//! record and field it was sealed for.
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use portico_sdk::{AppError, InstallationId, Secret, SecretBox};
use rand::RngCore;
use std::path::Path;
use std::sync::Arc;

const PREFIX: &str = "v1.";

/// Why a key could not be loaded or a value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded ({0})")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The value is not in the sealed format.
    #[error("sealed value is malformed")]
    Malformed,
    /// Authentication failed: wrong key, tampered value, or another record's value.
    #[error("sealed value does not open with this key for this record (wrong key or tampered)")]
    Unauthentic,
}

/// The master key and the cipher built from it.
#[derive(Clone)]
pub struct Sealer {
    cipher: Arc<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

fn aad(installation: &InstallationId, field: &str) -> Vec<u8> {
    format!("portico/{installation}/{field}").into_bytes()
}

impl Sealer {
    /// A sealer from a base64 (standard or URL-safe) 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let key = key.trim();
        let bytes = STANDARD
            .decode(key)
            .or_else(|_| URL_SAFE_NO_PAD.decode(key))
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!("got {} bytes", bytes.len())));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        Ok(Sealer {
            cipher: Arc::new(cipher),
        })
    }

    /// Reads the key file, or creates it with a new random key (mode 0600) when `create` is set
    /// and it does not exist. Returns the sealer and whether the file was created.
    pub fn from_key_file(path: &Path, create: bool) -> Result<(Self, bool), SecretError> {
        let kf = |reason: String| SecretError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                let text = STANDARD.encode(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| kf(e.to_string()))?;
                }
                write_private(path, &text).map_err(|e| kf(e.to_string()))?;
                Ok((Self::from_base64(&text)?, true))
            }
            Err(e) => Err(kf(e.to_string())),
        }
    }

    /// Seals `plaintext` for (`installation`, `field`).
    pub fn seal(&self, installation: &InstallationId, field: &str, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(installation, field);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for (`installation`, `field`).
    pub fn open(
        &self,
        installation: &InstallationId,
        field: &str,
        sealed: &str,
    ) -> Result<Secret<String>, SecretError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(SecretError::Malformed)?;
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Malformed)?;
        if raw.len() < 24 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ct) = raw.split_at(24);
        let aad = aad(installation, field);
        let pt = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| SecretError::Unauthentic)?;
        String::from_utf8(pt)
            .map(Secret::new)
            .map_err(|_| SecretError::Malformed)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// A URL-safe random token of `bytes` bytes from the OS generator.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The [`SecretBox`] handed to an app: the sealer bound to one installation.
pub struct InstallationSecrets {
    /// The sealer.
    pub sealer: Sealer,
    /// The installation values are bound to.
    pub installation: InstallationId,
}

impl SecretBox for InstallationSecrets {
    fn seal(&self, field: &str, plaintext: &str) -> Result<String, AppError> {
        Ok(self.sealer.seal(&self.installation, field, plaintext))
    }
    fn open(&self, field: &str, sealed: &str) -> Result<Secret<String>, AppError> {
        self.sealer
            .open(&self.installation, field, sealed)
            .map_err(|e| AppError::internal(format!("secret '{field}': {e}")))
    }
    fn random_token(&self, bytes: usize) -> Secret<String> {
        Secret::new(random_token(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        Sealer::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let s = sealer();
        let i = InstallationId::random();
        let sealed = s.seal(&i, "password", "hunter2");
        assert_ne!(
            sealed,
            s.seal(&i, "password", "hunter2"),
            "random nonce per seal"
        );
        assert_eq!(s.open(&i, "password", &sealed).unwrap().expose(), "hunter2");
        assert!(matches!(
            s.open(&i, "token", &sealed),
            Err(SecretError::Unauthentic)
        ));
        let other = InstallationId::random();
        assert!(matches!(
            s.open(&other, "password", &sealed),
            Err(SecretError::Unauthentic)
        ));
    }

    #[test]
    fn wrong_key_and_tampering_fail_closed() {
        let s = sealer();
        let i = InstallationId::random();
        let sealed = s.seal(&i, "f", "secret");
        let other = Sealer::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        assert!(matches!(
            other.open(&i, "f", &sealed),
            Err(SecretError::Unauthentic)
        ));
        let mut chars: Vec<char> = sealed.chars().collect();
        let n = chars.len() - 3;
        chars[n] = if chars[n] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(s.open(&i, "f", &tampered).is_err());
        assert!(matches!(
            s.open(&i, "f", "v1.!!"),
            Err(SecretError::Malformed)
        ));
        assert!(matches!(
            s.open(&i, "f", "plain"),
            Err(SecretError::Malformed)
        ));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(Sealer::from_base64("short").is_err());
        assert!(Sealer::from_base64(&STANDARD.encode([1u8; 16])).is_err());
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/master.key");
        let (a, created) = Sealer::from_key_file(&path, true).unwrap();
        assert!(created);
        let (b, created) = Sealer::from_key_file(&path, true).unwrap();
        assert!(!created);
        let i = InstallationId::random();
        assert_eq!(
            b.open(&i, "f", &a.seal(&i, "f", "x")).unwrap().expose(),
            "x"
        );
        assert!(Sealer::from_key_file(&dir.path().join("none"), false).is_err());
    }
}
