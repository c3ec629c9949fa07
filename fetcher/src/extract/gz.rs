//! A single gzip-compressed file, as `gunzip -c x.gz > x` would produce.

use std::ffi::OsStr;
use std::io::{BufReader, Read};

use super::entries::copy_charged;
use super::safe::{self, Ownership};
use super::{ExtractError, SafeDir, Summary};

/// Decompresses `reader` into `target/<name>`. Concatenated gzip members are
/// all decoded, as gunzip does.
pub fn extract_gz<R: Read>(
    reader: R,
    name: &OsStr,
    target: &SafeDir,
    budget: &super::Budget,
    ownership: Ownership,
) -> Result<Summary, ExtractError> {
    let shown = name.to_string_lossy().into_owned();
    let mut decoder =
        flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, reader));
    let mut file = target
        .create_file(&[name], ownership)
        .map_err(|e| match e {
            safe::WalkError::Io(cause) => ExtractError::Write {
                path: shown.clone(),
                cause,
            },
            _ => ExtractError::Escapes(shown.clone()),
        })?;
    let mut buf = vec![0u8; 256 * 1024];
    let bytes = copy_charged(&mut decoder, &mut file, &mut buf, budget, &shown)?;
    if let Ownership::Fixed { uid, gid } = ownership {
        safe::chown_fd(&file, ownership, uid, gid).map_err(|cause| ExtractError::Write {
            path: shown.clone(),
            cause,
        })?;
    }
    rustix::fs::fchmod(&file, safe::mode(0o644)).map_err(|e| ExtractError::Write {
        path: shown.clone(),
        cause: e.into(),
    })?;
    let mut summary = Summary {
        entries: 1,
        bytes,
        ..Summary::default()
    };
    summary.top_level.insert(name.to_os_string());
    Ok(summary)
}
