//! RESERVE, UNRESERVE, CREATE and DESTROY as conversions: which resources an
//! operation consumes and what it turns them into, with Mesos's checks.

use tepui_proto::resources::{ResourceExt, Resources};
use tepui_proto::v1::offer::Operation;
use tepui_proto::v1::offer::operation::Type as OpType;
use tepui_proto::v1::resource::reservation_info::Type as ReservationType;

/// `(from, to)` for an operation by a framework with `roles` and
/// `principal`. `roles` empty means the operator (any role allowed).
pub fn convert(
    op: &Operation,
    kind: OpType,
    roles: &[String],
    principal: Option<&str>,
) -> Result<(Resources, Resources), String> {
    match kind {
        OpType::Reserve => {
            let resources = op
                .reserve
                .as_ref()
                .map(|r| r.resources.clone())
                .unwrap_or_default();
            reserve(&resources, roles, principal)
        }
        OpType::Unreserve => {
            let resources = op
                .unreserve
                .as_ref()
                .map(|r| r.resources.clone())
                .unwrap_or_default();
            unreserve(&resources)
        }
        OpType::Create => {
            let volumes = op
                .create
                .as_ref()
                .map(|c| c.volumes.clone())
                .unwrap_or_default();
            // A persistent volume's id names its directory on the agent
            // (Mesos's `validateID` in `validateCreate`).
            for id in volumes
                .iter()
                .filter_map(|v| v.disk.as_ref()?.persistence.as_ref())
                .map(|p| &p.id)
            {
                tepui_proto::ids::check("volumes.disk.persistence.id", id)?;
            }
            let to = parse(&volumes)?;
            if to.iter().any(|r| !r.is_persistent_volume()) {
                return Err("CREATE needs persistent volumes (disk.persistence set)".into());
            }
            Ok((unpersisted(&to), to))
        }
        OpType::Destroy => {
            let volumes = op
                .destroy
                .as_ref()
                .map(|c| c.volumes.clone())
                .unwrap_or_default();
            let from = parse(&volumes)?;
            Ok((from.clone(), unpersisted(&from)))
        }
        OpType::GrowVolume => {
            let g = op
                .grow_volume
                .as_ref()
                .ok_or("GROW_VOLUME needs 'grow_volume'")?;
            grow(&g.volume, &g.addition)
        }
        OpType::ShrinkVolume => {
            let s = op
                .shrink_volume
                .as_ref()
                .ok_or("SHRINK_VOLUME needs 'shrink_volume'")?;
            shrink(&s.volume, s.subtract.value)
        }
        other => Err(format!("operation {other:?} is not supported")),
    }
}

/// The one persistent `disk` volume a GROW/SHRINK resizes (Mesos's
/// `validateGrowVolume`/`validateShrinkVolume`: a non-shared persistent
/// volume of scalar disk, not of a MOUNT or BLOCK source, which cannot be
/// resized).
fn resizable(volume: &tepui_proto::v1::Resource, op: &str) -> Result<Resources, String> {
    let v = parse(std::slice::from_ref(volume))?;
    let r = &v.as_slice()[0];
    if r.name != "disk" || !r.is_persistent_volume() {
        return Err(format!(
            "{op} needs a persistent volume (disk.persistence set)"
        ));
    }
    if r.shared.is_some() {
        return Err(format!("{op} cannot resize a shared persistent volume"));
    }
    if r.disk.as_ref().and_then(|d| d.source.as_ref()).is_some() {
        return Err(format!(
            "{op} cannot resize a volume of a MOUNT or BLOCK disk"
        ));
    }
    Ok(v)
}

fn with_size(volume: &Resources, size: f64) -> Resources {
    volume
        .iter()
        .cloned()
        .map(|mut r| {
            if let Some(s) = r.scalar.as_mut() {
                s.value = size;
            }
            r
        })
        .collect()
}

fn size(volume: &Resources) -> f64 {
    volume
        .iter()
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum()
}

/// GROW_VOLUME consumes the volume and `addition` (plain disk of the same
/// reservation, Mesos's `validateGrowVolume`) and yields the bigger volume.
fn grow(
    volume: &tepui_proto::v1::Resource,
    addition: &tepui_proto::v1::Resource,
) -> Result<(Resources, Resources), String> {
    let v = resizable(volume, "GROW_VOLUME")?;
    let add = parse(std::slice::from_ref(addition))?;
    let a = &add.as_slice()[0];
    if a.name != "disk"
        || a.is_persistent_volume()
        || a.disk.as_ref().and_then(|d| d.source.as_ref()).is_some()
    {
        return Err("GROW_VOLUME's addition must be plain disk (not a volume)".into());
    }
    if a.scalar.as_ref().is_none_or(|s| s.value <= 0.0) {
        return Err("GROW_VOLUME's addition must be a positive amount of disk".into());
    }
    if a.reservations != v.as_slice()[0].reservations {
        return Err("GROW_VOLUME's addition must have the volume's reservations".into());
    }
    let to = with_size(&v, size(&v) + size(&add));
    let mut from = v;
    from += add;
    Ok((from, to))
}

/// SHRINK_VOLUME consumes the volume and yields the smaller volume plus
/// the freed disk; `subtract` must leave some of it (Mesos's
/// `validateShrinkVolume`).
fn shrink(
    volume: &tepui_proto::v1::Resource,
    subtract: f64,
) -> Result<(Resources, Resources), String> {
    let v = resizable(volume, "SHRINK_VOLUME")?;
    let have = size(&v);
    if !subtract.is_finite() || subtract <= 0.0 {
        return Err("SHRINK_VOLUME's 'subtract' must be positive".into());
    }
    if subtract >= have {
        return Err(format!(
            "SHRINK_VOLUME's 'subtract' ({subtract}) must be less than the volume's size ({have})"
        ));
    }
    let mut to = with_size(&v, have - subtract);
    to += with_size(&unpersisted(&v), subtract);
    Ok((v, to))
}

fn parse(resources: &[tepui_proto::v1::Resource]) -> Result<Resources, String> {
    let r = Resources::try_from_resources(resources.iter().cloned())
        .map_err(|e| format!("invalid resources: {e}"))?;
    if r.is_empty() {
        return Err("the operation names no resources".to_string());
    }
    Ok(r)
}

pub fn reserve(
    resources: &[tepui_proto::v1::Resource],
    roles: &[String],
    principal: Option<&str>,
) -> Result<(Resources, Resources), String> {
    let to = parse(resources)?;
    for r in to.iter() {
        let Some(top) = r.reservations.last() else {
            return Err("RESERVE needs resources with a reservation".into());
        };
        if top.r#type != Some(ReservationType::Dynamic as i32) {
            return Err("RESERVE can only add a DYNAMIC reservation".into());
        }
        let role = top.role.clone().unwrap_or_default();
        if !roles.is_empty() && !roles.contains(&role) {
            return Err(format!(
                "cannot reserve for role '{role}': the framework is not subscribed to it"
            ));
        }
        if let Some(allocated) = r.allocation_role()
            && !tepui_proto::resources::role::is_in_subtree(&role, allocated)
        {
            return Err(format!(
                "cannot reserve resources allocated to '{allocated}' for role '{role}'"
            ));
        }
        if let Some(p) = principal
            && top.principal.as_deref().is_some_and(|x| x != p)
        {
            return Err(format!(
                "the reservation's principal must be the framework's ('{p}')"
            ));
        }
        if r.reservations.len() > 1 {
            // A refinement: the new role must be a child of the previous one.
            let prev = r.reservations[r.reservations.len() - 2]
                .role
                .clone()
                .unwrap_or_default();
            if !tepui_proto::resources::role::is_strict_subrole_of(&role, &prev) {
                return Err(format!(
                    "a refined reservation's role '{role}' must be a sub-role of '{prev}'"
                ));
            }
        }
    }
    let from = to.pop_reservation().map_err(|e| e.to_string())?;
    Ok((from, to))
}

pub fn unreserve(
    resources: &[tepui_proto::v1::Resource],
) -> Result<(Resources, Resources), String> {
    let from = parse(resources)?;
    for r in from.iter() {
        if !r.is_dynamically_reserved() {
            return Err("UNRESERVE needs dynamically reserved resources".into());
        }
        if r.is_persistent_volume() {
            return Err("destroy the persistent volume before unreserving it".into());
        }
    }
    let to = from.pop_reservation().map_err(|e| e.to_string())?;
    Ok((from, to))
}

fn unpersisted(volumes: &Resources) -> Resources {
    volumes
        .iter()
        .cloned()
        .map(|mut r| {
            if let Some(disk) = r.disk.as_mut() {
                disk.persistence = None;
                disk.volume = None;
                if disk.source.is_none() {
                    r.disk = None;
                }
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tepui_proto::v1::resource::DiskInfo;
    use tepui_proto::v1::resource::disk_info::Persistence;
    use tepui_proto::v1::{Resource, offer::operation};

    fn create(id: &str) -> Operation {
        let mut volume: Resource = tepui_proto::resources::parse_resources("disk(web):64", "*")
            .unwrap()
            .into_vec()[0]
            .clone();
        volume.disk = Some(DiskInfo {
            persistence: Some(Persistence {
                id: id.into(),
                principal: None,
            }),
            ..Default::default()
        });
        Operation {
            r#type: Some(OpType::Create as i32),
            create: Some(operation::Create {
                volumes: vec![volume],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_persistent_volume_id_must_be_one_path_component() {
        for bad in ["..", "../../etc", "a/b", "a\0b"] {
            let e = convert(&create(bad), OpType::Create, &["web".into()], None).unwrap_err();
            assert!(e.contains("'volumes.disk.persistence.id'"), "{bad:?}: {e}");
        }
        let long = "v".repeat(256);
        assert!(convert(&create(&long), OpType::Create, &["web".into()], None).is_err());
        let e = convert(&create("data-1"), OpType::Create, &["web".into()], None);
        assert!(
            e.as_ref()
                .map_or_else(|e| !e.contains("persistence.id"), |_| true),
            "{e:?}"
        );
    }

    fn volume(id: &str, mb: f64) -> Resource {
        let mut v = create(id).create.unwrap().volumes.remove(0);
        v.scalar.as_mut().unwrap().value = mb;
        v
    }

    #[test]
    fn grow_consumes_the_addition_and_yields_the_bigger_volume() {
        let addition = tepui_proto::resources::parse_resources("disk(web):36", "*")
            .unwrap()
            .into_vec()[0]
            .clone();
        let (from, to) = grow(&volume("v", 64.0), &addition).unwrap();
        assert_eq!(from.disk(), Some(100.0));
        assert_eq!(to.disk(), Some(100.0));
        assert_eq!(to.persistent_volumes().len(), 1);
        assert_eq!(to.persistent_volumes().disk(), Some(100.0));
        // An addition of another role, or a volume, is refused.
        let other = tepui_proto::resources::parse_resources("disk(db):36", "*")
            .unwrap()
            .into_vec()[0]
            .clone();
        assert!(grow(&volume("v", 64.0), &other).is_err());
        assert!(grow(&volume("v", 64.0), &volume("w", 8.0)).is_err());
    }

    #[test]
    fn shrink_frees_the_difference_and_keeps_some_volume() {
        let (from, to) = shrink(&volume("v", 64.0), 16.0).unwrap();
        assert_eq!(from.disk(), Some(64.0));
        assert_eq!(to.persistent_volumes().disk(), Some(48.0));
        assert_eq!(to.disk(), Some(64.0));
        for bad in [0.0, -1.0, 64.0, 100.0, f64::NAN] {
            assert!(shrink(&volume("v", 64.0), bad).is_err(), "{bad}");
        }
        let plain = tepui_proto::resources::parse_resources("disk(web):64", "*")
            .unwrap()
            .into_vec()[0]
            .clone();
        let e = shrink(&plain, 1.0).unwrap_err();
        assert!(e.contains("persistent volume"), "{e}");
    }
}
