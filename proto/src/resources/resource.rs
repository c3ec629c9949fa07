//! One `Resource`: what it is (identity), what kind it is (predicates) and how
//! two of the same identity combine.
//!
//! A resource's identity is everything but its quantity: name, type,
//! allocation, reservation stack, disk info, revocability, provider and
//! sharedness. Two resources combine into one only when their identities are
//! equal *and* combining keeps the meaning Mesos gives them (`addable` and
//! `subtractable` in Mesos's `resources.cpp`): a MOUNT disk is indivisible, a
//! persistent volume is unique, a shared volume is counted, not summed.

use super::reservation::{self, labels_eq, reservation_eq};
use super::role;
use super::{ranges, scalar, set};
use crate::v1::Resource;
use crate::v1::resource::disk_info::Source;
use crate::v1::resource::disk_info::source::Type as SourceType;
use crate::v1::resource::reservation_info::Type as ReservationType;
use crate::v1::resource::{AllocationInfo, DiskInfo};
use crate::v1::value::Type;

/// Questions about a single resource, named as in Mesos's `Resources::is*`.
///
/// They assume the post-refinement format (see
/// [`super::reservation::to_post_refinement`]), which every resource inside a
/// [`super::Resources`] is in.
pub trait ResourceExt {
    /// The value type, or `None` for a number outside the enum.
    fn value_type(&self) -> Option<Type>;
    /// The role this resource is reserved to: the top of its stack.
    fn reservation_role(&self) -> Option<&str>;
    /// Reserved at all (`role` is `None`), or reserved to exactly `role`.
    fn is_reserved(&self, role: Option<&str>) -> bool;
    fn is_unreserved(&self) -> bool;
    /// The top of the reservation stack is DYNAMIC.
    fn is_dynamically_reserved(&self) -> bool;
    /// More than one reservation on the stack.
    fn has_refined_reservations(&self) -> bool;
    /// Unreserved, or reserved to `role` or one of its ancestors, so a
    /// framework in `role` may be offered it.
    fn is_allocatable_to(&self, role: &str) -> bool;
    /// Reserved to `role` or one of its descendants.
    fn is_reserved_to_role_subtree(&self, role: &str) -> bool;
    /// The role this resource is allocated to, if any.
    fn allocation_role(&self) -> Option<&str>;
    /// Allocated to `role` or one of its descendants.
    fn is_allocated_to_role_subtree(&self, role: &str) -> bool;
    fn is_revocable(&self) -> bool;
    fn is_shared(&self) -> bool;
    /// A disk with a persistence id.
    fn is_persistent_volume(&self) -> bool;
    /// A disk with a source of the given type.
    fn is_disk(&self, source: SourceType) -> bool;
    fn has_resource_provider(&self) -> bool;
    /// No quantity: zero (at Mesos's precision), no ranges or no items.
    fn is_empty(&self) -> bool;
}

impl ResourceExt for Resource {
    fn value_type(&self) -> Option<Type> {
        Type::try_from(self.r#type).ok()
    }

    fn reservation_role(&self) -> Option<&str> {
        reservation::reservation_role(self)
    }

    fn is_reserved(&self, role: Option<&str>) -> bool {
        match (self.reservation_role(), role) {
            (Some(_), None) => true,
            (Some(reserved), Some(role)) => reserved == role,
            (None, _) => false,
        }
    }

    fn is_unreserved(&self) -> bool {
        self.reservations.is_empty()
    }

    fn is_dynamically_reserved(&self) -> bool {
        self.reservations
            .last()
            .is_some_and(|r| r.r#type() == ReservationType::Dynamic)
    }

    fn has_refined_reservations(&self) -> bool {
        self.reservations.len() > 1
    }

    fn is_allocatable_to(&self, role: &str) -> bool {
        self.reservation_role()
            .is_none_or(|reserved| role::is_in_subtree(role, reserved))
    }

    fn is_reserved_to_role_subtree(&self, role: &str) -> bool {
        self.reservation_role()
            .is_some_and(|reserved| role::is_in_subtree(reserved, role))
    }

    fn allocation_role(&self) -> Option<&str> {
        self.allocation_info.as_ref()?.role.as_deref()
    }

    fn is_allocated_to_role_subtree(&self, role: &str) -> bool {
        self.allocation_role()
            .is_some_and(|allocated| role::is_in_subtree(allocated, role))
    }

    fn is_revocable(&self) -> bool {
        self.revocable.is_some()
    }

    fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    fn is_persistent_volume(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| d.persistence.is_some())
    }

    fn is_disk(&self, source: SourceType) -> bool {
        self.disk
            .as_ref()
            .and_then(|d| d.source.as_ref())
            .is_some_and(|s| s.r#type() == source)
    }

    fn has_resource_provider(&self) -> bool {
        self.provider_id.is_some()
    }

    fn is_empty(&self) -> bool {
        match self.value_type() {
            Some(Type::Scalar) => self
                .scalar
                .as_ref()
                .is_none_or(|s| scalar::is_zero(s.value)),
            Some(Type::Ranges) => self.ranges.as_ref().is_none_or(|r| ranges::count(r) == 0),
            Some(Type::Set) => self.set.as_ref().is_none_or(|s| s.item.is_empty()),
            Some(Type::Text) | None => false,
        }
    }
}

fn allocation_eq(a: Option<&AllocationInfo>, b: Option<&AllocationInfo>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.role == b.role,
        _ => false,
    }
}

fn source_eq(a: &Source, b: &Source) -> bool {
    a.r#type() == b.r#type()
        && a.path == b.path
        && a.mount == b.mount
        && a.vendor == b.vendor
        && a.id == b.id
        && labels_eq(a.metadata.as_ref(), b.metadata.as_ref())
        && a.profile == b.profile
}

/// Mesos's `DiskInfo` equality. The `volume` is deliberately ignored: it says
/// how a task mounts the disk this time, not what the disk is. So is the
/// persistence principal: it records who created the volume, not which.
fn disk_eq(a: &DiskInfo, b: &DiskInfo) -> bool {
    let sources = match (&a.source, &b.source) {
        (None, None) => true,
        (Some(a), Some(b)) => source_eq(a, b),
        _ => false,
    };
    let persistence = match (&a.persistence, &b.persistence) {
        (None, None) => true,
        (Some(a), Some(b)) => a.id == b.id,
        _ => false,
    };
    sources && persistence
}

/// Everything but the quantity is equal (Mesos's `operator==` minus values).
pub fn same_identity(a: &Resource, b: &Resource) -> bool {
    a.name == b.name
        && a.r#type == b.r#type
        && allocation_eq(a.allocation_info.as_ref(), b.allocation_info.as_ref())
        && a.reservations.len() == b.reservations.len()
        && a.reservations
            .iter()
            .zip(&b.reservations)
            .all(|(x, y)| reservation_eq(x, y))
        && match (&a.disk, &b.disk) {
            (None, None) => true,
            (Some(x), Some(y)) => disk_eq(x, y),
            _ => false,
        }
        && a.revocable.is_some() == b.revocable.is_some()
        && a.provider_id == b.provider_id
        && a.shared.is_some() == b.shared.is_some()
}

/// Mesos's resource equality: same identity and the same quantity, with
/// scalars compared at Mesos's precision and ranges and sets as sets.
pub fn resource_eq(a: &Resource, b: &Resource) -> bool {
    same_identity(a, b) && values_eq(a, b)
}

fn values_eq(a: &Resource, b: &Resource) -> bool {
    match a.value_type() {
        Some(Type::Scalar) => scalar::equal(scalar_of(a), scalar_of(b)),
        Some(Type::Ranges) => ranges::equal(&ranges_of(a), &ranges_of(b)),
        Some(Type::Set) => set::equal(&set_of(a), &set_of(b)),
        Some(Type::Text) | None => false,
    }
}

fn scalar_of(r: &Resource) -> f64 {
    r.scalar.as_ref().map_or(0.0, |s| s.value)
}

fn ranges_of(r: &Resource) -> std::borrow::Cow<'_, crate::v1::value::Ranges> {
    r.ranges
        .as_ref()
        .map_or_else(Default::default, std::borrow::Cow::Borrowed)
}

fn set_of(r: &Resource) -> std::borrow::Cow<'_, crate::v1::value::Set> {
    r.set
        .as_ref()
        .map_or_else(Default::default, std::borrow::Cow::Borrowed)
}

/// The disk-specific part of `addable`/`subtractable`, given equal identities.
/// `exact` says whether the two resources are equal including quantity, which
/// is the only way exclusive disks may be subtracted.
fn disk_allows(r: &Resource, exact: bool) -> bool {
    let Some(disk) = &r.disk else {
        return true;
    };
    if let Some(source) = &disk.source {
        match source.r#type() {
            SourceType::Path => {}
            // Exclusive disks: merging two would defeat the exclusivity.
            SourceType::Mount | SourceType::Block => {
                if !exact {
                    return false;
                }
            }
            // A RAW disk with an id is a specific device.
            SourceType::Raw => {
                if source.id.is_some() && !exact {
                    return false;
                }
            }
            SourceType::Unknown => return false,
        }
    }
    // A persistent volume is unique; only an identical one cancels it.
    disk.persistence.is_none() || exact
}

/// Can `a` and `b` be summed into one resource? (Mesos's `addable`.)
pub fn addable(a: &Resource, b: &Resource) -> bool {
    if a.is_shared() || b.is_shared() {
        // Shared resources are counted by `Resources`, never summed.
        return false;
    }
    same_identity(a, b) && disk_allows(a, false)
}

/// Can `b` be taken out of `a`, leaving one resource? (Mesos's
/// `subtractable`.) Set and range differences are well defined even when `b`
/// is not contained in `a`.
pub fn subtractable(a: &Resource, b: &Resource) -> bool {
    if a.is_shared() || b.is_shared() {
        return a.is_shared() && b.is_shared() && resource_eq(a, b);
    }
    same_identity(a, b) && disk_allows(a, resource_eq(a, b))
}

/// Does `outer` hold all of `inner`? (Mesos's free `contains`.)
pub fn resource_contains(outer: &Resource, inner: &Resource) -> bool {
    subtractable(outer, inner)
        && match outer.value_type() {
            Some(Type::Scalar) => scalar::less_eq(scalar_of(inner), scalar_of(outer)),
            Some(Type::Ranges) => ranges::contains(&ranges_of(outer), &ranges_of(inner)),
            Some(Type::Set) => set::contains(&set_of(outer), &set_of(inner)),
            Some(Type::Text) | None => false,
        }
}

/// Adds `b`'s quantity to `a`; callers check [`addable`] first.
pub(crate) fn add_quantity(a: &mut Resource, b: &Resource) {
    match a.value_type() {
        Some(Type::Scalar) => {
            let sum = scalar::add(scalar_of(a), scalar_of(b));
            a.scalar.get_or_insert_default().value = sum;
        }
        Some(Type::Ranges) => a.ranges = Some(ranges::add(&ranges_of(a), &ranges_of(b))),
        Some(Type::Set) => a.set = Some(set::add(&set_of(a), &set_of(b))),
        Some(Type::Text) | None => {}
    }
}

/// Takes `b`'s quantity out of `a`; callers check [`subtractable`] first. A
/// scalar may go negative: the caller took more than there was.
pub(crate) fn subtract_quantity(a: &mut Resource, b: &Resource) {
    match a.value_type() {
        Some(Type::Scalar) => {
            let difference = scalar::subtract(scalar_of(a), scalar_of(b));
            a.scalar.get_or_insert_default().value = difference;
        }
        Some(Type::Ranges) => a.ranges = Some(ranges::subtract(&ranges_of(a), &ranges_of(b))),
        Some(Type::Set) => a.set = Some(set::subtract(&set_of(a), &set_of(b))),
        Some(Type::Text) | None => {}
    }
}

/// Puts the quantity in canonical form: scalars rounded to thousandths,
/// ranges normalized. Equal resources then also compare equal field by field.
pub(crate) fn canonicalize(r: &mut Resource) {
    if let Some(s) = &mut r.scalar {
        // `+ 0.0` turns -0.0 into 0.0.
        s.value = scalar::round(s.value) + 0.0;
    }
    if let Some(rs) = &mut r.ranges
        && !ranges::is_normalized(rs)
    {
        *rs = ranges::normalize(rs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::ResourceProviderId;
    use crate::v1::resource::disk_info::Persistence;
    use crate::v1::resource::disk_info::source::{Mount, Path};
    use crate::v1::resource::{RevocableInfo, SharedInfo};
    use crate::v1::value::{Range, Ranges, Scalar, Set};

    pub(crate) fn scalar(name: &str, value: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value }),
            ..Default::default()
        }
    }

    fn ports(pairs: &[(u64, u64)]) -> Resource {
        Resource {
            name: "ports".into(),
            r#type: Type::Ranges as i32,
            ranges: Some(Ranges {
                range: pairs
                    .iter()
                    .map(|&(begin, end)| Range { begin, end })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    fn items(items: &[&str]) -> Resource {
        Resource {
            name: "bugs".into(),
            r#type: Type::Set as i32,
            set: Some(Set {
                item: items.iter().map(|i| i.to_string()).collect(),
            }),
            ..Default::default()
        }
    }

    fn disk(value: f64, disk: DiskInfo) -> Resource {
        Resource {
            disk: Some(disk),
            ..scalar("disk", value)
        }
    }

    fn source(ty: SourceType) -> Source {
        Source {
            r#type: ty as i32,
            ..Default::default()
        }
    }

    fn volume(id: &str) -> DiskInfo {
        DiskInfo {
            persistence: Some(Persistence {
                id: id.into(),
                principal: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn predicates() {
        let mut r = scalar("cpus", 1.0);
        assert!(r.is_unreserved() && !r.is_reserved(None));
        assert!(r.is_allocatable_to("anything"));
        r.reservations = vec![
            reservation::static_reservation("a"),
            reservation::dynamic_reservation("a/b", None),
        ];
        assert!(r.is_reserved(None) && r.is_reserved(Some("a/b")) && !r.is_reserved(Some("a")));
        assert!(r.is_dynamically_reserved() && r.has_refined_reservations());
        assert!(r.is_allocatable_to("a/b") && r.is_allocatable_to("a/b/c"));
        assert!(!r.is_allocatable_to("a") && !r.is_allocatable_to("a/bc"));
        assert!(r.is_reserved_to_role_subtree("a") && r.is_reserved_to_role_subtree("a/b"));
        assert!(!r.is_reserved_to_role_subtree("a/b/c"));
        assert_eq!(r.allocation_role(), None);
        r.allocation_info = Some(AllocationInfo {
            role: Some("x/y".into()),
        });
        assert!(r.is_allocated_to_role_subtree("x") && !r.is_allocated_to_role_subtree("y"));
        assert!(!r.is_revocable() && !r.is_shared() && !r.has_resource_provider());

        let v = disk(10.0, volume("v"));
        assert!(v.is_persistent_volume());
        let m = disk(
            10.0,
            DiskInfo {
                source: Some(source(SourceType::Mount)),
                ..Default::default()
            },
        );
        assert!(m.is_disk(SourceType::Mount) && !m.is_disk(SourceType::Path));
    }

    #[test]
    fn emptiness_uses_fixed_point() {
        assert!(scalar("cpus", 0.0).is_empty());
        assert!(scalar("cpus", 0.0004).is_empty());
        assert!(!scalar("cpus", 0.001).is_empty());
        assert!(ports(&[]).is_empty());
        assert!(items(&[]).is_empty());
        assert!(!items(&["a"]).is_empty());
    }

    #[test]
    fn identity_covers_everything_but_quantity() {
        let base = scalar("cpus", 1.0);
        assert!(same_identity(&base, &scalar("cpus", 2.0)));
        assert!(!same_identity(&base, &scalar("mem", 1.0)));
        let variants = [
            Resource {
                reservations: vec![reservation::static_reservation("a")],
                ..base.clone()
            },
            Resource {
                allocation_info: Some(AllocationInfo {
                    role: Some("a".into()),
                }),
                ..base.clone()
            },
            Resource {
                allocation_info: Some(AllocationInfo { role: None }),
                ..base.clone()
            },
            Resource {
                revocable: Some(RevocableInfo {}),
                ..base.clone()
            },
            Resource {
                provider_id: Some(ResourceProviderId { value: "p".into() }),
                ..base.clone()
            },
            Resource {
                r#type: Type::Ranges as i32,
                ..base.clone()
            },
        ];
        for v in &variants {
            assert!(!same_identity(&base, v), "{v:?}");
            assert!(!addable(&base, v) && !subtractable(&base, v));
        }
        assert!(resource_eq(
            &scalar("cpus", 0.1 + 0.2),
            &scalar("cpus", 0.3)
        ));
        assert!(resource_eq(&ports(&[(3, 4), (1, 2)]), &ports(&[(1, 4)])));
        assert!(resource_eq(&items(&["a", "b"]), &items(&["b", "a"])));
    }

    #[test]
    fn disk_identity_ignores_volume_and_persistence_principal() {
        let mut a = volume("v");
        let mut b = volume("v");
        if let Some(p) = &mut b.persistence {
            p.principal = Some("someone".into());
        }
        b.volume = Some(crate::v1::Volume {
            container_path: "data".into(),
            ..Default::default()
        });
        assert!(same_identity(&disk(1.0, a.clone()), &disk(1.0, b)));
        a.persistence = Some(Persistence {
            id: "w".into(),
            principal: None,
        });
        assert!(!same_identity(&disk(1.0, a), &disk(1.0, volume("v"))));
    }

    #[test]
    fn addable_and_subtractable_follow_mesos() {
        // Plain resources of one identity combine freely.
        assert!(addable(&scalar("cpus", 1.0), &scalar("cpus", 2.0)));
        assert!(subtractable(&scalar("cpus", 1.0), &scalar("cpus", 2.0)));
        assert!(subtractable(&items(&["a"]), &items(&["b"])));

        // PATH disks with the same root are divisible.
        let path = |root: &str| DiskInfo {
            source: Some(Source {
                path: Some(Path {
                    root: Some(root.into()),
                }),
                ..source(SourceType::Path)
            }),
            ..Default::default()
        };
        assert!(addable(&disk(1.0, path("/a")), &disk(2.0, path("/a"))));
        assert!(!addable(&disk(1.0, path("/a")), &disk(2.0, path("/b"))));

        // MOUNT and BLOCK disks are indivisible.
        let mount = DiskInfo {
            source: Some(Source {
                mount: Some(Mount {
                    root: Some("/m".into()),
                }),
                ..source(SourceType::Mount)
            }),
            ..Default::default()
        };
        assert!(!addable(
            &disk(1.0, mount.clone()),
            &disk(1.0, mount.clone())
        ));
        assert!(subtractable(
            &disk(1.0, mount.clone()),
            &disk(1.0, mount.clone())
        ));
        assert!(!subtractable(
            &disk(2.0, mount.clone()),
            &disk(1.0, mount.clone())
        ));
        assert!(!resource_contains(
            &disk(2.0, mount.clone()),
            &disk(1.0, mount)
        ));

        // RAW disks only when anonymous.
        let raw = |id: Option<&str>| DiskInfo {
            source: Some(Source {
                id: id.map(str::to_string),
                ..source(SourceType::Raw)
            }),
            ..Default::default()
        };
        assert!(addable(&disk(1.0, raw(None)), &disk(1.0, raw(None))));
        assert!(!addable(
            &disk(1.0, raw(Some("d"))),
            &disk(1.0, raw(Some("d")))
        ));
        assert!(subtractable(
            &disk(1.0, raw(Some("d"))),
            &disk(1.0, raw(Some("d")))
        ));

        // Persistent volumes are unique.
        assert!(!addable(&disk(1.0, volume("v")), &disk(1.0, volume("v"))));
        assert!(subtractable(
            &disk(1.0, volume("v")),
            &disk(1.0, volume("v"))
        ));
        assert!(!subtractable(
            &disk(2.0, volume("v")),
            &disk(1.0, volume("v"))
        ));

        // Shared resources are counted, not summed.
        let shared = Resource {
            shared: Some(SharedInfo {}),
            ..disk(1.0, volume("v"))
        };
        assert!(!addable(&shared, &shared));
        assert!(subtractable(&shared, &shared));
        assert!(!subtractable(&shared, &disk(1.0, volume("v"))));
    }

    #[test]
    fn quantities_combine_by_type() {
        let mut c = scalar("cpus", 0.1);
        add_quantity(&mut c, &scalar("cpus", 0.2));
        assert_eq!(c.scalar.as_ref().map(|s| s.value), Some(0.3));
        subtract_quantity(&mut c, &scalar("cpus", 0.5));
        assert_eq!(c.scalar.as_ref().map(|s| s.value), Some(-0.2));

        let mut p = ports(&[(1, 5)]);
        add_quantity(&mut p, &ports(&[(6, 9)]));
        assert!(resource_eq(&p, &ports(&[(1, 9)])));
        subtract_quantity(&mut p, &ports(&[(3, 4)]));
        assert!(resource_eq(&p, &ports(&[(1, 2), (5, 9)])));

        let mut s = items(&["a"]);
        add_quantity(&mut s, &items(&["b", "a"]));
        assert_eq!(
            s.set.as_ref().map(|s| s.item.clone()),
            Some(vec!["a".into(), "b".into()])
        );

        assert!(resource_contains(&ports(&[(1, 9)]), &ports(&[(2, 3)])));
        assert!(!resource_contains(&ports(&[(1, 9)]), &ports(&[(2, 10)])));
        assert!(resource_contains(
            &scalar("cpus", 1.0),
            &scalar("cpus", 1.0004)
        ));
        assert!(!resource_contains(
            &scalar("cpus", 1.0),
            &scalar("mem", 1.0)
        ));
    }

    #[test]
    fn canonicalize_rounds_and_normalizes() {
        let mut c = scalar("cpus", 1.23456);
        canonicalize(&mut c);
        assert_eq!(c.scalar.as_ref().map(|s| s.value), Some(1.235));
        let mut z = scalar("cpus", -0.0);
        canonicalize(&mut z);
        assert!(
            z.scalar
                .as_ref()
                .is_some_and(|s| s.value.is_sign_positive())
        );
        let mut p = ports(&[(5, 6), (1, 4)]);
        canonicalize(&mut p);
        assert_eq!(p, ports(&[(1, 6)]));
    }
}
