//! The default seccomp profile.
//!
//! Docker's profile is an allow-list of ~370 syscalls: every syscall a new
//! kernel or libc adds fails until the list catches up. This profile is the
//! opposite, a deny-list: everything is allowed except the syscalls Docker's
//! profile refuses (kernel modules, kexec, reboot, clock setting, keyrings,
//! mount APIs, namespace creation, BPF, perf, io_uring, obsolete calls),
//! which fail with `EPERM`. As in Docker, a syscall group is allowed again
//! when the container holds the capability that guards it (`SYS_ADMIN` for
//! mounts and namespaces, `SYS_TIME` for clocks, ...), so granting a
//! capability is enough to use it.
//!
//! Without `SYS_ADMIN`, `clone` with any `CLONE_NEW*` flag fails with EPERM
//! and `clone3` with ENOSYS (its flags live in memory seccomp cannot read;
//! libc then falls back to `clone`), as in Docker.
//!
//! The filter covers the native architecture and its 32-bit compat ABIs so
//! that a 32-bit binary cannot reach a denied syscall by another number.

use std::collections::HashSet;

use super::SpecError;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Denied unless the container has one of the listed capabilities (empty =
/// always denied).
const DENIED: &[(&[Capability], &[&str])] = &[
    (
        &[],
        &[
            // Obsolete or never namespaced.
            "create_module",
            "get_kernel_syms",
            "query_module",
            "nfsservctl",
            "uselib",
            "ustat",
            "sysfs",
            "_sysctl",
            "vm86",
            "vm86old",
            // Keyrings are not namespaced.
            "add_key",
            "keyctl",
            "request_key",
            // io_uring bypasses syscall filtering.
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
        ],
    ),
    (
        &[Capability::SysAdmin],
        &[
            "mount",
            "umount",
            "umount2",
            "pivot_root",
            "open_tree",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "setns",
            "unshare",
            "swapon",
            "swapoff",
            "quotactl",
            "quotactl_fd",
            "lookup_dcookie",
            "fanotify_init",
            "name_to_handle_at",
            "vhangup",
        ],
    ),
    (&[Capability::SysAdmin, Capability::Bpf], &["bpf"]),
    (
        &[Capability::SysAdmin, Capability::Perfmon],
        &["perf_event_open"],
    ),
    (
        &[Capability::SysModule],
        &["init_module", "finit_module", "delete_module"],
    ),
    (
        &[Capability::SysBoot],
        &["reboot", "kexec_load", "kexec_file_load"],
    ),
    (
        &[Capability::SysTime],
        &["settimeofday", "stime", "clock_settime", "clock_adjtime"],
    ),
    (&[Capability::SysPacct], &["acct"]),
    (&[Capability::SysRawio], &["iopl", "ioperm"]),
    (
        &[Capability::SysNice],
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
            "move_pages",
            "migrate_pages",
        ],
    ),
    (&[Capability::Syslog], &["syslog"]),
    (&[Capability::DacReadSearch], &["open_by_handle_at"]),
    (&[Capability::SysPtrace], &["userfaultfd"]),
];

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`, one by one.
const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

fn rule(names: &[&str], errno: u32) -> LinuxSyscall {
    let mut syscall = LinuxSyscall::default();
    syscall.set_names(names.iter().map(|s| s.to_string()).collect());
    syscall.set_action(LinuxSeccompAction::ScmpActErrno);
    syscall.set_errno_ret(Some(errno));
    syscall
}

/// The default profile for a container holding `caps` (its bounding set).
pub fn default_seccomp_profile(caps: &HashSet<Capability>) -> Result<LinuxSeccomp, SpecError> {
    let mut syscalls = Vec::new();
    for (unless, names) in DENIED {
        if unless.iter().any(|cap| caps.contains(cap)) {
            continue;
        }
        syscalls.push(rule(names, EPERM));
    }
    if !caps.contains(&Capability::SysAdmin) {
        for flag in CLONE_NAMESPACE_FLAGS {
            // clone's flags are argument 0 everywhere but s390x. Mask and
            // datum are both the flag, so `(flags & flag) == flag` holds
            // whichever of value/valueTwo a runtime takes as the mask (runc
            // and libcontainer 0.7 disagree).
            let arg = LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(flag)
                .value_two(flag)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
                .map_err(super::internal)?;
            let mut clone = rule(&["clone"], EPERM);
            clone.set_args(Some(vec![arg]));
            syscalls.push(clone);
        }
        syscalls.push(rule(&["clone3"], ENOSYS));
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(LinuxSeccompAction::ScmpActAllow);
    seccomp.set_architectures(Some(architectures()));
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(profile: &LinuxSeccomp) -> Vec<String> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.args().is_none())
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn dangerous_syscalls_are_denied_ordinary_ones_are_not() {
        let profile = default_seccomp_profile(&HashSet::new()).unwrap();
        assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActAllow);
        let denied = denied(&profile);
        for name in [
            "mount",
            "unshare",
            "setns",
            "kexec_load",
            "bpf",
            "keyctl",
            "reboot",
        ] {
            assert!(denied.iter().any(|d| d == name), "{name} should be denied");
        }
        for name in [
            "read", "write", "execve", "clone", "wait4", "chroot", "ptrace",
        ] {
            assert!(
                !denied.iter().any(|d| d == name),
                "{name} should be allowed"
            );
        }
        let clone_rules = profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names() == &["clone".to_string()])
            .count();
        assert_eq!(clone_rules, 7);
    }

    #[test]
    fn capabilities_reopen_their_syscalls() {
        let caps: HashSet<_> = [Capability::SysAdmin, Capability::SysTime].into();
        let profile = default_seccomp_profile(&caps).unwrap();
        let denied = denied(&profile);
        for name in ["mount", "unshare", "bpf", "clock_settime", "clone3"] {
            assert!(
                !denied.iter().any(|d| d == name),
                "{name} should be allowed"
            );
        }
        assert!(denied.iter().any(|d| d == "init_module"));
        assert!(
            !profile
                .syscalls()
                .iter()
                .flatten()
                .any(|s| s.names() == &["clone".to_string()])
        );
    }
}
