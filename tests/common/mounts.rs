//! Real filesystems for tests that need one the test cannot fake: a read-only bind mount of a
//! directory (as root, `chmod` does not stop writes, so a read-only mount is the only honest
//! read-only directory) and a small tmpfs that fills up. Both are unmounted on drop.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`); without it the test fails, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted filesystem at `path`; unmounted (then its mount point removed) on drop.
pub struct MountPoint {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl MountPoint {
    /// `src` seen read-only at a new mount point (`mount --bind`, then `remount,ro,bind`).
    pub fn read_only(src: &Path) -> MountPoint {
        let dir = super::tempdir();
        let path = dir.path().join("ro");
        std::fs::create_dir(&path).unwrap();
        mount(&["--bind", src.to_str().unwrap(), path.to_str().unwrap()]);
        let point = MountPoint { path, _dir: dir };
        mount(&["-o", "remount,ro,bind", point.path.to_str().unwrap()]);
        assert!(
            std::fs::write(point.path.join(".probe"), b"x").is_err(),
            "{} is still writable after remount,ro",
            point.path.display()
        );
        point
    }

    /// A tmpfs of `size` (`4m`) at a new mount point.
    pub fn tmpfs(size: &str) -> MountPoint {
        let dir = super::tempdir();
        let path = dir.path().join("tmpfs");
        std::fs::create_dir(&path).unwrap();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            path.to_str().unwrap(),
        ]);
        MountPoint { path, _dir: dir }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process the test killed may hold it for a moment): detach it.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

fn mount(args: &[&str]) {
    let out = Command::new("mount")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `mount` ({e}): install util-linux's mount"));
    assert!(
        out.status.success(),
        "`mount {}` failed: {}\nThis test needs a real read-only or full filesystem and mounts one; run it as \
         root (or with CAP_SYS_ADMIN), as tests/run.sh does in its container.",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
