//! Linux capabilities: names, Docker's default set, and Mesos's rules for
//! `LinuxInfo.effective_capabilities` / `bounding_capabilities`
//! (`isolators/linux/capabilities.cpp` and `launch.cpp`).

use std::collections::{BTreeSet, HashSet};

use oci_spec::runtime::{Capability, LinuxCapabilities};
use tepui_proto::v1::capability_info::Capability as MesosCapability;

use super::SpecError;

/// Every capability, by its name without `CAP_` (as Mesos's
/// `CapabilityInfo.Capability` enum spells it).
const CAPABILITIES: [(&str, Capability); 41] = [
    ("CHOWN", Capability::Chown),
    ("DAC_OVERRIDE", Capability::DacOverride),
    ("DAC_READ_SEARCH", Capability::DacReadSearch),
    ("FOWNER", Capability::Fowner),
    ("FSETID", Capability::Fsetid),
    ("KILL", Capability::Kill),
    ("SETGID", Capability::Setgid),
    ("SETUID", Capability::Setuid),
    ("SETPCAP", Capability::Setpcap),
    ("LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("NET_BIND_SERVICE", Capability::NetBindService),
    ("NET_BROADCAST", Capability::NetBroadcast),
    ("NET_ADMIN", Capability::NetAdmin),
    ("NET_RAW", Capability::NetRaw),
    ("IPC_LOCK", Capability::IpcLock),
    ("IPC_OWNER", Capability::IpcOwner),
    ("SYS_MODULE", Capability::SysModule),
    ("SYS_RAWIO", Capability::SysRawio),
    ("SYS_CHROOT", Capability::SysChroot),
    ("SYS_PTRACE", Capability::SysPtrace),
    ("SYS_PACCT", Capability::SysPacct),
    ("SYS_ADMIN", Capability::SysAdmin),
    ("SYS_BOOT", Capability::SysBoot),
    ("SYS_NICE", Capability::SysNice),
    ("SYS_RESOURCE", Capability::SysResource),
    ("SYS_TIME", Capability::SysTime),
    ("SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("MKNOD", Capability::Mknod),
    ("LEASE", Capability::Lease),
    ("AUDIT_WRITE", Capability::AuditWrite),
    ("AUDIT_CONTROL", Capability::AuditControl),
    ("SETFCAP", Capability::Setfcap),
    ("MAC_OVERRIDE", Capability::MacOverride),
    ("MAC_ADMIN", Capability::MacAdmin),
    ("SYSLOG", Capability::Syslog),
    ("WAKE_ALARM", Capability::WakeAlarm),
    ("BLOCK_SUSPEND", Capability::BlockSuspend),
    ("AUDIT_READ", Capability::AuditRead),
    ("PERFMON", Capability::Perfmon),
    ("BPF", Capability::Bpf),
    ("CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// Docker's default capability set: what a container gets when its
/// `LinuxInfo` names no capabilities.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// `CHOWN`, `CAP_CHOWN` (any case) -> [`Capability::Chown`]; anything else is
/// [`SpecError::UnknownCapability`] naming it.
pub fn parse_capability(name: &str) -> Result<Capability, SpecError> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES
        .iter()
        .find(|(known, _)| *known == bare)
        .map(|(_, cap)| *cap)
        .ok_or_else(|| SpecError::UnknownCapability(name.to_string()))
}

/// The `CAP_*` name of a capability.
pub fn capability_name(cap: Capability) -> String {
    let bare = CAPABILITIES
        .iter()
        .find(|(_, known)| *known == cap)
        .map(|(name, _)| *name)
        .unwrap_or("UNKNOWN");
    format!("CAP_{bare}")
}

/// A Mesos `CapabilityInfo.Capability` enum value -> its name (`CHOWN`).
pub(crate) fn mesos_capability_name(value: i32) -> Result<String, SpecError> {
    match MesosCapability::try_from(value) {
        Ok(MesosCapability::Unknown) => Err(SpecError::UnknownCapability("UNKNOWN".into())),
        Ok(cap) => {
            let name = cap.as_str_name();
            parse_capability(name)?;
            Ok(name.to_string())
        }
        Err(_) => Err(SpecError::UnknownCapability(format!("#{value}"))),
    }
}

fn parse_set(names: &[String]) -> Result<BTreeSet<&'static str>, SpecError> {
    names
        .iter()
        .map(|name| {
            let cap = parse_capability(name)?;
            Ok(CAPABILITIES
                .iter()
                .find(|(_, known)| *known == cap)
                .map(|(n, _)| *n)
                .unwrap_or("UNKNOWN"))
        })
        .collect()
}

fn to_caps(names: &BTreeSet<&'static str>) -> HashSet<Capability> {
    names
        .iter()
        .filter_map(|name| parse_capability(name).ok())
        .collect()
}

/// `caps` without `cap` in any set.
pub fn without(caps: &mut LinuxCapabilities, cap: Capability) {
    let drop = |set: Option<&HashSet<Capability>>| {
        set.map(|s| {
            s.iter()
                .copied()
                .filter(|c| *c != cap)
                .collect::<HashSet<_>>()
        })
    };
    let (b, e, p, i, a) = (
        drop(caps.bounding().as_ref()),
        drop(caps.effective().as_ref()),
        drop(caps.permitted().as_ref()),
        drop(caps.inheritable().as_ref()),
        drop(caps.ambient().as_ref()),
    );
    caps.set_bounding(b);
    caps.set_effective(e);
    caps.set_permitted(p);
    caps.set_inheritable(i);
    caps.set_ambient(a);
}

/// The process's capability sets, following Mesos:
/// - nothing specified: Docker's default set (bounding = effective =
///   permitted; no inheritable or ambient capabilities, so a non-root user
///   gets none, as with Docker);
/// - effective only: the bounding set is the effective set;
/// - effective capabilities are granted to every set, ambient included, so
///   they survive the exec as a non-root user; they must lie within the
///   bounding set;
/// - bounding only: root keeps the bounding set; the inheritable set is
///   clipped to it.
pub fn capability_sets(
    effective: Option<&[String]>,
    bounding: Option<&[String]>,
) -> Result<LinuxCapabilities, SpecError> {
    let effective = effective.map(parse_set).transpose()?;
    let bounding = bounding.map(parse_set).transpose()?;
    let mut caps = LinuxCapabilities::default();
    match (effective, bounding) {
        (None, None) => {
            let set: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
            caps.set_bounding(Some(set.clone()));
            caps.set_effective(Some(set.clone()));
            caps.set_permitted(Some(set));
            caps.set_inheritable(Some(HashSet::new()));
            caps.set_ambient(Some(HashSet::new()));
        }
        (Some(effective), bounding) => {
            let bounding = bounding.unwrap_or_else(|| effective.clone());
            if let Some(outside) = effective.difference(&bounding).next() {
                return Err(SpecError::CapabilityNotInBoundingSet(outside.to_string()));
            }
            let granted = to_caps(&effective);
            caps.set_bounding(Some(to_caps(&bounding)));
            caps.set_effective(Some(granted.clone()));
            caps.set_permitted(Some(granted.clone()));
            caps.set_ambient(Some(granted));
            caps.set_inheritable(Some(to_caps(&bounding)));
        }
        (None, Some(bounding)) => {
            let set = to_caps(&bounding);
            caps.set_bounding(Some(set.clone()));
            caps.set_effective(Some(set.clone()));
            caps.set_permitted(Some(set.clone()));
            caps.set_inheritable(Some(set));
            caps.set_ambient(Some(HashSet::new()));
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn without_drops_one_capability_from_every_set() {
        let mut caps = capability_sets(None, None).unwrap();
        without(&mut caps, Capability::NetRaw);
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            let set = set.clone().unwrap();
            assert!(!set.contains(&Capability::NetRaw));
            assert!(set.contains(&Capability::Chown));
        }
    }

    #[test]
    fn every_mesos_capability_maps_to_a_cap_name() {
        for value in 1000..=1040 {
            let name = mesos_capability_name(value).unwrap();
            let cap = parse_capability(&name).unwrap();
            assert_eq!(capability_name(cap), format!("CAP_{name}"));
        }
        assert_eq!(
            mesos_capability_name(0),
            Err(SpecError::UnknownCapability("UNKNOWN".into()))
        );
        assert_eq!(
            mesos_capability_name(4242),
            Err(SpecError::UnknownCapability("#4242".into()))
        );
    }

    #[test]
    fn names_are_accepted_with_or_without_cap_prefix() {
        assert_eq!(parse_capability("NET_ADMIN").unwrap(), Capability::NetAdmin);
        assert_eq!(
            parse_capability("CAP_NET_ADMIN").unwrap(),
            Capability::NetAdmin
        );
        assert_eq!(
            parse_capability("cap_sys_admin").unwrap(),
            Capability::SysAdmin
        );
        assert_eq!(
            parse_capability("CAP_FLY"),
            Err(SpecError::UnknownCapability("CAP_FLY".into()))
        );
    }

    #[test]
    fn defaults_are_dockers_set_without_ambient() {
        let caps = capability_sets(None, None).unwrap();
        let bounding = caps.bounding().clone().unwrap();
        assert_eq!(bounding.len(), 14);
        assert!(bounding.contains(&Capability::NetBindService));
        assert!(!bounding.contains(&Capability::SysAdmin));
        assert_eq!(caps.effective().as_ref(), Some(&bounding));
        assert_eq!(caps.permitted().as_ref(), Some(&bounding));
        assert!(caps.ambient().as_ref().unwrap().is_empty());
        assert!(caps.inheritable().as_ref().unwrap().is_empty());
    }

    #[test]
    fn effective_alone_is_also_the_bounding_set_and_ambient() {
        let caps = capability_sets(Some(&names(&["NET_ADMIN", "CAP_KILL"])), None).unwrap();
        let want: HashSet<_> = [Capability::NetAdmin, Capability::Kill].into();
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.ambient().as_ref(), Some(&want));
    }

    #[test]
    fn effective_must_lie_within_bounding() {
        let caps = capability_sets(
            Some(&names(&["KILL"])),
            Some(&names(&["KILL", "SYS_ADMIN"])),
        )
        .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 2);
        assert_eq!(caps.effective().as_ref().unwrap().len(), 1);
        assert_eq!(
            capability_sets(Some(&names(&["SYS_ADMIN"])), Some(&names(&["KILL"]))),
            Err(SpecError::CapabilityNotInBoundingSet("SYS_ADMIN".into()))
        );
    }

    #[test]
    fn bounding_alone_limits_root() {
        let caps = capability_sets(None, Some(&names(&["CHOWN"]))).unwrap();
        let want: HashSet<_> = [Capability::Chown].into();
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert!(caps.ambient().as_ref().unwrap().is_empty());
    }

    #[test]
    fn unknown_names_are_named() {
        assert_eq!(
            capability_sets(Some(&names(&["KILL", "TELEPORT"])), None),
            Err(SpecError::UnknownCapability("TELEPORT".into()))
        );
        assert_eq!(
            capability_sets(None, Some(&names(&["WARP"]))),
            Err(SpecError::UnknownCapability("WARP".into()))
        );
    }
}
