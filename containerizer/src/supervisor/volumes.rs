//! The sources of a container's SANDBOX_PATH volumes, made before the
//! container is: a bind source must exist. Mesos's `volume/sandbox_path`
//! isolator creates a missing source directory the same way, owned like the
//! sandbox it lives in (`VolumeSandboxPathIsolatorProcess::prepare` in
//! src/slave/containerizer/mesos/isolators/volume/sandbox_path.cpp).
//!
//! A task may have planted symlinks in its sandbox: every component is
//! checked with lstat on the way down and a symlink refuses the volume, so
//! no directory is ever made outside the sandbox.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};

use crate::spec::{LaunchSpec, SandboxOf, SpecContext, VolumeSource, volume_host_source};

/// Creates the missing SANDBOX_PATH sources of `launch`'s volumes.
pub(super) fn create_sandbox_sources(launch: &LaunchSpec, ctx: &SpecContext) -> Result<(), String> {
    for volume in &launch.volumes {
        let VolumeSource::SandboxPath { of, .. } = &volume.source else {
            continue;
        };
        let base = match of {
            SandboxOf::Own => launch.sandbox_dir.clone(),
            SandboxOf::Parent => match &ctx.parent {
                Some(parent) => parent.sandbox_dir.clone(),
                None => continue, // refused with a reason by the spec
            },
        };
        let Ok(source) = volume_host_source(volume, launch, ctx) else {
            continue; // refused with a reason by the spec
        };
        let Ok(relative) = source.strip_prefix(&base) else {
            continue;
        };
        make_below(&base, relative)?;
    }
    Ok(())
}

/// Makes `base/relative` (a directory), component by component, each new
/// one owned like `base`; refuses a symlink or a non-directory on the way.
fn make_below(base: &Path, relative: &Path) -> Result<(), String> {
    let owner = std::fs::metadata(base)
        .map_err(|e| format!("cannot read the sandbox {}: {e}", base.display()))?;
    let mut path = base.to_path_buf();
    for component in relative.components() {
        let Component::Normal(name) = component else {
            return Err(format!(
                "sandbox volume path {} is not a plain relative path",
                relative.display()
            ));
        };
        path.push(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "sandbox volume source {} is a symlink: refused",
                    path.display()
                ));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                // The last component may be a file (a file volume).
                if path.as_path() == base.join(relative) {
                    return Ok(());
                }
                return Err(format!("{} is not a directory", path.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))
                    .map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
            }
            Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_missing_dirs_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("sandbox");
        std::fs::create_dir(&base).unwrap();
        make_below(&base, Path::new("shared/deeper")).unwrap();
        assert!(base.join("shared/deeper").is_dir());
        make_below(&base, Path::new("shared/deeper")).unwrap();

        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("escape")).unwrap();
        let err = make_below(&base, Path::new("escape/x")).unwrap_err();
        assert!(err.contains("symlink"), "{err}");
        assert!(!outside.join("x").exists());

        std::fs::write(base.join("file"), "x").unwrap();
        make_below(&base, Path::new("file")).unwrap();
        assert!(make_below(&base, Path::new("file/x")).is_err());
    }
}
