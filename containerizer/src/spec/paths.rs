//! Lexical path checks for volumes: nothing may leave its base through `..`,
//! an absolute path where a relative one is expected, or a NUL byte.
//!
//! These checks are purely lexical. Symlinks are the runtime's business:
//! libcontainer resolves mount destinations inside the rootfs safely, and
//! [`build_spec`](super::build_spec) refuses an existing sandbox volume source
//! that resolves outside its sandbox.

use std::path::{Component, Path, PathBuf};

use super::SpecError;
use super::launch::{ContainerKind, SandboxOf, VolumeSource, VolumeSpec};

/// Why a path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Empty,
    Nul,
    NotRelative,
    NotAbsolute,
    Escapes,
}

/// Normalizes a path relative to some base: `a/./b/../c` -> `a/c`. Refuses
/// absolute paths and any `..` that would climb above the base. The result
/// may be empty (the base itself).
pub(crate) fn normalize_relative(path: &str) -> Result<PathBuf, PathProblem> {
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    if path.starts_with('/') {
        return Err(PathProblem::NotRelative);
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Escapes);
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(PathProblem::NotRelative),
        }
    }
    Ok(parts.iter().collect())
}

/// Normalizes an absolute path: `/a/../b` -> `/b`; `/../b` escapes the root
/// and is refused rather than clamped.
pub(crate) fn normalize_absolute(path: &str) -> Result<PathBuf, PathProblem> {
    if path.contains('\0') {
        return Err(PathProblem::Nul);
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(if path.is_empty() {
            PathProblem::Empty
        } else {
            PathProblem::NotAbsolute
        });
    };
    let relative = normalize_relative(rest.trim_start_matches('/'))?;
    Ok(Path::new("/").join(relative))
}

fn problem(volume: &VolumeSpec, path: &str, base: &'static str, problem: PathProblem) -> SpecError {
    let name = volume.container_path.clone();
    match problem {
        PathProblem::Escapes | PathProblem::NotRelative => SpecError::VolumeEscape {
            volume: name,
            path: path.to_string(),
            base,
        },
        PathProblem::Empty => SpecError::InvalidVolume {
            volume: name,
            reason: "the path is empty".into(),
        },
        PathProblem::Nul => SpecError::InvalidVolume {
            volume: name,
            reason: "the path contains a NUL byte".into(),
        },
        PathProblem::NotAbsolute => SpecError::InvalidVolume {
            volume: name,
            reason: format!("'{path}' must be an absolute path"),
        },
    }
}

/// Where a volume's target is, before it is placed in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Absolute in the container's filesystem.
    Absolute(PathBuf),
    /// Relative to the container's sandbox (never empty).
    InSandbox(PathBuf),
}

/// The normalized target of a volume (checks included).
pub(crate) fn volume_target(volume: &VolumeSpec) -> Result<Target, SpecError> {
    let path = volume.container_path.as_str();
    if path.is_empty() {
        return Err(problem(volume, path, "the container", PathProblem::Empty));
    }
    if path.starts_with('/') {
        let target = normalize_absolute(path)
            .map_err(|p| problem(volume, path, "the container's root", p))?;
        if target == Path::new("/") {
            return Err(SpecError::InvalidVolume {
                volume: volume.container_path.clone(),
                reason: "cannot mount over the container's root".into(),
            });
        }
        if target.starts_with("/proc") {
            return Err(SpecError::InvalidVolume {
                volume: volume.container_path.clone(),
                reason: "cannot mount over /proc".into(),
            });
        }
        Ok(Target::Absolute(target))
    } else {
        let target = normalize_relative(path)
            .map_err(|p| problem(volume, path, "the container's sandbox", p))?;
        if target.as_os_str().is_empty() {
            return Err(SpecError::InvalidVolume {
                volume: volume.container_path.clone(),
                reason: "a relative container_path must name a path inside the sandbox".into(),
            });
        }
        Ok(Target::InSandbox(target))
    }
}

/// The normalized source: an absolute host path, or a path relative to a
/// sandbox (possibly empty: the whole sandbox).
pub(crate) fn volume_source(volume: &VolumeSpec) -> Result<PathBuf, SpecError> {
    match &volume.source {
        VolumeSource::HostPath { path, .. } => {
            normalize_absolute(path).map_err(|p| problem(volume, path, "the host's root", p))
        }
        VolumeSource::SandboxPath { of, path } => {
            let base = match of {
                SandboxOf::Own => "the container's sandbox",
                SandboxOf::Parent => "the parent container's sandbox",
            };
            normalize_relative(path).map_err(|p| problem(volume, path, base, p))
        }
    }
}

/// Every context-free rule of a volume (Mesos's `volume/host_path` and
/// `volume/sandbox_path` isolators).
pub(crate) fn check_volume_paths(
    volume: &VolumeSpec,
    kind: ContainerKind,
) -> Result<(), SpecError> {
    let target = volume_target(volume)?;
    volume_source(volume)?;
    if let VolumeSource::SandboxPath { of, .. } = &volume.source {
        match of {
            SandboxOf::Own if !matches!(target, Target::Absolute(_)) => {
                return Err(SpecError::InvalidVolume {
                    volume: volume.container_path.clone(),
                    reason: "a SANDBOX_PATH volume of type SELF needs an absolute container_path (use a symlink inside the sandbox instead)".into(),
                });
            }
            SandboxOf::Parent if kind.is_top_level() => {
                return Err(SpecError::InvalidVolume {
                    volume: volume.container_path.clone(),
                    reason: "a SANDBOX_PATH volume of type PARENT only works for nested containers"
                        .into(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_normalize_and_never_climb() {
        assert_eq!(normalize_relative("a/./b/../c").unwrap(), Path::new("a/c"));
        assert_eq!(normalize_relative("a//b/").unwrap(), Path::new("a/b"));
        assert_eq!(normalize_relative(".").unwrap(), Path::new(""));
        assert_eq!(normalize_relative("a/..").unwrap(), Path::new(""));
        for bad in ["..", "../x", "a/../../x", "a/b/../../../c", "./.."] {
            assert_eq!(normalize_relative(bad), Err(PathProblem::Escapes), "{bad}");
        }
        assert_eq!(normalize_relative("/etc"), Err(PathProblem::NotRelative));
        assert_eq!(normalize_relative("a\0b"), Err(PathProblem::Nul));
    }

    #[test]
    fn absolute_paths_normalize_and_never_climb() {
        assert_eq!(normalize_absolute("/a/../b").unwrap(), Path::new("/b"));
        assert_eq!(normalize_absolute("//a///b/.").unwrap(), Path::new("/a/b"));
        assert_eq!(normalize_absolute("/").unwrap(), Path::new("/"));
        for bad in ["/..", "/../etc", "/a/../../etc", "/./../x"] {
            assert_eq!(normalize_absolute(bad), Err(PathProblem::Escapes), "{bad}");
        }
        assert_eq!(normalize_absolute("etc"), Err(PathProblem::NotAbsolute));
        assert_eq!(normalize_absolute(""), Err(PathProblem::Empty));
    }
}
