//! [`ArtifactPath`]: a path validated once, at the edge, and trusted everywhere below.
//!
//! Every layer under the HTTP routes and the CLI argument parser takes this type, never a `&str`,
//! so path traversal cannot reach a backend. The rules (checked on *decoded* segments):
//! no empty segment, no `.` or `..`, no `/` or `\` inside a segment (so `%2F` and `%5C` are
//! refused), no NUL or other control character, no segment named [`RESERVED_SEGMENT`] (the
//! gateway's own staging and metadata area), at most 255 bytes a segment and 1024 in all.

use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::error::{Error, ErrorKind, Result};

/// The name backends use for staging files and metadata sidecars; never a user path.
pub const RESERVED_SEGMENT: &str = ".artifact-gateway";

const MAX_SEGMENT: usize = 255;

/// Characters escaped when a segment goes into a URL path (the inverse of
/// [`ArtifactPath::from_url_path`]'s per-segment decoding).
const URL_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'+');

/// Percent-encodes one segment (a mount name or a path segment) for a URL path.
pub fn encode_url_segment(segment: &str) -> String {
    utf8_percent_encode(segment, URL_SEGMENT).to_string()
}
const MAX_PATH: usize = 1024;

/// A relative, normalized path inside a mount: `jobs/wordcount/1.4.2/wordcount.jar`.
/// The empty path is the mount's root (only meaningful for listings).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// The mount's root.
    pub fn root() -> Self {
        ArtifactPath(String::new())
    }

    /// Parses an already-decoded path such as a CLI argument. Leading and trailing `/` are
    /// ignored (so `a/b/` names the directory `a/b`); anything else must pass the rules.
    pub fn parse(decoded: &str) -> Result<Self> {
        let trimmed = decoded.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        let mut out = String::with_capacity(trimmed.len());
        for segment in trimmed.split('/') {
            check_segment(segment, decoded)?;
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(segment);
        }
        check_len(&out, decoded)?;
        Ok(ArtifactPath(out))
    }

    /// Parses the percent-encoded path of a request URL (without the mount prefix).
    /// Each segment is decoded on its own, so an encoded `/` (`%2F`) can never create a
    /// new segment; it is refused instead.
    pub fn from_url_path(raw: &str) -> Result<Self> {
        // One trailing `/` marks a directory; any other empty segment (`//`, a leading `/`) is refused.
        let trimmed = raw.strip_suffix('/').unwrap_or(raw);
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        let mut out = String::with_capacity(trimmed.len());
        for raw_segment in trimmed.split('/') {
            let segment = percent_decode_str(raw_segment)
                .decode_utf8()
                .map_err(|_| invalid(raw, "a segment is not valid UTF-8 once decoded"))?;
            check_segment(&segment, raw)?;
            if !out.is_empty() {
                out.push('/');
            }
            out.push_str(&segment);
        }
        check_len(&out, raw)?;
        Ok(ArtifactPath(out))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Refuses the root where an artifact is needed (a put to a mount's root).
    pub fn require_artifact(&self) -> Result<()> {
        if self.is_root() {
            return Err(Error::new(
                ErrorKind::InvalidPath,
                "cannot write to a mount's root",
            ));
        }
        Ok(())
    }

    /// The last segment (the file name), empty for the root.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// The parent directory (the root for a top-level name and for the root itself).
    pub fn parent(&self) -> ArtifactPath {
        match self.0.rfind('/') {
            Some(i) => ArtifactPath(self.0[..i].to_string()),
            None => Self::root(),
        }
    }

    /// This path with one more validated segment.
    pub fn child(&self, segment: &str) -> Result<ArtifactPath> {
        check_segment(segment, segment)?;
        let joined = if self.is_root() {
            segment.to_string()
        } else {
            format!("{}/{}", self.0, segment)
        };
        check_len(&joined, &joined)?;
        Ok(ArtifactPath(joined))
    }

    /// The path as it goes into a URL: each segment percent-encoded, joined by `/`.
    pub fn to_url_encoded(&self) -> String {
        self.segments()
            .map(encode_url_segment)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The path as a directory prefix: `a/b/` (empty for the root).
    pub fn as_dir_prefix(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            format!("{}/", self.0)
        }
    }
}

fn check_segment(segment: &str, whole: &str) -> Result<()> {
    let reason = if segment.is_empty() {
        "empty segment (`//`)"
    } else if segment == "." || segment == ".." {
        "`.` and `..` segments are not allowed"
    } else if segment.contains('/') || segment.contains('\\') {
        "encoded slashes and backslashes are not allowed"
    } else if segment.chars().any(|c| c.is_control()) {
        "NUL and control characters are not allowed"
    } else if segment == RESERVED_SEGMENT {
        "this name is reserved for the gateway's own use"
    } else if segment.len() > MAX_SEGMENT {
        "a segment is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(invalid(whole, reason))
}

fn check_len(path: &str, whole: &str) -> Result<()> {
    if path.len() > MAX_PATH {
        return Err(invalid(whole, "the path is longer than 1024 bytes"));
    }
    Ok(())
}

fn invalid(whole: &str, reason: &str) -> Error {
    let shown: String = whole
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .take(200)
        .collect();
    Error::new(
        ErrorKind::InvalidPath,
        format!("invalid artifact path: {reason}"),
    )
    .with_path(shown)
}

impl fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArtifactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactPath({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_and_odd_names() {
        for ok in [
            "a.jar",
            "jobs/wc/1.4.2/wc.jar",
            "with space/x+y%z.jar",
            "ünï/çødé.jar",
            ".hidden/file",
        ] {
            let p = ArtifactPath::parse(ok).unwrap();
            assert_eq!(p.as_str(), ok);
        }
        assert_eq!(ArtifactPath::parse("/a/b/").unwrap().as_str(), "a/b");
        assert!(ArtifactPath::parse("").unwrap().is_root());
    }

    #[test]
    fn rejects_traversal_and_control() {
        for bad in [
            "a/../b",
            "..",
            "./a",
            "a//b",
            "a\\b",
            "a\0b",
            "a\nb",
            ".artifact-gateway/tmp/x",
        ] {
            let err = ArtifactPath::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidPath, "{bad:?}");
        }
    }

    #[test]
    fn url_decoding_is_per_segment() {
        assert_eq!(
            ArtifactPath::from_url_path("a%20b/c%2Bd.jar")
                .unwrap()
                .as_str(),
            "a b/c+d.jar"
        );
        for bad in [
            "%2e%2e/x", "/a", "a//", "a/%2E%2E", "a%2Fb", "a%5Cb", "a%00b", "%ff", "a/./b",
            "a/%2e/b", "a//b",
        ] {
            let err = ArtifactPath::from_url_path(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidPath, "{bad:?}");
        }
    }

    #[test]
    fn parent_child_file_name() {
        let p = ArtifactPath::parse("a/b/c.jar").unwrap();
        assert_eq!(p.file_name(), "c.jar");
        assert_eq!(p.parent().as_str(), "a/b");
        assert_eq!(p.parent().child("d").unwrap().as_str(), "a/b/d");
        assert_eq!(ArtifactPath::root().as_dir_prefix(), "");
        assert_eq!(p.parent().as_dir_prefix(), "a/b/");
        assert!(p.child("..").is_err());
    }
}
