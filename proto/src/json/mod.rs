//! Mesos's JSON mapping, both directions, for every message of the schema.
//!
//! Mesos's JSON is not proto3 JSON (it predates it and comes from stout's
//! converters), and existing clients depend on the differences:
//! - field names are the proto's snake_case names (lowerCamelCase is accepted
//!   on input too, since some proto3-era clients send it);
//! - enums are their value names; bytes are base64;
//! - 64-bit integers are JSON numbers (numeric strings are accepted on input);
//! - doubles may be `"Infinity"`, `"-Infinity"` or `"NaN"` strings;
//! - unknown fields are ignored, and so are unknown enum names on optional and
//!   repeated fields (a newer peer may know more values); an unknown enum name
//!   on a required field is an error;
//! - wherever a `Value.Scalar` is expected, a bare number or `"Infinity"` is
//!   accepted as shorthand for `{"value": ...}` (the documented
//!   `"limits": {"cpus": "Infinity", "mem": 4096}`); output is always canonical.
//!
//! The codec walks `prost_reflect` descriptors, so it covers every message
//! without per-type code, and its errors name the offending field by its path
//! (`accept.operations[0].launch_group.executor.type`).

mod decode;
mod encode;

use prost::{Message, Name};
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};

pub use decode::decode_dynamic;
pub use encode::encode_dynamic;

use crate::DESCRIPTOR_POOL;

/// Why a JSON document or a protobuf body could not become a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonError {
    /// The text is not JSON at all; line and column point at the fault.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// The JSON is well formed but a field does not fit the schema.
    #[error("{}: {message}", display_path(path))]
    Field { path: String, message: String },
    /// A protobuf body that does not decode.
    #[error("invalid protobuf {message_type}: {message}")]
    Protobuf {
        message_type: String,
        message: String,
    },
    /// The Rust type has no descriptor: a bug in tepui, not in the input.
    #[error("no descriptor for message type {0}")]
    UnknownMessageType(String),
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "message".to_string()
    } else {
        format!("field '{path}'")
    }
}

impl JsonError {
    /// The dotted path of the offending field, if the error is about one.
    pub fn path(&self) -> Option<&str> {
        match self {
            JsonError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// The descriptor of a generated message type.
pub fn descriptor_of<T: Name>() -> Result<MessageDescriptor, JsonError> {
    let name = T::full_name();
    DESCRIPTOR_POOL
        .get_message_by_name(&name)
        .ok_or(JsonError::UnknownMessageType(name))
}

/// Decodes a message from a parsed JSON value.
pub fn from_value<T: Message + Name + Default>(value: &serde_json::Value) -> Result<T, JsonError> {
    let dynamic = decode_dynamic(value, descriptor_of::<T>()?)?;
    to_typed(&dynamic)
}

/// Decodes a message from JSON text; syntax errors carry line and column.
pub fn from_slice<T: Message + Name + Default>(bytes: &[u8]) -> Result<T, JsonError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax {
            line: e.line(),
            column: e.column(),
            message: syntax_message(&e),
        })?;
    from_value(&value)
}

/// Decodes a message from JSON text.
pub fn from_str<T: Message + Name + Default>(text: &str) -> Result<T, JsonError> {
    from_slice(text.as_bytes())
}

/// serde_json appends " at line L column C" to its messages; the error carries
/// them as fields, so keep only the description.
fn syntax_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(idx) => full[..idx].to_string(),
        None => full,
    }
}

/// Encodes a message as a JSON value in Mesos's canonical form.
pub fn to_value<T: Message + Name>(msg: &T) -> serde_json::Value {
    match to_dynamic(msg) {
        Ok(dynamic) => encode_dynamic(&dynamic),
        // Unreachable for generated types: every one has a descriptor and
        // re-decodes its own encoding.
        Err(_) => serde_json::Value::Null,
    }
}

/// Encodes a message as compact JSON text.
pub fn to_vec<T: Message + Name>(msg: &T) -> Vec<u8> {
    to_value(msg).to_string().into_bytes()
}

/// Encodes a message as compact JSON text.
pub fn to_string<T: Message + Name>(msg: &T) -> String {
    to_value(msg).to_string()
}

/// Decodes a protobuf body and checks, as Mesos's parser does, that every
/// required field is present (prost alone would fill in defaults silently).
pub fn from_protobuf<T: Message + Name + Default>(bytes: &[u8]) -> Result<T, JsonError> {
    let desc = descriptor_of::<T>()?;
    let dynamic = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| JsonError::Protobuf {
        message_type: desc.full_name().to_string(),
        message: e.to_string(),
    })?;
    decode::check_required(&dynamic, "")?;
    to_typed(&dynamic)
}

fn to_dynamic<T: Message + Name>(msg: &T) -> Result<DynamicMessage, JsonError> {
    let desc = descriptor_of::<T>()?;
    DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice()).map_err(|e| {
        JsonError::Protobuf {
            message_type: desc.full_name().to_string(),
            message: e.to_string(),
        }
    })
}

fn to_typed<T: Message + Default>(dynamic: &DynamicMessage) -> Result<T, JsonError> {
    dynamic
        .transcode_to::<T>()
        .map_err(|e| JsonError::Protobuf {
            message_type: dynamic.descriptor().full_name().to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests;
