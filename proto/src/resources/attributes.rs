//! The agent's `--attributes` flag (Mesos's `Attributes::parse`):
//!
//! ```text
//! attributes := attribute ( (";" | newline) attribute )*
//! attribute  := name ":" value                      (see `value.rs`)
//! ```
//!
//! The value's type is decided as in Mesos's `attributes.cpp`: `[a-b,...]` is
//! RANGES, a non-negative finite number is SCALAR, anything else is TEXT
//! (including `-1` and `inf`). Sets are not attributes: Mesos aborts on
//! `{a,b}`, we return an error. Only the first `:` separates name from value,
//! so `url:http://x` is the text `http://x`. Names are trimmed (Mesos keeps
//! their whitespace, which no framework could match on); empty entries are
//! skipped. Attributes may repeat a name, as Mesos allows.

use std::fmt;

use super::display::DisplayAttribute;
use super::error::{AttributesError, ValueError};
use super::value::{self, RawValue};
use super::{ranges, scalar};
use crate::v1::Attribute;
use crate::v1::value::{Scalar, Text, Type};

/// An agent's attributes, in the order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<Attribute>);

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Attribute> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Attribute] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Attribute> {
        self.0
    }

    pub fn push(&mut self, attribute: Attribute) {
        self.0.push(attribute);
    }

    /// The first attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.0.iter().find(|a| a.name == name)
    }

    /// `true` if an attribute with the same name, type and value is here
    /// (scalars at Mesos's precision, ranges as sets of integers).
    pub fn contains(&self, attribute: &Attribute) -> bool {
        self.0.iter().any(|a| attribute_eq(a, attribute))
    }
}

fn attribute_eq(a: &Attribute, b: &Attribute) -> bool {
    if a.name != b.name || a.r#type != b.r#type {
        return false;
    }
    match Type::try_from(a.r#type) {
        Ok(Type::Scalar) => match (&a.scalar, &b.scalar) {
            (Some(x), Some(y)) => scalar::equal(x.value, y.value),
            (x, y) => x.is_none() && y.is_none(),
        },
        Ok(Type::Ranges) => match (&a.ranges, &b.ranges) {
            (Some(x), Some(y)) => ranges::equal(x, y),
            (x, y) => x.is_none() && y.is_none(),
        },
        Ok(Type::Text) => a.text == b.text,
        Ok(Type::Set) => a.set == b.set,
        Err(_) => false,
    }
}

/// `rack=abc; level=10`, each attribute as Mesos prints it.
impl fmt::Display for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, attribute) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}", DisplayAttribute(attribute))?;
        }
        Ok(())
    }
}

impl From<Vec<Attribute>> for Attributes {
    fn from(attributes: Vec<Attribute>) -> Self {
        Self(attributes)
    }
}

impl From<Attributes> for Vec<Attribute> {
    fn from(attributes: Attributes) -> Self {
        attributes.0
    }
}

impl FromIterator<Attribute> for Attributes {
    fn from_iter<I: IntoIterator<Item = Attribute>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl IntoIterator for Attributes {
    type Item = Attribute;
    type IntoIter = std::vec::IntoIter<Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a Attribute;
    type IntoIter = std::slice::Iter<'a, Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Parses an `--attributes` value.
pub fn parse_attributes(text: &str) -> Result<Attributes, AttributesError> {
    let mut attributes = Attributes::new();
    let mut start = 0;
    for raw in text.split([';', '\n']) {
        let base = start;
        start += raw.len() + 1;
        let leading = raw.len() - raw.trim_start().len();
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        attributes.push(parse_entry(entry, base + leading)?);
    }
    Ok(attributes)
}

fn parse_entry(entry: &str, offset: usize) -> Result<Attribute, AttributesError> {
    let Some((name, value_text)) = entry.split_once(':') else {
        return Err(AttributesError::MissingColon {
            entry: entry.to_string(),
            offset,
        });
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(AttributesError::EmptyName {
            entry: entry.to_string(),
            offset,
        });
    }
    let value_offset = offset + entry.len() - value_text.len();
    if value_text.trim().is_empty() {
        return Err(AttributesError::EmptyValue {
            name: name.to_string(),
            offset: value_offset,
        });
    }
    let value_error = |source: ValueError| AttributesError::Value {
        name: name.to_string(),
        offset: source.offset(),
        source,
    };
    let mut attribute = Attribute {
        name: name.to_string(),
        ..Default::default()
    };
    match value::parse(value_text, value_offset).map_err(value_error)? {
        RawValue::Number {
            value,
            token,
            offset,
        } => match value::attribute_scalar(value, &token, offset).map_err(value_error)? {
            Some(value) => {
                attribute.r#type = Type::Scalar as i32;
                attribute.scalar = Some(Scalar { value });
            }
            None => {
                attribute.r#type = Type::Text as i32;
                attribute.text = Some(Text { value: token });
            }
        },
        RawValue::Ranges(ranges) => {
            attribute.r#type = Type::Ranges as i32;
            attribute.ranges = Some(ranges);
        }
        RawValue::Set(_) => {
            return Err(AttributesError::SetUnsupported {
                name: name.to_string(),
                offset: value_offset + (value_text.len() - value_text.trim_start().len()),
            });
        }
        RawValue::Text { text, .. } => {
            attribute.r#type = Type::Text as i32;
            attribute.text = Some(Text { value: text });
        }
    }
    Ok(attribute)
}

#[cfg(test)]
mod tests;
