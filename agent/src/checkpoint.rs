//! Checkpoint files: Mesos JSON written atomically, and the append-only
//! status update log of each task. What survives an agent SIGKILL is
//! exactly what reached disk through here.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use prost::{Message, Name};
use serde::{Deserialize, Serialize};
use tepui_containerizer::atomic::write_atomic;
use tepui_proto::v1::TaskStatus;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io {
        action,
        path,
        source,
    }
}

/// Writes a Mesos message as JSON, atomically.
pub fn write_message<T: Message + Name>(path: &Path, message: &T) -> Result<(), CheckpointError> {
    write_bytes(path, &tepui_proto::json::to_vec(message))
}

pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    write_atomic(path, bytes).map_err(io("write", path))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| CheckpointError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_bytes(path, &bytes)
}

/// `Ok(None)` when the file does not exist.
pub fn read_message<T: Message + Name + Default>(
    path: &Path,
) -> Result<Option<T>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    tepui_proto::json::from_slice::<T>(&bytes)
        .map(Some)
        .map_err(|e| CheckpointError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| CheckpointError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// One line of a task's `updates.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRecord {
    /// A status update was accepted (before the executor is told).
    Update(Box<TaskStatus>),
    /// The scheduler acknowledged the update with this uuid.
    Ack(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
struct RecordLine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    update: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ack: Option<String>,
}

/// Appends a record and fsyncs, so it is on disk before anyone is told.
pub fn append_update(path: &Path, record: &UpdateRecord) -> Result<(), CheckpointError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let line = match record {
        UpdateRecord::Update(status) => RecordLine {
            update: Some(tepui_proto::json::to_value(status.as_ref())),
            ack: None,
        },
        UpdateRecord::Ack(uuid) => RecordLine {
            update: None,
            // Hex keeps the log greppable; uuids are 16 bytes.
            ack: Some(hex::encode(uuid)),
        },
    };
    let mut bytes = serde_json::to_vec(&line).map_err(|e| CheckpointError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("open", path))?;
    file.write_all(&bytes).map_err(io("append to", path))?;
    file.sync_data().map_err(io("fsync", path))
}

/// Every record of a task's log. A torn last line (the agent died while
/// appending) is ignored: its update was never acknowledged to anyone.
pub fn read_updates(path: &Path) -> Result<Vec<UpdateRecord>, CheckpointError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read", path)(e)),
    };
    let mut records = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len() && !text.ends_with('\n');
        let parsed: Result<RecordLine, _> = serde_json::from_str(line);
        let record = match parsed {
            Ok(RecordLine {
                update: Some(value),
                ..
            }) => tepui_proto::json::from_value::<TaskStatus>(&value)
                .map(|s| UpdateRecord::Update(Box::new(s)))
                .map_err(|e| e.to_string()),
            Ok(RecordLine {
                ack: Some(text), ..
            }) => hex::decode(&text)
                .map(UpdateRecord::Ack)
                .map_err(|_| "bad uuid".to_string()),
            Ok(_) => Err("empty record".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match record {
            Ok(r) => records.push(r),
            Err(_) if last => break,
            Err(message) => {
                return Err(CheckpointError::Parse {
                    path: path.to_path_buf(),
                    message: format!("line {}: {message}", i + 1),
                });
            }
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::{TaskId, TaskState};

    fn status(task: &str, uuid: u8) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: task.into() },
            state: TaskState::TaskRunning as i32,
            uuid: Some(vec![uuid; 16].into()),
            ..Default::default()
        }
    }

    #[test]
    fn update_logs_round_trip_and_tolerate_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/updates.jsonl");
        append_update(&path, &UpdateRecord::Update(Box::new(status("t", 1)))).unwrap();
        append_update(&path, &UpdateRecord::Ack(vec![1; 16])).unwrap();
        append_update(&path, &UpdateRecord::Update(Box::new(status("t", 2)))).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"update\": {\"task_id\"").unwrap();
        let records = read_updates(&path).unwrap();
        assert_eq!(
            records,
            vec![
                UpdateRecord::Update(Box::new(status("t", 1))),
                UpdateRecord::Ack(vec![1; 16]),
                UpdateRecord::Update(Box::new(status("t", 2))),
            ]
        );
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("updates.jsonl");
        std::fs::write(&path, "garbage\n{\"ack\":\"00\"}\n").unwrap();
        let err = read_updates(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
