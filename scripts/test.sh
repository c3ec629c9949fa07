#!/usr/bin/env bash
# Runs tepui's whole test suite on a fresh Debian 12 machine, as root.
# It installs what the tests need itself, then runs format and lint checks,
# unit, integration and end-to-end tests. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- what the suite needs from the machine -----------------------------------
. scripts/deps.sh
need_cargo
install_apt_packages "${TEST_PACKAGES[@]}"
install_zookeeper
install_journey_clients
install_mesos_cli
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy 2>/dev/null || true

# --- checks --------------------------------------------------------------------
export CARGO_TERM_COLOR=never
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "OCI test registries: scripts/oci-testenv.sh up"
# Installs docker-registry, skopeo, umoci, apache2-utils and busybox-static
# with apt when missing (the registry's system service is kept from starting),
# builds the test images offline into target/oci-testenv/oci, starts three
# docker-registry instances on 127.0.0.1 (plain http; https + basic auth;
# https + bearer tokens) and writes target/oci-testenv/env.json, which the
# image tests read. Idempotent: what is already built or running is reused.
bash scripts/oci-testenv.sh --dir "$PWD/target/oci-testenv" up
trap 'bash scripts/oci-testenv.sh --dir "$PWD/target/oci-testenv" stop' EXIT
log "cargo test"
cargo test --workspace --locked
log "nothing left behind"
bash scripts/check-leftovers.sh
log "all tests passed"
