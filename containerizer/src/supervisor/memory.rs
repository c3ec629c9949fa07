//! Keeping an idle supervisor small. One supervisor runs per pod, so what
//! each one holds is multiplied by the number of pods on the host.
//!
//! Most of a supervisor's resident memory right after start or a launch is
//! clean file pages of the binary and libc: code that ran once (argument
//! parsing, libcontainer's launch path) plus the kernel's fault-around
//! neighbours. They are shared page cache, but they count in every
//! supervisor's RSS and keep the pages pinned as mapped. Dropping our
//! mappings of them (`MADV_DONTNEED` on private, never-written file
//! mappings) costs nothing: the next use refaults them from the page cache.
//! Mappings with any private (copied-on-write) page are left alone: there
//! `MADV_DONTNEED` would discard our modifications (relocations, data).

/// One mapping of `/proc/self/smaps`.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    /// File-backed, private, not writable.
    clean_file: bool,
    /// Any anonymous (copied-on-write) page in it.
    has_private_pages: bool,
}

fn parse_header(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?.as_bytes();
    let _offset = fields.next()?;
    let _device = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("");
    let clean_file = perms.len() == 4
        && perms[1] == b'-'
        && perms[3] == b'p'
        && inode != "0"
        && (path.starts_with('/'));
    Some(Mapping {
        start,
        end,
        clean_file,
        has_private_pages: false,
    })
}

/// The mappings whose pages can be dropped safely, from smaps text.
fn droppable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<Mapping> = None;
    let finish = |m: Option<Mapping>, out: &mut Vec<(usize, usize)>| {
        if let Some(m) = m
            && m.clean_file
            && !m.has_private_pages
        {
            out.push((m.start, m.end));
        }
    };
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Anonymous:") {
            if let Some(m) = current.as_mut() {
                let kb: u64 = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                m.has_private_pages |= kb != 0;
            }
        } else if !line
            .split_whitespace()
            .next()
            .is_some_and(|t| t.ends_with(':'))
            && let Some(m) = parse_header(line)
        {
            finish(current.take(), &mut out);
            current = Some(m);
        }
    }
    finish(current, &mut out);
    out
}

/// Drops this process's clean file-backed pages; returns how many bytes of
/// mappings were released. Best effort: errors just leave pages mapped.
pub fn release_clean_file_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for (start, end) in droppable(&smaps) {
        // SAFETY: the range is one of our own private, read-only file
        // mappings without private pages, so discarding its PTEs loses no
        // data; later accesses refault the same file content.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += end - start;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 00:01 1234 /memfd:tepui-supervisor (deleted)
Rss:                 400 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
55d0c0100000-55d0c0400000 r-xp 00100000 00:01 1234 /memfd:tepui-supervisor (deleted)
Rss:                3456 kB
Anonymous:             0 kB
55d0c0400000-55d0c0500000 r--p 00400000 00:01 1234 /memfd:tepui-supervisor (deleted)
Rss:                1152 kB
Anonymous:          1152 kB
55d0c0500000-55d0c0510000 rw-p 00500000 00:01 1234 /memfd:tepui-supervisor (deleted)
Anonymous:            64 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           156 kB
7f0000000000-7f0000100000 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_unmodified_read_only_file_mappings_are_dropped() {
        assert_eq!(
            droppable(SMAPS),
            vec![
                (0x55d0c0000000, 0x55d0c0100000),
                (0x55d0c0100000, 0x55d0c0400000),
                (0x7f0000000000, 0x7f0000100000),
            ]
        );
    }

    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn releasing_our_own_pages_shrinks_rss_and_keeps_the_process_working() {
        let before = rss_kb();
        let released = release_clean_file_pages();
        let after = rss_kb();
        assert!(released > 0);
        assert!(after < before, "RSS {before} kB -> {after} kB");
        // Code and read-only data fault back in: parsing still works.
        assert_eq!(droppable(SMAPS).len(), 3);
    }
}
