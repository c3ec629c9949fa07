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
# in the end-to-end tests. iproute2: the multi-host tests build hosts from
# network namespaces, veth pairs and a bridge with `ip`.
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
# xfsprogs: mkfs.xfs and xfs_io for the disk/xfs test (a loopback XFS in its
# own temp dir).
TEST_PACKAGES=("${BUILD_PACKAGES[@]}" runc crun python3 bash iproute2 xfsprogs)

# ZooKeeper for the highly-available master tests: the server's jars only
# (libzookeeper-java; the `zookeeper` package's service user and init scripts
# are not needed: the tests run QuorumPeerMain themselves). Some images lack
# the JRE's /etc conffiles, which makes ca-certificates-java's configuration
# (pulled in with the JRE) fail; those are restored from the package first.
install_zookeeper() {
  [ -e /usr/share/java/zookeeper.jar ] && return 0
  if [ "$(id -u)" -ne 0 ]; then echo "run as root to install libzookeeper-java" >&2; exit 1; fi
  echo "== installing libzookeeper-java"
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -y -qq
    -o Dpkg::Options::=--force-confmiss -o Dpkg::Options::=--force-confnew)
  apt-get update -qq
  if command -v java >/dev/null 2>&1 && ! java -XshowSettings:properties -version >/dev/null 2>&1 \
      || [ ! -e "$(dirname "$(readlink -f "$(command -v java)")")/../conf/security/java.security" ]; then
    repair_java "${apt[@]}"
  fi
  "${apt[@]}" install --no-install-recommends libzookeeper-java || {
    repair_java "${apt[@]}"
    "${apt[@]}" install --no-install-recommends libzookeeper-java
  }
}

repair_java() {
  "$@" install --reinstall --no-install-recommends openjdk-17-jre-headless || true
  local f
  while IFS= read -r f; do
    [ -e "${f%.dpkg-new}" ] || cp "$f" "${f%.dpkg-new}"
  done < <(find /etc/java-17-openjdk -name '*.dpkg-new' 2>/dev/null)
  DEBIAN_FRONTEND=noninteractive dpkg --force-confnew --force-confmiss --configure -a
}

# The third-party Mesos clients of the journey matrix (tests/journeys.rs):
# mesos-go's api/v1 from Debian (built offline by the test, GOPATH mode), and
# pymesos from PyPI in a venv under target/journeys/venv. pymesos needs
# http-parser, whose C extension does not build on Python 3.11: it is built
# from its source distribution in pure-Python mode. Fast when already done.
install_journey_clients() {
  install_apt_packages golang-go golang-github-mesos-mesos-go-dev python3-venv
  local venv="$PWD/target/journeys/venv"
  if "$venv/bin/python" -c 'import pymesos, http_parser' >/dev/null 2>&1; then
    return 0
  fi
  echo "== installing pymesos into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  local src
  src=$(mktemp -d)
  "$venv/bin/pip" download -q http-parser --no-deps --no-binary :all: -d "$src"
  tar -xzf "$src"/http-parser-*.tar.gz -C "$src"
  sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$src"/http-parser-*/setup.py
  "$venv/bin/pip" install -q "$src"/http-parser-*/
  "$venv/bin/pip" install -q pymesos
  rm -rf "$src"
  "$venv/bin/python" -c 'import pymesos, http_parser'
}

# The Mesos CLI (`mesos agent|framework|task ...`) of tests/mesos_cli.rs:
# avmesos-cli, the maintained fork of Mesos's `cli_new`, from PyPI in a venv
# under target/mesos-cli/venv. It declares Python >= 3.12 but runs on 3.11
# (Debian 12's), hence --ignore-requires-python. Fast when already done.
# A real Prometheus text-format parser (prometheus-client's
# `text_string_to_metric_families`) for tests/metrics.rs, in its own venv.
install_prometheus_parser() {
  install_apt_packages python3-venv
  local venv="$PWD/target/prometheus/venv"
  if "$venv/bin/pip" show prometheus-client 2>/dev/null | grep -qx 'Version: 0.21.1'; then
    return 0
  fi
  echo "== installing prometheus-client into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q prometheus-client==0.21.1
  "$venv/bin/python" -c 'import prometheus_client.parser'
}

# The web UI's browser tests (tests/webui_browser.rs): Debian's headless
# Chromium and its chromedriver, and Selenium from PyPI in a venv.
install_webui_browser() {
  install_apt_packages python3-venv chromium chromium-driver
  local venv="$PWD/target/webui/venv"
  if "$venv/bin/pip" show selenium 2>/dev/null | grep -qx 'Version: 4.27.1'; then
    return 0
  fi
  echo "== installing selenium into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q selenium==4.27.1
  "$venv/bin/python" -c 'import selenium.webdriver'
}

install_mesos_cli() {
  install_apt_packages python3-venv
  local venv="$PWD/target/mesos-cli/venv"
  if "$venv/bin/python" -c 'import avmesos.cli' >/dev/null 2>&1 \
      && "$venv/bin/pip" show avmesos-cli 2>/dev/null | grep -qx 'Version: 1.3.0'; then
    return 0
  fi
  echo "== installing avmesos-cli into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --ignore-requires-python avmesos-cli==1.3.0
  "$venv/bin/python" -c 'import avmesos.cli'
}
