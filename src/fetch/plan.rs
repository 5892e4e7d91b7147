//! The fetch plan: which artifacts to fetch, under which file names, pinned to which digests.
//!
//! Input comes from command-line sources and/or a manifest (YAML or JSON, the form a ConfigMap
//! carries):
//!
//! ```yaml
//! artifacts:
//!   - source: https://gateway.example/artifacts/jobs/wordcount/1.4.2/wordcount.jar
//!     sha256: 3f1c…            # optional pin
//!   - source: s3://bucket/udfs/udf.jar
//!     name: my-udf.jar         # optional; default: the last path segment of the source
//! ```
//!
//! Everything is checked before anything is downloaded: URLs parse, names are single safe file
//! names, no two artifacts land under the same name, digests are 64 hex digits.

use std::collections::HashSet;

use serde::Deserialize;
use url::Url;

use super::source::last_segment;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::redact_url;
use crate::storage::Sha256;

/// A manifest document.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub artifacts: Vec<ManifestEntry>,
}

/// One manifest entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// `http(s)://` gateway URL or `file://`, `s3://`, `oss://`, `hdfs://` storage URL.
    pub source: String,
    /// File name in the destination directory; default: the source's last path segment.
    pub name: Option<String>,
    /// Expected SHA-256, 64 hex digits.
    pub sha256: Option<String>,
}

impl Manifest {
    /// Parses JSON (a document starting with `{`) or YAML.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let bad =
            |msg: String| Error::new(ErrorKind::InvalidInput, format!("manifest {origin}: {msg}"));
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))
        }
    }
}

/// One artifact to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub source: Url,
    /// A validated single file name.
    pub name: String,
    pub sha256: Option<Sha256>,
}

/// Builds the plan from entries (command-line sources become entries too).
pub fn plan(entries: &[ManifestEntry]) -> Result<Vec<Artifact>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let source = Url::parse(e.source.trim()).map_err(|err| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("source {:?} is not a URL: {err}", e.source),
            )
        })?;
        match source.scheme() {
            "http" | "https" | "file" | "s3" | "oss" | "hdfs" | "viewfs" => {}
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("source {:?}: unsupported scheme {other:?} (use http, https, file, s3, oss or hdfs)", e.source),
                ))
            }
        }
        if !source.username().is_empty() || source.password().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("source {}: credentials do not belong in URLs; use --token-file or the store's environment", redact_url(&source)),
            ));
        }
        let name = match &e.name {
            Some(n) => n.clone(),
            None => last_segment(&source)?,
        };
        check_file_name(&name).map_err(|why| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "artifact name {name:?} (from {}): {why}",
                    redact_url(&source)
                ),
            )
        })?;
        if !seen.insert(name.clone()) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "two artifacts would be saved as {name:?}; give one of them another `name`"
                ),
            ));
        }
        let sha256 = e
            .sha256
            .as_deref()
            .map(|h| {
                Sha256::from_hex(h).map_err(|err| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("sha256 of {name:?}: {}", err.message()),
                    )
                })
            })
            .transpose()?;
        out.push(Artifact {
            source,
            name,
            sha256,
        });
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "nothing to fetch: give sources or --manifest",
        ));
    }
    Ok(out)
}

/// Longest destination name: `.NAME.part.etag` must still fit the usual 255-byte limit.
const MAX_NAME: usize = 240;

/// A destination name must be one plain file name: not empty, no `/` or `\`, no control
/// characters, and not starting with `.` (dot-files in the destination are the fetcher's own
/// temporary files).
pub fn check_file_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.contains('/') || name.contains('\\') {
        Err("it must be a single file name, without `/` or `\\`")
    } else if name.starts_with('.') {
        Err("it must not start with `.` (names starting with a dot are reserved for partial downloads)")
    } else if name.chars().any(char::is_control) {
        Err("it contains control characters")
    } else if name.len() > MAX_NAME {
        Err("it is longer than 240 bytes (the partial-download names add 11)")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &str, name: Option<&str>, sha: Option<&str>) -> ManifestEntry {
        ManifestEntry {
            source: source.into(),
            name: name.map(Into::into),
            sha256: sha.map(Into::into),
        }
    }

    #[test]
    fn names_default_to_the_last_segment() {
        let p = plan(&[
            entry(
                "https://gw/artifacts/jobs/wc/1.0/wordcount.jar?x=1",
                None,
                None,
            ),
            entry("s3://bucket/a/udf%20v2.jar", None, None),
            entry("file:///srv/a/b.sql", Some("run.sql"), None),
        ])
        .unwrap();
        let names: Vec<_> = p.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["wordcount.jar", "udf v2.jar", "run.sql"]);
    }

    #[test]
    fn refuses_unsafe_names_duplicates_and_bad_digests() {
        for (src, name) in [
            ("https://gw/artifacts/m/", None),
            ("https://gw/artifacts/m/x.jar", Some("../x.jar")),
            ("https://gw/artifacts/m/x.jar", Some("a/b")),
            ("https://gw/artifacts/m/x.jar", Some(".x.jar")),
            ("https://gw/artifacts/m/..", None),
            ("https://gw/artifacts/m/%2e%2e", None),
            ("https://gw/artifacts/m/a%2Fb", None),
            ("ftp://gw/x.jar", None),
            ("https://user:pw@gw/x.jar", None),
        ] {
            assert!(plan(&[entry(src, name, None)]).is_err(), "{src} {name:?}");
        }
        let dup = plan(&[
            entry("https://a/x/w.jar", None, None),
            entry("s3://b/w.jar", None, None),
        ])
        .unwrap_err();
        assert!(dup.message().contains("w.jar"), "{dup}");
        assert!(plan(&[entry("https://a/w.jar", None, Some("abc"))]).is_err());
        assert!(plan(&[]).is_err());
    }

    #[test]
    fn manifests_in_yaml_and_json() {
        let yaml = "artifacts:\n  - source: https://gw/artifacts/m/a.jar\n    sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n  - source: file:///x/b.jar\n    name: c.jar\n";
        let json = r#"{"artifacts":[{"source":"https://gw/artifacts/m/a.jar","sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},{"source":"file:///x/b.jar","name":"c.jar"}]}"#;
        let a = Manifest::parse(yaml, "y").unwrap();
        let b = Manifest::parse(json, "j").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            plan(&a.artifacts).unwrap()[0].sha256,
            Some(Sha256::of(b"hello"))
        );
        let err =
            Manifest::parse("artifacts:\n  - source: x\n    sha: y\n", "bad.yaml").unwrap_err();
        assert!(err.message().contains("bad.yaml"), "{err}");
    }
}
