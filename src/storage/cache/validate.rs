//! Validation: the backend's current metadata of a path, from a HEAD that was sent *after* the
//! asking read arrived, shared among concurrent reads.
//!
//! Per path at most one HEAD is queued while one is in flight: a read that arrives while a HEAD
//! is in flight waits for the next one (sent as soon as the current one answers), together with
//! every other read that arrives in the meantime. So every read is validated by an answer the
//! backend gave after the read arrived (a change completed before a read arrives is always
//! seen), the backend gets at most one HEAD per round trip per path however many reads come,
//! and a read waits at most two HEAD round trips.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt, Shared};

use super::super::{ArtifactPath, Meta, Storage};
use super::clone_error;
use crate::error::{Error, Result};

type Answer = std::result::Result<Meta, Arc<Error>>;
type Head = Shared<BoxFuture<'static, Answer>>;

#[derive(Default)]
struct PathState {
    /// A HEAD not sent yet: new reads join it.
    queued: Option<Head>,
    /// The most recently created HEAD (in flight, queued, or done).
    last: Option<Head>,
    last_gen: u64,
}

/// Coalesced HEADs against one backend.
pub struct Validator {
    backend: Arc<dyn Storage>,
    paths: Arc<Mutex<HashMap<ArtifactPath, PathState>>>,
    gen: std::sync::atomic::AtomicU64,
}

/// What [`Validator::validate`] reports besides the metadata.
#[derive(Debug, Clone, Copy)]
pub struct Validated {
    /// The read joined a HEAD that another read had queued.
    pub shared: bool,
}

impl Validator {
    pub fn new(backend: Arc<dyn Storage>) -> Validator {
        Validator {
            backend,
            paths: Arc::new(Mutex::new(HashMap::new())),
            gen: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The backend's metadata of `path` as of a moment after this call began.
    pub async fn validate(&self, path: &ArtifactPath) -> Result<(Meta, Validated)> {
        let (head, shared) = {
            let mut paths = self.paths.lock().expect("validator lock");
            let st = paths.entry(path.clone()).or_default();
            if let Some(q) = &st.queued {
                (q.clone(), true)
            } else {
                let gen = self.gen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let prev = st.last.take();
                let head = self.make_head(path.clone(), gen, prev);
                st.queued = Some(head.clone());
                st.last = Some(head.clone());
                st.last_gen = gen;
                // Driven to the end even if every read waiting for it goes away.
                tokio::spawn(head.clone().map(|_| ()));
                (head, false)
            }
        };
        match head.await {
            Ok(meta) => Ok((meta, Validated { shared })),
            Err(e) => Err(clone_error(&e)),
        }
    }

    fn make_head(&self, path: ArtifactPath, gen: u64, prev: Option<Head>) -> Head {
        let backend = self.backend.clone();
        let paths = self.paths.clone();
        async move {
            if let Some(prev) = prev {
                // One HEAD in flight per path: wait for the previous one to answer.
                let _ = prev.await;
            }
            {
                let mut map = paths.lock().expect("validator lock");
                if let Some(st) = map.get_mut(&path) {
                    if st.last_gen == gen {
                        // Sent now: later reads must queue a new HEAD.
                        st.queued = None;
                    }
                }
            }
            let started = Instant::now();
            let answer = backend.head(&path).await.map_err(Arc::new);
            tracing::trace!(path = %path.as_str(), took = ?started.elapsed(), "validated");
            let mut map = paths.lock().expect("validator lock");
            if map
                .get(&path)
                .is_some_and(|st| st.last_gen == gen && st.queued.is_none())
            {
                map.remove(&path);
            }
            answer
        }
        .boxed()
        .shared()
    }
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator")
    }
}
