//! The Mesos resource model: scalars, ranges and sets with Mesos's arithmetic,
//! roles and reservation stacks, the [`Resources`] collection the allocator
//! and agent compute with, and the agent's `--resources` and `--attributes`
//! flags.
//!
//! Mesos's C++ (`resources.cpp`, `values.cpp`, `roles.cpp`,
//! `attributes.cpp`) is the specification: frameworks compare our offers
//! with their own copy of that code, so sums, equality, containment and the
//! text forms must come out the same. Where Mesos is silently lenient with
//! malformed input (overlapping or inverted ranges in a flag, NaN or infinite
//! scalars) we refuse it with an error that points at the offending token.
//!
//! Nothing here panics on any input.

mod attributes;
mod collection;
mod display;
mod error;
mod parse;
pub mod ranges;
pub mod reservation;
mod resource;
pub mod role;
pub mod scalar;
pub mod set;
mod validate;
mod value;

pub use attributes::{Attributes, parse_attributes};
pub use collection::Resources;
pub use display::{DisplayAttribute, DisplayResource};
pub use error::{
    AttributesError, Location, ResourcesError, RoleError, ValidationError, ValueError,
};
pub use parse::{parse_resources, parse_resources_flag};
pub use reservation::{
    dynamic_reservation, reservation_eq, static_reservation, to_post_refinement,
};
pub use resource::{
    ResourceExt, addable, resource_contains, resource_eq, same_identity, subtractable,
};
pub use validate::validate;

#[cfg(test)]
mod proptests;
