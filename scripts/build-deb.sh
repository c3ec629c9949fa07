#!/usr/bin/env bash
# scripts/build-deb.sh: the tepui Debian package, built from the workspace
# with dpkg-deb only (no cargo-deb, nothing from the network).
#
# usage: scripts/build-deb.sh [--binary PATH] [--out DIR]
#   --binary PATH   the tepui binary to package (default: target/release/tepui,
#                   brought up to date with `cargo build --release --bin tepui`)
#   --out DIR       where the .deb goes (default: target/debian)
# Prints the path of target/debian/tepui_<version>_<arch>.deb.
#
# The package installs:
#   /usr/bin/tepui
#   /lib/systemd/system/tepui-agent.service, tepui-master.service (deploy/)
#   /etc/default/tepui-agent, /etc/default/tepui-master   (conffiles)
#   /var/lib/tepui, /var/lib/tepui-master                 (work dirs, 0700)
#   /usr/share/man/man8/tepui*.8.gz, /usr/share/doc/tepui/*.txt (`--help`)
#   /usr/share/bash-completion/completions/tepui
# Its maintainer scripts reload systemd and do not enable or start anything on
# a fresh install (see the postinst below for why); an upgrade restarts the
# units that were running.
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=target/release/tepui
OUT=target/debian
while [ $# -gt 0 ]; do
    case $1 in
        --binary) BINARY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

log() { printf '[build-deb] %s\n' "$*" >&2; }

for tool in dpkg-deb gzip; do
    command -v "$tool" >/dev/null || { echo "build-deb.sh: $tool is missing (apt-get install dpkg)" >&2; exit 1; }
done

if [ "$BINARY" = target/release/tepui ]; then
    # A no-op when the binary is up to date.
    cargo build --release --locked --bin tepui
fi
[ -x "$BINARY" ] || { echo "build-deb.sh: no binary at $BINARY" >&2; exit 1; }

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$VERSION" ] || { echo "build-deb.sh: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
ARCH=$(dpkg --print-architecture)
DEB="$OUT/tepui_${VERSION}_${ARCH}.deb"

ROOT="$OUT/tepui_${VERSION}_${ARCH}"
rm -rf --one-file-system "$ROOT"
mkdir -p "$ROOT/DEBIAN"
install -D -m 0755 "$BINARY" "$ROOT/usr/bin/tepui"
for unit in tepui-agent tepui-master; do
    install -D -m 0644 "deploy/$unit.service" "$ROOT/lib/systemd/system/$unit.service"
done
# The units run what the package installs.
grep -q '^ExecStart=/usr/bin/tepui ' "$ROOT"/lib/systemd/system/tepui-agent.service
grep -q '^ExecStart=/usr/bin/tepui ' "$ROOT"/lib/systemd/system/tepui-master.service

install -d -m 0755 "$ROOT/etc/default"
cat > "$ROOT/etc/default/tepui-agent" <<'CONF'
# Flags of `tepui agent` (tepui-agent.service), one MESOS_<FLAG>=value per
# line, as Mesos agents take them; `man tepui-agent` lists every flag.
# Apply with `systemctl restart tepui-agent` (running tasks survive it).

# The master, host:port or zk://host:port/path; unset: the agent runs standalone.
#MESOS_MASTER=10.0.0.1:5050
MESOS_WORK_DIR=/var/lib/tepui
MESOS_RUNTIME_DIR=/run/tepui
#MESOS_IP=0.0.0.0
#MESOS_PORT=5051
#MESOS_RESOURCES=cpus:4;mem:8192
#MESOS_ATTRIBUTES=rack:a
#MESOS_IMAGE_PROVIDERS=docker
#MESOS_DOCKER_INSECURE_REGISTRIES=registry.local:5000
CONF
cat > "$ROOT/etc/default/tepui-master" <<'CONF'
# Flags of `tepui master` (tepui-master.service), one MESOS_<FLAG>=value per
# line, as Mesos masters take them; `man tepui-master` lists every flag.
# Apply with `systemctl restart tepui-master`.

# The registry (agents, frameworks, maintenance) survives restarts here.
MESOS_WORK_DIR=/var/lib/tepui-master
#MESOS_IP=0.0.0.0
#MESOS_PORT=5050
# Highly available masters: ZooKeeper and the quorum size.
#MESOS_ZK=zk://10.0.0.5:2181/tepui
#MESOS_QUORUM=2
CONF
chmod 0644 "$ROOT"/etc/default/*
printf '/etc/default/tepui-agent\n/etc/default/tepui-master\n' > "$ROOT/DEBIAN/conffiles"

# Work dirs: sandboxes, checkpoints and the registry are root's alone.
install -d -m 0700 "$ROOT/var/lib/tepui" "$ROOT/var/lib/tepui-master"

# Docs from the binary's own --help: plain text, and man pages that show the
# same text (so `man tepui-agent` works on the host).
DOC="$ROOT/usr/share/doc/tepui" MAN="$ROOT/usr/share/man/man8"
install -d -m 0755 "$DOC" "$MAN"
install -m 0644 README.md "$DOC/README.md"
man_page() { # name section-title help-text-file
    local name=$1 title=$2 text=$3 upper
    upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    {
        printf '.TH %s 8 "" "tepui %s" "tepui"\n' "$upper" "$VERSION"
        printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$name" "$title"
        # roff: a leading . or ' starts a request; backslashes escape.
        sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/" "$text"
        printf '.fi\n.SH SEE ALSO\n/usr/share/doc/tepui/README.md\n'
    } | gzip -9n > "$MAN/$name.8.gz"
}
"$BINARY" --help > "$DOC/tepui.txt"
man_page tepui "cluster agent, master and operator CLI speaking Mesos's v1 APIs" "$DOC/tepui.txt"
for cmd in agent master dev run ps logs exec; do
    "$BINARY" "$cmd" --help > "$DOC/tepui-$cmd.txt"
    man_page "tepui-$cmd" "tepui $cmd" "$DOC/tepui-$cmd.txt"
done
chmod 0644 "$DOC"/*.txt "$MAN"/*.gz
cat > "$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tepui
Files: *
License: $(sed -n '/^\[workspace.package\]/,/^\[/s/^license = "\(.*\)"/\1/p' Cargo.toml)
EOF
chmod 0644 "$DOC/copyright"
install -d -m 0755 "$ROOT/usr/share/bash-completion/completions"
"$BINARY" completion bash > "$ROOT/usr/share/bash-completion/completions/tepui"
chmod 0644 "$ROOT/usr/share/bash-completion/completions/tepui"

# Shared libraries the binary links (libc, libseccomp for the seccomp
# profile), as Debian package names.
depends="libc6"
ldd "$BINARY" | grep -q libseccomp && depends+=", libseccomp2"
ldd "$BINARY" | grep -q libgcc_s && depends+=", libgcc-s1"
size_kb=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat > "$ROOT/DEBIAN/control" <<EOF
Package: tepui
Version: $VERSION
Architecture: $ARCH
Maintainer: tepui developers <dev@tepui>
Installed-Size: $size_kb
Depends: $depends, systemd
Recommends: iproute2
Section: admin
Priority: optional
Homepage: https://github.com/tepui/tepui
Description: Mesos-compatible cluster agent, master and operator CLI
 tepui is a cluster agent and a compact master that speak Apache Mesos's v1
 HTTP APIs: existing Mesos schedulers, executors and CLIs work unchanged.
 This package installs the tepui binary, systemd units for the agent
 (tepui-agent.service) and the master (tepui-master.service), their default
 configuration in /etc/default, and man pages from the built-in --help.
 Neither service is enabled or started on install: pick the role(s) of the
 host and run "systemctl enable --now tepui-agent" (or tepui-master).
EOF

cat > "$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# One package carries two roles (agent and master) and a host usually runs one
# of them; starting both on every install would be wrong, and an agent takes
# over the host's cgroups. So, as Debian policy allows for services that need
# a decision by the administrator, a fresh install only makes systemd see the
# units (daemon-reload); the administrator enables the role. An upgrade
# restarts the units that were running, so the new binary serves: an agent's
# restart keeps its tasks (KillMode=process, recovery).
set -e
if [ "$1" = configure ]; then
    install -d -m 0700 /var/lib/tepui /var/lib/tepui-master
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            systemctl try-restart tepui-agent.service tepui-master.service >/dev/null || true
        fi
    fi
fi
exit 0
EOF
cat > "$ROOT/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# Removing the package stops both daemons. `systemctl stop tepui-agent` leaves
# the agent's tasks running by design (they are not killed with it).
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop tepui-agent.service tepui-master.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat > "$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# The work dirs stay on purge: an agent's may hold sandboxes of tasks that
# still run, or mounts below it; removing it blindly could reach the host.
set -e
case "$1" in
    remove|purge)
        if [ -d /run/systemd/system ]; then
            if [ "$1" = purge ]; then
                systemctl disable tepui-agent.service tepui-master.service >/dev/null 2>&1 || true
            fi
            systemctl daemon-reload >/dev/null 2>&1 || true
        fi
        ;;
esac
exit 0
EOF
chmod 0755 "$ROOT"/DEBIAN/postinst "$ROOT"/DEBIAN/prerm "$ROOT"/DEBIAN/postrm
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
    xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$ROOT/DEBIAN/md5sums" "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/conffiles"

mkdir -p "$OUT"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
rm -rf --one-file-system "$ROOT"
log "built $DEB ($(du -h "$DEB" | cut -f1))"
echo "$DEB"
