#!/usr/bin/env bash
# Runs tepui's whole test suite on a fresh Debian 12 machine, as root.
# It installs what the tests need itself, then runs format and lint checks,
# unit, integration and end-to-end tests. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

# --- what the suite needs from the machine -----------------------------------
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: tepui needs a Rust toolchain >= $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) (rustup)" >&2
  exit 1
fi
# libseccomp-dev: libcontainer links libseccomp (default seccomp profile).
# runc, crun: the spec tests run generated OCI specs with them, as peers.
# python3, bash: container workloads in the end-to-end tests.
APT_PACKAGES=(gcc pkg-config libseccomp-dev runc crun python3 bash)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "run as root to install: ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy 2>/dev/null || true

# --- checks --------------------------------------------------------------------
export CARGO_TERM_COLOR=never
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked
log "all tests passed"
