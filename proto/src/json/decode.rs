//! JSON -> DynamicMessage, following Mesos's mapping (see the module docs).

use base64::Engine as _;
use prost_reflect::{
    Cardinality, DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use serde_json::Value as Json;

use super::JsonError;

/// The message that accepts a bare number or `"Infinity"` in place of itself.
const SCALAR_MESSAGE: &str = "mesos.v1.Value.Scalar";

/// Decodes `json` as a message of type `desc`, then checks required fields.
pub fn decode_dynamic(json: &Json, desc: MessageDescriptor) -> Result<DynamicMessage, JsonError> {
    let msg = decode_message(json, desc, &mut String::new())?;
    check_required(&msg, "")?;
    Ok(msg)
}

fn field_error(path: &str, message: impl Into<String>) -> JsonError {
    JsonError::Field {
        path: path.to_string(),
        message: message.into(),
    }
}

fn type_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Runs `f` with `segment` appended to the path, restoring it afterwards, so
/// one buffer serves the whole walk.
fn with_segment<R>(path: &mut String, segment: &str, f: impl FnOnce(&mut String) -> R) -> R {
    let len = path.len();
    if !path.is_empty() && !segment.starts_with('[') {
        path.push('.');
    }
    path.push_str(segment);
    let result = f(path);
    path.truncate(len);
    result
}

fn decode_message(
    json: &Json,
    desc: MessageDescriptor,
    path: &mut String,
) -> Result<DynamicMessage, JsonError> {
    let mut msg = DynamicMessage::new(desc.clone());
    let object = match json {
        Json::Object(object) => object,
        Json::Number(_) | Json::String(_) if desc.full_name() == SCALAR_MESSAGE => {
            let value_field = desc
                .get_field_by_name("value")
                .ok_or_else(|| field_error(path, "Value.Scalar has no 'value' field"))?;
            let value = with_segment(path, "value", |p| decode_single(json, &value_field, p))?;
            if let Some(value) = value {
                msg.set_field(&value_field, value);
            }
            return Ok(msg);
        }
        other => {
            return Err(field_error(
                path,
                format!(
                    "expected an object for {}, found {}",
                    desc.full_name(),
                    type_name(other)
                ),
            ));
        }
    };

    let object = documented_shorthands(&desc, object);
    for (key, value) in object.iter() {
        let Some(field) = desc
            .get_field_by_name(key)
            .or_else(|| desc.get_field_by_json_name(key))
        else {
            continue; // Unknown fields are ignored, as Mesos does.
        };
        if value.is_null() {
            continue;
        }
        with_segment(path, field.name(), |p| {
            let decoded = if field.is_map() {
                Some(decode_map(value, &field, p)?)
            } else if field.is_list() {
                Some(decode_list(value, &field, p)?)
            } else {
                decode_single(value, &field, p)?
            };
            if let Some(decoded) = decoded {
                msg.set_field(&field, decoded);
            }
            Ok::<_, JsonError>(())
        })?;
    }
    Ok(msg)
}

/// Mesos's "Running Workloads" document puts `uris` beside `command` in a
/// TaskInfo, where the schema has no such field: Mesos drops it silently and
/// the task starts without its artifact. We move them into `command.uris`
/// (after any already there) so the documented payload means what it says.
fn documented_shorthands<'a>(
    desc: &MessageDescriptor,
    object: &'a serde_json::Map<String, Json>,
) -> std::borrow::Cow<'a, serde_json::Map<String, Json>> {
    const TASK_INFO: &str = "mesos.v1.TaskInfo";
    let Some(Json::Array(task_uris)) = object.get("uris") else {
        return std::borrow::Cow::Borrowed(object);
    };
    if desc.full_name() != TASK_INFO || desc.get_field_by_name("uris").is_some() {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut owned = object.clone();
    let task_uris = task_uris.clone();
    owned.remove("uris");
    let command = owned
        .entry("command")
        .or_insert_with(|| Json::Object(serde_json::Map::new()));
    if let Json::Object(command) = command {
        // A malformed command.uris is left for the normal walk to report.
        if let Json::Array(uris) = command
            .entry("uris")
            .or_insert_with(|| Json::Array(Vec::new()))
        {
            uris.extend(task_uris);
        }
    }
    std::borrow::Cow::Owned(owned)
}

fn decode_list(
    json: &Json,
    field: &FieldDescriptor,
    path: &mut String,
) -> Result<Value, JsonError> {
    let Json::Array(items) = json else {
        return Err(field_error(
            path,
            format!("expected an array, found {}", type_name(json)),
        ));
    };
    let mut values = Vec::with_capacity(items.len());
    for (idx, item) in items.iter().enumerate() {
        let value = with_segment(path, &format!("[{idx}]"), |p| {
            if item.is_null() {
                return Err(field_error(p, "null is not allowed in an array"));
            }
            decode_kind(item, &field.kind(), false, p)
        })?;
        // An unknown enum name in a repeated field is skipped, not fatal.
        if let Some(value) = value {
            values.push(value);
        }
    }
    Ok(Value::List(values))
}

fn decode_map(json: &Json, field: &FieldDescriptor, path: &mut String) -> Result<Value, JsonError> {
    let Json::Object(object) = json else {
        return Err(field_error(
            path,
            format!("expected an object (a map), found {}", type_name(json)),
        ));
    };
    let Kind::Message(entry) = field.kind() else {
        return Err(field_error(path, "map field without an entry message"));
    };
    let key_field = entry.map_entry_key_field();
    let value_field = entry.map_entry_value_field();
    let mut map = std::collections::HashMap::with_capacity(object.len());
    for (key, item) in object {
        with_segment(path, key, |p| {
            let map_key = decode_map_key(key, &key_field.kind(), p)?;
            if item.is_null() {
                return Err(field_error(p, "null is not allowed as a map value"));
            }
            if let Some(value) = decode_kind(item, &value_field.kind(), false, p)? {
                map.insert(map_key, value);
            }
            Ok(())
        })?;
    }
    Ok(Value::Map(map))
}

fn decode_map_key(key: &str, kind: &Kind, path: &str) -> Result<MapKey, JsonError> {
    let bad = || field_error(path, format!("map key '{key}' is not a valid {kind:?}"));
    Ok(match kind {
        Kind::String => MapKey::String(key.to_string()),
        Kind::Bool => match key {
            "true" => MapKey::Bool(true),
            "false" => MapKey::Bool(false),
            _ => return Err(bad()),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().map_err(|_| bad())?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().map_err(|_| bad())?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad())?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

/// A singular field: `None` means "leave unset" (an unknown enum name on an
/// optional field).
fn decode_single(
    json: &Json,
    field: &FieldDescriptor,
    path: &mut String,
) -> Result<Option<Value>, JsonError> {
    let required = field.cardinality() == Cardinality::Required;
    decode_kind(json, &field.kind(), required, path)
}

fn decode_kind(
    json: &Json,
    kind: &Kind,
    required: bool,
    path: &mut String,
) -> Result<Option<Value>, JsonError> {
    let value = match kind {
        Kind::Double => Value::F64(decode_float(json, path)?),
        // Narrowing is what a float field means; out-of-range becomes inf.
        Kind::Float => Value::F32(decode_float(json, path)? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            let n = decode_integer::<i64>(json, path)?;
            Value::I32(i32::try_from(n).map_err(|_| {
                field_error(path, format!("{n} does not fit a 32-bit signed integer"))
            })?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(decode_integer(json, path)?),
        Kind::Uint32 | Kind::Fixed32 => {
            let n = decode_integer::<u64>(json, path)?;
            Value::U32(u32::try_from(n).map_err(|_| {
                field_error(path, format!("{n} does not fit a 32-bit unsigned integer"))
            })?)
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(decode_integer(json, path)?),
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            other => {
                return Err(field_error(
                    path,
                    format!("expected a boolean, found {}", type_name(other)),
                ));
            }
        },
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => {
                return Err(field_error(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                ));
            }
        },
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(decode_base64(s, path)?.into()),
            other => {
                return Err(field_error(
                    path,
                    format!("expected a base64 string, found {}", type_name(other)),
                ));
            }
        },
        Kind::Enum(desc) => return decode_enum(json, desc, required, path),
        Kind::Message(desc) => Value::Message(decode_message(json, desc.clone(), path)?),
    };
    Ok(Some(value))
}

fn decode_float(json: &Json, path: &str) -> Result<f64, JsonError> {
    match json {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| field_error(path, format!("{n} is not a valid number"))),
        Json::String(s) => parse_float_text(s).ok_or_else(|| {
            field_error(
                path,
                format!("expected a number or \"Infinity\", found the string \"{s}\""),
            )
        }),
        other => Err(field_error(
            path,
            format!("expected a number, found {}", type_name(other)),
        )),
    }
}

/// Mesos parses doubles from strings with stout's numify: accept the spellings
/// clients actually send.
fn parse_float_text(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        _ => t.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

trait JsonInteger: Sized + std::str::FromStr + TryFrom<i64> + TryFrom<u64> + std::fmt::Display {
    const NAME: &'static str;
}
impl JsonInteger for i64 {
    const NAME: &'static str = "64-bit signed integer";
}
impl JsonInteger for u64 {
    const NAME: &'static str = "64-bit unsigned integer";
}

fn decode_integer<T: JsonInteger>(json: &Json, path: &str) -> Result<T, JsonError> {
    let out_of_range = |shown: &dyn std::fmt::Display| {
        field_error(path, format!("{shown} is not a valid {}", T::NAME))
    };
    match json {
        Json::Number(n) => {
            if let Some(u) = n.as_u64() {
                T::try_from(u).map_err(|_| out_of_range(n))
            } else if let Some(i) = n.as_i64() {
                T::try_from(i).map_err(|_| out_of_range(n))
            } else {
                // 1e3 or 5.0: accept integral values that fit exactly.
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                    T::try_from(f as i64).map_err(|_| out_of_range(n))
                } else {
                    Err(out_of_range(n))
                }
            }
        }
        Json::String(s) => s.trim().parse::<T>().map_err(|_| {
            field_error(
                path,
                format!("expected a {}, found the string \"{s}\"", T::NAME),
            )
        }),
        other => Err(field_error(
            path,
            format!("expected a {}, found {}", T::NAME, type_name(other)),
        )),
    }
}

fn decode_base64(s: &str, path: &str) -> Result<Vec<u8>, JsonError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let trimmed = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(trimmed).ok())
        .ok_or_else(|| field_error(path, "expected base64-encoded bytes"))
}

fn decode_enum(
    json: &Json,
    desc: &EnumDescriptor,
    required: bool,
    path: &str,
) -> Result<Option<Value>, JsonError> {
    let found = match json {
        Json::String(name) => desc.get_value_by_name(name).map(|v| v.number()),
        Json::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| desc.get_value(*n).is_some()),
        other => {
            return Err(field_error(
                path,
                format!(
                    "expected an enum name of {}, found {}",
                    desc.full_name(),
                    type_name(other)
                ),
            ));
        }
    };
    match found {
        Some(number) => Ok(Some(Value::EnumNumber(number))),
        // A newer peer may send values we do not know: drop them where the
        // schema allows absence, like proto2 does with unknown enum values.
        None if !required => Ok(None),
        None => {
            let names: Vec<String> = desc.values().map(|v| v.name().to_string()).collect();
            Err(field_error(
                path,
                format!(
                    "unknown enum name {json} for {} (expected one of {})",
                    desc.full_name(),
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Fails with the path of the first required field that is missing, walking
/// into nested messages, lists and maps.
pub(crate) fn check_required(msg: &DynamicMessage, path: &str) -> Result<(), JsonError> {
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    for field in msg.descriptor().fields() {
        if field.cardinality() == Cardinality::Required && !msg.has_field(&field) {
            return Err(field_error(
                &join(field.name()),
                "required field is missing",
            ));
        }
        if !msg.has_field(&field) || !matches!(field.kind(), Kind::Message(_)) {
            continue;
        }
        match msg.get_field(&field).as_ref() {
            Value::Message(inner) => check_required(inner, &join(field.name()))?,
            Value::List(items) => {
                for (idx, item) in items.iter().enumerate() {
                    if let Value::Message(inner) = item {
                        check_required(inner, &format!("{}[{idx}]", join(field.name())))?;
                    }
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    if let Value::Message(inner) = item {
                        check_required(
                            inner,
                            &format!("{}.{}", join(field.name()), key_text(key)),
                        )?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn key_text(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}
