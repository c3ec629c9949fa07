#!/usr/bin/env bash
# Run after the test suite: it fails if any test left a tepui cgroup, mount,
# supervisor process or runtime dir on the machine. Each test checks its own
# pods; this catches what escapes them (a panicking Drop, a stray process).
set -uo pipefail
status=0

cgroups=$(find /sys/fs/cgroup -maxdepth 3 -type d \( -name 'tepui-test-*' -o -name 'tepui-bench-*' \) 2>/dev/null)
if [ -n "$cgroups" ]; then
    echo "left-over cgroups:"; echo "$cgroups"; status=1
fi

mounts=$(awk '{print $5}' /proc/self/mountinfo | grep -E 'tepui|/hostfs$|/images/containers/' || true)
if [ -n "$mounts" ]; then
    echo "left-over mounts:"; echo "$mounts"; status=1
fi

# Loop devices of test images (the disk/xfs test's loopback XFS).
loops=$(losetup -a 2>/dev/null | grep -E 'tepui' || true)
if [ -n "$loops" ]; then
    echo "left-over loop devices:"; echo "$loops"; status=1
fi

procs=$(pgrep -a -f 'tepui-supervisor|tepui supervise| supervise --runtime_dir ' || true)
if [ -n "$procs" ]; then
    echo "left-over supervisor processes:"; echo "$procs"; status=1
fi

if command -v ip >/dev/null 2>&1; then
    netns=$(ip netns list 2>/dev/null | grep -E '^tp-[0-9]+-' || true)
    links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^tpbr[0-9]+$' || true)
    if [ -n "$netns$links" ]; then
        echo "left-over test network namespaces or bridges:"; echo "$netns"; echo "$links"; status=1
    fi
fi

# CNI (issue 22): what a pod's DEL must release. Netns binds of pods, veths
# on test bridges (tests/cni.rs names them tpcni*), host-local leases (a file
# per address under /var/lib/cni/networks/<network>/), and the per-container
# NAT chains portmap and bridge's ipMasq make (CNI-DN-*, CNI-<hash>); the
# shared CNI-HOSTPORT-* chains portmap creates once are not per pod.
netns_binds=$(awk '$9 == "nsfs" {print $5}' /proc/self/mountinfo | grep -E '/cni/[^/]+/ns$' || true)
if [ -n "$netns_binds" ]; then
    echo "left-over pod network namespaces (CNI):"; echo "$netns_binds"; status=1
fi
if command -v ip >/dev/null 2>&1; then
    cni_links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^tpcni' || true)
    cni_veths=$(for br in $cni_links; do ip -o link show master "${br%%@*}" 2>/dev/null | awk -F': ' '{print $2}'; done)
    if [ -n "$cni_links$cni_veths" ]; then
        echo "left-over CNI test bridges or veths:"; echo "$cni_links"; echo "$cni_veths"; status=1
    fi
fi
leases=$(find /var/lib/cni/networks -mindepth 2 -maxdepth 2 -type f 2>/dev/null \
    | grep -E '/[0-9a-f.:]+$' | grep -vE '/last_reserved_ip' || true)
if [ -n "$leases" ]; then
    echo "left-over CNI IPAM leases (host-local):"; echo "$leases"; status=1
fi
if command -v iptables >/dev/null 2>&1; then
    chains=$(iptables -t nat -S 2>/dev/null | awk '$1 == "-N" {print $2}' | grep -E '^CNI-(DN-)?[0-9a-f]{20,}$' || true)
    if [ -n "$chains" ]; then
        echo "left-over CNI iptables chains (nat):"; echo "$chains"; status=1
    fi
fi

[ $status -eq 0 ] && echo "no tepui cgroup, mount, process, test network or CNI state left"
exit $status
