//! `validate(&Resource)`: Mesos's `Resources::validate`, plus the checks Mesos
//! forgets (NaN, infinities, scalars beyond its fixed-point range, overlaps
//! that its pairwise check misses).
//!
//! Everything that enters a `Resources` passes through here, so the rest of
//! the module may assume well-formed values.

use super::error::ValidationError;
use super::reservation;
use super::scalar::MAX_FIXED;
use super::{ranges, set};
use crate::v1::Resource;
use crate::v1::resource::disk_info::source::Type as SourceType;
use crate::v1::value::Type;

/// Checks `resource` against Mesos's rules, in either reservation format.
pub fn validate(resource: &Resource) -> Result<(), ValidationError> {
    if resource.name.is_empty() {
        return Err(ValidationError::EmptyName);
    }
    validate_value(resource)?;
    validate_disk(resource)?;
    reservation::validate(resource)?;
    validate_shared(resource)
}

fn validate_value(resource: &Resource) -> Result<(), ValidationError> {
    let ty = Type::try_from(resource.r#type)
        .map_err(|_| ValidationError::UnknownType(resource.r#type))?;
    let present = [
        ("scalar", resource.scalar.is_some(), Type::Scalar),
        ("ranges", resource.ranges.is_some(), Type::Ranges),
        ("set", resource.set.is_some(), Type::Set),
    ];
    if ty == Type::Text {
        return Err(ValidationError::TextType);
    }
    let name = ty.as_str_name();
    if let Some((field, ..)) = present.iter().find(|(_, set, owner)| *owner == ty && !set) {
        return Err(ValidationError::MissingValue { ty: name, field });
    }
    if let Some((field, ..)) = present.iter().find(|(_, set, owner)| *owner != ty && *set) {
        return Err(ValidationError::UnexpectedValue { ty: name, field });
    }
    if let Some(s) = &resource.scalar {
        let value = s.value;
        if !value.is_finite() {
            return Err(ValidationError::NonFiniteScalar(value));
        }
        if value < 0.0 {
            return Err(ValidationError::NegativeScalar(value));
        }
        if value > MAX_FIXED as f64 {
            return Err(ValidationError::ScalarTooLarge {
                value,
                max: MAX_FIXED,
            });
        }
    }
    if let Some(r) = &resource.ranges {
        ranges::check(r)?;
    }
    if let Some(s) = &resource.set {
        set::check(s)?;
    }
    Ok(())
}

fn validate_disk(resource: &Resource) -> Result<(), ValidationError> {
    let Some(disk) = &resource.disk else {
        return Ok(());
    };
    if resource.name != "disk" {
        return Err(ValidationError::DiskInfoNotOnDisk(resource.name.clone()));
    }
    let Some(source) = &disk.source else {
        return Ok(());
    };
    match SourceType::try_from(source.r#type) {
        Ok(SourceType::Path | SourceType::Mount) => Ok(()),
        Ok(ty @ (SourceType::Block | SourceType::Raw)) => {
            // Block devices and raw disks have no filesystem to root anything in.
            let ty = ty.as_str_name();
            if source.mount.is_some() {
                return Err(ValidationError::DiskSourceField { field: "mount", ty });
            }
            if source.path.is_some() {
                return Err(ValidationError::DiskSourceField { field: "path", ty });
            }
            Ok(())
        }
        Ok(SourceType::Unknown) | Err(_) => Err(ValidationError::UnknownDiskSource),
    }
}

fn validate_shared(resource: &Resource) -> Result<(), ValidationError> {
    if resource.shared.is_none() {
        return Ok(());
    }
    // Only persistent volumes may be shared, for now as in Mesos.
    if resource.name != "disk" {
        return Err(ValidationError::SharedNotDisk(resource.name.clone()));
    }
    match &resource.disk {
        Some(disk) if disk.persistence.is_some() => Ok(()),
        _ => Err(ValidationError::SharedNotPersistentVolume),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::resource::disk_info::source::{Mount, Path};
    use crate::v1::resource::disk_info::{Persistence, Source};
    use crate::v1::resource::{DiskInfo, SharedInfo};
    use crate::v1::value::{Range, Ranges, Scalar, Set};

    fn scalar(name: &str, value: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value }),
            ..Default::default()
        }
    }

    fn ranges(pairs: &[(u64, u64)]) -> Resource {
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

    #[test]
    fn accepts_well_formed_resources() {
        assert_eq!(validate(&scalar("cpus", 0.0)), Ok(()));
        assert_eq!(validate(&scalar("cpus", 4.5)), Ok(()));
        assert_eq!(validate(&ranges(&[(3, 4), (1, 2)])), Ok(()));
        assert_eq!(validate(&ranges(&[])), Ok(()));
        let set = Resource {
            name: "bugs".into(),
            r#type: Type::Set as i32,
            set: Some(Set {
                item: vec!["a".into(), "b".into()],
            }),
            ..Default::default()
        };
        assert_eq!(validate(&set), Ok(()));
    }

    #[test]
    fn rejects_bad_names_types_and_values() {
        use ValidationError::*;
        let cases: Vec<(Resource, ValidationError)> = vec![
            (scalar("", 1.0), EmptyName),
            (scalar("cpus", -1.0), NegativeScalar(-1.0)),
            (
                scalar("cpus", f64::INFINITY),
                NonFiniteScalar(f64::INFINITY),
            ),
            (
                scalar("cpus", 1e17),
                ScalarTooLarge {
                    value: 1e17,
                    max: MAX_FIXED,
                },
            ),
            (
                Resource {
                    r#type: 9,
                    ..scalar("cpus", 1.0)
                },
                UnknownType(9),
            ),
            (
                Resource {
                    r#type: Type::Text as i32,
                    scalar: None,
                    ..scalar("cpus", 1.0)
                },
                TextType,
            ),
            (
                Resource {
                    scalar: None,
                    ..scalar("cpus", 1.0)
                },
                MissingValue {
                    ty: "SCALAR",
                    field: "scalar",
                },
            ),
            (
                Resource {
                    ranges: Some(Ranges::default()),
                    ..scalar("cpus", 1.0)
                },
                UnexpectedValue {
                    ty: "SCALAR",
                    field: "ranges",
                },
            ),
            (
                Resource {
                    r#type: Type::Ranges as i32,
                    ..scalar("cpus", 1.0)
                },
                MissingValue {
                    ty: "RANGES",
                    field: "ranges",
                },
            ),
            (
                ranges(&[(5, 1)]),
                InvertedRange {
                    index: 0,
                    begin: 5,
                    end: 1,
                },
            ),
            (
                ranges(&[(1, 5), (5, 9)]),
                OverlappingRanges {
                    index: 1,
                    begin: 5,
                    end: 9,
                    other_index: 0,
                    other_begin: 1,
                    other_end: 5,
                },
            ),
            (
                Resource {
                    name: "bugs".into(),
                    r#type: Type::Set as i32,
                    set: Some(Set {
                        item: vec!["a".into(), "a".into()],
                    }),
                    ..Default::default()
                },
                DuplicateSetItem {
                    index: 1,
                    item: "a".into(),
                },
            ),
        ];
        for (resource, expected) in cases {
            assert_eq!(validate(&resource), Err(expected.clone()), "{expected}");
        }
        assert!(matches!(
            validate(&scalar("cpus", f64::NAN)),
            Err(NonFiniteScalar(v)) if v.is_nan()
        ));
    }

    #[test]
    fn messages_name_the_field() {
        let message = |r: Resource| validate(&r).err().map(|e| e.to_string());
        assert_eq!(
            message(scalar("cpus", -1.0)).as_deref(),
            Some("field 'scalar.value': -1 is negative")
        );
        assert_eq!(
            message(ranges(&[(1, 2), (9, 3)])).as_deref(),
            Some("field 'ranges.range[1]': begin 9 is greater than end 3")
        );
    }

    #[test]
    fn disk_rules() {
        let with_disk = |name: &str, disk: DiskInfo| Resource {
            disk: Some(disk),
            ..scalar(name, 1.0)
        };
        let source = |ty: SourceType| Source {
            r#type: ty as i32,
            ..Default::default()
        };
        let sourced = |s: Source| DiskInfo {
            source: Some(s),
            ..Default::default()
        };
        assert_eq!(
            validate(&with_disk("mem", DiskInfo::default())),
            Err(ValidationError::DiskInfoNotOnDisk("mem".into()))
        );
        assert_eq!(validate(&with_disk("disk", DiskInfo::default())), Ok(()));
        assert_eq!(
            validate(&with_disk(
                "disk",
                sourced(Source {
                    mount: Some(Mount {
                        root: Some("/m".into())
                    }),
                    ..source(SourceType::Mount)
                })
            )),
            Ok(())
        );
        assert_eq!(
            validate(&with_disk("disk", sourced(source(SourceType::Unknown)))),
            Err(ValidationError::UnknownDiskSource)
        );
        assert_eq!(
            validate(&with_disk(
                "disk",
                sourced(Source {
                    mount: Some(Mount::default()),
                    ..source(SourceType::Block)
                })
            )),
            Err(ValidationError::DiskSourceField {
                field: "mount",
                ty: "BLOCK"
            })
        );
        assert_eq!(
            validate(&with_disk(
                "disk",
                sourced(Source {
                    path: Some(Path::default()),
                    ..source(SourceType::Raw)
                })
            )),
            Err(ValidationError::DiskSourceField {
                field: "path",
                ty: "RAW"
            })
        );
    }

    #[test]
    fn shared_rules() {
        let shared = |r: Resource| Resource {
            shared: Some(SharedInfo {}),
            ..r
        };
        assert_eq!(
            validate(&shared(scalar("cpus", 1.0))),
            Err(ValidationError::SharedNotDisk("cpus".into()))
        );
        assert_eq!(
            validate(&shared(scalar("disk", 1.0))),
            Err(ValidationError::SharedNotPersistentVolume)
        );
        let volume = Resource {
            disk: Some(DiskInfo {
                persistence: Some(Persistence {
                    id: "v".into(),
                    principal: None,
                }),
                ..Default::default()
            }),
            ..scalar("disk", 1.0)
        };
        assert_eq!(validate(&shared(volume)), Ok(()));
    }
}
