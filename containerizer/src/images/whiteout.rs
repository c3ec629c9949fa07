//! OCI whiteouts turned into overlayfs's own representation while a layer is
//! unpacked, so each layer directory can be an overlay lower dir as it is:
//! `.wh.<name>` becomes a 0:0 character device `<name>`, and
//! `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. The copy
//! backend reads the same markers back.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, XattrFlags};
use rustix::io::Errno;
use tepui_fetcher::SafeDir;
use tepui_fetcher::extract::{EntryAction, EntryHook};

pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

pub(crate) struct Whiteouts;

impl EntryHook for Whiteouts {
    fn on_entry(&mut self, target: &SafeDir, path: &Path) -> io::Result<EntryAction> {
        let Some(name) = path.file_name() else {
            return Ok(EntryAction::Extract);
        };
        let bytes = name.as_bytes();
        let Some(victim) = bytes.strip_prefix(WHITEOUT_PREFIX) else {
            return Ok(EntryAction::Extract);
        };
        let parent = path.parent().unwrap_or(Path::new(""));
        // The walk refuses symlinks and `..`: a whiteout cannot reach outside.
        let dir = target.open_beneath(parent, true)?;
        if bytes == OPAQUE_MARKER {
            rustix::fs::fsetxattr(&dir, OPAQUE_XATTR, b"y", XattrFlags::empty())?;
            return Ok(EntryAction::Skip);
        }
        if victim.is_empty()
            || victim.starts_with(WHITEOUT_PREFIX)
            || victim == b"."
            || victim == b".."
        {
            // `.wh..wh.plnk` and friends are aufs bookkeeping, not files.
            return Ok(EntryAction::Skip);
        }
        let victim = OsStr::from_bytes(victim);
        match rustix::fs::statat(&dir, victim, AtFlags::SYMLINK_NOFOLLOW) {
            // Whiteouts hide lower layers only; what this layer itself put
            // there stays (image-spec "Whiteouts").
            Ok(_) => return Ok(EntryAction::Skip),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(e.into()),
        }
        rustix::fs::mknodat(&dir, victim, FileType::CharacterDevice, Mode::empty(), 0)?;
        Ok(EntryAction::Skip)
    }
}

/// Whether `st` is an overlay whiteout (a 0:0 character device).
pub(crate) fn is_whiteout(st: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    st.file_type().is_char_device() && st.rdev() == 0
}
