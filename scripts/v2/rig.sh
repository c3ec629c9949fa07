#!/usr/bin/env bash
# scripts/v2/rig.sh: a throwaway Debian 12 VM with a cgroup v2-only (unified)
# hierarchy and systemd as PID 1, for testing tepui as production runs it
# (the development and CI machines are cgroup v1). Booted in qemu: KVM where
# it is hardware-assisted, otherwise TCG (software emulation).
#
# usage (as root): scripts/v2/rig.sh COMMAND [ARGS]
#   deps                 install the host's deps (apt: mmdebstrap, e2fsprogs,
#                        openssh-client, qemu's libraries) and unpack
#                        qemu-system-x86 into $V2RIG/qemu. Idempotent.
#   build [--force]      build the image $V2RIG/out/{root.img,vmlinuz,initrd.img}
#                        from Debian packages; skipped while the image matches
#                        its recipe (guest-setup.sh, the package list, RECIPE
#                        below). The .debs are kept in $V2RIG/cache: rebuilds
#                        download nothing.
#   boot [--share DIR] [--persist]
#                        start the VM in the background and wait for ssh; DIR
#                        (default $V2RIG/share) is /mnt/host in the guest (9p,
#                        read-write). Without --persist every boot starts from the
#                        pristine image (qemu -snapshot).
#   run CMD...           run CMD in the guest as root over ssh; prints its output and
#                        exits with its status. One argument is a shell string,
#                        several are quoted one by one.
#   stop                 power the guest off (then SIGTERM/SIGKILL qemu)
#   oneshot [--share DIR] CMD...   boot + run + stop; exits with CMD's status
#   console [--share DIR]          boot in the foreground (serial console,
#                                  root autologin; Ctrl-a x quits)
#   status               running or not, ports, files
#   clean                remove the image and run files (keeps qemu and the apt cache)
#
# Environment:
#   V2RIG                state dir (default: <repo>/target/v2rig)
#   V2RIG_SSH_PORT       ssh forward on 127.0.0.1 (default 10022); two VMs at once
#                        need different ports and state dirs
#   V2RIG_MEM (MiB, 2048), V2RIG_CPUS (2), V2RIG_DISK (3G), V2RIG_BOOT_TIMEOUT (300 s)
#   V2RIG_ACCEL          auto|kvm|tcg (auto: kvm only with kvm_intel/kvm_amd loaded)
#   V2RIG_EXTRA_PKGS     more Debian packages for the image
#   V2RIG_APPEND         extra kernel command line (e.g. "loglevel=7")
#
# Networking is qemu user-mode only (restrict=on): the guest reaches neither the
# host nor the internet; the way in is the ssh forward bound to 127.0.0.1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
V2RIG=${V2RIG:-$REPO/target/v2rig}
PORT=${V2RIG_SSH_PORT:-10022}
MEM=${V2RIG_MEM:-2048}
CPUS=${V2RIG_CPUS:-2}
DISK=${V2RIG_DISK:-3G}
BOOT_TIMEOUT=${V2RIG_BOOT_TIMEOUT:-300}
QEMU_DIR=$V2RIG/qemu
QEMU=$QEMU_DIR/usr/bin/qemu-system-x86_64
# The unpacked qemu loads its accel-tcg module from here, not from /usr/lib.
export QEMU_MODULE_DIR=$QEMU_DIR/usr/lib/x86_64-linux-gnu/qemu
OUT=$V2RIG/out
RUN=$V2RIG/run
KEY=$V2RIG/ssh/id_ed25519
SUITE=bookworm
# What the guest needs: systemd as PID 1, sshd, the kernel, and what tepui's
# tests run inside (python3, curl, libseccomp2 for the binary).
PKGS=systemd,systemd-sysv,udev,dbus,kmod,iproute2,procps,openssh-server,python3,curl
PKGS+=,libseccomp2,linux-image-amd64,initramfs-tools,zstd,less,psmisc,util-linux
[ -n "${V2RIG_EXTRA_PKGS:-}" ] && PKGS+=",${V2RIG_EXTRA_PKGS// /,}"

log() { printf '[v2rig %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
need_root() { [ "$(id -u)" = 0 ] || die "run as root"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

SSH_OPTS=(-i "$KEY" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o LogLevel=ERROR -o ConnectTimeout=5 -o ServerAliveInterval=10 -o BatchMode=yes)

cmd_deps() {
    need_root
    local t0; t0=$(now)
    # qemu-system-x86 is unpacked, not installed: these machines carry
    # qemu-utils from bookworm-backports, which Breaks the bookworm
    # qemu-system-common. Its libraries are installed with apt.
    local want=(mmdebstrap e2fsprogs openssh-client) missing=() p
    if [ ! -x "$QEMU" ] || ! "$QEMU" --version >/dev/null 2>&1; then
        apt-get update -qq
        local libs
        libs=$(apt-cache depends qemu-system-x86 | awk '/Depends: lib/{print $2}' | sort -u)
        # shellcheck disable=SC2206
        want+=($libs)
    fi
    for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -600 2>/dev/null | head -1)" ] ||
            apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if [ ! -x "$QEMU" ] || ! "$QEMU" --version >/dev/null 2>&1; then
        rm -rf "$V2RIG/debs" "$QEMU_DIR"
        mkdir -p "$V2RIG/debs" "$QEMU_DIR"
        (cd "$V2RIG/debs" && apt-get download -qq qemu-system-x86 qemu-system-common \
            qemu-system-data seabios ipxe-qemu)
        for d in "$V2RIG"/debs/*.deb; do dpkg-deb -x "$d" "$QEMU_DIR"; done
    fi
    log "deps ready in $(since "$t0")s: $("$QEMU" --version | head -1)"
}

# The image is rebuilt when its recipe changed: the guest hook, the package
# list, or RECIPE (bump it when changing cmd_build).
RECIPE=1
recipe_hash() {
    { cat "$HERE/guest-setup.sh"; echo "$RECIPE $PKGS $SUITE $DISK"; } | sha256sum | cut -c1-16
}

cmd_build() {
    need_root
    local force=0
    [ "${1:-}" = --force ] && force=1
    local hash; hash=$(recipe_hash)
    if [ $force = 0 ] && [ -f "$OUT/root.img" ] && [ "$(cat "$OUT/recipe" 2>/dev/null)" = "$hash" ]; then
        log "image up to date ($OUT/root.img, recipe $hash)"
        return 0
    fi
    running && die "the VM is running on the current image: '$0 stop' first"
    cmd_deps
    local t0; t0=$(now)
    mkdir -p "$OUT" "$V2RIG/cache" "$V2RIG/ssh"
    [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C v2rig -f "$KEY"
    local rootfs=$V2RIG/rootfs
    if [ -d "$rootfs" ]; then
        # Only ever our own build tree, and never across a mount.
        mountpoint -q "$rootfs" && die "$rootfs is a mount point"
        rm -rf --one-file-system "$rootfs"
    fi
    local sources=/etc/apt/sources.list.d/debian.sources mirrors=()
    if [ -f "$sources" ]; then mirrors=("$sources"); else
        mirrors=("deb http://deb.debian.org/debian $SUITE main"
                 "deb http://deb.debian.org/debian $SUITE-updates main"
                 "deb http://deb.debian.org/debian-security $SUITE-security main"); fi
    log "mmdebstrap $SUITE -> $rootfs"
    mmdebstrap --mode=root --variant=apt --include="$PKGS" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --skip=download/empty --skip=cleanup/apt/cache --skip=essential/unlink \
        --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
        --setup-hook="sync-in $V2RIG/cache /var/cache/apt/archives" \
        --essential-hook='mkdir -p "$1"/etc/initramfs-tools/conf.d &&
            printf "MODULES=list\nCOMPRESS=zstd\n" > "$1"/etc/initramfs-tools/conf.d/v2rig &&
            printf "virtio_pci\nvirtio_blk\next4\n9p\n9pnet_virtio\n" >> "$1"/etc/initramfs-tools/modules' \
        --customize-hook="sync-out /var/cache/apt/archives $V2RIG/cache" \
        --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/*.bin' \
        --customize-hook="$HERE/guest-setup.sh \"\$1\" $KEY.pub" \
        "$SUITE" "$rootfs" "${mirrors[@]}" >"$V2RIG/mmdebstrap.log" 2>&1 ||
        { tail -30 "$V2RIG/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $V2RIG/mmdebstrap.log)"; }
    log "rootfs done at +$(since "$t0")s ($(du -sh --one-file-system "$rootfs" | cut -f1))"
    cp "$(find "$rootfs"/boot -name 'vmlinuz-*' | sort -V | tail -1)" "$OUT/vmlinuz"
    cp "$(find "$rootfs"/boot -name 'initrd.img-*' | sort -V | tail -1)" "$OUT/initrd.img"
    rm -f "$OUT/root.img" "$OUT/recipe"
    mkfs.ext4 -q -F -L v2root -E root_owner=0:0 -d "$rootfs" "$OUT/root.img" "$DISK"
    rm -rf --one-file-system "$rootfs"
    echo "$hash" > "$OUT/recipe"
    log "image built in $(since "$t0")s: $(du -h "$OUT/root.img" | cut -f1) used of $DISK (sparse)"
}

# kvm when the host has hardware-assisted KVM (kvm_intel/kvm_amd); tcg
# otherwise. A /dev/kvm backed by kvm_pvm (Firecracker-style microVMs with
# PVM nested virtualisation) only runs PVM-enabled guest kernels at speed: a
# stock Debian kernel sits in its decompressor for minutes there.
pick_accel() {
    case ${V2RIG_ACCEL:-auto} in
        kvm|tcg) echo "$V2RIG_ACCEL" ;;
        auto) if [ -c /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }
              then echo kvm; else echo tcg; fi ;;
        *) die "V2RIG_ACCEL must be auto, kvm or tcg" ;;
    esac
}

qemu_args() { # $1: share dir, $2: persist (0/1)
    local share=$1 persist=$2 accel
    accel=$(pick_accel)
    if [ "$accel" = kvm ]; then ARGS=(-machine q35,accel=kvm -cpu host)
    else ARGS=(-machine q35 -accel tcg,thread=multi,tb-size=256 -cpu max); fi
    ARGS+=(-m "$MEM" -smp "$CPUS"
          -L "$QEMU_DIR/usr/share/qemu"
          -kernel "$OUT/vmlinuz" -initrd "$OUT/initrd.img"
          -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 quiet loglevel=3 panic=-1 ${V2RIG_APPEND:-}"
          -drive "file=$OUT/root.img,format=raw,if=virtio,cache=unsafe"
          -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$PORT-:22"
          -virtfs "local,path=$share,mount_tag=host,security_model=none,id=host"
          -no-reboot)
    [ "$persist" = 1 ] || ARGS+=(-snapshot)
}

parse_share() { # sets SHARE, PERSIST, REST
    SHARE=$V2RIG/share PERSIST=0 REST=()
    while [ $# -gt 0 ]; do
        case $1 in
            --share) SHARE=$(realpath "$2"); shift 2 ;;
            --persist) PERSIST=1; shift ;;
            --) shift; REST+=("$@"); break ;;
            *) REST+=("$1"); shift ;;
        esac
    done
    mkdir -p "$SHARE"
}

running() { [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; }

cmd_boot() {
    need_root
    parse_share "$@"
    [ -f "$OUT/root.img" ] || die "no image: run '$0 build' first"
    [ -x "$QEMU" ] || die "no qemu: run '$0 deps' first"
    running && die "already running (pid $(cat "$RUN/qemu.pid"))"
    mkdir -p "$RUN"
    qemu_args "$SHARE" "$PERSIST"
    local t0; t0=$(now)
    : > "$RUN/console.log"; rm -f "$RUN/boot_seconds"
    "$QEMU" "${ARGS[@]}" -display none -serial "file:$RUN/console.log" \
        -daemonize -pidfile "$RUN/qemu.pid" 2> "$RUN/qemu.err" ||
        { cat "$RUN/qemu.err" >&2; die "qemu failed to start"; }
    echo "$SHARE" > "$RUN/share"
    log "qemu pid $(cat "$RUN/qemu.pid") (accel $(pick_accel)), console $RUN/console.log, $SHARE -> /mnt/host"
    local deadline=$((SECONDS + BOOT_TIMEOUT))
    until ssh "${SSH_OPTS[@]}" root@127.0.0.1 true 2>/dev/null; do
        running || { tail -20 "$RUN/console.log" >&2; rm -f "$RUN/qemu.pid"; die "qemu exited during boot"; }
        if [ $SECONDS -ge $deadline ]; then
            tail -20 "$RUN/console.log" >&2
            kill "$(cat "$RUN/qemu.pid")" 2>/dev/null || true
            rm -f "$RUN/qemu.pid"
            die "no ssh after ${BOOT_TIMEOUT}s (qemu killed; console: $RUN/console.log)"
        fi
        sleep 0.5
    done
    since "$t0" > "$RUN/boot_seconds"
    log "guest up (ssh) in $(cat "$RUN/boot_seconds")s"
}

cmd_run() {
    running || die "not running: '$0 boot' first"
    [ $# -gt 0 ] || die "run: no command"
    local cmd
    if [ $# -eq 1 ]; then cmd=$1; else cmd=$(printf '%q ' "$@"); fi
    ssh "${SSH_OPTS[@]}" root@127.0.0.1 "$cmd"
}

cmd_stop() {
    running || { log "not running"; rm -f "$RUN/qemu.pid"; return 0; }
    local pid; pid=$(cat "$RUN/qemu.pid")
    if ssh "${SSH_OPTS[@]}" root@127.0.0.1 'systemctl poweroff --no-block' >/dev/null 2>&1; then
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    if kill -0 "$pid" 2>/dev/null; then log "guest did not power off; SIGTERM qemu $pid"; kill "$pid"; sleep 2; fi
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    rm -f "$RUN/qemu.pid"
    log "stopped"
}

cmd_oneshot() {
    parse_share "$@"
    local share=$SHARE persist=$PERSIST rest=("${REST[@]}")
    local bootargs=(--share "$share")
    [ "$persist" = 1 ] && bootargs+=(--persist)
    cmd_boot "${bootargs[@]}"
    local rc=0
    cmd_run "${rest[@]}" || rc=$?
    cmd_stop
    return $rc
}

cmd_console() {
    need_root
    parse_share "$@"
    qemu_args "$SHARE" "$PERSIST"
    exec "$QEMU" "${ARGS[@]}" -nographic
}

cmd_status() {
    if running; then
        echo "running: pid $(cat "$RUN/qemu.pid"), ssh 127.0.0.1:$PORT, share $(cat "$RUN/share"), boot $(cat "$RUN/boot_seconds" 2>/dev/null)s"
    else echo "not running"; fi
    ls -la "$OUT" 2>/dev/null || true
    echo "console log: $RUN/console.log"
}

cmd_clean() {
    running && die "running: stop first"
    local d
    for d in "$OUT" "$V2RIG/rootfs" "$RUN"; do
        if [ -e "$d" ] && ! mountpoint -q "$d"; then rm -rf --one-file-system "$d"; fi
    done
    log "cleaned (kept: $V2RIG/cache, $QEMU_DIR)"
}

sub=${1:-}
shift || true
case $sub in
    deps|build|boot|run|stop|oneshot|console|status|clean) "cmd_$sub" "$@" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
