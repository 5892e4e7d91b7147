//! The metadata sidecar of the remote backends (OSS through opendal, HDFS): one small JSON
//! document per artifact at `<root>/.artifact-gateway/meta/<path>.json`.
//!
//! Why a sidecar: opendal's OSS writer sends user metadata (`x-oss-meta-*`) on a single PUT but
//! not on a multipart upload, and HDFS has no user metadata at all (extended attributes are not
//! exposed by the client library). One scheme for both, written by the gateway only:
//!
//! ```json
//! {"v":1,"sha256":"<64 hex>","content_type":"application/java-archive","size":123,"validator":"…"}
//! ```
//!
//! `validator` is the backend's strong validator of the *data* object it describes (the OSS
//! ETag; HDFS modification time and length). A record is believed only while the data object
//! still has that validator and size; a file replaced by another tool therefore shows no digest
//! rather than a wrong one. Owns the format and the key layout only; backends do the I/O.

use serde::{Deserialize, Serialize};

use super::path::RESERVED_SEGMENT;
use super::{ArtifactPath, Sha256};

/// Sidecars larger than this are not ours: they are ignored.
pub const MAX_SIDECAR_BYTES: u64 = 64 * 1024;

const VERSION: u32 = 1;

/// What the gateway recorded about one artifact at put time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    v: u32,
    sha256: String,
    content_type: Option<String>,
    size: u64,
    validator: String,
}

impl Record {
    pub fn new(sha256: Sha256, content_type: Option<String>, size: u64, validator: String) -> Self {
        Record {
            v: VERSION,
            sha256: sha256.to_hex(),
            content_type,
            size,
            validator,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a sidecar record serializes")
    }

    /// Parses a sidecar and returns it only if it describes the data object as it is now.
    pub fn matching(bytes: &[u8], size: u64, validator: &str) -> Option<Record> {
        let r: Record = serde_json::from_slice(bytes).ok()?;
        (r.v == VERSION
            && r.size == size
            && r.validator == validator
            && Sha256::from_hex(&r.sha256).is_ok())
        .then_some(r)
    }

    pub fn sha256(&self) -> Option<Sha256> {
        Sha256::from_hex(&self.sha256).ok()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
}

/// `.artifact-gateway/meta/<path>.json`, relative to the mount's root.
pub fn meta_key(path: &ArtifactPath) -> String {
    format!("{RESERVED_SEGMENT}/meta/{}.json", path.as_str())
}

/// `.artifact-gateway/tmp`, relative to the mount's root.
pub fn tmp_dir() -> String {
    format!("{RESERVED_SEGMENT}/tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn believed_only_while_the_validator_matches() {
        let sha = Sha256::of(b"x");
        let rec = Record::new(
            sha,
            Some("application/java-archive".into()),
            1,
            "etag-1".into(),
        );
        let json = rec.to_json();
        let back = Record::matching(&json, 1, "etag-1").unwrap();
        assert_eq!(back.sha256(), Some(sha));
        assert_eq!(back.content_type(), Some("application/java-archive"));
        assert!(
            Record::matching(&json, 2, "etag-1").is_none(),
            "size changed"
        );
        assert!(
            Record::matching(&json, 1, "etag-2").is_none(),
            "validator changed"
        );
        assert!(Record::matching(b"not json", 1, "etag-1").is_none());
        let p = ArtifactPath::parse("a/b.jar").unwrap();
        assert_eq!(meta_key(&p), ".artifact-gateway/meta/a/b.jar.json");
    }
}
