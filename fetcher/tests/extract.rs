//! The extraction API on its own, as image-layer pulls will use it.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::archives::{self, E};
use common::{dirs, mode, tree};
use tepui_fetcher::extract::{
    AbsolutePaths, Budget, Compression, EntryAction, EntryHook, ExtractOptions, Ownership, SafeDir,
    extract_tar,
};

fn is_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
}

#[test]
fn image_layer_style_extraction_keeps_owners_modes_and_times() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = dirs();
    let mut b = tar::Builder::new(Vec::new());
    for (path, m, uid) in [
        ("bin/su", 0o4755, 0u64),
        ("home/u/f", 0o640, 1234),
        ("tmp/", 0o1777, 0),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_mode(m);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(archives::MTIME);
        h.set_size(if path.ends_with('/') { 0 } else { 1 });
        h.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        b.append(
            &h,
            if path.ends_with('/') {
                &b""[..]
            } else {
                &b"x"[..]
            },
        )
        .unwrap();
    }
    let layer = archives::zstd(&b.into_inner().unwrap());
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let mut opts = ExtractOptions::new(&budget);
    opts.ownership = Ownership::FromArchive;
    let summary = extract_tar(Cursor::new(layer), Compression::Zstd, &target, &mut opts).unwrap();
    assert_eq!(summary.entries, 3);
    assert_eq!(mode(&d.sandbox.join("bin/su")), 0o4755);
    assert_eq!(mode(&d.sandbox.join("tmp")), 0o1777);
    let f = fs::metadata(d.sandbox.join("home/u/f")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1234, 1235, 0o640));
    assert_eq!(f.mtime(), archives::MTIME as i64);
    assert_eq!(
        fs::metadata(d.sandbox.join("tmp")).unwrap().mtime(),
        archives::MTIME as i64
    );
}

#[test]
fn an_existing_symlink_at_a_file_entry_is_replaced_not_written_through() {
    let d = dirs();
    let victim = d.root.join("victim");
    fs::write(&victim, b"original").unwrap();
    std::os::unix::fs::symlink(&victim, d.sandbox.join("config")).unwrap();
    let tar = archives::tar(&[E::File("config", b"from archive", 0o644)]);
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    extract_tar(
        Cursor::new(tar),
        Compression::None,
        &target,
        &mut ExtractOptions::new(&budget),
    )
    .unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert!(
        fs::symlink_metadata(d.sandbox.join("config"))
            .unwrap()
            .is_file()
    );
    assert_eq!(fs::read(d.sandbox.join("config")).unwrap(), b"from archive");
}

#[test]
fn absolute_paths_can_be_stripped_for_layers() {
    let d = dirs();
    let tar = archives::tar(&[E::File("/etc/hostname", b"layer", 0o644)]);
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let mut opts = ExtractOptions::new(&budget);
    opts.absolute_paths = AbsolutePaths::Strip;
    extract_tar(Cursor::new(tar), Compression::None, &target, &mut opts).unwrap();
    assert_eq!(fs::read(d.sandbox.join("etc/hostname")).unwrap(), b"layer");
    assert_eq!(tree(&d.outside), Vec::<String>::new());
}

/// The hook image layers will use for OCI whiteouts: here it only skips
/// markers and records what it saw.
struct SkipWhiteouts(Vec<String>);

impl EntryHook for SkipWhiteouts {
    fn on_entry(&mut self, _target: &SafeDir, path: &Path) -> std::io::Result<EntryAction> {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        self.0.push(path.display().to_string());
        Ok(if name.starts_with(".wh.") {
            EntryAction::Skip
        } else {
            EntryAction::Extract
        })
    }
}

#[test]
fn entry_hook_sees_every_entry_and_can_skip() {
    let d = dirs();
    let tar = archives::tar(&[
        E::File("a/keep", b"k", 0o644),
        E::File("a/.wh.gone", b"", 0o644),
    ]);
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let mut hook = SkipWhiteouts(Vec::new());
    let mut opts = ExtractOptions::new(&budget);
    opts.hook = Some(&mut hook);
    let s = extract_tar(Cursor::new(tar), Compression::None, &target, &mut opts).unwrap();
    assert_eq!(s.entries, 1);
    assert_eq!(hook.0, ["a/keep", "a/.wh.gone"]);
    assert_eq!(tree(&d.sandbox), ["a", "a/keep"]);
}

#[test]
fn entry_count_and_byte_limits_are_enforced() {
    let d = dirs();
    let entries: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let list: Vec<E<'_>> = entries.iter().map(|n| E::File(n, b"1234", 0o644)).collect();
    let tar = archives::tar(&list);
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let mut opts = ExtractOptions::new(&budget);
    opts.max_entries = 10;
    let err = extract_tar(
        Cursor::new(tar.clone()),
        Compression::None,
        &target,
        &mut opts,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "archive has more than 10 entries");

    let d = dirs();
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::new(30);
    let err = extract_tar(
        Cursor::new(tar),
        Compression::None,
        &target,
        &mut ExtractOptions::new(&budget),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "size limit of 30 bytes exceeded");
    let written: u64 = tree(&d.sandbox)
        .iter()
        .map(|p| fs::metadata(d.sandbox.join(p)).unwrap().len())
        .sum();
    assert!(written <= 30, "{written}");
}

#[test]
fn corrupt_and_truncated_archives_fail_cleanly() {
    let d = dirs();
    let tgz = archives::gz(&archives::tar(&[E::File(
        "big",
        &vec![9u8; 100_000],
        0o644,
    )]));
    let truncated = &tgz[..tgz.len() / 2];
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let err = extract_tar(
        Cursor::new(truncated),
        Compression::Gzip,
        &target,
        &mut ExtractOptions::new(&budget),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("reading archive:"), "{err}");
    let err = extract_tar(
        Cursor::new(b"not gzip".to_vec()),
        Compression::Gzip,
        &target,
        &mut ExtractOptions::new(&budget),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("reading archive:"), "{err}");
}

#[test]
fn pax_records_override_owner_and_mtime() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = dirs();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("uid", &b"3000000"[..]),
        ("gid", &b"3000001"[..]),
        ("mtime", &b"1700000000.25"[..]),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("big-ids").unwrap();
    h.set_mode(0o600);
    h.set_size(2);
    h.set_mtime(5);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let target = SafeDir::open(&d.sandbox).unwrap();
    let budget = Budget::unlimited();
    let mut opts = ExtractOptions::new(&budget);
    opts.ownership = Ownership::FromArchive;
    extract_tar(
        Cursor::new(b.into_inner().unwrap()),
        Compression::None,
        &target,
        &mut opts,
    )
    .unwrap();
    let m = fs::metadata(d.sandbox.join("big-ids")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mtime()),
        (3_000_000, 3_000_001, 1_700_000_000)
    );
}
