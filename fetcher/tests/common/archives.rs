//! Builds archives for tests, including malicious ones the usual builders
//! refuse to make (so headers are written by hand).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Cursor, Write};

pub enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str, u32),
    Symlink(&'a str, &'a str),
    Link(&'a str, &'a str),
}

pub const MTIME: u64 = 1_600_000_000;

fn put(field: &mut [u8], value: &str) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        let (name, data, mode, kind, link): (&str, &[u8], u32, tar::EntryType, Option<&str>) =
            match e {
                E::File(n, d, m) => (n, d, *m, tar::EntryType::Regular, None),
                E::Dir(n, m) => (n, &[], *m, tar::EntryType::Directory, None),
                E::Symlink(n, t) => (n, &[], 0o777, tar::EntryType::Symlink, Some(t)),
                E::Link(n, t) => (n, &[], 0o644, tar::EntryType::Link, Some(t)),
            };
        put(&mut h.as_old_mut().name, name);
        if let Some(t) = link {
            put(&mut h.as_old_mut().linkname, t);
        }
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_entry_type(kind);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn bz2(data: &[u8]) -> Vec<u8> {
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 1).unwrap()
}

pub enum Z<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

pub fn zip(entries: &[Z<'_>]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for e in entries {
        match e {
            Z::File(n, d, m) => {
                w.start_file(*n, opts.unix_permissions(*m)).unwrap();
                w.write_all(d).unwrap();
            }
            Z::Dir(n) => w.add_directory(*n, opts).unwrap(),
            Z::Symlink(n, t) => w.add_symlink(*n, *t, opts).unwrap(),
        }
    }
    w.finish().unwrap().into_inner()
}
