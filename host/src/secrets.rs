//! Sealing of secret values with XChaCha20-Poly1305: a random 192-bit nonce per seal, and the
//! installation id and field name as associated data, so a sealed value opens only for the
//! record and field it was sealed for.
//!
//! A sealed value names the key that sealed it and the field it was sealed for:
//! `v2.{key id}.{field}.{base64url(nonce | ciphertext)}`, where the key id is the first 8 hex
//! digits of SHA-256 of the key bytes (derived, so the configuration needs no ids). The host
//! holds one active key (used for sealing) and any number of previous keys (used for opening
//! only); `portico keys rotate` ([`crate::keys`]) re-seals every value under the active key.
//! Values from before key ids (`v1.{base64url(...)}`) still open: every key is tried.
use crate::config::Config;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use portico_sdk::{AppError, InstallationId, Secret, SecretBox};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The format without a key id (still opened, never written).
const PREFIX_V1: &str = "v1.";
/// The current format: key id and field recorded.
const PREFIX: &str = "v2.";
/// Nonce and tag: the smallest sealed payload.
const MIN_RAW: usize = 24 + 16;

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
    /// A configured key is unusable; `setting` names the entry (e.g.
    /// `secrets.previous_keys[1]`).
    #[error("{setting}: {reason}")]
    Setting {
        /// The setting or list entry at fault.
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The value is not in the sealed format.
    #[error("sealed value is malformed")]
    Malformed,
    /// The value names a key the host does not have.
    #[error(
        "sealed value needs key {0}, which is not configured (add it to secrets.previous_keys)"
    )]
    UnknownKey(String),
    /// Authentication failed: wrong key, tampered value, or another record's value.
    #[error("sealed value does not open with this key for this record (wrong key or tampered)")]
    Unauthentic,
}

/// One master key: its id and the cipher built from it.
#[derive(Clone)]
struct MasterKey {
    id: String,
    /// SHA-256 of the key bytes: tells two keys apart even if their short ids collide.
    digest: [u8; 32],
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    fn from_base64(key: &str) -> Result<Self, SecretError> {
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
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        Ok(MasterKey {
            id: key_id(&digest),
            digest,
            cipher,
        })
    }
}

/// The id of a key: the first 8 hex digits of SHA-256 of its bytes.
fn key_id(digest: &[u8; 32]) -> String {
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn is_key_id(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a sealed value says about itself, read without any key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    /// The id of the key that sealed it (`None`: the old format without key ids).
    pub key_id: Option<String>,
    /// The field it was sealed for (`None`: the old format, which does not record it).
    pub field: Option<String>,
}

struct Parsed<'a> {
    key_id: Option<&'a str>,
    field: Option<&'a str>,
    nonce: Vec<u8>,
    ct: Vec<u8>,
}

fn decode_body(body: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    if raw.len() < MIN_RAW {
        return None;
    }
    let ct = raw.split_off(24);
    Some((raw, ct))
}

fn parse(sealed: &str) -> Option<Parsed<'_>> {
    if let Some(rest) = sealed.strip_prefix(PREFIX) {
        let (kid, rest) = rest.split_once('.')?;
        let (field, body) = rest.rsplit_once('.')?;
        if !is_key_id(kid) {
            return None;
        }
        let (nonce, ct) = decode_body(body)?;
        return Some(Parsed {
            key_id: Some(kid),
            field: Some(field),
            nonce,
            ct,
        });
    }
    let body = sealed.strip_prefix(PREFIX_V1)?;
    let (nonce, ct) = decode_body(body)?;
    Some(Parsed {
        key_id: None,
        field: None,
        nonce,
        ct,
    })
}

/// Reads the format of a sealed value without opening it; `None` if `value` is not one.
pub fn inspect(value: &str) -> Option<SealedInfo> {
    parse(value).map(|p| SealedInfo {
        key_id: p.key_id.map(str::to_owned),
        field: p.field.map(str::to_owned),
    })
}

/// The outcome of [`Sealer::reseal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resealed {
    /// Already sealed under the active key (and it opens): nothing to do.
    Current,
    /// The value sealed anew under the active key.
    Changed(String),
}

/// The master keys (the active one first, then the previous ones) and their ciphers.
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<Vec<MasterKey>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(active {}, [redacted])", self.active_id())
    }
}

fn aad(installation: &InstallationId, field: &str) -> Vec<u8> {
    format!("portico/{installation}/{field}").into_bytes()
}

/// Reads a key file, or creates it with a new random key (mode 0600) when `create` is set and it
/// does not exist. Returns the key text and whether the file was created.
fn read_key_file(path: &Path, create: bool) -> Result<(String, bool), SecretError> {
    let kf = |reason: String| SecretError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut key = [0u8; 32];
            OsRng.fill_bytes(&mut key);
            let text = STANDARD.encode(key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| kf(e.to_string()))?;
            }
            write_private(path, &text).map_err(|e| kf(e.to_string()))?;
            Ok((text, true))
        }
        Err(e) => Err(kf(e.to_string())),
    }
}

impl Sealer {
    /// A sealer with one key, from base64 (standard or URL-safe) of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        Ok(Sealer {
            keys: Arc::new(vec![MasterKey::from_base64(key)?]),
        })
    }

    /// Reads the key file, or creates it with a new random key (mode 0600) when `create` is set
    /// and it does not exist. Returns the sealer and whether the file was created.
    pub fn from_key_file(path: &Path, create: bool) -> Result<(Self, bool), SecretError> {
        let (text, created) = read_key_file(path, create)?;
        let sealer = Self::from_base64(&text).map_err(|e| SecretError::KeyFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok((sealer, created))
    }

    /// This sealer with `previous` added as keys for opening only (in that order, after the
    /// ones it has; a key it already has is not added twice).
    pub fn with_previous(self, previous: &[Sealer]) -> Sealer {
        let mut keys: Vec<MasterKey> = Vec::with_capacity(self.keys.len() + previous.len());
        for k in self
            .keys
            .iter()
            .chain(previous.iter().flat_map(|s| s.keys.iter()))
        {
            if !keys.iter().any(|have| have.digest == k.digest) {
                keys.push(k.clone());
            }
        }
        Sealer {
            keys: Arc::new(keys),
        }
    }

    /// The keys the configuration names: the active one (`secrets.key`, else the key file,
    /// created if missing when `secrets.create_key_file` is set) and the previous ones
    /// (`secrets.previous_keys`, then `secrets.previous_key_files`). Every key is checked here,
    /// so a missing file or malformed key stops startup, and the error names the entry. Also
    /// returns the key file's path if it was created.
    pub fn from_config(cfg: &Config) -> Result<(Self, Option<PathBuf>), SecretError> {
        let s = &cfg.secrets;
        let setting = |setting: String, e: SecretError| SecretError::Setting {
            setting,
            reason: e.to_string(),
        };
        let (active, created) = match &s.key {
            Some(k) => (
                Self::from_base64(k.expose()).map_err(|e| setting("secrets.key".into(), e))?,
                None,
            ),
            None => {
                let path = cfg.key_file();
                let (sealer, created) = Self::from_key_file(&path, s.create_key_file)
                    .map_err(|e| setting("secrets.key_file".into(), e))?;
                (sealer, created.then_some(path))
            }
        };
        let mut previous = Vec::with_capacity(s.previous_keys.len() + s.previous_key_files.len());
        for (i, k) in s.previous_keys.iter().enumerate() {
            previous.push(
                Self::from_base64(k.expose())
                    .map_err(|e| setting(format!("secrets.previous_keys[{i}]"), e))?,
            );
        }
        for (i, path) in s.previous_key_files.iter().enumerate() {
            let (sealer, _) = Self::from_key_file(path, false)
                .map_err(|e| setting(format!("secrets.previous_key_files[{i}]"), e))?;
            previous.push(sealer);
        }
        let sealer = active.with_previous(&previous);
        // Two different keys with one id (a 1 in 4 billion chance) could not be told apart.
        for (i, k) in sealer.keys.iter().enumerate() {
            if sealer.keys[..i].iter().any(|other| other.id == k.id) {
                return Err(SecretError::Setting {
                    setting: "secrets".into(),
                    reason: format!(
                        "two different keys share the id {}; generate another new key",
                        k.id
                    ),
                });
            }
        }
        Ok((sealer, created))
    }

    /// The id of the active key (the one [`Sealer::seal`] uses).
    pub fn active_id(&self) -> &str {
        self.keys.first().map(|k| k.id.as_str()).unwrap_or("")
    }

    /// The ids of the previous keys (opening only), in configuration order.
    pub fn previous_ids(&self) -> Vec<String> {
        self.keys.iter().skip(1).map(|k| k.id.clone()).collect()
    }

    fn active(&self) -> &MasterKey {
        // A Sealer is only built with at least one key.
        &self.keys[0]
    }

    /// Seals `plaintext` for (`installation`, `field`) under the active key.
    pub fn seal(&self, installation: &InstallationId, field: &str, plaintext: &str) -> String {
        let key = self.active();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(installation, field);
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = key
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
        format!("{PREFIX}{}.{field}.{}", key.id, URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for (`installation`, `field`), with the key it names (an old-format
    /// value: with whichever key opens it). Returns the plaintext and the id of the key.
    fn open_with_id(
        &self,
        installation: &InstallationId,
        field: &str,
        sealed: &str,
    ) -> Result<(Secret<String>, &str), SecretError> {
        let p = parse(sealed).ok_or(SecretError::Malformed)?;
        if p.field.is_some_and(|f| f != field) {
            return Err(SecretError::Unauthentic);
        }
        let aad = aad(installation, field);
        let nonce = XNonce::from_slice(&p.nonce);
        let payload = || Payload {
            msg: &p.ct,
            aad: &aad,
        };
        let (pt, key) = match p.key_id {
            Some(kid) => {
                let key = self
                    .keys
                    .iter()
                    .find(|k| k.id == kid)
                    .ok_or_else(|| SecretError::UnknownKey(kid.to_owned()))?;
                let pt = key
                    .cipher
                    .decrypt(nonce, payload())
                    .map_err(|_| SecretError::Unauthentic)?;
                (pt, key)
            }
            None => self
                .keys
                .iter()
                .find_map(|k| k.cipher.decrypt(nonce, payload()).ok().map(|pt| (pt, k)))
                .ok_or(SecretError::Unauthentic)?,
        };
        let text = String::from_utf8(pt).map_err(|_| SecretError::Malformed)?;
        Ok((Secret::new(text), key.id.as_str()))
    }

    /// Opens a value sealed for (`installation`, `field`) with any of the keys (the one it
    /// names; an old-format value with whichever opens it).
    pub fn open(
        &self,
        installation: &InstallationId,
        field: &str,
        sealed: &str,
    ) -> Result<Secret<String>, SecretError> {
        self.open_with_id(installation, field, sealed)
            .map(|(secret, _)| secret)
    }

    /// Re-seals a value under the active key unless it is already there. The field is the one
    /// the value records; `field_hint` is used for old-format values, which do not record it
    /// (the JSON key holding the value). A value that does not open is an error and stays as
    /// it is (the caller keeps it).
    pub fn reseal(
        &self,
        installation: &InstallationId,
        field_hint: &str,
        sealed: &str,
    ) -> Result<Resealed, SecretError> {
        let info = inspect(sealed).ok_or(SecretError::Malformed)?;
        let field = info.field.as_deref().unwrap_or(field_hint);
        let (secret, kid) = self.open_with_id(installation, field, sealed)?;
        if info.key_id.is_some() && kid == self.active_id() {
            return Ok(Resealed::Current);
        }
        Ok(Resealed::Changed(self.seal(
            installation,
            field,
            secret.expose(),
        )))
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
            Err(SecretError::UnknownKey(_))
        ));
        // Another key that claims the sealing key's id still does not open it.
        let mut impostor = other.clone();
        Arc::make_mut(&mut impostor.keys)[0].id = s.active_id().to_owned();
        assert!(matches!(
            impostor.open(&i, "f", &sealed),
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

    fn sealer_of(b: u8) -> Sealer {
        Sealer::from_base64(&STANDARD.encode([b; 32])).unwrap()
    }

    /// A value in the format written before key ids, sealed with the sealer's active key.
    fn seal_v1(s: &Sealer, i: &InstallationId, field: &str, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = aad(i, field);
        let ct = s
            .active()
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .unwrap();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX_V1}{}", URL_SAFE_NO_PAD.encode(out))
    }

    #[test]
    fn sealed_values_carry_the_key_id_and_field() {
        let s = sealer_of(7);
        let i = InstallationId::random();
        let sealed = s.seal(&i, "pass.word", "hunter2");
        let kid = s.active_id().to_owned();
        assert_eq!(kid.len(), 8);
        assert!(kid.bytes().all(|b| b.is_ascii_hexdigit()));
        // Derived from the key: the same key always has the same id, another key another one.
        assert_eq!(sealer_of(7).active_id(), kid);
        assert_ne!(sealer_of(8).active_id(), kid);
        assert!(
            sealed.starts_with(&format!("v2.{kid}.pass.word.")),
            "{sealed}"
        );
        assert_eq!(
            inspect(&sealed),
            Some(SealedInfo {
                key_id: Some(kid),
                field: Some("pass.word".into())
            })
        );
        assert_eq!(
            s.open(&i, "pass.word", &sealed).unwrap().expose(),
            "hunter2"
        );
        assert_eq!(inspect("v2.nothex00.f.AAAA"), None);
        assert_eq!(inspect("hello"), None);
        assert_eq!(inspect("v1.2.3"), None, "too short to be sealed");
    }

    #[test]
    fn previous_keys_open_and_only_the_active_key_seals() {
        let old = sealer_of(1);
        let i = InstallationId::random();
        let sealed_old = old.seal(&i, "password", "old-secret");
        let both = sealer_of(2).with_previous(&[sealer_of(1), sealer_of(2)]);
        assert_eq!(both.active_id(), sealer_of(2).active_id());
        assert_eq!(
            both.previous_ids(),
            vec![old.active_id().to_owned()],
            "no duplicates"
        );
        assert_eq!(
            both.open(&i, "password", &sealed_old).unwrap().expose(),
            "old-secret"
        );
        let sealed_new = both.seal(&i, "password", "new-secret");
        assert_eq!(
            inspect(&sealed_new).unwrap().key_id.as_deref(),
            Some(both.active_id())
        );
        // The old key alone cannot open what the new key sealed: it names a key it lacks.
        assert!(matches!(
            old.open(&i, "password", &sealed_new),
            Err(SecretError::UnknownKey(k)) if k == both.active_id()
        ));
        // Re-sealing moves old values to the active key and leaves current ones alone.
        let Resealed::Changed(moved) = both.reseal(&i, "ignored", &sealed_old).unwrap() else {
            panic!("an old-key value is re-sealed");
        };
        assert_eq!(
            inspect(&moved).unwrap().key_id.as_deref(),
            Some(both.active_id())
        );
        assert_eq!(
            sealer_of(2).open(&i, "password", &moved).unwrap().expose(),
            "old-secret"
        );
        assert_eq!(both.reseal(&i, "x", &moved).unwrap(), Resealed::Current);
        assert!(matches!(
            sealer_of(2).reseal(&i, "x", &sealed_old),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn old_format_values_open_with_any_key_and_reseal_by_json_key() {
        let i = InstallationId::random();
        let v1 = seal_v1(&sealer_of(1), &i, "token", "legacy");
        assert_eq!(
            inspect(&v1),
            Some(SealedInfo {
                key_id: None,
                field: None
            })
        );
        let both = sealer_of(2).with_previous(&[sealer_of(3), sealer_of(1)]);
        assert_eq!(both.open(&i, "token", &v1).unwrap().expose(), "legacy");
        assert!(matches!(
            both.open(&i, "other", &v1),
            Err(SecretError::Unauthentic)
        ));
        assert!(matches!(
            sealer_of(3).open(&i, "token", &v1),
            Err(SecretError::Unauthentic)
        ));
        // The format records no field: the caller's hint (the JSON key) is used, and a wrong
        // hint fails rather than producing a value bound to the wrong field.
        assert!(both.reseal(&i, "password", &v1).is_err());
        let Resealed::Changed(v2) = both.reseal(&i, "token", &v1).unwrap() else {
            panic!("a v1 value is always re-sealed");
        };
        assert_eq!(inspect(&v2).unwrap().field.as_deref(), Some("token"));
        assert_eq!(
            sealer_of(2).open(&i, "token", &v2).unwrap().expose(),
            "legacy"
        );
    }

    #[test]
    fn moved_or_relabelled_values_fail_closed() {
        let s = sealer_of(1).with_previous(&[sealer_of(2)]);
        let i = InstallationId::random();
        let sealed = s.seal(&i, "password", "hunter2");
        // Another field or installation.
        assert!(matches!(
            s.open(&i, "token", &sealed),
            Err(SecretError::Unauthentic)
        ));
        assert!(matches!(
            s.open(&InstallationId::random(), "password", &sealed),
            Err(SecretError::Unauthentic)
        ));
        // The recorded field rewritten to match where the value was moved.
        let relabelled = sealed.replacen(".password.", ".token.", 1);
        assert!(matches!(
            s.open(&i, "token", &relabelled),
            Err(SecretError::Unauthentic)
        ));
        assert!(s.reseal(&i, "token", &relabelled).is_err());
        // The key id rewritten to the other configured key.
        let kid = s.active_id().to_owned();
        let other = s.previous_ids()[0].clone();
        let swapped = sealed.replacen(&kid, &other, 1);
        assert!(matches!(
            s.open(&i, "password", &swapped),
            Err(SecretError::Unauthentic)
        ));
        // A key id nobody has.
        let unknown = sealed.replacen(&kid, "00000000", 1);
        assert!(matches!(
            s.open(&i, "password", &unknown),
            Err(SecretError::UnknownKey(_))
        ));
    }

    #[test]
    fn configured_keys_are_checked_at_load_naming_the_entry() {
        use crate::config::Config;
        let dir = tempfile::tempdir().unwrap();
        let good = STANDARD.encode([1u8; 32]);
        let old = STANDARD.encode([2u8; 32]);
        let old_file = dir.path().join("old.key");
        std::fs::write(&old_file, STANDARD.encode([3u8; 32])).unwrap();
        let load = |env: Vec<(&str, String)>| {
            let env = env.into_iter().map(|(k, v)| (k.to_string(), v));
            let mut cfg = Config::load(None, env, &[]).unwrap();
            cfg.store.data_dir = dir.path().join("data");
            Sealer::from_config(&cfg)
        };
        let (s, created) = load(vec![
            ("PORTICO_SECRETS__KEY", good.clone()),
            ("PORTICO_SECRETS__PREVIOUS_KEYS", old.clone()),
            (
                "PORTICO_SECRETS__PREVIOUS_KEY_FILES",
                old_file.display().to_string(),
            ),
        ])
        .unwrap();
        assert!(created.is_none());
        assert_eq!(s.active_id(), sealer_of(1).active_id());
        assert_eq!(
            s.previous_ids(),
            vec![
                sealer_of(2).active_id().to_owned(),
                sealer_of(3).active_id().to_owned()
            ]
        );

        let err = |env| load(env).unwrap_err().to_string();
        let e = err(vec![("PORTICO_SECRETS__KEY", "not base64!".into())]);
        assert!(e.starts_with("secrets.key:"), "{e}");
        let e = err(vec![
            ("PORTICO_SECRETS__KEY", good.clone()),
            (
                "PORTICO_SECRETS__PREVIOUS_KEYS",
                format!("{old},{}", STANDARD.encode([1u8; 16])),
            ),
        ]);
        assert!(e.starts_with("secrets.previous_keys[1]:"), "{e}");
        assert!(e.contains("got 16 bytes"), "{e}");
        let missing = dir.path().join("gone.key");
        let e = err(vec![
            ("PORTICO_SECRETS__KEY", good.clone()),
            (
                "PORTICO_SECRETS__PREVIOUS_KEY_FILES",
                format!("{},{}", old_file.display(), missing.display()),
            ),
        ]);
        assert!(e.starts_with("secrets.previous_key_files[1]:"), "{e}");
        assert!(e.contains("gone.key"), "{e}");
        // No key configured and no file: the key file setting is named, with its path.
        let e = err(vec![]);
        assert!(e.starts_with("secrets.key_file:"), "{e}");
        assert!(e.contains("master.key"), "{e}");
        let bad_file = dir.path().join("bad.key");
        std::fs::write(&bad_file, "short").unwrap();
        let e = err(vec![(
            "PORTICO_SECRETS__KEY_FILE",
            bad_file.display().to_string(),
        )]);
        assert!(
            e.starts_with("secrets.key_file:") && e.contains("bad.key"),
            "{e}"
        );
        // Creating the key file on first run still works, and says so.
        let (_, created) = load(vec![("PORTICO_SECRETS__CREATE_KEY_FILE", "true".into())]).unwrap();
        assert!(created.unwrap().ends_with("master.key"));
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
