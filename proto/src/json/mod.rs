//! Mesos's JSON mapping for every message (work in progress: API stub).

use prost::{Message, Name};

/// Why a JSON document could not become (or come from) a message.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("not implemented yet")]
    Todo,
}

/// Decodes a message from a parsed JSON value.
pub fn from_value<T: Message + Name + Default>(_value: &serde_json::Value) -> Result<T, JsonError> {
    Err(JsonError::Todo)
}

/// Decodes a message from JSON text.
pub fn from_slice<T: Message + Name + Default>(_bytes: &[u8]) -> Result<T, JsonError> {
    Err(JsonError::Todo)
}

/// Encodes a message as a JSON value.
pub fn to_value<T: Message + Name>(_msg: &T) -> serde_json::Value {
    serde_json::Value::Null
}

/// Encodes a message as compact JSON text.
pub fn to_vec<T: Message + Name>(msg: &T) -> Vec<u8> {
    to_value(msg).to_string().into_bytes()
}
