//! The agent's `--resources` flag: Mesos's text form, its JSON form, or a
//! `file://` path holding either (`Resources::parse` and flag loading in
//! Mesos).
//!
//! ```text
//! resources := entry ( ";" entry )*
//! entry     := name ( "(" role ")" )? ":" value      (see `value.rs`)
//! ```
//!
//! Whitespace around names, roles, values and separators is ignored, and so
//! are empty entries (`cpus:1;;mem:2;`). A resource without a role gets the
//! default role; `*` means unreserved, any other role a STATIC reservation.
//! Entries with the same name and role are summed, as Mesos does.
//!
//! The JSON form is an array of `Resource` objects in Mesos's JSON mapping,
//! in either reservation format. As in Mesos, resources given on the command
//! line may not be persistent volumes, revocable or dynamically reserved, and
//! one name may not be given two types.

use std::collections::HashMap;

use super::collection::Resources;
use super::error::{Location, ResourcesError, ValueError};
use super::reservation::{static_reservation, to_post_refinement};
use super::resource::ResourceExt;
use super::role;
use super::validate::validate;
use super::value::{self, RawValue};
use crate::v1::Resource;
use crate::v1::value::{Scalar, Type};

/// Parses a `--resources` value: JSON if it starts with `[`, otherwise the
/// text form. Resources without a role are given `default_role` (`*` for
/// unreserved).
pub fn parse_resources(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    role::validate(default_role).map_err(ResourcesError::InvalidDefaultRole)?;
    // No text entry can start with '[', so a bracket means JSON: reporting a
    // JSON syntax error beats Mesos's fallback to a confusing text error.
    if text.trim_start().starts_with('[') {
        parse_json(text, default_role)
    } else {
        parse_text(text, default_role)
    }
}

/// Parses a `--resources` flag value, first reading the file if the value is
/// `file:///path` (as Mesos's flags allow for every flag).
///
/// This is the one place the proto crate touches the filesystem: the flag's
/// meaning includes the indirection, and every daemon that takes
/// `--resources` should resolve it the same way. Errors found in the file's
/// contents are wrapped with its path; their offsets are into the file.
pub fn parse_resources_flag(value: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    let Some(path) = value.strip_prefix("file://") else {
        return parse_resources(value, default_role);
    };
    let contents = std::fs::read_to_string(path).map_err(|e| ResourcesError::ReadFile {
        path: path.to_string(),
        message: e.to_string(),
    })?;
    parse_resources(&contents, default_role).map_err(|e| ResourcesError::InFile {
        path: path.to_string(),
        source: Box::new(e),
    })
}

/// Catches one name given two types (`cpus:1;cpus:[1-2]`), which would make
/// `Resources::cpus()` and friends ambiguous.
#[derive(Default)]
struct TypesSeen(HashMap<String, Type>);

impl TypesSeen {
    fn check(&mut self, resource: &Resource, at: Location) -> Result<(), ResourcesError> {
        let Some(ty) = resource.value_type() else {
            return Ok(());
        };
        match self.0.get(&resource.name) {
            Some(&earlier) if earlier != ty => Err(ResourcesError::MixedTypes {
                name: resource.name.clone(),
                at,
                ty: ty.as_str_name(),
                earlier: earlier.as_str_name(),
            }),
            Some(_) => Ok(()),
            None => {
                self.0.insert(resource.name.clone(), ty);
                Ok(())
            }
        }
    }
}

fn parse_text(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    let mut resources = Resources::new();
    let mut types = TypesSeen::default();
    let mut start = 0;
    for raw in text.split(';') {
        let base = start;
        start += raw.len() + 1;
        let leading = raw.len() - raw.trim_start().len();
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let offset = base + leading;
        let resource = parse_entry(entry, offset, default_role)?;
        let at = Location::Offset(offset);
        validate(&resource).map_err(|source| ResourcesError::Invalid {
            name: resource.name.clone(),
            at,
            source,
        })?;
        types.check(&resource, at)?;
        resources.add_valid(resource);
    }
    Ok(resources)
}

/// One `name(role):value` entry, already trimmed, starting at `offset`.
fn parse_entry(entry: &str, offset: usize, default_role: &str) -> Result<Resource, ResourcesError> {
    let Some((key, value_text)) = entry.split_once(':') else {
        return Err(ResourcesError::MissingColon {
            entry: entry.to_string(),
            offset,
        });
    };
    let value_offset = offset + key.len() + 1;
    if let Some(extra) = value_text.find(':') {
        return Err(ResourcesError::ExtraColon {
            entry: entry.to_string(),
            offset: value_offset + extra,
        });
    }
    let (name, role) = parse_key(key, offset, default_role)?;
    if name.is_empty() {
        return Err(ResourcesError::EmptyName {
            entry: entry.to_string(),
            offset,
        });
    }
    let value_error = |source: ValueError| ResourcesError::Value {
        name: name.to_string(),
        offset: source.offset(),
        source,
    };
    let mut resource = Resource {
        name: name.to_string(),
        ..Default::default()
    };
    match value::parse(value_text, value_offset).map_err(value_error)? {
        RawValue::Number {
            value,
            token,
            offset,
        } => {
            let value = value::resource_scalar(value, &token, offset).map_err(value_error)?;
            resource.r#type = Type::Scalar as i32;
            resource.scalar = Some(Scalar { value });
        }
        RawValue::Ranges(ranges) => {
            resource.r#type = Type::Ranges as i32;
            resource.ranges = Some(ranges);
        }
        RawValue::Set(set) => {
            resource.r#type = Type::Set as i32;
            resource.set = Some(set);
        }
        RawValue::Text { text, offset } => {
            return Err(value_error(ValueError::NotAResourceValue {
                offset,
                token: text,
            }));
        }
    }
    if role != role::STAR {
        resource.reservations.push(static_reservation(role));
    }
    Ok(resource)
}

/// Splits `name(role)` into a trimmed name and role.
fn parse_key<'a>(
    key: &'a str,
    offset: usize,
    default_role: &'a str,
) -> Result<(&'a str, &'a str), ResourcesError> {
    let unbalanced = |name: &str| ResourcesError::UnbalancedParens {
        name: name.trim().to_string(),
        offset,
    };
    let Some((name, rest)) = key.split_once('(') else {
        if key.contains(')') {
            return Err(unbalanced(key));
        }
        return Ok((key.trim(), default_role));
    };
    let Some((role, after)) = rest.split_once(')') else {
        return Err(unbalanced(name));
    };
    if name.contains(')') || role.contains('(') {
        return Err(unbalanced(name));
    }
    if !after.trim().is_empty() {
        return Err(ResourcesError::AfterRole {
            name: name.trim().to_string(),
            offset: offset
                + name.len()
                + 1
                + role.len()
                + 1
                + (after.len() - after.trim_start().len()),
            rest: after.trim().to_string(),
        });
    }
    let name = name.trim();
    let role_offset = offset + key.len() - rest.len() + (role.len() - role.trim_start().len());
    let role = role.trim();
    role::validate(role).map_err(|source| ResourcesError::InvalidRole {
        name: name.to_string(),
        offset: role_offset,
        source,
    })?;
    Ok((name, role))
}

#[allow(deprecated)] // Mesos's JSON form still uses the legacy `role` field.
fn parse_json(text: &str, default_role: &str) -> Result<Resources, ResourcesError> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ResourcesError::JsonSyntax(e.to_string()))?;
    let serde_json::Value::Array(elements) = json else {
        return Err(ResourcesError::JsonSyntax(
            "expected an array of resources".to_string(),
        ));
    };
    let mut resources = Resources::new();
    let mut types = TypesSeen::default();
    for (index, element) in elements.iter().enumerate() {
        let at = Location::Index(index);
        let mut resource: Resource = crate::json::from_value(element)
            .map_err(|source| ResourcesError::Json { index, source })?;
        if resource.role.is_none() && resource.reservations.is_empty() {
            resource.role = Some(default_role.to_string());
        }
        validate(&resource).map_err(|source| ResourcesError::Invalid {
            name: resource.name.clone(),
            at,
            source,
        })?;
        to_post_refinement(&mut resource);
        check_command_line(&resource, at)?;
        types.check(&resource, at)?;
        resources.add_valid(resource);
    }
    Ok(resources)
}

/// Mesos's `validateCommandLineResources`: these only come from operations.
fn check_command_line(resource: &Resource, at: Location) -> Result<(), ResourcesError> {
    let name = resource.name.clone();
    if resource.is_persistent_volume() {
        return Err(ResourcesError::PersistentVolumeOnCommandLine { name, at });
    }
    if resource.is_revocable() {
        return Err(ResourcesError::RevocableOnCommandLine { name, at });
    }
    if resource.is_dynamically_reserved() {
        return Err(ResourcesError::DynamicReservationOnCommandLine { name, at });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
