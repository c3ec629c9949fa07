//! `CommandInfo.user` -> uid, gid and supplementary groups, read from the
//! passwd/group files of the filesystem the container will see.
//!
//! Accepted forms: `name`, `uid`, `name:group`, `uid:gid` (each side a name
//! or a number). A numeric `uid:gid` needs no lookup; a bare numeric uid must
//! be in passwd (its primary group comes from there). Supplementary groups
//! are the groups that list the user by name, as `initgroups(3)` gives.
//!
//! Files inside an image rootfs are opened with `openat2(RESOLVE_IN_ROOT)` so
//! that a symlinked `/etc/passwd` in an image cannot point at the host's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::SpecError;

/// A user as the container's process will run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The passwd home directory, when the user is in passwd.
    pub home: Option<String>,
}

impl ResolvedUser {
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: Some("/root".into()),
        }
    }
}

/// Where the user database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDb {
    /// Plain files on the host (the host filesystem's `/etc/passwd`,
    /// `/etc/group`; paths are parameters so tests can use their own).
    Files { passwd: PathBuf, group: PathBuf },
    /// `etc/passwd` and `etc/group` resolved inside this root directory (an
    /// image rootfs, or `/proc/<pid>/root` of a running container).
    Root(PathBuf),
}

/// passwd/group files are small; anything bigger is refused.
const MAX_DB_BYTES: u64 = 16 << 20;

impl UserDb {
    fn describe(&self, which: &str) -> String {
        match self {
            Self::Files { passwd, group } => {
                let path = if which == "passwd" { passwd } else { group };
                path.display().to_string()
            }
            Self::Root(root) => format!("{}/etc/{which}", root.display()),
        }
    }

    /// The file's text, `None` when it does not exist.
    fn read(&self, which: &str) -> Result<Option<String>, SpecError> {
        let result = match self {
            Self::Files { passwd, group } => {
                let path = if which == "passwd" { passwd } else { group };
                File::open(path).and_then(read_limited)
            }
            Self::Root(root) => read_in_root(root, &format!("etc/{which}")),
        };
        match result {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(SpecError::UserDatabase {
                path: PathBuf::from(self.describe(which)),
                reason: err.to_string(),
            }),
        }
    }
}

fn read_limited(file: File) -> std::io::Result<String> {
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut text = String::new();
    file.take(MAX_DB_BYTES).read_to_string(&mut text)?;
    Ok(text)
}

/// Opens `relative` as if `root` were `/`: symlinks (absolute ones
/// included) and `..` cannot leave `root`.
fn read_in_root(root: &Path, relative: &str) -> std::io::Result<String> {
    use nix::errno::Errno;
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
    use std::os::fd::{AsRawFd, FromRawFd};

    let dir = File::open(root)?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir.as_raw_fd(), relative, how) {
        Ok(fd) => {
            // SAFETY: openat2 just returned this descriptor; nothing else owns it.
            let file = unsafe { File::from_raw_fd(fd) };
            read_limited(file)
        }
        Err(Errno::ENOSYS) => {
            // Kernels before 5.6: refuse symlinks anywhere on the way.
            let mut path = root.to_path_buf();
            for part in relative.split('/') {
                path.push(part);
                if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "is a symlink (not followed in an image without openat2)",
                    ));
                }
            }
            File::open(&path).and_then(read_limited)
        }
        Err(errno) => Err(std::io::Error::from(errno)),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        if line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 {
            return None;
        }
        Some(PasswdEntry {
            name: fields[0],
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
            home: fields.get(5).copied().unwrap_or(""),
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        if line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: fields[0],
            gid: fields[2].parse().ok()?,
            members: fields
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '@'))
}

/// Resolves `spec` (see the module docs) against `db`.
pub fn resolve_user(spec: &str, db: &UserDb) -> Result<ResolvedUser, SpecError> {
    let invalid = |reason: &str| SpecError::InvalidUser {
        user: spec.to_string(),
        reason: reason.to_string(),
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    if !valid_name(user_part) {
        return Err(invalid("not a user name or numeric uid"));
    }
    if let Some(group) = group_part
        && !valid_name(group)
    {
        return Err(invalid("not a group name or numeric gid"));
    }
    let numeric_uid = user_part.parse::<u32>().ok();
    let numeric_gid = group_part.and_then(|g| g.parse::<u32>().ok());

    let passwd = db.read("passwd")?;
    let entry = passwd.as_deref().and_then(|text| {
        passwd_entries(text).find(|e| match numeric_uid {
            Some(uid) => e.uid == uid,
            None => e.name == user_part,
        })
    });

    let (uid, mut gid, name, home) = match (&entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_string())),
        (None, Some(uid)) if group_part.is_some() => (uid, 0, None, None),
        (None, _) => {
            let mut database = db.describe("passwd");
            if passwd.is_none() {
                database.push_str(" (missing)");
            }
            return Err(SpecError::UnknownUser {
                user: user_part.to_string(),
                database,
            });
        }
    };

    let needs_groups = name.is_some() || (group_part.is_some() && numeric_gid.is_none());
    let groups = if needs_groups {
        db.read("group")?
    } else {
        None
    };

    if let Some(group) = group_part {
        gid = match numeric_gid {
            Some(gid) => gid,
            None => groups
                .as_deref()
                .and_then(|text| group_entries(text).find(|g| g.name == group))
                .map(|g| g.gid)
                .ok_or_else(|| SpecError::UnknownGroup {
                    user: spec.to_string(),
                    group: group.to_string(),
                    database: db.describe("group"),
                })?,
        };
    }

    let mut additional_gids = Vec::new();
    if let (Some(name), Some(text)) = (name, groups.as_deref()) {
        for group in group_entries(text) {
            if group.members.contains(&name)
                && group.gid != gid
                && !additional_gids.contains(&group.gid)
            {
                additional_gids.push(group.gid);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: home.filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        +nis\n";
    const GROUP: &str =
        "root:x:0:\nalice:x:1000:\ndocker:x:999:alice,bob\nwheel:x:10:bob\nstaff:x:50:alice\n";

    fn files() -> (tempfile::TempDir, UserDb) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("group"), GROUP).unwrap();
        let db = UserDb::Files {
            passwd: dir.path().join("passwd"),
            group: dir.path().join("group"),
        };
        (dir, db)
    }

    #[test]
    fn names_resolve_with_supplementary_groups() {
        let (_dir, db) = files();
        let alice = resolve_user("alice", &db).unwrap();
        assert_eq!((alice.uid, alice.gid), (1000, 1000));
        assert_eq!(alice.additional_gids, vec![999, 50]);
        assert_eq!(alice.home.as_deref(), Some("/home/alice"));
        let root = resolve_user("root", &db).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.additional_gids.is_empty());
    }

    #[test]
    fn numeric_forms() {
        let (_dir, db) = files();
        let by_uid = resolve_user("1000", &db).unwrap();
        assert_eq!((by_uid.uid, by_uid.gid), (1000, 1000));
        let pair = resolve_user("4242:4343", &db).unwrap();
        assert_eq!((pair.uid, pair.gid), (4242, 4343));
        assert!(pair.additional_gids.is_empty());
        let named_group = resolve_user("alice:wheel", &db).unwrap();
        assert_eq!((named_group.uid, named_group.gid), (1000, 10));
        assert_eq!(resolve_user("1:docker", &db).unwrap().gid, 999);
    }

    #[test]
    fn numeric_pair_needs_no_database() {
        let db = UserDb::Files {
            passwd: "/nonexistent/passwd".into(),
            group: "/nonexistent/group".into(),
        };
        assert_eq!(resolve_user("7:8", &db).unwrap().uid, 7);
    }

    #[test]
    fn unknown_users_and_groups_are_named() {
        let (_dir, db) = files();
        match resolve_user("mallory", &db) {
            Err(SpecError::UnknownUser { user, database }) => {
                assert_eq!(user, "mallory");
                assert!(database.ends_with("passwd"), "{database}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            resolve_user("4242", &db),
            Err(SpecError::UnknownUser { user, .. }) if user == "4242"
        ));
        assert!(matches!(
            resolve_user("alice:nogroup", &db),
            Err(SpecError::UnknownGroup { group, .. }) if group == "nogroup"
        ));
        assert!(matches!(
            resolve_user("", &db),
            Err(SpecError::InvalidUser { .. })
        ));
        assert!(matches!(
            resolve_user("a/b", &db),
            Err(SpecError::InvalidUser { .. })
        ));
    }

    #[test]
    fn image_lookup_stays_inside_the_rootfs() {
        let rootfs = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::create_dir(rootfs.path().join("etc")).unwrap();
        // An absolute symlink resolves inside the rootfs, not on the host.
        std::os::unix::fs::symlink(
            outside.path().join("passwd"),
            rootfs.path().join("etc/passwd"),
        )
        .unwrap();
        let db = UserDb::Root(rootfs.path().to_path_buf());
        assert!(matches!(
            resolve_user("evil", &db),
            Err(SpecError::UnknownUser { .. })
        ));

        std::fs::remove_file(rootfs.path().join("etc/passwd")).unwrap();
        std::fs::write(rootfs.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(rootfs.path().join("etc/group"), GROUP).unwrap();
        let alice = resolve_user("alice", &db).unwrap();
        assert_eq!(alice.additional_gids, vec![999, 50]);
    }
}
