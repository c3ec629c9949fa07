//! DynamicMessage -> JSON in Mesos's canonical form (see the module docs).

use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};
use serde_json::{Map, Value as Json};

use super::decode::key_text;

/// Encodes every field that is set (proto2 presence; non-empty lists and maps),
/// in declaration order.
pub fn encode_dynamic(msg: &DynamicMessage) -> Json {
    let mut object = Map::new();
    for field in msg.descriptor().fields() {
        if !msg.has_field(&field) {
            continue;
        }
        let kind = field.kind();
        let value = msg.get_field(&field);
        let json = match value.as_ref() {
            Value::Map(entries) => {
                let value_kind = match &kind {
                    Kind::Message(entry) => entry.map_entry_value_field().kind(),
                    other => other.clone(),
                };
                // Sorted keys keep the output stable (golden tests, diffs).
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by_key(|(k, _)| key_text(k));
                let mut map = Map::new();
                for (key, item) in sorted {
                    map.insert(key_text(key), encode_value(item, &value_kind));
                }
                Json::Object(map)
            }
            Value::List(items) => {
                Json::Array(items.iter().map(|item| encode_value(item, &kind)).collect())
            }
            single => encode_value(single, &kind),
        };
        object.insert(field.name().to_string(), json);
    }
    Json::Object(object)
}

fn encode_value(value: &Value, kind: &Kind) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(f) => encode_float(f64::from(*f)),
        Value::F64(f) => encode_float(*f),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(desc) => match desc.get_value(*n) {
                Some(v) => Json::String(v.name().to_string()),
                // A value this schema does not name: keep the number.
                None => Json::from(*n),
            },
            _ => Json::from(*n),
        },
        Value::Message(inner) => encode_dynamic(inner),
        Value::List(items) => Json::Array(items.iter().map(|v| encode_value(v, kind)).collect()),
        Value::Map(_) => Json::Null, // maps only occur as fields, handled above
    }
}

fn encode_float(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".to_string())
    } else if f == f64::INFINITY {
        Json::String("Infinity".to_string())
    } else if f == f64::NEG_INFINITY {
        Json::String("-Infinity".to_string())
    } else {
        serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}
