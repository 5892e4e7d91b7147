//! Signed URLs: scoped, expiring read access to one artifact without a bearer token.
//!
//! A signed URL is the artifact's own URL plus three query parameters:
//! `ag-expires=<unix seconds>&ag-key=<key id>&ag-signature=<base64url HMAC-SHA256>`. The HMAC
//! covers a version tag, the method (`GET`; a `HEAD` is the same read and verifies as `GET`), the
//! mount, the decoded artifact path, the expiry and the key id, one per line; no field can
//! contain a newline (mount names are restricted by the config, paths refuse control characters),
//! so no two requests share a message. Keys come from Secrets; the first configured key signs and
//! every configured key verifies, so a key is rotated by adding the new one first and removing the
//! old one once the URLs it signed have expired.
//!
//! Owns: signing and verifying. Never imports `http`; the HTTP layer parses the query parameters
//! into [`SignedQuery`] and never logs them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::SigningConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::ArtifactPath;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};

/// Query parameter: expiry, Unix seconds.
pub const PARAM_EXPIRES: &str = "ag-expires";
/// Query parameter: the id of the key that signed.
pub const PARAM_KEY: &str = "ag-key";
/// Query parameter: the signature.
pub const PARAM_SIGNATURE: &str = "ag-signature";

/// Shortest key accepted, in bytes of the secret (`openssl rand -hex 32` gives 64).
const MIN_KEY_BYTES: usize = 32;
const MESSAGE_VERSION: &str = "artifact-gateway-signed-url-v1";

type HmacSha256 = Hmac<sha2::Sha256>;

/// The signed-URL parameters of a request, as the HTTP layer found them (not yet verified).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedQuery {
    pub expires: u64,
    pub key_id: String,
    pub signature: String,
}

impl std::fmt::Debug for SignedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedQuery")
            .field("expires", &self.expires)
            .field("key_id", &self.key_id)
            .field("signature", &"<redacted>")
            .finish()
    }
}

impl SignedQuery {
    /// Finds the three parameters in a query string. `Ok(None)`: none of them is there; one or
    /// two of them, or a malformed expiry, is an error (401: a broken signed URL).
    pub fn from_query(query: Option<&str>) -> Result<Option<SignedQuery>> {
        let (mut expires, mut key_id, mut signature) = (None, None, None);
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                PARAM_EXPIRES => &mut expires,
                PARAM_KEY => &mut key_id,
                PARAM_SIGNATURE => &mut signature,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(broken(format!("the parameter {k} appears twice")));
            }
        }
        match (expires, key_id, signature) {
            (None, None, None) => Ok(None),
            (Some(e), Some(k), Some(s)) => {
                let expires = e
                    .parse::<u64>()
                    .map_err(|_| broken(format!("{PARAM_EXPIRES} is not a Unix time")))?;
                Ok(Some(SignedQuery {
                    expires,
                    key_id: k,
                    signature: s,
                }))
            }
            _ => Err(broken(format!(
                "a signed URL needs all of {PARAM_EXPIRES}, {PARAM_KEY} and {PARAM_SIGNATURE}"
            ))),
        }
    }
}

fn broken(msg: String) -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        format!("invalid signed URL: {msg}"),
    )
}

struct Key {
    id: String,
    secret: Vec<u8>,
}

/// Signs and verifies URLs with the configured keys.
pub struct Signer {
    keys: Vec<Key>,
    max_expires: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Signer")
            .field("key_ids", &ids)
            .field("max_expires", &self.max_expires)
            .finish()
    }
}

/// A freshly signed URL's parts.
#[derive(Debug, Clone)]
pub struct Signed {
    /// `ag-expires=…&ag-key=…&ag-signature=…`.
    pub query: String,
    pub expires: u64,
}

impl Signer {
    /// Resolves every key's secret now (a missing or short one stops start-up).
    pub fn from_config(cfg: &SigningConfig) -> Result<Signer> {
        let invalid = |m: String| Error::new(ErrorKind::InvalidInput, m);
        if cfg.keys.is_empty() {
            return Err(invalid("signing.keys: give at least one key".into()));
        }
        let mut keys: Vec<Key> = Vec::new();
        for k in &cfg.keys {
            if k.id.is_empty()
                || !k
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(invalid(format!(
                    "signing.keys[{:?}].id: use letters, digits, `-`, `_` and `.` only",
                    k.id
                )));
            }
            if keys.iter().any(|o| o.id == k.id) {
                return Err(invalid(format!(
                    "signing.keys[{:?}].id: defined twice",
                    k.id
                )));
            }
            let secret = k.secret.resolve().map_err(|e| {
                invalid(format!("signing.keys[{:?}].secret: {}", k.id, e.message()))
            })?;
            if secret.len() < MIN_KEY_BYTES {
                return Err(invalid(format!(
                    "signing.keys[{:?}].secret: shorter than {MIN_KEY_BYTES} bytes (make one with `openssl rand -hex 32`)",
                    k.id
                )));
            }
            keys.push(Key {
                id: k.id.clone(),
                secret: secret.into_bytes(),
            });
        }
        Ok(Signer {
            keys,
            max_expires: cfg.max_expires,
        })
    }

    /// The longest lifetime [`Signer::sign`] grants.
    pub fn max_expires(&self) -> Duration {
        self.max_expires
    }

    /// Signs GET/HEAD of `mount`/`path` for `lifetime` from `now`, with the first key.
    pub fn sign(
        &self,
        mount: &str,
        path: &ArtifactPath,
        lifetime: Duration,
        now: SystemTime,
    ) -> Result<Signed> {
        path.require_artifact()?;
        if lifetime.is_zero() || lifetime > self.max_expires {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the lifetime of a signed URL must be more than 0 and at most {} (signing.max_expires)",
                    humantime::format_duration(self.max_expires)
                ),
            ));
        }
        let expires = unix(now).saturating_add(lifetime.as_secs().max(1));
        let key = &self.keys[0];
        let sig = URL_SAFE_NO_PAD.encode(
            mac(&key.secret, mount, path, expires, &key.id)
                .finalize()
                .into_bytes(),
        );
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(PARAM_EXPIRES, &expires.to_string())
            .append_pair(PARAM_KEY, &key.id)
            .append_pair(PARAM_SIGNATURE, &sig)
            .finish();
        Ok(Signed { query, expires })
    }

    /// Checks a signed request for GET/HEAD of `mount`/`path` at `now`. A wrong signature, an
    /// unknown key and an expired URL are all `Unauthenticated`, with a message saying which.
    pub fn verify(
        &self,
        mount: &str,
        path: &ArtifactPath,
        q: &SignedQuery,
        now: SystemTime,
    ) -> Result<()> {
        let Some(key) = self.keys.iter().find(|k| k.id == q.key_id) else {
            return Err(broken(
                "it names a signing key this server does not have (rotated out?)".into(),
            ));
        };
        let sig = URL_SAFE_NO_PAD
            .decode(q.signature.as_bytes())
            .map_err(|_| broken("the signature is not base64url".into()))?;
        // Constant-time comparison.
        mac(&key.secret, mount, path, q.expires, &key.id)
            .verify_slice(&sig)
            .map_err(|_| {
                broken("the signature does not match this artifact, method and expiry".into())
            })?;
        if unix(now) >= q.expires {
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                format!(
                    "the signed URL expired at {}",
                    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(q.expires))
                ),
            ));
        }
        Ok(())
    }
}

fn mac(secret: &[u8], mount: &str, path: &ArtifactPath, expires: u64, key_id: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    let message = format!(
        "{MESSAGE_VERSION}\nGET\n{mount}\n{}\n{expires}\n{key_id}",
        path.as_str()
    );
    m.update(message.as_bytes());
    m
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningKeyConfig;
    use crate::secret::Secret;

    fn default_max_expires() -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }

    const K1: &str = "0123456789abcdef0123456789abcdef-key-one";
    const K2: &str = "fedcba9876543210fedcba9876543210-key-two";

    fn signer(keys: &[(&str, &str)]) -> Signer {
        Signer::from_config(&SigningConfig {
            keys: keys
                .iter()
                .map(|(id, s)| SigningKeyConfig {
                    id: id.to_string(),
                    secret: Secret::Value(s.to_string()),
                })
                .collect(),
            max_expires: default_max_expires(),
        })
        .unwrap()
    }

    fn p(s: &str) -> ArtifactPath {
        ArtifactPath::parse(s).unwrap()
    }

    fn query(signed: &Signed) -> SignedQuery {
        SignedQuery::from_query(Some(&signed.query))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn round_trip_tamper_expiry_and_rotation() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let old = signer(&[("k1", K1)]);
        let s = old
            .sign("jobs", &p("a/app.jar"), Duration::from_secs(3600), now)
            .unwrap();
        assert_eq!(s.expires, 1_800_003_600);
        let q = query(&s);
        old.verify("jobs", &p("a/app.jar"), &q, now).unwrap();
        // Another artifact, another mount, a later expiry: refused.
        for (mount, path) in [
            ("jobs", "a/other.jar"),
            ("other", "a/app.jar"),
            ("jobs", "a"),
        ] {
            let e = old.verify(mount, &p(path), &q, now).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        }
        let mut later = q.clone();
        later.expires += 1;
        assert!(old.verify("jobs", &p("a/app.jar"), &later, now).is_err());
        // Expired (at the second of expiry).
        let e = old
            .verify("jobs", &p("a/app.jar"), &q, now + Duration::from_secs(3600))
            .unwrap_err();
        assert!(e.message().contains("expired"), "{e}");
        // Rotation: the new key signs, both verify; once k1 is gone its URLs fail.
        let both = signer(&[("k2", K2), ("k1", K1)]);
        both.verify("jobs", &p("a/app.jar"), &q, now).unwrap();
        let s2 = both
            .sign("jobs", &p("a/app.jar"), Duration::from_secs(60), now)
            .unwrap();
        assert!(s2.query.contains("ag-key=k2"));
        let only_new = signer(&[("k2", K2)]);
        only_new
            .verify("jobs", &p("a/app.jar"), &query(&s2), now)
            .unwrap();
        assert!(only_new.verify("jobs", &p("a/app.jar"), &q, now).is_err());
        // A key id pointing at another key's secret does not help.
        let mut swapped = q.clone();
        swapped.key_id = "k2".into();
        assert!(both.verify("jobs", &p("a/app.jar"), &swapped, now).is_err());
    }

    #[test]
    fn refuses_bad_lifetimes_short_keys_and_partial_queries() {
        let s = signer(&[("k1", K1)]);
        let now = SystemTime::now();
        assert!(s.sign("jobs", &p("x.jar"), Duration::ZERO, now).is_err());
        assert!(s
            .sign("jobs", &p("x.jar"), Duration::from_secs(8 * 24 * 3600), now)
            .is_err());
        assert!(s
            .sign("jobs", &ArtifactPath::root(), Duration::from_secs(1), now)
            .is_err());
        let short = Signer::from_config(&SigningConfig {
            keys: vec![SigningKeyConfig {
                id: "k".into(),
                secret: Secret::Value("short".into()),
            }],
            max_expires: default_max_expires(),
        })
        .unwrap_err();
        assert!(short.message().contains("32 bytes"), "{short}");
        assert_eq!(SignedQuery::from_query(Some("limit=3")).unwrap(), None);
        for q in [
            "ag-expires=1",
            "ag-expires=x&ag-key=k&ag-signature=s",
            "ag-expires=1&ag-key=k&ag-signature=s&ag-key=k",
        ] {
            assert_eq!(
                SignedQuery::from_query(Some(q)).unwrap_err().kind(),
                ErrorKind::Unauthenticated,
                "{q}"
            );
        }
        let dbg = format!(
            "{:?}",
            query(&s.sign("j", &p("x"), Duration::from_secs(5), now).unwrap())
        );
        assert!(dbg.contains("<redacted>"));
    }
}
