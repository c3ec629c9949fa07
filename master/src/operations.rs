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
        other => Err(format!("operation {other:?} is not supported")),
    }
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
}
