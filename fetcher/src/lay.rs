//! The blocking half of a fetch: laying one URI's bytes down in the staging
//! directory (copy, chmod, extract) following the Mesos rules.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek};

use crate::error::FetchError;
use crate::extract::{
    self, ArchiveFormat, Budget, ExtractError, ExtractOptions, Ownership, SafeDir, Summary,
};
use crate::stream::TeeReader;

/// What the blocking half produced, relative to the staging directory.
pub(crate) struct Produced {
    pub file: Option<Vec<String>>,
    pub extracted: Option<Summary>,
}

/// How the bytes of one URI are to be laid down.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(crate) uri: String,
    pub(crate) name: Vec<String>,
    pub(crate) format: Option<ArchiveFormat>,
    pub(crate) executable: bool,
    pub(crate) ownership: Ownership,
}

impl Plan {
    pub(crate) fn user(&self) -> Option<(u32, u32)> {
        match self.ownership {
            Ownership::Fixed { uid, gid } => Some((uid, gid)),
            Ownership::Current | Ownership::FromArchive => None,
        }
    }

    pub(crate) fn name_comps(&self) -> Vec<&OsStr> {
        self.name.iter().map(OsStr::new).collect()
    }

    pub(crate) fn extract_err(&self, cause: ExtractError) -> FetchError {
        FetchError::Extract {
            uri: self.uri.clone(),
            cause,
        }
    }
}

fn walk_to_extract(e: extract::safe::WalkError, name: &str) -> ExtractError {
    match e {
        extract::safe::WalkError::Symlink(p) => ExtractError::ThroughSymlink {
            entry: name.to_string(),
            symlink: p.to_string_lossy().into_owned(),
        },
        extract::safe::WalkError::NotDir(p) => ExtractError::Write {
            path: name.to_string(),
            cause: io::Error::other(format!("'{}' is not a directory", p.display())),
        },
        extract::safe::WalkError::Io(cause) => ExtractError::Write {
            path: name.to_string(),
            cause,
        },
    }
}

fn finish_file(
    file: &File,
    executable: bool,
    ownership: Ownership,
    name: &str,
) -> Result<(), ExtractError> {
    let err = |cause: io::Error| ExtractError::Write {
        path: name.to_string(),
        cause,
    };
    if let Ownership::Fixed { uid, gid } = ownership {
        extract::safe::chown_fd(file, ownership, uid, gid).map_err(err)?;
    }
    let mode = if executable { 0o755 } else { 0o644 };
    rustix::fs::fchmod(file, extract::safe::mode(mode)).map_err(|e| err(e.into()))
}

pub(crate) fn copy_all(
    reader: &mut dyn Read,
    out: &mut File,
    budget: &Budget,
    name: &str,
) -> Result<u64, ExtractError> {
    let mut buf = vec![0u8; 256 * 1024];
    extract::entries_copy(reader, out, &mut buf, budget, name)
}

/// Lays down a URI read directly from its source: the artifact file is always
/// kept (Mesos does), and archives are extracted from the same pass over the
/// bytes.
pub(crate) fn consume_direct(
    reader: &mut dyn Read,
    staging: &SafeDir,
    plan: &Plan,
    budget: &Budget,
) -> Result<Produced, ExtractError> {
    let shown = plan.name.join("/");
    let out = staging
        .create_file(&plan.name_comps(), plan.ownership)
        .map_err(|e| walk_to_extract(e, &shown))?;
    let mut opts = ExtractOptions::new(budget);
    opts.ownership = plan.ownership;
    let extracted = match plan.format {
        None => {
            let mut out = out;
            copy_all(reader, &mut out, budget, &shown)?;
            finish_file(&out, plan.executable, plan.ownership, &shown)?;
            None
        }
        Some(ArchiveFormat::Zip) => {
            // Zip needs random access: land the file, then read it back.
            let mut out = out;
            copy_all(reader, &mut out, budget, &shown)?;
            finish_file(&out, false, plan.ownership, &shown)?;
            out.rewind().map_err(extract::read_error)?;
            Some(extract::extract_zip(
                io::BufReader::new(out),
                staging,
                &mut opts,
            )?)
        }
        Some(ArchiveFormat::Tar(c)) => {
            let mut tee = TeeReader::new(reader, Some(out), shown.clone(), budget);
            let summary = extract::extract_tar(&mut tee, c, staging, &mut opts)?;
            tee.drain().map_err(extract::read_error)?;
            if let Some(out) = tee.into_file() {
                finish_file(&out, false, plan.ownership, &shown)?;
            }
            Some(summary)
        }
        Some(ArchiveFormat::Gz) => {
            let mut tee = TeeReader::new(reader, Some(out), shown.clone(), budget);
            let summary = extract::extract_gz(
                &mut tee,
                &gunzipped_name(plan),
                staging,
                budget,
                plan.ownership,
            )?;
            tee.drain().map_err(extract::read_error)?;
            if let Some(out) = tee.into_file() {
                finish_file(&out, false, plan.ownership, &shown)?;
            }
            Some(summary)
        }
    };
    Ok(Produced {
        file: Some(plan.name.clone()),
        extracted,
    })
}

/// `x.gz` becomes `x` in the sandbox root, whatever directory the `.gz` went
/// to (as Mesos does).
fn gunzipped_name(plan: &Plan) -> OsString {
    let last = plan.name.last().map(String::as_str).unwrap_or("");
    OsString::from(last.strip_suffix(".gz").unwrap_or(last))
}

/// Lays down a URI from its cache blob: archives are extracted without a copy
/// of the archive (as Mesos does), other files are copied.
pub(crate) fn consume_cached(
    mut blob: File,
    staging: &SafeDir,
    plan: &Plan,
    budget: &Budget,
) -> Result<Produced, ExtractError> {
    let mut opts = ExtractOptions::new(budget);
    opts.ownership = plan.ownership;
    let extracted = match plan.format {
        None => return consume_direct(&mut blob, staging, plan, budget),
        Some(ArchiveFormat::Zip) => {
            extract::extract_zip(io::BufReader::new(blob), staging, &mut opts)?
        }
        Some(ArchiveFormat::Tar(c)) => extract::extract_tar(blob, c, staging, &mut opts)?,
        Some(ArchiveFormat::Gz) => {
            extract::extract_gz(blob, &gunzipped_name(plan), staging, budget, plan.ownership)?
        }
    };
    Ok(Produced {
        file: None,
        extracted: Some(extracted),
    })
}

/// Fills a cache blob and lays the URI down from the same pass over the
/// download, so a cache miss costs one transfer with extraction alongside it
/// rather than after it. Zip needs the finished blob to seek in. Returns the
/// blob's size.
pub(crate) fn fill_and_lay(
    reader: &mut dyn Read,
    blob: File,
    blob_name: &str,
    staging: &SafeDir,
    plan: &Plan,
    budget: &Budget,
) -> Result<(Produced, u64), ExtractError> {
    let mut tee = TeeReader::new(reader, Some(blob), blob_name.to_string(), budget);
    let mut opts = ExtractOptions::new(budget);
    opts.ownership = plan.ownership;
    let extracted = match plan.format {
        None => {
            consume_direct(&mut tee, staging, plan, budget)?;
            None
        }
        Some(ArchiveFormat::Tar(c)) => Some(extract::extract_tar(&mut tee, c, staging, &mut opts)?),
        Some(ArchiveFormat::Gz) => Some(extract::extract_gz(
            &mut tee,
            &gunzipped_name(plan),
            staging,
            budget,
            plan.ownership,
        )?),
        Some(ArchiveFormat::Zip) => None,
    };
    tee.drain().map_err(extract::read_error)?;
    let size = tee.bytes;
    let write_err = |cause: io::Error| ExtractError::Write {
        path: blob_name.to_string(),
        cause,
    };
    let mut blob = tee
        .into_file()
        .ok_or_else(|| write_err(io::Error::other("cache file missing")))?;
    // The index will vouch for this blob after a restart.
    blob.sync_data().map_err(write_err)?;
    let produced = match plan.format {
        None => Produced {
            file: Some(plan.name.clone()),
            extracted: None,
        },
        Some(ArchiveFormat::Zip) => {
            blob.rewind().map_err(extract::read_error)?;
            Produced {
                file: None,
                extracted: Some(extract::extract_zip(
                    io::BufReader::new(blob),
                    staging,
                    &mut opts,
                )?),
            }
        }
        Some(_) => Produced {
            file: None,
            extracted,
        },
    };
    Ok((produced, size))
}
