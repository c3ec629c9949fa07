//! Mesos's text form of resources (`operator<<` in `resources.cpp`), as seen
//! in its logs, error messages and some endpoints:
//!
//! ```text
//! cpus:4; mem:2048; ports:[31000-32000]
//! cpus(allocated: eng)(reservations: [(STATIC,eng), (DYNAMIC,eng/be,ops)]):2
//! disk(reservations: [(DYNAMIC,eng,ops)])[MOUNT:/mnt/a,vol1:data:rw]{REV}:100
//! ```
//!
//! Unreserved resources print without a role: Mesos dropped the old
//! `cpus(*):4` form along with the `role` field. For unreserved resources
//! without disk info the output is also valid `--resources` input.

use std::fmt;

use super::Resources;
use super::ranges::DisplayRanges;
use super::resource::resource_eq;
use super::scalar::DisplayScalar;
use super::set::DisplaySet;
use crate::v1::resource::disk_info::Source;
use crate::v1::resource::disk_info::source::Type as SourceType;
use crate::v1::resource::reservation_info::Type as ReservationType;
use crate::v1::resource::{DiskInfo, ReservationInfo};
use crate::v1::value::Type;
use crate::v1::volume::Mode;
use crate::v1::{Attribute, Labels, Resource, Volume};

/// Formats one resource as Mesos does.
#[derive(Debug, Clone, Copy)]
pub struct DisplayResource<'a>(pub &'a Resource);

impl fmt::Display for DisplayResource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        f.write_str(&r.name)?;
        if let Some(allocation) = &r.allocation_info {
            write!(f, "(allocated: {})", allocation.role())?;
        }
        if !r.reservations.is_empty() {
            f.write_str("(reservations: [")?;
            for (i, reservation) in r.reservations.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "({})", DisplayReservation(reservation))?;
            }
            f.write_str("])")?;
        }
        if let Some(disk) = &r.disk {
            write!(f, "[{}]", DisplayDisk(disk))?;
        }
        if r.revocable.is_some() {
            f.write_str("{REV}")?;
        }
        if r.shared.is_some() {
            f.write_str("<SHARED>")?;
        }
        f.write_str(":")?;
        // Resources are never TEXT (validation refuses it), and `Resource` has
        // no text field, so that arm prints nothing.
        write_value(
            f,
            r.r#type,
            r.scalar.as_ref(),
            r.ranges.as_ref(),
            r.set.as_ref(),
        )
    }
}

fn write_value(
    f: &mut fmt::Formatter<'_>,
    ty: i32,
    scalar: Option<&crate::v1::value::Scalar>,
    ranges: Option<&crate::v1::value::Ranges>,
    set: Option<&crate::v1::value::Set>,
) -> fmt::Result {
    match Type::try_from(ty) {
        Ok(Type::Scalar) => write!(f, "{}", DisplayScalar(scalar.map_or(0.0, |s| s.value))),
        Ok(Type::Ranges) => match ranges {
            Some(ranges) => write!(f, "{}", DisplayRanges(ranges)),
            None => f.write_str("[]"),
        },
        Ok(Type::Set) => match set {
            Some(set) => write!(f, "{}", DisplaySet(set)),
            None => f.write_str("{}"),
        },
        Ok(Type::Text) | Err(_) => Ok(()),
    }
}

struct DisplayReservation<'a>(&'a ReservationInfo);

impl fmt::Display for DisplayReservation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let ty = ReservationType::try_from(r.r#type.unwrap_or_default())
            .unwrap_or(ReservationType::Unknown);
        write!(f, "{},{}", ty.as_str_name(), r.role())?;
        if let Some(principal) = &r.principal {
            write!(f, ",{principal}")?;
        }
        if let Some(labels) = &r.labels {
            write!(f, ",{}", DisplayLabels(labels))?;
        }
        Ok(())
    }
}

struct DisplayLabels<'a>(&'a Labels);

impl fmt::Display for DisplayLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, label) in self.0.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&label.key)?;
            if let Some(value) = &label.value {
                write!(f, ": {value}")?;
            }
        }
        f.write_str("}")
    }
}

struct DisplayDisk<'a>(&'a DiskInfo);

impl fmt::Display for DisplayDisk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let disk = self.0;
        if let Some(source) = &disk.source {
            write!(f, "{}", DisplaySource(source))?;
        }
        if let Some(persistence) = &disk.persistence {
            if disk.source.is_some() {
                f.write_str(",")?;
            }
            f.write_str(&persistence.id)?;
        }
        if let Some(volume) = &disk.volume {
            write!(f, ":{}", DisplayVolume(volume))?;
        }
        Ok(())
    }
}

struct DisplaySource<'a>(&'a Source);

impl fmt::Display for DisplaySource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let ty = s.r#type();
        f.write_str(ty.as_str_name())?;
        // A CSI-provided disk is named by its plugin identity; a local one by
        // its root.
        if s.id.is_some() || s.profile.is_some() {
            return write!(f, "({},{},{})", s.vendor(), s.id(), s.profile());
        }
        let root = match ty {
            SourceType::Mount => s.mount.as_ref().and_then(|m| m.root.as_deref()),
            SourceType::Path => s.path.as_ref().and_then(|p| p.root.as_deref()),
            _ => None,
        };
        match root {
            Some(root) => write!(f, ":{root}"),
            None => Ok(()),
        }
    }
}

struct DisplayVolume<'a>(&'a Volume);

impl fmt::Display for DisplayVolume<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if let Some(host_path) = &v.host_path {
            write!(f, "{host_path}:")?;
        }
        f.write_str(&v.container_path)?;
        if v.host_path.is_some() {
            match Mode::try_from(v.mode) {
                Ok(Mode::Rw) => f.write_str(":rw")?,
                Ok(Mode::Ro) => f.write_str(":ro")?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Formats an attribute as Mesos does: `rack=abc`, `level=10`, `keys=[1-5]`.
#[derive(Debug, Clone, Copy)]
pub struct DisplayAttribute<'a>(pub &'a Attribute);

impl fmt::Display for DisplayAttribute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        write!(f, "{}=", a.name)?;
        if a.r#type == Type::Text as i32 {
            if let Some(text) = &a.text {
                f.write_str(&text.value)?;
            }
            return Ok(());
        }
        write_value(
            f,
            a.r#type,
            a.scalar.as_ref(),
            a.ranges.as_ref(),
            a.set.as_ref(),
        )
    }
}

/// `{}` when empty, else the resources joined by `; `. A shared resource held
/// more than once prints once, followed by its count (`<2>`), as Mesos prints
/// its shared counters.
impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("{}");
        }
        let all = self.as_slice();
        let mut first = true;
        for (i, r) in all.iter().enumerate() {
            let shared = r.shared.is_some();
            if shared && all[..i].iter().any(|earlier| resource_eq(earlier, r)) {
                continue;
            }
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}", DisplayResource(r))?;
            if shared {
                let count = all[i..].iter().filter(|x| resource_eq(x, r)).count();
                write!(f, "<{count}>")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::Label;
    use crate::v1::resource::disk_info::Persistence;
    use crate::v1::resource::disk_info::source::{Mount, Path};
    use crate::v1::resource::{AllocationInfo, RevocableInfo, SharedInfo};
    use crate::v1::value::{Range, Ranges, Scalar, Set, Text};

    use super::super::reservation::{dynamic_reservation, static_reservation};

    fn scalar(name: &str, value: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value }),
            ..Default::default()
        }
    }

    fn show(r: &Resource) -> String {
        DisplayResource(r).to_string()
    }

    #[test]
    fn plain_values() {
        assert_eq!(show(&scalar("cpus", 4.0)), "cpus:4");
        assert_eq!(show(&scalar("mem", 1024.5)), "mem:1024.5");
        let ports = Resource {
            name: "ports".into(),
            r#type: Type::Ranges as i32,
            ranges: Some(Ranges {
                range: vec![
                    Range {
                        begin: 31000,
                        end: 32000,
                    },
                    Range {
                        begin: 33000,
                        end: 33000,
                    },
                ],
            }),
            ..Default::default()
        };
        assert_eq!(show(&ports), "ports:[31000-32000, 33000-33000]");
        let bugs = Resource {
            name: "bugs".into(),
            r#type: Type::Set as i32,
            set: Some(Set {
                item: vec!["a".into(), "b".into()],
            }),
            ..Default::default()
        };
        assert_eq!(show(&bugs), "bugs:{a, b}");
    }

    #[test]
    fn reservations_allocation_and_flags() {
        let r = Resource {
            allocation_info: Some(AllocationInfo {
                role: Some("eng".into()),
            }),
            reservations: vec![
                static_reservation("eng"),
                ReservationInfo {
                    labels: Some(Labels {
                        labels: vec![
                            Label {
                                key: "k".into(),
                                value: Some("v".into()),
                            },
                            Label {
                                key: "flag".into(),
                                value: None,
                            },
                        ],
                    }),
                    ..dynamic_reservation("eng/be", Some("ops"))
                },
            ],
            revocable: Some(RevocableInfo {}),
            ..scalar("cpus", 2.0)
        };
        assert_eq!(
            show(&r),
            "cpus(allocated: eng)(reservations: [(STATIC,eng), \
             (DYNAMIC,eng/be,ops,{k: v, flag})]){REV}:2"
        );
    }

    #[test]
    fn disks() {
        let mount = Resource {
            disk: Some(DiskInfo {
                source: Some(Source {
                    r#type: SourceType::Mount as i32,
                    mount: Some(Mount {
                        root: Some("/mnt/a".into()),
                    }),
                    ..Default::default()
                }),
                persistence: Some(Persistence {
                    id: "vol1".into(),
                    principal: None,
                }),
                volume: Some(Volume {
                    mode: Mode::Rw as i32,
                    container_path: "data".into(),
                    host_path: Some("/h".into()),
                    ..Default::default()
                }),
            }),
            shared: Some(SharedInfo {}),
            ..scalar("disk", 100.0)
        };
        assert_eq!(
            show(&mount),
            "disk[MOUNT:/mnt/a,vol1:/h:data:rw]<SHARED>:100"
        );

        let path = Resource {
            disk: Some(DiskInfo {
                source: Some(Source {
                    r#type: SourceType::Path as i32,
                    path: Some(Path { root: None }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..scalar("disk", 1.0)
        };
        assert_eq!(show(&path), "disk[PATH]:1");

        let csi = Resource {
            disk: Some(DiskInfo {
                source: Some(Source {
                    r#type: SourceType::Raw as i32,
                    vendor: Some("org.x".into()),
                    id: Some("vol-9".into()),
                    ..Default::default()
                }),
                volume: Some(Volume {
                    container_path: "c".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..scalar("disk", 1.0)
        };
        assert_eq!(show(&csi), "disk[RAW(org.x,vol-9,):c]:1");
    }

    #[test]
    fn attributes() {
        let text = Attribute {
            name: "rack".into(),
            r#type: Type::Text as i32,
            text: Some(Text {
                value: "abc".into(),
            }),
            ..Default::default()
        };
        assert_eq!(DisplayAttribute(&text).to_string(), "rack=abc");
        let level = Attribute {
            name: "level".into(),
            r#type: Type::Scalar as i32,
            scalar: Some(Scalar { value: 10.0 }),
            ..Default::default()
        };
        assert_eq!(DisplayAttribute(&level).to_string(), "level=10");
    }
}
