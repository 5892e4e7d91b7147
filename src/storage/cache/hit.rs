//! Serving a complete entry: the same local read path as a local mount's files
//! (`storage::file_io`: large pooled chunks read one ahead on the blocking pool; a small range
//! read whole in the trip that opens the file), instead of a fill reader's positioned reads
//! into fresh buffers. A read error of the cache disk midway continues from the backend,
//! pinned to the ETag the entry was keyed with, as a fill's readers do.

use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;

use super::fill::{Fallback, ReaderMetrics};
use super::index::Pin;
use crate::storage::{file_io, ArtifactPath, ByteStream, GetOptions};

/// Ranges up to this size are read whole in the blocking-pool trip that opens the entry.
const SMALL: u64 = 64 * 1024;

/// An entry opened for one read.
pub(super) enum Opened {
    Bytes(Bytes),
    /// Positioned at the range's start.
    File(std::fs::File),
}

/// Opens the entry file and checks it still has the entry's size (blocking). `Ok(None)`: the
/// file is damaged (another size).
pub(super) fn open(
    file: &PathBuf,
    size: u64,
    range: &Range<u64>,
) -> std::io::Result<Option<Opened>> {
    let mut f = std::fs::File::open(file)?;
    if f.metadata()?.len() != size {
        return Ok(None);
    }
    let len = range.end - range.start;
    if range.start > 0 {
        f.seek(SeekFrom::Start(range.start))?;
    }
    if len <= SMALL {
        return Ok(Some(Opened::Bytes(file_io::read_all(&f, len)?)));
    }
    Ok(Some(Opened::File(f)))
}

struct Reader {
    inner: ByteStream,
    path: ArtifactPath,
    pos: u64,
    end: u64,
    fallback: Option<Fallback>,
    metrics: ReaderMetrics,
    first_seen: bool,
    /// Reading from the backend now (its bytes are not cache-served bytes).
    passthrough: bool,
    done: bool,
    /// Keeps the entry from eviction while it is read.
    _pin: Pin,
}

/// The body of `range` of an opened entry.
pub(super) fn body(
    opened: Opened,
    path: ArtifactPath,
    range: Range<u64>,
    pin: Pin,
    fallback: Fallback,
    metrics: ReaderMetrics,
) -> ByteStream {
    let inner: ByteStream = match opened {
        Opened::Bytes(b) => futures::stream::once(async move { Ok(b) }).boxed(),
        Opened::File(f) => file_io::stream(f, range.end - range.start, &path),
    };
    let reader = Reader {
        inner,
        path,
        pos: range.start,
        end: range.end,
        fallback: Some(fallback),
        metrics,
        first_seen: false,
        passthrough: false,
        done: false,
        _pin: pin,
    };
    futures::stream::unfold(reader, |mut r| async move {
        if r.done {
            return None;
        }
        loop {
            match r.inner.next().await {
                None => return None,
                Some(Ok(chunk)) => {
                    let from_cache = !r.passthrough;
                    r.metrics.chunk(&mut r.first_seen, chunk.len(), from_cache);
                    r.pos += chunk.len() as u64;
                    return Some((Ok(chunk), r));
                }
                Some(Err(e)) => {
                    if let Some(fb) = r.fallback.take() {
                        tracing::warn!(path = %r.path.as_str(), error = %e, offset = r.pos, "cache disk failed under a reader; continuing from the backend");
                        fb.bypassed.inc();
                        let opts = GetOptions {
                            range: Some(r.pos..r.end),
                            if_match: Some(fb.etag.clone()),
                        };
                        match fb.backend.get(&r.path, opts).await {
                            Ok(res) => {
                                r.inner = res.body;
                                r.passthrough = true;
                                continue;
                            }
                            Err(e) => {
                                r.done = true;
                                return Some((Err(e), r));
                            }
                        }
                    }
                    r.done = true;
                    return Some((Err(e), r));
                }
            }
        }
    })
    .boxed()
}
