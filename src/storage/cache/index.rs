//! The cache's bookkeeping: which complete entries exist, how big they are, which were used
//! least recently, how many bytes fills in progress have reserved, and which entry is known
//! for each path (so a put or delete through the store can drop it).
//!
//! Pure in-memory state behind the cache's one mutex; the caller deletes evicted files outside
//! the lock. An entry is *pinned* while anyone holds a clone of its `pin` (readers of the entry,
//! readers of the fill that produced it): pinned entries are never evicted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::storage::ArtifactPath;

/// The file name of an entry: 64 lowercase hex digits.
pub type Key = String;

/// A reference held by every reader of an entry (and by the fill that produced it).
pub type Pin = Arc<()>;

#[derive(Debug)]
struct Entry {
    size: u64,
    tick: u64,
    pin: Pin,
    /// The path the entry holds, once a fill committed it or a read hit it (entries found on
    /// disk at start-up have none until then).
    path: Option<ArtifactPath>,
}

/// What an index operation asks the caller to delete from disk.
#[derive(Debug, Default)]
pub struct Evicted {
    pub keys: Vec<Key>,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct Index {
    max_size: u64,
    entries: HashMap<Key, Entry>,
    /// Use order: tick → key; the smallest tick is the least recently used.
    lru: BTreeMap<u64, Key>,
    tick: u64,
    /// Bytes of complete entries plus reservations.
    used: u64,
    /// The entry known for each path. Every removal of an entry (eviction, replacement, a
    /// broken file) drops its path here too, so this never outgrows `entries`.
    by_path: HashMap<ArtifactPath, Key>,
}

impl Index {
    pub fn new(max_size: u64) -> Index {
        Index {
            max_size,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            used: 0,
            by_path: HashMap::new(),
        }
    }

    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Bytes held by complete entries and reservations.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a complete entry found on disk at start-up (oldest first gives the LRU order).
    pub fn insert_existing(&mut self, key: Key, size: u64) {
        self.used += size;
        self.add_newest(key, size, Arc::new(()));
    }

    /// Indexes an entry whose bytes are already counted in `used`, as the most recently used.
    fn add_newest(&mut self, key: Key, size: u64, pin: Pin) {
        let tick = self.next_tick(&key);
        self.entries.insert(
            key,
            Entry {
                size,
                tick,
                pin,
                path: None,
            },
        );
    }

    /// The next tick of the LRU order, taken by `key`.
    fn next_tick(&mut self, key: &str) -> u64 {
        self.tick += 1;
        self.lru.insert(self.tick, key.to_string());
        self.tick
    }

    /// Finds an entry of exactly `size` bytes, marks it most recently used, and pins it.
    pub fn pin(&mut self, key: &str, size: u64) -> Option<Pin> {
        let e = self.entries.get(key)?;
        if e.size != size {
            return None;
        }
        let (old_tick, pin) = (e.tick, e.pin.clone());
        self.lru.remove(&old_tick);
        let tick = self.next_tick(key);
        self.entries.get_mut(key)?.tick = tick;
        Some(pin)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Forgets an entry (found broken, replaced or evicted) and its path; the caller deletes
    /// its file.
    pub fn remove(&mut self, key: &str) -> Option<u64> {
        let e = self.entries.remove(key)?;
        self.lru.remove(&e.tick);
        self.used -= e.size;
        if let Some(path) = e.path {
            if self.by_path.get(&path).is_some_and(|k| k == key) {
                self.by_path.remove(&path);
            }
        }
        Some(e.size)
    }

    /// Records that the entry `key` holds `path` (a key is derived from its path, so an entry
    /// has one). Nothing happens for a key that is not an entry.
    pub fn learn(&mut self, key: &str, path: &ArtifactPath) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.path.is_none() {
            e.path = Some(path.clone());
        }
        if self.by_path.get(path).is_none_or(|k| k != key) {
            self.by_path.insert(path.clone(), key.to_string());
        }
    }

    /// Forgets the entry known for `path`: its key and size, for the caller to delete.
    pub fn remove_path(&mut self, path: &ArtifactPath) -> Option<(Key, u64)> {
        let key = self.by_path.remove(path)?;
        let size = self.remove(&key)?;
        Some((key, size))
    }

    /// How many paths have a known entry.
    pub fn known_paths(&self) -> usize {
        self.by_path.len()
    }

    /// Reserves `bytes` for a fill, evicting unpinned entries from the least recently used
    /// end. `None` (and nothing evicted) when even evicting every unpinned entry would not
    /// make room.
    pub fn reserve(&mut self, bytes: u64) -> Option<Evicted> {
        if bytes > self.max_size {
            return None;
        }
        let need = (self.used + bytes).saturating_sub(self.max_size);
        let mut victims = Vec::new();
        let mut freed = 0u64;
        if need > 0 {
            for key in self.lru.values() {
                if freed >= need {
                    break;
                }
                let e = &self.entries[key];
                if Arc::strong_count(&e.pin) == 1 {
                    victims.push(key.clone());
                    freed += e.size;
                }
            }
            if freed < need {
                return None;
            }
        }
        let mut evicted = Evicted::default();
        for key in victims {
            if let Some(size) = self.remove(&key) {
                evicted.bytes += size;
                evicted.keys.push(key);
            }
        }
        self.used += bytes;
        Some(evicted)
    }

    /// Returns a reservation of a fill that failed.
    pub fn release(&mut self, bytes: u64) {
        self.used -= bytes;
    }

    /// Turns a reservation of `size` bytes into a complete, most recently used entry.
    /// An entry already under `key` is replaced (its bytes are released).
    pub fn commit(&mut self, key: Key, size: u64, pin: Pin) {
        self.remove(&key);
        self.add_newest(key, size, pin);
    }

    /// Evicts unpinned entries until the complete entries and reservations fit `max_size`
    /// (used at start-up when the limit shrank).
    pub fn shrink_to_fit(&mut self) -> Evicted {
        let mut evicted = Evicted::default();
        while self.used > self.max_size {
            let victim = self
                .lru
                .values()
                .find(|k| Arc::strong_count(&self.entries[*k].pin) == 1)
                .cloned();
            let Some(key) = victim else { break };
            if let Some(size) = self.remove(&key) {
                evicted.bytes += size;
                evicted.keys.push(key);
            }
        }
        evicted
    }
}

/// Whether a file name can be an entry's key.
pub fn is_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The entries of a data directory, oldest modification first: (key, size). Files that
/// cannot be entries are removed.
pub fn scan(data_dir: &Path) -> std::io::Result<Vec<(Key, u64)>> {
    let mut found: Vec<(SystemTime, Key, u64)> = Vec::new();
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let md = entry.metadata()?;
        if !md.is_file() || !is_key(&name) {
            tracing::warn!(file = %entry.path().display(), "removing a stray file from the cache directory");
            let _ = if md.is_dir() {
                std::fs::remove_dir_all(entry.path())
            } else {
                std::fs::remove_file(entry.path())
            };
            continue;
        }
        let when = md
            .accessed()
            .ok()
            .max(md.modified().ok())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        found.push((when, name, md.len()));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, k, s)| (k, s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        format!("{:064x}", n)
    }

    #[test]
    fn evicts_least_recently_used_unpinned_entries() {
        let mut ix = Index::new(100);
        ix.insert_existing(key(1), 40);
        ix.insert_existing(key(2), 40);
        // Touch 1: 2 is now the least recently used.
        let p1 = ix.pin(&key(1), 40).unwrap();
        drop(p1);
        let ev = ix.reserve(30).unwrap();
        assert_eq!(ev.keys, vec![key(2)]);
        assert_eq!(ix.used(), 70);
        ix.commit(key(3), 30, Arc::new(()));
        assert!(ix.contains(&key(1)) && ix.contains(&key(3)));
    }

    #[test]
    fn never_evicts_a_pinned_entry() {
        let mut ix = Index::new(100);
        ix.insert_existing(key(1), 60);
        let held = ix.pin(&key(1), 60).unwrap();
        assert!(ix.reserve(50).is_none(), "the only entry is being read");
        assert!(ix.contains(&key(1)));
        drop(held);
        let ev = ix.reserve(50).unwrap();
        assert_eq!(ev.keys, vec![key(1)]);
        assert_eq!(ev.bytes, 60);
    }

    #[test]
    fn reservations_count_until_released() {
        let mut ix = Index::new(100);
        assert!(ix.reserve(80).is_some());
        assert!(ix.reserve(30).is_none());
        ix.release(80);
        assert!(ix.reserve(30).is_some());
        assert!(ix.reserve(101).is_none(), "larger than the whole cache");
    }

    #[test]
    fn a_size_mismatch_is_a_miss() {
        let mut ix = Index::new(100);
        ix.insert_existing(key(1), 10);
        assert!(ix.pin(&key(1), 11).is_none());
        assert!(ix.pin(&key(1), 10).is_some());
    }

    fn path(s: &str) -> ArtifactPath {
        ArtifactPath::parse(s).unwrap()
    }

    #[test]
    fn an_evicted_entry_takes_its_path_along() {
        let mut ix = Index::new(100);
        for n in 1..=50u8 {
            // Each object fills, is learnt for its path, and evicts the one before it.
            let ev = ix.reserve(60).unwrap();
            assert_eq!(ev.keys.len(), usize::from(n > 1));
            ix.commit(key(n), 60, Arc::new(()));
            ix.learn(&key(n), &path(&format!("jobs/{n}.jar")));
            assert_eq!(ix.known_paths(), 1, "after object {n}");
        }
        assert!(ix.remove_path(&path("jobs/49.jar")).is_none(), "evicted");
        assert_eq!(ix.remove_path(&path("jobs/50.jar")), Some((key(50), 60)));
        assert_eq!((ix.known_paths(), ix.len(), ix.used()), (0, 0, 0));
    }

    #[test]
    fn a_path_follows_its_newest_entry() {
        let mut ix = Index::new(100);
        let p = path("a.jar");
        ix.insert_existing(key(1), 10);
        ix.insert_existing(key(2), 10);
        ix.learn(&key(1), &p);
        // The object changed: its new version is another key for the same path.
        ix.learn(&key(2), &p);
        // Removing the old version (broken, or evicted) keeps the path on the new one.
        ix.remove(&key(1));
        assert_eq!(ix.known_paths(), 1);
        assert_eq!(ix.remove_path(&p), Some((key(2), 10)));
        // Learning a key that is no entry records nothing.
        ix.learn(&key(3), &p);
        assert_eq!(ix.known_paths(), 0);
        // Shrinking at start-up prunes too.
        ix.insert_existing(key(4), 10);
        ix.learn(&key(4), &p);
        ix.max_size = 0;
        assert_eq!(ix.shrink_to_fit().keys, vec![key(4)]);
        assert_eq!(ix.known_paths(), 0);
    }

    #[test]
    fn shrinks_oldest_first() {
        let mut ix = Index::new(50);
        ix.insert_existing(key(1), 30);
        ix.insert_existing(key(2), 30);
        let ev = ix.shrink_to_fit();
        assert_eq!(ev.keys, vec![key(1)]);
        assert_eq!(ix.used(), 30);
    }
}
