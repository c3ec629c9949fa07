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

[ $status -eq 0 ] && echo "no tepui cgroup, mount, process or test network left"
exit $status
