//! Secrets at rest: AES-256-GCM with a random nonce per value and the owning row as
//! associated data, so a ciphertext copied to another row does not decrypt. The key comes
//! from configuration, or is generated on first start into the data directory (mode 0600).

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use std::{path::Path, sync::Arc};

const NONCE_LEN: usize = 12;

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the encryption key must be 32 bytes, base64-encoded")]
    Invalid,
    #[error("cannot read or write the key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A value could not be decrypted: a wrong key, or a value moved between rows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a stored secret could not be decrypted (wrong DIRGATE_ENCRYPTION_KEY?)")]
pub struct DecryptError;

/// Encrypts and decrypts secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<Aes256Gcm>,
}

impl SecretBox {
    /// A box with `key` (32 bytes).
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Arc::new(Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))),
        }
    }

    /// The configured key (base64), or the one in `data_dir/secret.key`, created when missing.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, KeyError> {
        if let Some(encoded) = configured {
            return Ok(Self::new(&decode_key(encoded)?));
        }
        let path = data_dir.join("secret.key");
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(encoded) => Ok(Self::new(&decode_key(&encoded)?)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                crate::files::create_private_dir(data_dir).map_err(file_error)?;
                let mut key = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                write_private(&path, STANDARD.encode(key).as_bytes()).map_err(file_error)?;
                tracing::info!(path = %path.display(), "generated a new encryption key");
                Ok(Self::new(&key))
            }
            Err(err) => Err(file_error(err)),
        }
    }

    /// `nonce || ciphertext` of `plaintext`, bound to `context` (e.g. `integration:7:refresh_token`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        #[allow(
            clippy::expect_used,
            reason = "aes-gcm fails only for a message over 64 GiB"
        )]
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The plaintext of a [`SecretBox::seal`] output with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
        if sealed.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecryptError)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| DecryptError)
    }
}

fn decode_key(encoded: &str) -> Result<[u8; 32], KeyError> {
    let bytes = STANDARD
        .decode(encoded.trim())
        .map_err(|_| KeyError::Invalid)?;
    bytes.try_into().map_err(|_| KeyError::Invalid)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let sb = SecretBox::new(&[7u8; 32]);
        let sealed = sb.seal("integration:1:refresh_token", b"rt.secret");
        assert!(!sealed.windows(9).any(|w| w == b"rt.secret"));
        assert_eq!(
            sb.open("integration:1:refresh_token", &sealed).unwrap(),
            b"rt.secret"
        );
        assert!(sb.open("integration:2:refresh_token", &sealed).is_err());
        assert!(
            SecretBox::new(&[8u8; 32])
                .open("integration:1:refresh_token", &sealed)
                .is_err()
        );
    }

    #[test]
    fn key_file_is_generated_once_with_mode_0600() {
        let dir = tempfile_dir();
        let first = SecretBox::load(None, &dir).unwrap();
        let sealed = first.seal("x", b"y");
        let again = SecretBox::load(None, &dir).unwrap();
        assert_eq!(
            again.open("x", &sealed).unwrap(),
            b"y",
            "the same key is read back"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            SecretBox::load(Some("short"), &dir),
            Err(KeyError::Invalid)
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "dirgate-key-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
