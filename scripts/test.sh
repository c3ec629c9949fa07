#!/usr/bin/env bash
# Runs tepui's whole test suite on a fresh Debian 12 machine, as root.
# It installs what the tests need itself, then runs format and lint checks,
# unit, integration and end-to-end tests, and the Debian package on a real
# cgroup v2 host with systemd (a VM). CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- what the suite needs from the machine -----------------------------------
. scripts/deps.sh
need_cargo
install_apt_packages "${TEST_PACKAGES[@]}"
# Container networks (issue 22, tests/cni.rs): Debian's CNI plugins
# (/usr/lib/cni: bridge, host-local, portmap, ...) and the iptables they run.
install_apt_packages containernetworking-plugins iptables
install_zookeeper
install_journey_clients
install_mesos_cli
install_prometheus_parser
install_webui_browser
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy 2>/dev/null || true

# --- stage 1: fast and unprivileged ---------------------------------------------
# Format, lints, and the unit tests beside the code (fake cgroupfs, no root,
# no network): minutes, and a failure here stops before the slow stages.
export CARGO_TERM_COLOR=never
stage_started=$SECONDS
timings=()
stage_done() { timings+=("$1: $((SECONDS - stage_started)) s"); stage_started=$SECONDS; }

log "stage 1: cargo fmt --check"
cargo fmt --all -- --check
log "stage 1: the web UI bundle is what webui/src and its lockfile build"
# The bundle (webui/dist) is checked in and embedded in the binary, so the
# build needs no npm. With npm on the machine, rebuild it from the lockfile
# and compare; without npm this check is skipped (the CI image has none).
if command -v npm >/dev/null 2>&1; then
  scripts/build-webui.sh --check
else
  echo "npm not installed: skipping the webui/dist rebuild check"
fi
log "stage 1: cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "stage 1: unit tests (no root needed)"
cargo test --workspace --locked --lib --bins
stage_done "stage 1 (fmt, clippy, unit tests)"

# --- stage 2: root, real cgroups, registries, ZooKeeper, end to end ---------------
log "stage 2: OCI test registries: scripts/oci-testenv.sh up"
# Installs docker-registry, skopeo, umoci, apache2-utils and busybox-static
# with apt when missing (the registry's system service is kept from starting),
# builds the test images offline into target/oci-testenv/oci, starts three
# docker-registry instances on 127.0.0.1 (plain http; https + basic auth;
# https + bearer tokens) and writes target/oci-testenv/env.json, which the
# image tests read. Idempotent: what is already built or running is reused.
bash scripts/oci-testenv.sh --dir "$PWD/target/oci-testenv" up
trap 'bash scripts/oci-testenv.sh --dir "$PWD/target/oci-testenv" stop' EXIT
log "stage 2: integration and end-to-end tests (as root; the journey matrix with pymesos and mesos-go among them)"
cargo test --workspace --locked --test '*'
log "stage 2: doc tests"
cargo test --workspace --locked --doc
log "stage 2: nothing left behind"
bash scripts/check-leftovers.sh
stage_done "stage 2 (integration, end to end, leftovers)"

# --- stage 3: a real cgroup v2 host with systemd, from the Debian package -------
# Production hosts are cgroup v2 with systemd as PID 1; this machine may not be.
# scripts/v2/ci.sh installs its own deps (mmdebstrap, qemu unpacked under
# target/v2rig), builds (or reuses) a Debian 12 VM image, boots the VM,
# installs the package given to it with dpkg -i, runs both units and the v2 checks inside, and
# prints its own table. The registries of stage 2 are not needed (the guest
# serves the busybox layout itself).
# The package holds the binary stages 1-2 built and tested, stripped of its
# debug info: a release build from scratch would add 10-25 minutes on a
# 2-core machine for no check this stage makes (scripts/build-deb.sh with no
# --binary builds the release package operators install).
log "stage 3: real cgroup v2 + systemd VM: scripts/v2/ci.sh"
cargo build --locked --bin tepui
mkdir -p target/v2
objcopy --strip-debug target/debug/tepui target/v2/tepui
deb=$(bash scripts/build-deb.sh --binary target/v2/tepui --out target/v2/debian | tail -1)
bash scripts/v2/ci.sh --deb "$deb"
stage_done "stage 3 (.deb of the tested binary, cgroup v2 VM)"

log "all tests passed"
printf '  %s\n' "${timings[@]}"
