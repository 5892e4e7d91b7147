//! SHA-256 digests: the one integrity check shared by uploads, downloads and `fetch`.
//!
//! Owns the [`Sha256`] value type, its textual forms (hex for `X-Checksum-Sha256` and manifests,
//! RFC 9530 `sha-256=:<base64>:` for `Repr-Digest`/`Content-Digest`) and [`Hasher`], which
//! counts and hashes bytes as they stream past, and [`hash_file`] for a file on local disk (the
//! CLI's upload and `fetch`'s check of a file already in place).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use base64::Engine;
use sha2::Digest;

use crate::error::{Error, ErrorKind, Result};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Sha256 {
    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "not a SHA-256 hex digest (64 hex digits): {:?}",
                    truncate(s)
                ),
            )
        })?;
        Ok(Sha256(out))
    }

    /// Parses standard base64 of 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("not base64: {:?}", truncate(s)),
                )
            })?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "a SHA-256 digest is 32 bytes"))?;
        Ok(Sha256(arr))
    }

    /// Finds `sha-256=:<b64>:` in an RFC 9530 `Repr-Digest`/`Content-Digest` dictionary.
    /// `Ok(None)` when the header names only other algorithms.
    pub fn from_digest_field(value: &str) -> Result<Option<Self>> {
        for member in value.split(',') {
            let member = member.trim();
            let Some((alg, rest)) = member.split_once('=') else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("malformed digest field member {:?}", truncate(member)),
                ));
            };
            if !alg.trim().eq_ignore_ascii_case("sha-256") {
                continue;
            }
            let rest = rest.trim();
            let inner = rest
                .strip_prefix(':')
                .and_then(|r| r.strip_suffix(':'))
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "sha-256 digest must be a byte sequence `:<base64>:`",
                    )
                })?;
            return Self::from_base64(inner).map(Some);
        }
        Ok(None)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// The RFC 9530 field value: `sha-256=:<base64>:`.
    pub fn to_digest_field(&self) -> String {
        format!("sha-256=:{}:", self.to_base64())
    }

    /// Digest of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Sha256(sha2::Sha256::digest(bytes).into())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Counts and hashes bytes as they pass.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: sha2::Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> (Sha256, u64) {
        (Sha256(self.inner.finalize().into()), self.len)
    }

    /// Hashes everything `reader` yields (blocking reads of up to 1 MiB); returns how many bytes
    /// that was.
    pub fn update_from(&mut self, mut reader: impl Read) -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.update(&buf[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// SHA-256 and length of a local file, or of its first `limit` bytes, read on a blocking
/// thread. A file that cannot be read is `Internal`: the machine's problem, not a missing
/// artifact.
pub async fn hash_file(path: &Path, limit: Option<u64>) -> Result<(Sha256, u64)> {
    let path = path.to_path_buf();
    super::blocking::blocking(move || {
        let fail = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorKind::Internal,
                format!("cannot {what} {}: {e}", path.display()),
            )
            .with_source(e)
        };
        let file = File::open(&path).map_err(|e| fail("open", e))?;
        let mut hasher = Hasher::new();
        hasher
            .update_from(file.take(limit.unwrap_or(u64::MAX)))
            .map_err(|e| fail("read", e))?;
        Ok(hasher.finish())
    })
    .await
}

/// Checks a computed digest against the one the client declared.
pub fn verify(expected: Option<Sha256>, actual: Sha256, what: &str) -> Result<()> {
    match expected {
        Some(e) if e != actual => Err(Error::new(
            ErrorKind::DigestMismatch,
            format!(
                "SHA-256 mismatch for {what}: declared {e}, received content hashes to {actual}"
            ),
        )),
        _ => Ok(()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip() {
        let d = Sha256::of(b"hello");
        assert_eq!(
            d.to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(Sha256::from_hex(&d.to_hex().to_uppercase()).unwrap(), d);
        assert_eq!(
            Sha256::from_digest_field(&d.to_digest_field()).unwrap(),
            Some(d)
        );
        assert_eq!(
            Sha256::from_digest_field(&format!("md5=:AAAA:, {}", d.to_digest_field())).unwrap(),
            Some(d)
        );
        assert_eq!(Sha256::from_digest_field("md5=:AAAA:").unwrap(), None);
        assert!(Sha256::from_digest_field("sha-256=abc").is_err());
        assert!(Sha256::from_hex("abc").is_err());
    }

    #[test]
    fn hasher_counts() {
        let mut h = Hasher::new();
        h.update(b"hel");
        h.update(b"lo");
        let (d, n) = h.finish();
        assert_eq!((d, n), (Sha256::of(b"hello"), 5));
        assert!(verify(Some(d), d, "x").is_ok());
        assert_eq!(
            verify(Some(Sha256::of(b"x")), d, "x").unwrap_err().kind(),
            ErrorKind::DigestMismatch
        );
    }
}
