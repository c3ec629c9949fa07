//! Opening local sources (`file://`, absolute and frameworks-home paths) with
//! the task user's file-system credentials.
//!
//! Mesos runs its fetcher as the task's user, so a task cannot fetch a file its
//! user could not read. The agent runs as root here; reading as root would let
//! any framework copy `/etc/shadow` into its sandbox. So the file is opened on
//! a short-lived thread that first switches its own fsuid/fsgid and
//! supplementary groups (per-thread credentials on Linux, set with raw
//! syscalls so libc does not broadcast them to the whole process). The
//! resulting descriptor is then used normally.

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path` for reading, as `user` (uid, gid) when one is given and the
/// process is privileged enough to switch.
pub(crate) fn open_as(path: &Path, user: Option<(u32, u32)>) -> io::Result<File> {
    let Some((uid, gid)) = user else {
        return File::open(path);
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        // Unprivileged agent: it already reads with its own (lesser) rights.
        return File::open(path);
    }
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("fetch-as-user".into())
        .spawn(move || {
            switch_thread_credentials(uid, gid)?;
            File::open(&path)
        })?
        .join()
        .map_err(|_| io::Error::other("credential-switching thread panicked"))?
}

/// Changes only the calling thread's credentials. The thread must not be
/// reused for anything else afterwards.
fn switch_thread_credentials(uid: u32, gid: u32) -> io::Result<()> {
    let groups = [gid as libc::gid_t];
    // SAFETY: raw syscalls with a valid pointer/length pair and plain integer
    // ids; they affect the calling thread only.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, 1 as libc::c_long, groups.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::syscall(libc::SYS_setfsgid, gid as libc::c_long);
        libc::syscall(libc::SYS_setfsuid, uid as libc::c_long);
        // setfs[ug]id report the previous id and never fail loudly: read the
        // ids back (an invalid id leaves them unchanged and returns them).
        let fsgid = libc::syscall(libc::SYS_setfsgid, -1 as libc::c_long);
        let fsuid = libc::syscall(libc::SYS_setfsuid, -1 as libc::c_long);
        if fsuid != libc::c_long::from(uid) || fsgid != libc::c_long::from(gid) {
            return Err(io::Error::other(format!(
                "could not switch to uid {uid} gid {gid} for reading"
            )));
        }
    }
    Ok(())
}
