//! Every way a role, a value, a resource or a flag can be wrong.
//!
//! Errors carry what an operator needs to fix their input: the offending token
//! and its byte offset for text, the field path for structured resources, the
//! array index for JSON. None of them carry `std::io::Error` or other non-`Eq`
//! payloads, so callers can compare them in tests and clone them into replies.

use std::fmt;

use crate::json::JsonError;

/// Why a role name is not acceptable to Mesos (`roles.cpp`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("role names cannot be the empty string")]
    Empty,
    #[error("role '{0}' cannot start with a slash")]
    LeadingSlash(String),
    #[error("role '{0}' cannot end with a slash")]
    TrailingSlash(String),
    #[error("role '{0}' cannot contain two adjacent slashes")]
    DoubleSlash(String),
    /// `.`, `..` and `*` would be ambiguous in paths and in the role tree.
    #[error("role '{role}' cannot include '{component}' as a component")]
    ReservedComponent { role: String, component: String },
    /// A leading dash would read as a command line option.
    #[error("role component '{0}' is invalid because it starts with a dash")]
    LeadingDash(String),
    #[error("role component '{component}' is invalid because it contains {what}")]
    InvalidCharacter {
        component: String,
        what: &'static str,
    },
}

/// Why a value in Mesos's text grammar (`4`, `[1-2,5-9]`, `{a,b}`, `abc`)
/// could not be read. The offset is a byte offset into the whole text that was
/// being parsed (the flag value, not just this value), so it can be shown
/// without re-deriving it; the message itself leaves it out because the
/// enclosing error prints it next to the resource or attribute name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("value is empty")]
    Empty { offset: usize },
    #[error("'{open}' is never closed")]
    Unterminated { offset: usize, open: char },
    #[error("unbalanced '{bracket}'")]
    UnbalancedBracket { offset: usize, bracket: char },
    #[error("unexpected '{found}', expected {expected}")]
    UnexpectedChar {
        offset: usize,
        found: char,
        expected: &'static str,
    },
    #[error("unexpected '{rest}' after the value")]
    Trailing { offset: usize, rest: String },
    #[error("range bound '{token}' is not a non-negative 64-bit integer")]
    InvalidBound { offset: usize, token: String },
    #[error("range [{begin}-{end}] is inverted (begin > end)")]
    InvertedRange { offset: usize, begin: u64, end: u64 },
    #[error("range [{begin}-{end}] overlaps [{other_begin}-{other_end}]")]
    OverlappingRanges {
        offset: usize,
        begin: u64,
        end: u64,
        other_begin: u64,
        other_end: u64,
    },
    #[error("set item '{item}' appears more than once")]
    DuplicateSetItem { offset: usize, item: String },
    #[error("scalar value '{token}' is negative")]
    Negative { offset: usize, token: String },
    #[error("scalar value '{token}' is not a finite number")]
    NotFinite { offset: usize, token: String },
    /// Mesos refuses subnormals rather than silently rounding them to zero.
    #[error("scalar value '{token}' is subnormal")]
    Subnormal { offset: usize, token: String },
    /// Mesos keeps scalars as int64 thousandths; beyond that they would wrap.
    #[error("scalar value '{token}' is too large (at most {max})")]
    TooLarge {
        offset: usize,
        token: String,
        max: i64,
    },
    /// Resources are scalars, ranges or sets; a bare word is only an attribute.
    #[error("'{token}' is not a scalar, a [ranges] or a {{set}}")]
    NotAResourceValue { offset: usize, token: String },
}

impl ValueError {
    /// Byte offset of the offending token in the parsed text.
    pub fn offset(&self) -> usize {
        match self {
            ValueError::Empty { offset }
            | ValueError::Unterminated { offset, .. }
            | ValueError::UnbalancedBracket { offset, .. }
            | ValueError::UnexpectedChar { offset, .. }
            | ValueError::Trailing { offset, .. }
            | ValueError::InvalidBound { offset, .. }
            | ValueError::InvertedRange { offset, .. }
            | ValueError::OverlappingRanges { offset, .. }
            | ValueError::DuplicateSetItem { offset, .. }
            | ValueError::Negative { offset, .. }
            | ValueError::NotFinite { offset, .. }
            | ValueError::Subnormal { offset, .. }
            | ValueError::TooLarge { offset, .. }
            | ValueError::NotAResourceValue { offset, .. } => *offset,
        }
    }
}

/// Why a `Resource` message is not a valid Mesos resource
/// (`Resources::validate`). Each message names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    #[error("field 'name': empty resource name")]
    EmptyName,
    #[error("field 'type': unknown value type {0}")]
    UnknownType(i32),
    /// Resources are never TEXT; only attributes are.
    #[error("field 'type': TEXT is not a resource type")]
    TextType,
    #[error("field '{field}': missing for a {ty} resource")]
    MissingValue {
        ty: &'static str,
        field: &'static str,
    },
    #[error("field '{field}': must not be set for a {ty} resource")]
    UnexpectedValue {
        ty: &'static str,
        field: &'static str,
    },
    #[error("field 'scalar.value': {0} is negative")]
    NegativeScalar(f64),
    #[error("field 'scalar.value': {0} is not a finite number")]
    NonFiniteScalar(f64),
    #[error("field 'scalar.value': {value} is too large (at most {max})")]
    ScalarTooLarge { value: f64, max: i64 },
    #[error("field 'ranges.range[{index}]': begin {begin} is greater than end {end}")]
    InvertedRange { index: usize, begin: u64, end: u64 },
    #[error(
        "field 'ranges.range[{index}]': [{begin}-{end}] overlaps \
         [{other_begin}-{other_end}] at 'ranges.range[{other_index}]'"
    )]
    OverlappingRanges {
        index: usize,
        begin: u64,
        end: u64,
        other_index: usize,
        other_begin: u64,
        other_end: u64,
    },
    #[error("field 'set.item[{index}]': '{item}' appears more than once")]
    DuplicateSetItem { index: usize, item: String },
    #[error("field 'disk': DiskInfo is only allowed on 'disk' resources, not '{0}'")]
    DiskInfoNotOnDisk(String),
    #[error("field 'disk.source.type': UNKNOWN is not a supported disk source type")]
    UnknownDiskSource,
    #[error("field 'disk.source.{field}': must not be set for a {ty} disk source")]
    DiskSourceField {
        field: &'static str,
        ty: &'static str,
    },
    #[error("field '{field}': {source}")]
    InvalidRole {
        field: String,
        #[source]
        source: RoleError,
    },
    #[error("field 'reservations[{index}].type': must be set")]
    ReservationTypeMissing { index: usize },
    #[error("field 'reservations[{index}].type': UNKNOWN is not a reservation type")]
    ReservationTypeUnknown { index: usize },
    #[error("field 'reservations[{index}].role': must be set")]
    ReservationRoleMissing { index: usize },
    #[error("field 'reservations[{index}].role': role '*' cannot be reserved")]
    StarReserved { index: usize },
    #[error("field 'reservations[{index}].type': a refined reservation cannot be STATIC")]
    StaticRefinement { index: usize },
    #[error("field 'reservations[{index}].role': '{role}' is not a refinement of '{ancestor}'")]
    NotARefinement {
        index: usize,
        role: String,
        ancestor: String,
    },
    #[error("field 'reservation.{field}': must not be set in the legacy 'reservation' field")]
    LegacyReservationField { field: &'static str },
    #[error("field 'reservation': role '*' cannot be dynamically reserved")]
    StarDynamicallyReserved,
    #[error("field 'role': '{role}' does not match '{reserved}' in 'reservations[0].role'")]
    LegacyRoleMismatch { role: String, reserved: String },
    #[error("field 'reservation': must not be set when the single reservation is STATIC")]
    LegacyReservationOnStatic,
    #[error(
        "fields 'role' and 'reservation': must be both set or both unset when the \
         single reservation is DYNAMIC"
    )]
    LegacyFieldsInconsistent,
    #[error("field 'reservation.{field}': does not match 'reservations[0].{field}'")]
    LegacyReservationMismatch { field: &'static str },
    #[error("field '{field}': must not be set with more than one reservation")]
    LegacyFieldWithRefinement { field: &'static str },
    #[error("field 'shared': resource '{0}' cannot be shared, only disk can")]
    SharedNotDisk(String),
    #[error("field 'shared': only persistent volumes can be shared")]
    SharedNotPersistentVolume,
}

/// Where in a `--resources` value a resource came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Byte offset of the entry in the text form.
    Offset(usize),
    /// Index of the element in the JSON array form.
    Index(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Offset(offset) => write!(f, "at offset {offset}"),
            Location::Index(index) => write!(f, "at index {index}"),
        }
    }
}

/// Why a `--resources` value could not be read, or a collection operation
/// could not be carried out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourcesError {
    #[error("entry '{entry}' at offset {offset}: missing ':' between name and value")]
    MissingColon { entry: String, offset: usize },
    #[error("entry '{entry}' at offset {offset}: unexpected second ':'")]
    ExtraColon { entry: String, offset: usize },
    #[error("entry '{entry}' at offset {offset}: empty resource name")]
    EmptyName { entry: String, offset: usize },
    #[error("resource '{name}' at offset {offset}: unbalanced parentheses around the role")]
    UnbalancedParens { name: String, offset: usize },
    #[error("resource '{name}' at offset {offset}: unexpected '{rest}' after the role")]
    AfterRole {
        name: String,
        offset: usize,
        rest: String,
    },
    #[error("resource '{name}' at offset {offset}: invalid role: {source}")]
    InvalidRole {
        name: String,
        offset: usize,
        #[source]
        source: RoleError,
    },
    #[error("invalid default role: {0}")]
    InvalidDefaultRole(#[source] RoleError),
    #[error("resource '{name}' at offset {offset}: {source}")]
    Value {
        name: String,
        offset: usize,
        #[source]
        source: ValueError,
    },
    #[error("resource '{name}' {at}: {source}")]
    Invalid {
        name: String,
        at: Location,
        #[source]
        source: ValidationError,
    },
    #[error("resources JSON: {0}")]
    JsonSyntax(String),
    #[error("resources JSON: element {index}: {source}")]
    Json {
        index: usize,
        #[source]
        source: JsonError,
    },
    #[error(
        "resource '{name}' {at}: type {ty} conflicts with type {earlier} of the same name earlier"
    )]
    MixedTypes {
        name: String,
        at: Location,
        ty: &'static str,
        earlier: &'static str,
    },
    #[error("resource '{name}' {at}: persistent volumes cannot be given on the command line")]
    PersistentVolumeOnCommandLine { name: String, at: Location },
    #[error("resource '{name}' {at}: revocable resources cannot be given on the command line")]
    RevocableOnCommandLine { name: String, at: Location },
    #[error("resource '{name}' {at}: dynamic reservations cannot be given on the command line")]
    DynamicReservationOnCommandLine { name: String, at: Location },
    #[error("cannot read resources file '{path}': {message}")]
    ReadFile { path: String, message: String },
    #[error("in file '{path}': {source}")]
    InFile {
        path: String,
        #[source]
        source: Box<ResourcesError>,
    },
    #[error("resource '{resource}' is invalid: {source}")]
    InvalidResource {
        resource: String,
        #[source]
        source: ValidationError,
    },
    #[error("resource '{0}' has no reservation to pop")]
    NotReserved(String),
    #[error("invalid role '{role}': {source}")]
    Role {
        role: String,
        #[source]
        source: RoleError,
    },
}

/// Why an `--attributes` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributesError {
    #[error("entry '{entry}' at offset {offset}: missing ':' between name and value")]
    MissingColon { entry: String, offset: usize },
    #[error("entry '{entry}' at offset {offset}: empty attribute name")]
    EmptyName { entry: String, offset: usize },
    #[error("attribute '{name}' at offset {offset}: empty value")]
    EmptyValue { name: String, offset: usize },
    #[error("attribute '{name}' at offset {offset}: {source}")]
    Value {
        name: String,
        offset: usize,
        #[source]
        source: ValueError,
    },
    /// Mesos's attributes.cpp aborts on sets; we refuse them instead.
    #[error("attribute '{name}' at offset {offset}: sets are not supported for attributes")]
    SetUnsupported { name: String, offset: usize },
}
