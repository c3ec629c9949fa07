//! Streaming tar (optionally compressed) extraction.

use std::ffi::OsStr;
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;

use tar::EntryType;

use super::entries::{Extractor, Kind, Meta, Xattr};
use super::{Compression, ExtractError, ExtractOptions, SafeDir, Summary, read_error};

/// Decompressors read in large slices; a big buffer keeps them from
/// issuing many small reads against a pipe or channel.
const READ_BUF: usize = 256 * 1024;

/// Extracts a tar stream into `target`, reading `reader` exactly once and
/// never seeking. Stops at the end-of-archive marker; anything after it is
/// left unread in `reader`.
pub fn extract_tar<R: Read>(
    reader: R,
    compression: Compression,
    target: &SafeDir,
    opts: &mut ExtractOptions<'_>,
) -> Result<Summary, ExtractError> {
    let buffered = BufReader::with_capacity(READ_BUF, reader);
    match compression {
        Compression::None => unpack(buffered, target, opts),
        Compression::Gzip => unpack(flate2::bufread::MultiGzDecoder::new(buffered), target, opts),
        Compression::Bzip2 => unpack(bzip2::bufread::MultiBzDecoder::new(buffered), target, opts),
        Compression::Xz => unpack(
            liblzma::bufread::XzDecoder::new_multi_decoder(buffered),
            target,
            opts,
        ),
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(buffered).map_err(ExtractError::Read)?;
            unpack(decoder, target, opts)
        }
    }
}

fn header_error(e: io::Error) -> ExtractError {
    read_error(e)
}

/// PAX records the tar crate does not apply itself (it already applies path,
/// link, size, uid and gid): `mtime`, which may be fractional
/// ("1600000000.5"; whole seconds suffice), and extended attributes in the
/// spelling of GNU tar / Go's archive/tar (`SCHILY.xattr.<name>`, raw value).
fn pax_records<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    want_xattrs: bool,
) -> io::Result<(Option<u64>, Vec<Xattr>)> {
    let mut mtime = None;
    let mut xattrs = Vec::new();
    let Some(records) = entry.pax_extensions()? else {
        return Ok((mtime, xattrs));
    };
    for record in records {
        let record = record?;
        let key = record.key_bytes();
        if key == b"mtime" {
            let whole = record.value().ok().and_then(|v| v.split('.').next());
            mtime = whole.and_then(|v| v.parse().ok());
        } else if let Some(name) = key.strip_prefix(b"SCHILY.xattr.")
            && want_xattrs
            && !name.is_empty()
        {
            xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
        }
    }
    Ok((mtime, xattrs))
}

fn unpack<R: Read>(
    reader: R,
    target: &SafeDir,
    opts: &mut ExtractOptions<'_>,
) -> Result<Summary, ExtractError> {
    let mut archive = tar::Archive::new(reader);
    let mut extractor = Extractor::new(target, opts);
    for entry in archive.entries().map_err(header_error)? {
        let mut entry = entry.map_err(header_error)?;
        let path = entry.path_bytes().into_owned();
        let (pax_mtime, xattrs) =
            pax_records(&mut entry, extractor.wants_xattrs()).map_err(header_error)?;
        let header = entry.header();
        let meta = Meta {
            mode: header.mode().map_err(header_error)?,
            mtime: pax_mtime.or_else(|| header.mtime().ok()),
            uid: header
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: header
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
        };
        let entry_type = header.entry_type();
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                Kind::File(&mut entry)
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                Kind::Symlink(OsStr::from_bytes(&target).to_os_string())
            }
            EntryType::Link => {
                Kind::HardLink(entry.link_name_bytes().unwrap_or_default().into_owned())
            }
            EntryType::Fifo => Kind::Fifo,
            EntryType::Char | EntryType::Block => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                Kind::Device {
                    block: entry_type == EntryType::Block,
                    major,
                    minor,
                }
            }
            // PAX and GNU long-name headers are folded into the next entry by
            // the tar crate; anything else (global headers, volume labels)
            // carries no file.
            _ => continue,
        };
        extractor.entry(&path, kind, meta, &xattrs)?;
    }
    extractor.finish()
}
