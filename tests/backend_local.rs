//! The conformance suite on the local backend, through the trait and through the HTTP API of
//! the real binary; and a read-only data directory (a read-only bind mount: root may write into
//! a directory whatever its mode), which the server must open and serve and `fetch` must read
//! from without writing next to the source.

mod common;
mod conformance;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use artifact_gateway::storage::local::LocalStorage;
use artifact_gateway::storage::{ArtifactPath, GetOptions, ListOptions, Storage, Upload};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_trait() {
    let dir = common::tempdir();
    let storage = Arc::new(LocalStorage::new(dir.path()).unwrap());
    conformance::run_on_trait("local", storage).await;
    // Nothing left in the staging area after the whole suite (interrupted uploads cleaned up).
    let tmp = dir.path().join(".artifact-gateway/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "staging litter: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_http() {
    let dir = common::tempdir();
    let token = "conformance-token";
    let gw = common::Gateway::start(
        &["--data", dir.path().to_str().unwrap()],
        &[("ARTIFACT_GATEWAY_TOKEN", token)],
    );
    let caps = LocalStorage::new(dir.path()).unwrap().capabilities();
    conformance::run_over_http("local-http", &gw.url, "default", token, caps).await;
}

/// Opening a store writes nothing: not even the work area, until the first put.
#[tokio::test]
async fn opening_writes_nothing() {
    let dir = common::tempdir();
    let storage = LocalStorage::new(dir.path()).unwrap();
    storage.ready().await.unwrap();
    let page = storage
        .list(&ArtifactPath::root(), ListOptions::default())
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // A root that does not exist yet is created by the server's start step, not by opening.
    let later = dir.path().join("later/data");
    let storage = LocalStorage::new(&later).unwrap();
    assert!(!later.exists(), "opening created the root");
    storage.start().await.unwrap();
    assert!(later.is_dir());
    storage.ready().await.unwrap();
}

/// A directory made read-only by a read-only bind mount over a copy; unmounted on drop.
struct ReadOnlyDir {
    mount: PathBuf,
    _dirs: tempfile::TempDir,
}

impl ReadOnlyDir {
    /// `files` written into a directory that is then mounted read-only.
    fn with(files: &[(&str, &[u8])]) -> ReadOnlyDir {
        let dirs = common::tempdir();
        let src = dirs.path().join("src");
        let mount = dirs.path().join("ro");
        for (rel, data) in files {
            let p = src.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        std::fs::create_dir_all(&mount).unwrap();
        let run = |args: &[&str]| {
            let (code, out, err) = common::run(Command::new("mount").args(args));
            assert_eq!(
                code, 0,
                "mount {args:?} failed: this test needs root and mount(8) to make a read-only \
                 bind mount:\n{out}\n{err}"
            );
        };
        run(&["--bind", src.to_str().unwrap(), mount.to_str().unwrap()]);
        let ro = ReadOnlyDir { mount, _dirs: dirs };
        run(&["-o", "remount,ro,bind", ro.mount.to_str().unwrap()]);
        let probe = std::fs::write(ro.mount.join("probe"), b"x");
        assert!(probe.is_err(), "the bind mount is still writable");
        ro
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    /// Every name below the mount, recursively (to show nothing was added).
    fn tree(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(&p, base, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.mount, &self.mount, &mut out);
        out.sort();
        out
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_directory_is_opened_and_read() {
    let ro = ReadOnlyDir::with(&[("jobs/wordcount.jar", b"read-only bytes")]);
    let before = ro.tree();

    // Through the trait: open, read, list; a put is refused without writing.
    let storage = LocalStorage::new(ro.path()).unwrap();
    storage.ready().await.unwrap();
    storage.start().await.unwrap();
    let path = ArtifactPath::parse("jobs/wordcount.jar").unwrap();
    let got = storage.get(&path, GetOptions::default()).await.unwrap();
    assert_eq!(got.meta.size, 15);
    let body: Vec<u8> = got.body.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(body, b"read-only bytes");
    let names: Vec<String> = storage
        .list(&ArtifactPath::root(), ListOptions::default())
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["jobs"]);
    let put = storage
        .put(
            &ArtifactPath::parse("new.jar").unwrap(),
            Upload::new(conformance::backend::one_chunk(b"x")),
        )
        .await;
    assert!(put.is_err(), "a put into a read-only directory succeeded");

    // Through the server: `serve --data` starts, serves GETs and says it is ready.
    let gw = common::Gateway::start(&["--data", ro.path().to_str().unwrap()], &[]);
    let client = reqwest::Client::new();
    let r = client
        .get(gw.artifact("default", "jobs/wordcount.jar"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), &b"read-only bytes"[..]);
    let (status, body) = conformance::backend::readyz(&client, &gw.url).await;
    assert_eq!(status, 200, "{body}");
    drop(gw);
    assert_eq!(ro.tree(), before, "reading wrote into the directory");
}

#[test]
fn fetch_from_a_read_only_directory_writes_nothing_next_to_the_source() {
    let ro = ReadOnlyDir::with(&[("x.jar", b"fetched from a read-only mount")]);
    let before = ro.tree();
    let work = common::tempdir();
    let dest = work.path().join("usrlib");
    let url = url::Url::from_file_path(ro.path().join("x.jar")).unwrap();
    let (code, out, err) = common::run(
        Command::new(common::bin())
            .args(["fetch", "--dest"])
            .arg(&dest)
            .arg(url.as_str()),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read(dest.join("x.jar")).unwrap(),
        b"fetched from a read-only mount"
    );
    assert_eq!(ro.tree(), before, "fetch wrote next to the source");
}

/// Small files that have not changed for a while are kept in memory and answered after one
/// `stat` of their path; whatever happens to the file afterwards, the next read sees it: a
/// rewrite in place with the modification time put back, a rename over it, a put, a delete, a
/// truncation, a replacement by a symlink.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_small_bodies_are_never_served_stale() {
    use std::io::Write;
    let dir = common::tempdir();
    let store: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()).unwrap());
    store.start().await.unwrap();
    let names = [
        "inplace",
        "renamed",
        "put",
        "deleted",
        "truncated",
        "symlinked",
    ];
    for n in names {
        std::fs::write(dir.path().join(format!("{n}.jar")), vec![b'a'; 4096]).unwrap();
    }
    std::fs::write(dir.path().join("other.jar"), vec![b'z'; 4096]).unwrap();
    // Kept only once settled (no change in the last 2 s).
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let read = |name: &str| {
        let store = store.clone();
        let p = ArtifactPath::parse(&format!("{name}.jar")).unwrap();
        async move {
            match store.get(&p, GetOptions::default()).await {
                Ok(res) => Ok(res.body.map(|c| c.unwrap().to_vec()).concat().await),
                Err(e) => Err(e.kind()),
            }
        }
    };
    for n in names {
        // Remembered, then kept, then answered from memory.
        for _ in 0..3 {
            assert!(read(n).await.unwrap() == vec![b'a'; 4096], "{n}");
        }
    }
    let path = |n: &str| dir.path().join(format!("{n}.jar"));

    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path("inplace"))
        .unwrap();
    let mtime = f.metadata().unwrap().modified().unwrap();
    (&f).write_all(&[b'b'; 4096]).unwrap();
    f.set_modified(mtime).unwrap();
    assert!(
        read("inplace").await.unwrap() == vec![b'b'; 4096],
        "rewritten in place: not the new body"
    );

    std::fs::write(dir.path().join("new.tmp"), vec![b'c'; 4096]).unwrap();
    std::fs::rename(dir.path().join("new.tmp"), path("renamed")).unwrap();
    assert!(
        read("renamed").await.unwrap() == vec![b'c'; 4096],
        "renamed over: not the new body"
    );

    let p = ArtifactPath::parse("put.jar").unwrap();
    let body = futures::stream::iter([Ok(bytes::Bytes::from(vec![b'd'; 4096]))]).boxed();
    store.put(&p, Upload::new(body)).await.unwrap();
    assert!(
        read("put").await.unwrap() == vec![b'd'; 4096],
        "put: not the new body"
    );

    std::fs::remove_file(path("deleted")).unwrap();
    assert_eq!(
        read("deleted").await.unwrap_err(),
        artifact_gateway::error::ErrorKind::NotFound,
        "deleted"
    );

    std::fs::OpenOptions::new()
        .write(true)
        .open(path("truncated"))
        .unwrap()
        .set_len(10)
        .unwrap();
    assert!(
        read("truncated").await.unwrap() == vec![b'a'; 10],
        "truncated: not the new body"
    );

    std::fs::remove_file(path("symlinked")).unwrap();
    std::os::unix::fs::symlink(path("other"), path("symlinked")).unwrap();
    assert!(
        read("symlinked").await != Ok(vec![b'a'; 4096]),
        "replaced by a symlink: the old body was served"
    );
}
