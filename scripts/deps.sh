# Sourced by run.sh and test.sh: installs what building and testing tepui
# needs on a fresh Debian 12 machine (as root), once.
need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: tepui needs a Rust toolchain >= $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) (rustup)" >&2
    exit 1
  fi
}

# gcc, pkg-config: crates that build C. libseccomp-dev: libcontainer links
# libseccomp (the default seccomp profile). runc, crun: the spec tests run
# generated OCI specs with them, as peers. python3, bash: container workloads
# in the end-to-end tests.
install_apt_packages() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "run as root to install: ${missing[*]}" >&2; exit 1; fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

BUILD_PACKAGES=(gcc pkg-config libseccomp-dev)
TEST_PACKAGES=("${BUILD_PACKAGES[@]}" runc crun python3 bash)
