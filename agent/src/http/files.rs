//! Sandbox files for operators: the operator API's LIST_FILES and
//! READ_FILE and the v0 `/files/{browse,read,download}` endpoints.
//!
//! Paths are what Mesos accepts: the absolute path of a sandbox (or of
//! anything in it), or the virtual `/frameworks/<fw>/executors/<ex>/runs/
//! <container|latest>/...`. Everything is resolved (symlinks included, so a
//! task's `tasks/<id>` link works and a link out of the sandbox does not)
//! and must land inside a sandbox of this agent's work dir.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tepui_proto::v1::{FileInfo, TimeInfo};

use super::error;
use crate::daemon::Agent;

/// Mesos caps one read at 16 pages.
const MAX_READ: u64 = 16 * 4096;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Io(String),
}

impl FileError {
    pub fn into_response(self) -> Response {
        let status = match self {
            FileError::NotFound(_) => 404,
            FileError::Forbidden(_) => 403,
            FileError::BadRequest(_) => 400,
            FileError::Io(_) => 500,
        };
        error(status, self.to_string())
    }
}

/// The real, resolved path of `path`, if it lies in one of the agent's
/// sandboxes.
pub fn resolve(agent: &Agent, path: &str) -> Result<PathBuf, FileError> {
    let slaves = agent.work.root().join("slaves");
    let virtual_rest = match path.strip_prefix("/frameworks") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Some(rest.trim_start_matches('/'))
        }
        _ => None,
    };
    let mut wanted = if let Some(rest) = virtual_rest {
        let id = agent.agent_info().id.map(|i| i.value).unwrap_or_default();
        slaves.join(id).join("frameworks").join(rest)
    } else {
        PathBuf::from(path)
    };
    if !wanted.is_absolute() {
        return Err(FileError::BadRequest(format!(
            "'{path}' is not an absolute path"
        )));
    }
    wanted = with_latest_run(&wanted);
    let real = std::fs::canonicalize(&wanted)
        .map_err(|_| FileError::NotFound(format!("File '{path}' not found")))?;
    if in_sandboxes(agent, &real) {
        Ok(real)
    } else {
        Err(outside(path))
    }
}

fn outside(path: &str) -> FileError {
    if SCOPE.with(|s| s.borrow().is_some()) {
        return FileError::Forbidden(format!(
            "'{path}' is outside the calling container's own sandbox"
        ));
    }
    FileError::Forbidden(format!("'{path}' is outside the agent's sandboxes"))
}

/// Whether the real (symlink-free) path `real` lies in a sandbox.
fn in_sandboxes(agent: &Agent, real: &Path) -> bool {
    let root = agent.work.root();
    let slaves = root.join("slaves");
    let standalone = root.join("containers");
    let inside = |base: &Path, frameworks_at: Option<usize>| -> bool {
        let Ok(base) = std::fs::canonicalize(base) else {
            return false;
        };
        let Ok(rel) = real.strip_prefix(&base) else {
            return false;
        };
        let parts: Vec<_> = rel.components().collect();
        match frameworks_at {
            Some(i) => parts.get(i) == Some(&Component::Normal("frameworks".as_ref())),
            None => !parts.is_empty(),
        }
    };
    // `<agent>/frameworks` holds only the sandbox tree (checkpoints live in
    // `meta/`); its upper levels name frameworks, executors and runs, which
    // lets tools find the sandbox of a task whose executor is gone.
    let anywhere = inside(&slaves, Some(1)) || inside(&standalone, None);
    anywhere && SCOPE.with(|s| s.borrow().as_ref().is_none_or(|s| s.admits(root, real)))
}

/// The sandboxes a caller inside a pod may see: checked on every resolve
/// and again on what was opened, so a link swapped into the pod's own
/// sandbox cannot reach another tenant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `slaves/<agent>/frameworks/<framework>/executors/<executor>/...`
    Executor { framework: String, executor: String },
    /// `containers/<id>/...`: a standalone container's own directory.
    Container(String),
    /// Nothing at all (a caller the kernel could not identify).
    Nothing,
}

impl Scope {
    fn admits(&self, root: &Path, real: &Path) -> bool {
        let under = |base: PathBuf| {
            std::fs::canonicalize(base)
                .ok()
                .and_then(|b| real.strip_prefix(b).ok().map(Path::to_path_buf))
        };
        match self {
            Scope::Executor {
                framework,
                executor,
            } => under(root.join("slaves")).is_some_and(|rel| {
                let parts: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
                parts.len() >= 5
                    && parts[1] == "frameworks"
                    && parts[2] == framework.as_str()
                    && parts[3] == "executors"
                    && parts[4] == executor.as_str()
            }),
            Scope::Container(id) => under(root.join("containers")).is_some_and(|rel| {
                rel.components()
                    .next()
                    .is_some_and(|c| c.as_os_str() == id.as_str())
            }),
            Scope::Nothing => false,
        }
    }
}

tokio::task_local! {
    /// The scope of the request being served (set by the auth middleware).
    pub static REQUEST_SCOPE: Option<Scope>;
}

thread_local! {
    /// [`REQUEST_SCOPE`], carried onto the blocking thread by [`blocking`].
    static SCOPE: std::cell::RefCell<Option<Scope>> = const { std::cell::RefCell::new(None) };
}

/// Opens `path` once resolved, without following a link swapped in since,
/// and checks again what was opened: a task that replaces a directory of
/// its sandbox with a link between the check and the open gets nothing.
pub fn open_inside(agent: &Agent, path: &str) -> Result<std::fs::File, FileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let real = resolve(agent, path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .map_err(|e| FileError::Io(e.to_string()))?;
    let opened = opened_path(&file).map_err(|e| FileError::Io(e.to_string()))?;
    if in_sandboxes(agent, &opened) {
        Ok(file)
    } else {
        Err(outside(path))
    }
}

/// What an open file really is, from `/proc/self/fd`.
fn opened_path(file: &std::fs::File) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Mesos's `runs/latest`: the newest run of the executor.
fn with_latest_run(path: &Path) -> PathBuf {
    let parts: Vec<_> = path.components().collect();
    let Some(i) = parts.windows(2).position(|w| {
        w[0] == Component::Normal("runs".as_ref()) && w[1] == Component::Normal("latest".as_ref())
    }) else {
        return path.to_path_buf();
    };
    let runs: PathBuf = parts[..=i].iter().collect();
    if runs.join("latest").exists() {
        return path.to_path_buf();
    }
    let newest = std::fs::read_dir(&runs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.file_name())))
        .max();
    match newest {
        Some((_, name)) => {
            let mut out = runs.join(name);
            for p in &parts[i + 2..] {
                out.push(p);
            }
            out
        }
        None => path.to_path_buf(),
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

fn file_info(shown: String, meta: &std::fs::Metadata) -> FileInfo {
    FileInfo {
        path: shown,
        nlink: i32::try_from(meta.nlink()).ok(),
        size: Some(meta.size()),
        mtime: Some(TimeInfo {
            nanoseconds: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }),
        mode: Some(meta.mode()),
        uid: Some(user_name(meta.uid())),
        gid: Some(group_name(meta.gid())),
    }
}

/// LIST_FILES: a directory's entries, or the file itself. Entry paths are
/// the requested path plus the name, as Mesos shows them.
pub fn list(agent: &Agent, path: &str) -> Result<Vec<FileInfo>, FileError> {
    use std::os::fd::AsRawFd;
    let dir = open_inside(agent, path)?;
    let meta = dir.metadata().map_err(|e| FileError::Io(e.to_string()))?;
    if !meta.is_dir() {
        return Ok(vec![file_info(path.to_string(), &meta)]);
    }
    let base = path.trim_end_matches('/');
    let mut out = Vec::new();
    // Through the open descriptor: the directory that was checked.
    let fd_path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    for entry in std::fs::read_dir(&fd_path).map_err(|e| FileError::Io(e.to_string()))? {
        let Ok(entry) = entry else { continue };
        // Dangling links and races with deletion: skip, as `ls` would.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push(file_info(format!("{base}/{name}"), &meta));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// READ_FILE: (file size, up to `length` bytes from `offset`).
pub fn read(
    agent: &Agent,
    path: &str,
    offset: u64,
    length: Option<u64>,
) -> Result<(u64, Vec<u8>), FileError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = open_inside(agent, path)?;
    let meta = file.metadata().map_err(|e| FileError::Io(e.to_string()))?;
    if meta.is_dir() {
        return Err(FileError::BadRequest(format!(
            "Cannot read '{path}': it is a directory"
        )));
    }
    let size = meta.size();
    if offset >= size {
        return Ok((size, Vec::new()));
    }
    let length = length.unwrap_or(MAX_READ).min(MAX_READ).min(size - offset);
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| FileError::Io(e.to_string()))?;
    let mut data = Vec::new();
    file.take(length)
        .read_to_end(&mut data)
        .map_err(|e| FileError::Io(e.to_string()))?;
    Ok((size, data))
}

/// Runs blocking file work off the async workers.
pub async fn blocking<T: Send + 'static>(
    agent: &Arc<Agent>,
    work: impl FnOnce(&Agent) -> Result<T, FileError> + Send + 'static,
) -> Result<T, FileError> {
    let agent = Arc::clone(agent);
    let scope = REQUEST_SCOPE.try_with(Clone::clone).ok().flatten();
    tokio::task::spawn_blocking(move || {
        SCOPE.with(|s| *s.borrow_mut() = scope);
        let result = work(&agent);
        SCOPE.with(|s| *s.borrow_mut() = None);
        result
    })
    .await
    .map_err(|e| FileError::Io(e.to_string()))?
}

#[derive(Debug, Deserialize)]
pub struct FilesQuery {
    path: Option<String>,
    offset: Option<i64>,
    length: Option<i64>,
}

impl FilesQuery {
    fn path(&self) -> Result<String, Response> {
        self.path
            .clone()
            .ok_or_else(|| error(400, "Expecting 'path' to be present"))
    }
}

/// `ls -l`'s mode string, which `/files/browse` shows.
fn mode_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        _ => '-',
    };
    let mut s = String::from(kind);
    for (bit, c) in [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ] {
        s.push(if mode & bit != 0 { c } else { '-' });
    }
    s
}

pub async fn browse(State(agent): State<Arc<Agent>>, Query(q): Query<FilesQuery>) -> Response {
    let path = match q.path() {
        Ok(p) => p,
        Err(r) => return r,
    };
    match blocking(&agent, move |a| list(a, &path)).await {
        Ok(infos) => Json(
            infos
                .iter()
                .map(|f| {
                    json!({
                        "path": f.path,
                        "size": f.size.unwrap_or(0),
                        "mode": mode_string(f.mode.unwrap_or(0)),
                        "mtime": f.mtime.as_ref().map_or(0, |t| t.nanoseconds / 1_000_000_000),
                        "nlink": f.nlink.unwrap_or(0),
                        "uid": f.uid,
                        "gid": f.gid,
                    })
                })
                .collect::<Vec<Value>>(),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn read_v0(State(agent): State<Arc<Agent>>, Query(q): Query<FilesQuery>) -> Response {
    let path = match q.path() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let offset = q.offset.unwrap_or(0);
    let length = match q.length {
        None | Some(-1) => None,
        Some(n) => match u64::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => return error(400, "Negative length provided"),
        },
    };
    // offset=-1 asks for the size only (how Mesos's UI tails files).
    let (start, length) = match offset {
        -1 => (0, Some(0)),
        n => match u64::try_from(n) {
            Ok(n) => (n, length),
            Err(_) => return error(400, "Negative offset provided"),
        },
    };
    match blocking(&agent, move |a| read(a, &path, start, length)).await {
        Ok((size, data)) => {
            let offset = if offset == -1 { size } else { start };
            Json(json!({
                "data": String::from_utf8_lossy(&data),
                "offset": offset,
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn download(State(agent): State<Arc<Agent>>, Query(q): Query<FilesQuery>) -> Response {
    let path = match q.path() {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let opened = blocking(&agent, move |a| {
        let file = open_inside(a, &path)?;
        let meta = file.metadata().map_err(|e| FileError::Io(e.to_string()))?;
        if meta.is_dir() {
            return Err(FileError::BadRequest(format!(
                "Cannot download '{path}': it is a directory"
            )));
        }
        Ok((file, meta.len()))
    })
    .await;
    match opened {
        Ok((file, len)) => {
            // Streamed, never held in memory: a sandbox file can be larger
            // than the agent's memory. Bounded by the size at open, so the
            // body matches Content-Length even if the file keeps growing.
            use tokio::io::AsyncReadExt;
            let reader = tokio::fs::File::from_std(file).take(len);
            let mut response =
                Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(reader)));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(libc::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(libc::S_IFREG | 0o640), "-rw-r-----");
    }
}
