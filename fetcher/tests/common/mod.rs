#![allow(dead_code, clippy::unwrap_used)]

pub mod archives;
pub mod server;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tepui_fetcher::Uri;

pub fn uri(value: &str) -> Uri {
    Uri {
        value: value.to_string(),
        ..Uri::default()
    }
}

pub fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path beneath `dir`, relative, sorted; symlinks are not followed.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A sandbox and a sibling "outside" directory that must stay empty.
pub struct Dirs {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub sandbox: PathBuf,
    pub outside: PathBuf,
}

pub fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let sandbox = root.join("sandbox");
    let outside = root.join("outside");
    std::fs::create_dir(&sandbox).unwrap();
    std::fs::create_dir(&outside).unwrap();
    Dirs {
        _tmp: tmp,
        root,
        sandbox,
        outside,
    }
}
