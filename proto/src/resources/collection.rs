//! `Resources`: a bag of resources kept in Mesos's normalized form, with the
//! arithmetic the allocator and the agent do on it.
//!
//! Invariants, held by every constructor and operation:
//! - every element passes [`validate`] and is in the post-refinement format
//!   (legacy `role`/`reservation` unset);
//! - no element is empty (zero scalars, no ranges, no items are dropped);
//! - no two non-shared elements are [`addable`]: equal identities are merged,
//!   so `cpus:1 + cpus:2` is one `cpus:3`;
//! - quantities are canonical: scalars rounded to thousandths, ranges
//!   normalized;
//! - a shared resource (a shared persistent volume) appears once per holder,
//!   which is how Mesos's shared counters are represented here, and is why
//!   converting to a `Vec<Resource>` and back preserves counts.
//!
//! As in Mesos, `+=`/`-=` with a single `Resource` silently ignore invalid
//! input (use [`Resources::try_add`] to be told), and subtracting more than
//! there is removes the resource rather than going negative.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Add, AddAssign, Sub, SubAssign};

use super::display::DisplayResource;
use super::error::{ResourcesError, ValidationError};
use super::reservation::{static_reservation, to_post_refinement};
use super::resource::{
    ResourceExt, add_quantity, addable, canonicalize, resource_contains, resource_eq,
    subtract_quantity, subtractable,
};
use super::role;
use super::scalar;
use super::validate::validate;
use crate::v1::Resource;
use crate::v1::resource::{AllocationInfo, ReservationInfo};
use crate::v1::value::{Ranges, Scalar, Set, Type};

/// A normalized collection of Mesos resources.
#[derive(Debug, Clone, Default)]
pub struct Resources(Vec<Resource>);

impl Resources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a collection, failing on the first invalid resource instead of
    /// dropping it as `From`/`collect` do. Legacy-format resources are
    /// converted; empty ones are dropped.
    pub fn try_from_resources(
        resources: impl IntoIterator<Item = Resource>,
    ) -> Result<Self, ResourcesError> {
        let mut out = Self::new();
        for resource in resources {
            if let Err(source) = validate(&resource) {
                return Err(ResourcesError::InvalidResource {
                    resource: DisplayResource(&resource).to_string(),
                    source,
                });
            }
            out.add_converted(resource);
        }
        Ok(out)
    }

    /// Adds one resource, converting it from the legacy format if needed, or
    /// says why it is invalid.
    pub fn try_add(&mut self, resource: Resource) -> Result<(), ValidationError> {
        validate(&resource)?;
        self.add_converted(resource);
        Ok(())
    }

    /// Adds a valid resource that may still be in the legacy format.
    fn add_converted(&mut self, mut resource: Resource) {
        to_post_refinement(&mut resource);
        self.add_valid(resource);
    }

    /// Number of elements (a shared resource counts once per holder).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Resource] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Resource> {
        self.0
    }

    /// Adds a resource known to be valid and in the post-refinement format.
    pub(crate) fn add_valid(&mut self, mut resource: Resource) {
        if resource.is_empty() {
            return;
        }
        canonicalize(&mut resource);
        match self.0.iter_mut().find(|mine| addable(mine, &resource)) {
            Some(mine) => add_quantity(mine, &resource),
            None => self.0.push(resource),
        }
    }

    /// Takes out a resource known to be valid and in the post-refinement
    /// format. Only the first subtractable element is touched, as in Mesos.
    fn subtract_valid(&mut self, resource: &Resource) {
        if resource.is_empty() {
            return;
        }
        let Some(index) = self.0.iter().position(|mine| subtractable(mine, resource)) else {
            return;
        };
        if resource.is_shared() {
            // One holder fewer.
            self.0.remove(index);
            return;
        }
        let mine = &mut self.0[index];
        subtract_quantity(mine, resource);
        let negative = mine.scalar.as_ref().is_some_and(|s| s.value < 0.0);
        if negative || mine.is_empty() {
            self.0.remove(index);
        }
    }

    /// Rebuilds from elements that may have become addable to one another.
    fn rebuilt(resources: impl IntoIterator<Item = Resource>) -> Self {
        let mut out = Self::new();
        for resource in resources {
            out.add_valid(resource);
        }
        out
    }

    /// `true` if `self` holds everything in `that`.
    pub fn contains(&self, that: &Resources) -> bool {
        let mut remaining = self.clone();
        for resource in &that.0 {
            if !remaining
                .0
                .iter()
                .any(|mine| resource_contains(mine, resource))
            {
                return false;
            }
            // Taking it out makes unique resources (volumes, exclusive disks,
            // shared holders) count: two of them need two in `self`.
            remaining.subtract_valid(resource);
        }
        true
    }

    /// `true` if `self` holds `resource`; invalid resources are never held.
    pub fn contains_resource(&self, resource: &Resource) -> bool {
        let mut resource = resource.clone();
        if validate(&resource).is_err() {
            return false;
        }
        to_post_refinement(&mut resource);
        resource.is_empty() || self.0.iter().any(|mine| resource_contains(mine, &resource))
    }

    /// How many holders of `resource` there are: the shared count for a
    /// shared resource, otherwise 1 if an equal resource is here.
    pub fn count(&self, resource: &Resource) -> usize {
        let equal = self.0.iter().filter(|mine| resource_eq(mine, resource));
        if resource.is_shared() {
            equal.count()
        } else {
            usize::from(equal.count() > 0)
        }
    }

    /// The resources for which `predicate` holds.
    pub fn filter(&self, mut predicate: impl FnMut(&Resource) -> bool) -> Resources {
        // A subset of a normalized collection is normalized.
        Resources(self.0.iter().filter(|r| predicate(r)).cloned().collect())
    }

    /// Reserved resources: all of them, or those reserved to exactly `role`.
    pub fn reserved(&self, role: Option<&str>) -> Resources {
        self.filter(|r| r.is_reserved(role))
    }

    pub fn unreserved(&self) -> Resources {
        self.filter(ResourceExt::is_unreserved)
    }

    /// What a framework in `role` may be offered: unreserved resources and
    /// those reserved to `role` or an ancestor.
    pub fn allocatable_to(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocatable_to(role))
    }

    pub fn reserved_to_role_subtree(&self, role: &str) -> Resources {
        self.filter(|r| r.is_reserved_to_role_subtree(role))
    }

    /// Resources allocated to exactly `role`.
    pub fn allocated_to(&self, role: &str) -> Resources {
        self.filter(|r| r.allocation_role() == Some(role))
    }

    pub fn allocated_to_role_subtree(&self, role: &str) -> Resources {
        self.filter(|r| r.is_allocated_to_role_subtree(role))
    }

    pub fn revocable(&self) -> Resources {
        self.filter(ResourceExt::is_revocable)
    }

    pub fn non_revocable(&self) -> Resources {
        self.filter(|r| !r.is_revocable())
    }

    pub fn shared(&self) -> Resources {
        self.filter(ResourceExt::is_shared)
    }

    pub fn non_shared(&self) -> Resources {
        self.filter(|r| !r.is_shared())
    }

    pub fn persistent_volumes(&self) -> Resources {
        self.filter(ResourceExt::is_persistent_volume)
    }

    /// The resources named `name`.
    pub fn get(&self, name: &str) -> Resources {
        self.filter(|r| r.name == name)
    }

    pub fn scalars(&self) -> Resources {
        self.filter(|r| r.r#type == Type::Scalar as i32)
    }

    /// Reserved resources grouped by the role they are reserved to.
    pub fn reservations(&self) -> BTreeMap<String, Resources> {
        let mut out: BTreeMap<String, Resources> = BTreeMap::new();
        for r in &self.0 {
            if let Some(role) = r.reservation_role() {
                out.entry(role.to_string()).or_default().0.push(r.clone());
            }
        }
        out
    }

    /// Allocated resources grouped by the role they are allocated to;
    /// unallocated ones are left out.
    pub fn allocations(&self) -> BTreeMap<String, Resources> {
        let mut out: BTreeMap<String, Resources> = BTreeMap::new();
        for r in &self.0 {
            if let Some(role) = r.allocation_role() {
                out.entry(role.to_string()).or_default().0.push(r.clone());
            }
        }
        out
    }

    /// Marks every resource as allocated to `role`.
    pub fn allocate(&mut self, role: &str) {
        let all = std::mem::take(&mut self.0);
        *self = Self::rebuilt(all.into_iter().map(|mut r| {
            r.allocation_info = Some(AllocationInfo {
                role: Some(role.to_string()),
            });
            r
        }));
    }

    /// Clears every allocation.
    pub fn unallocate(&mut self) {
        let all = std::mem::take(&mut self.0);
        *self = Self::rebuilt(all.into_iter().map(|mut r| {
            r.allocation_info = None;
            r
        }));
    }

    /// Pushes `reservation` on every resource's stack (a RESERVE, or a
    /// refinement of an existing reservation).
    pub fn push_reservation(
        &self,
        reservation: &ReservationInfo,
    ) -> Result<Resources, ResourcesError> {
        let mut out = Resources::new();
        for r in &self.0 {
            let mut r = r.clone();
            r.reservations.push(reservation.clone());
            if let Err(source) = validate(&r) {
                return Err(ResourcesError::InvalidResource {
                    resource: DisplayResource(&r).to_string(),
                    source,
                });
            }
            out.add_valid(r);
        }
        Ok(out)
    }

    /// Pops the top reservation off every resource's stack (an UNRESERVE);
    /// fails if any resource is unreserved.
    pub fn pop_reservation(&self) -> Result<Resources, ResourcesError> {
        let mut out = Resources::new();
        for r in &self.0 {
            let mut r = r.clone();
            if r.reservations.pop().is_none() {
                return Err(ResourcesError::NotReserved(DisplayResource(&r).to_string()));
            }
            out.add_valid(r);
        }
        Ok(out)
    }

    /// Drops every reservation.
    pub fn to_unreserved(&self) -> Resources {
        Self::rebuilt(self.0.iter().cloned().map(|mut r| {
            r.reservations.clear();
            r
        }))
    }

    /// Replaces every reservation stack by a single STATIC reservation to
    /// `role`, or by none for `*`: what an agent offers when told its
    /// resources all belong to one role.
    pub fn flatten(&self, role: &str) -> Result<Resources, ResourcesError> {
        role::validate(role).map_err(|source| ResourcesError::Role {
            role: role.to_string(),
            source,
        })?;
        if role == role::STAR {
            return Ok(self.to_unreserved());
        }
        Ok(Self::rebuilt(self.0.iter().cloned().map(|mut r| {
            r.reservations = vec![static_reservation(role)];
            r
        })))
    }

    /// Scalars reduced to name, type and quantity (Mesos's
    /// `createStrippedScalarQuantity`), for quota and sorter arithmetic.
    pub fn stripped_scalar_quantity(&self) -> Resources {
        Self::rebuilt(self.0.iter().filter_map(|r| {
            let value = r.scalar.as_ref()?.value;
            (r.r#type == Type::Scalar as i32).then(|| Resource {
                name: r.name.clone(),
                r#type: Type::Scalar as i32,
                scalar: Some(Scalar { value }),
                ..Default::default()
            })
        }))
    }

    /// The total of the scalar resources named `name`, across roles and
    /// reservations, or `None` if there are none.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        let mut fixed: Option<i64> = None;
        for r in self.typed(name, Type::Scalar) {
            let value = scalar::to_fixed(r.scalar.as_ref().map_or(0.0, |s| s.value));
            fixed = Some(fixed.unwrap_or(0).saturating_add(value));
        }
        fixed.map(scalar::from_fixed)
    }

    /// The union of the range resources named `name`, or `None`.
    pub fn ranges(&self, name: &str) -> Option<Ranges> {
        self.typed(name, Type::Ranges)
            .filter_map(|r| r.ranges.as_ref())
            .fold(None, |acc: Option<Ranges>, r| {
                Some(match acc {
                    Some(acc) => super::ranges::add(&acc, r),
                    None => super::ranges::normalize(r),
                })
            })
    }

    /// The union of the set resources named `name`, or `None`.
    pub fn set(&self, name: &str) -> Option<Set> {
        self.typed(name, Type::Set)
            .filter_map(|r| r.set.as_ref())
            .fold(None, |acc: Option<Set>, s| {
                Some(match acc {
                    Some(acc) => super::set::add(&acc, s),
                    None => s.clone(),
                })
            })
    }

    fn typed(&self, name: &str, ty: Type) -> impl Iterator<Item = &Resource> {
        self.0
            .iter()
            .filter(move |r| r.name == name && r.r#type == ty as i32)
    }

    pub fn cpus(&self) -> Option<f64> {
        self.scalar("cpus")
    }

    pub fn gpus(&self) -> Option<f64> {
        self.scalar("gpus")
    }

    /// Memory in megabytes (Mesos's unit for `mem`).
    pub fn mem(&self) -> Option<f64> {
        self.scalar("mem")
    }

    /// Disk in megabytes (Mesos's unit for `disk`).
    pub fn disk(&self) -> Option<f64> {
        self.scalar("disk")
    }

    pub fn ports(&self) -> Option<Ranges> {
        self.ranges("ports")
    }

    pub fn ephemeral_ports(&self) -> Option<Ranges> {
        self.ranges("ephemeral_ports")
    }

    /// The distinct resource names.
    pub fn names(&self) -> BTreeSet<String> {
        self.0.iter().map(|r| r.name.clone()).collect()
    }

    /// The value type of each name.
    pub fn types(&self) -> BTreeMap<String, Type> {
        self.0
            .iter()
            .filter_map(|r| Some((r.name.clone(), r.value_type()?)))
            .collect()
    }
}

/// Equal when each contains the other: order, and how quantities are split
/// across elements, do not matter.
impl PartialEq for Resources {
    fn eq(&self, other: &Self) -> bool {
        self.contains(other) && other.contains(self)
    }
}

/// Keeps the valid resources, as Mesos's constructors do; see
/// [`Resources::try_from_resources`] for the strict version.
impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Self {
        let mut out = Resources::new();
        out.extend(iter);
        out
    }
}

impl Extend<Resource> for Resources {
    fn extend<I: IntoIterator<Item = Resource>>(&mut self, iter: I) {
        for resource in iter {
            *self += resource;
        }
    }
}

impl From<Vec<Resource>> for Resources {
    fn from(resources: Vec<Resource>) -> Self {
        resources.into_iter().collect()
    }
}

impl From<Resource> for Resources {
    fn from(resource: Resource) -> Self {
        std::iter::once(resource).collect()
    }
}

impl From<Resources> for Vec<Resource> {
    fn from(resources: Resources) -> Self {
        resources.0
    }
}

impl AsRef<[Resource]> for Resources {
    fn as_ref(&self) -> &[Resource] {
        &self.0
    }
}

impl IntoIterator for Resources {
    type Item = Resource;
    type IntoIter = std::vec::IntoIter<Resource>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Resources {
    type Item = &'a Resource;
    type IntoIter = std::slice::Iter<'a, Resource>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Ignores an invalid resource, as Mesos does.
impl AddAssign<Resource> for Resources {
    fn add_assign(&mut self, resource: Resource) {
        let _ = self.try_add(resource);
    }
}

impl AddAssign<&Resource> for Resources {
    fn add_assign(&mut self, resource: &Resource) {
        *self += resource.clone();
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, other: &Resources) {
        for resource in &other.0 {
            self.add_valid(resource.clone());
        }
    }
}

impl AddAssign<Resources> for Resources {
    fn add_assign(&mut self, other: Resources) {
        for resource in other.0 {
            self.add_valid(resource);
        }
    }
}

/// Ignores an invalid resource, as Mesos does.
impl SubAssign<&Resource> for Resources {
    fn sub_assign(&mut self, resource: &Resource) {
        if validate(resource).is_ok() {
            let mut resource = resource.clone();
            to_post_refinement(&mut resource);
            self.subtract_valid(&resource);
        }
    }
}

impl SubAssign<Resource> for Resources {
    fn sub_assign(&mut self, resource: Resource) {
        *self -= &resource;
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, other: &Resources) {
        for resource in &other.0 {
            self.subtract_valid(resource);
        }
    }
}

impl SubAssign<Resources> for Resources {
    fn sub_assign(&mut self, other: Resources) {
        *self -= &other;
    }
}

macro_rules! binary_ops {
    ($($rhs:ty),*) => {$(
        impl Add<$rhs> for Resources {
            type Output = Resources;
            fn add(mut self, rhs: $rhs) -> Resources {
                self += rhs;
                self
            }
        }

        impl Add<$rhs> for &Resources {
            type Output = Resources;
            fn add(self, rhs: $rhs) -> Resources {
                self.clone() + rhs
            }
        }

        impl Sub<$rhs> for Resources {
            type Output = Resources;
            fn sub(mut self, rhs: $rhs) -> Resources {
                self -= rhs;
                self
            }
        }

        impl Sub<$rhs> for &Resources {
            type Output = Resources;
            fn sub(self, rhs: $rhs) -> Resources {
                self.clone() - rhs
            }
        }
    )*};
}

binary_ops!(Resources, &Resources, Resource, &Resource);

#[cfg(test)]
mod tests;
