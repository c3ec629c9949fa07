//! Zip extraction. Zip keeps its directory at the end, so it needs a seekable
//! source (a downloaded or cached file), unlike tar.

use std::ffi::OsString;
use std::io::{self, Read, Seek};
use std::os::unix::ffi::OsStringExt;

use super::entries::{Extractor, Kind, Meta};
use super::{ExtractError, ExtractOptions, SafeDir, Summary, read_error};

const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;
/// A symlink target longer than PATH_MAX is not a symlink anyone can use.
const MAX_LINK: u64 = 4096;

fn zip_error(e: zip::result::ZipError) -> ExtractError {
    match e {
        zip::result::ZipError::Io(io) => read_error(io),
        other => ExtractError::Read(io::Error::new(
            io::ErrorKind::InvalidData,
            other.to_string(),
        )),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// civil-from-days inverse), to turn zip's DOS timestamps into epoch seconds.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn epoch_seconds(dt: zip::DateTime) -> Option<u64> {
    let days = days_from_civil(
        i64::from(dt.year()),
        i64::from(dt.month()),
        i64::from(dt.day()),
    );
    let secs = days * 86_400
        + i64::from(dt.hour()) * 3600
        + i64::from(dt.minute()) * 60
        + i64::from(dt.second());
    u64::try_from(secs).ok()
}

/// Extracts every member of a zip archive into `target`. Sizes are counted
/// from the decompressed stream, never trusted from the headers.
pub fn extract_zip<R: Read + Seek>(
    reader: R,
    target: &SafeDir,
    opts: &mut ExtractOptions<'_>,
) -> Result<Summary, ExtractError> {
    let mut archive = zip::ZipArchive::new(reader).map_err(zip_error)?;
    let mut extractor = Extractor::new(target, opts);
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_error)?;
        let name: Vec<u8> = match file.name() {
            Ok(n) => n.into_owned().into_bytes(),
            Err(_) => file.name_raw().to_vec(),
        };
        let unix_mode = file.unix_mode();
        let is_dir = file.is_dir();
        let meta = Meta {
            mode: unix_mode.unwrap_or(if is_dir { 0o755 } else { 0o644 }) & 0o7777,
            mtime: file.last_modified().and_then(epoch_seconds),
            uid: 0,
            gid: 0,
        };
        if is_dir {
            extractor.entry(&name, Kind::Dir, meta, &[])?;
        } else if unix_mode.is_some_and(|m| m & S_IFMT == S_IFLNK) {
            let mut target = Vec::new();
            (&mut file)
                .take(MAX_LINK)
                .read_to_end(&mut target)
                .map_err(read_error)?;
            extractor.entry(&name, Kind::Symlink(OsString::from_vec(target)), meta, &[])?;
        } else {
            extractor.entry(&name, Kind::File(&mut file), meta, &[])?;
        }
    }
    extractor.finish()
}
