#!/usr/bin/env bash
# oci-testenv.sh - local OCI/Docker registry test environment (loopback only).
#
# Builds deterministic test images (no network pull), serves them from three
# docker-registry (distribution 2.8) instances on 127.0.0.1 and writes the
# connection details to $DIR/env.sh and $DIR/env.json:
#   plain : http,  no auth
#   basic : https (self-signed test CA), HTTP basic auth (htpasswd, bcrypt)
#   token : https, Bearer token auth (tiny token server in python, JWT RS256)
# Images (OCI layout in $DIR/oci, refs below; tag :latest = pushed as built
# (OCI), tag :v2s2 = converted to Docker schema2 by skopeo):
#   busybox  static busybox + applet symlinks, /etc/passwd, Cmd ["sh"]
#   layers   busybox + 2 layers: .wh. whiteouts, opaque dir, symlinks,
#            hardlink, setuid/setgid, xattr, fifo, type changes, long name
#   big      busybox + 5 layers of seeded pseudo-random data (~80 MiB raw)
#   multi    OCI index: native arch (= busybox) + fake arm64/amd64 sibling
#
# usage: oci-testenv.sh [--dir DIR] [--big-mb N] COMMAND [COMMAND...]
#   up        install + build + start + push + env (the default)
#   install   apt-get install the tools (skipped when already present)
#   build     write the OCI image layout $DIR/oci (skipped when unchanged)
#   start     start registries + token server, push images (idempotent)
#   stop      stop everything this script started in DIR (by pidfile)
#   status    show what is running
#   env       print the env.sh contents
#   verify    check the v2 API flow with curl + skopeo + umoci round trip
#   bench [N] time skopeo copy + umoci unpack (+ podman pull if installed) of
#             'big' from the plain registry: median of N runs (default 5)
#   tree ROOTFS  print the canonical listing used for expected/layers.tree
#   clean     stop + remove DIR
#
# Environment (all optional):
#   OCI_TESTENV_DIR        work dir (default ${TMPDIR:-/tmp}/oci-testenv)
#   OCI_TESTENV_PORT_PLAIN, _PORT_BASIC, _PORT_TOKEN, _PORT_TOKEN_SERVER
#                          fixed ports; default: a free port is picked once
#                          and reused while it stays free
#   OCI_TESTENV_BIG_MB     uncompressed size of the 'big' image (default 80)
#   OCI_TESTENV_USER / OCI_TESTENV_PASS  credentials (testuser/testpassword)
#   OCI_TESTENV_BUSYBOX    static busybox binary (default: busybox on PATH)
#   OCI_TESTENV_NO_INSTALL=1  never call apt-get
#   OCI_TESTENV_NO_PODMAN=1   bench: skip podman even when installed
#   OCI_TESTENV_DEBUG=1    timestamps + one line per push
#
# Typical CI use:
#   ./oci-testenv.sh --dir "$PWD/target/oci-testenv" up
#   trap './oci-testenv.sh --dir "$PWD/target/oci-testenv" stop' EXIT
#   . target/oci-testenv/env.sh && cargo test
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
DIR="${OCI_TESTENV_DIR:-${TMPDIR:-/tmp}/oci-testenv}"
BIG_MB="${OCI_TESTENV_BIG_MB:-80}"
USER_NAME="${OCI_TESTENV_USER:-testuser}"
USER_PASS="${OCI_TESTENV_PASS:-testpassword}"
REGISTRIES=(plain basic token)

log() { if [ -n "${OCI_TESTENV_DEBUG:-}" ]; then printf '[oci-testenv %s] %s\n' "$(date +%T.%3N)" "$*" >&2; else printf '[oci-testenv] %s\n' "$*" >&2; fi; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- arguments
CMDS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --dir=*) DIR="${1#*=}"; shift ;;
    --big-mb) BIG_MB="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) CMDS+=("$1"); shift ;;
  esac
done
[ ${#CMDS[@]} -gt 0 ] || CMDS=(up)
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
touch "$DIR/.oci-testenv"           # marker: 'clean' only removes dirs that have it
BIN="$DIR/bin"; PY="$BIN/oci_testenv.py"
TLS="$DIR/tls"; CERTDIR="$TLS/certs.d"
LAYOUT="$DIR/oci"
POLICY="$DIR/policy.json"
export TMPDIR="${TMPDIR:-/tmp}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }

# ---------------------------------------------------------------- install
cmd_install() {
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v skopeo  >/dev/null || missing+=(skopeo)
  command -v umoci   >/dev/null || missing+=(umoci)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl    >/dev/null || missing+=(curl ca-certificates)
  command -v python3 >/dev/null || missing+=(python3)
  if [ -z "${OCI_TESTENV_BUSYBOX:-}" ]; then
    # the image needs a *static* busybox (the dynamic one has no libc inside)
    if command -v dpkg-query >/dev/null; then
      dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
    else
      command -v busybox >/dev/null || missing+=(busybox-static)
    fi
  fi
  if [ ${#missing[@]} -eq 0 ]; then log "install: all tools present"; return 0; fi
  [ "${OCI_TESTENV_NO_INSTALL:-0}" = 1 ] && die "missing packages and OCI_TESTENV_NO_INSTALL=1: ${missing[*]}"
  log "install: apt-get install ${missing[*]}"
  local t0=$SECONDS rc=0 guard=""
  # Debian's docker-registry package enables + starts a system service on :5000
  # (all interfaces); a temporary policy-rc.d stops invoke-rc.d from starting it
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d; guard=1
  fi
  # 'apt-get update' first: on a fresh machine the lists may be empty or stale
  as_root env DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -qq || rc=$?
  [ $rc -eq 0 ] && { as_root env DEBIAN_FRONTEND=noninteractive timeout 600 \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?; }
  if [ -n "$guard" ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
  [ $rc -eq 0 ] || die "apt-get failed (exit $rc)"
  log "install: done in $((SECONDS - t0))s"
}

need_tools() {
  local t
  for t in docker-registry skopeo umoci htpasswd openssl curl python3; do
    command -v "$t" >/dev/null || die "$t not found: run '$0 install' first"
  done
}

busybox_bin() {
  local b="${OCI_TESTENV_BUSYBOX:-}"
  if [ -z "$b" ]; then for b in /bin/busybox /usr/bin/busybox "$(command -v busybox || true)"; do [ -x "$b" ] && break; done; fi
  [ -x "$b" ] || die "no busybox binary (install busybox-static or set OCI_TESTENV_BUSYBOX)"
  python3 "$PY" isstatic "$b" || die "$b is dynamically linked; install busybox-static"
  printf '%s' "$b"
}

# ---------------------------------------------------------------- helper code
write_helpers() {
  mkdir -p "$BIN"
  cat > "$PY.tmp" <<'PYEOF'
#!/usr/bin/env python3
"""oci-testenv helpers (stdlib only): gen | tree | token-server | freeport |
isstatic | envjson | bench"""
import base64, gzip, hashlib, io, json, os, platform, random, shutil, socket, ssl, stat
import statistics, struct, subprocess, sys, tarfile, threading, time, urllib.parse, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MTIME = 1700000000                      # all tar mtimes: 2023-11-14T22:13:20Z
CREATED = "2023-11-14T22:13:20Z"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
        "s390x": "s390x", "riscv64": "riscv64"}.get(platform.machine(), platform.machine())


# ------------------------------------------------------------------ image gen
class Layout:
    """Minimal OCI image layout writer."""

    def __init__(self, root):
        self.root, self.blobs, self.refs = root, os.path.join(root, "blobs", "sha256"), []
        os.makedirs(self.blobs, exist_ok=True)

    def put(self, data, media_type, **extra):
        h = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.blobs, h)
        if not os.path.exists(p):
            with open(p + ".tmp", "wb") as f:
                f.write(data)
            os.replace(p + ".tmp", p)
        d = {"mediaType": media_type, "digest": "sha256:" + h, "size": len(data)}
        d.update(extra)
        return d

    def put_json(self, obj, media_type, **extra):
        raw = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
        return self.put(raw, media_type, **extra)

    def image(self, layers, cfg, arch=ARCH, variant=None, history=None):
        """layers: [(tar_bytes, gzip_bytes)] -> manifest descriptor (with platform)."""
        config = {"created": CREATED, "architecture": arch, "os": "linux", "config": cfg,
                  "rootfs": {"type": "layers", "diff_ids": [
                      "sha256:" + hashlib.sha256(t).hexdigest() for t, _ in layers]},
                  "history": history or [{"created": CREATED, "created_by": "layer %d" % i}
                                         for i in range(len(layers))]}
        plat = {"architecture": arch, "os": "linux"}
        if variant:
            config["variant"] = plat["variant"] = variant
        manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST,
                    "config": self.put_json(config, MT_CONFIG),
                    "layers": [self.put(gz, MT_LAYER_GZ) for _, gz in layers]}
        return self.put_json(manifest, MT_MANIFEST, platform=plat)

    def tag(self, name, desc):
        d = {k: v for k, v in desc.items() if k != "platform"}
        d["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(d)

    def finish(self):
        with open(os.path.join(self.root, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        tmp = os.path.join(self.root, "index.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": self.refs}, f, indent=1)
        os.replace(tmp, os.path.join(self.root, "index.json"))


class Tar:
    """One layer, built in memory as a PAX tar, root-owned unless told."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _ti(self, name, typ, mode, uid=0, gid=0, xattrs=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.uname, ti.gname = typ, mode, uid, gid, MTIME, "", ""
        if xattrs:   # GNU tar / Go archive/tar spelling of xattrs in PAX records
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        return ti

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.tf.addfile(self._ti(name, tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        data = data.encode() if isinstance(data, str) else data
        ti = self._ti(name, tarfile.REGTYPE, mode, uid, gid, xattrs)
        ti.size = len(data)
        self.tf.addfile(ti, io.BytesIO(data))

    def link(self, name, target, typ):
        ti = self._ti(name, typ, 0o777 if typ == tarfile.SYMTYPE else 0o644)
        ti.linkname = target
        self.tf.addfile(ti)

    def fifo(self, name, mode=0o644):
        self.tf.addfile(self._ti(name, tarfile.FIFOTYPE, mode))

    def done(self, level=6):
        self.tf.close()
        raw = self.buf.getvalue()
        return raw, gzip.compress(raw, compresslevel=level, mtime=0)


def busybox_layer(busybox):
    t = Tar()
    for d in ["bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "usr", "usr/bin",
              "usr/sbin", "var", "var/spool", "var/spool/mail", "var/www"]:
        t.dir(d, 0o700 if d == "root" else 0o755)
    t.dir("home/app", 0o755, 1000, 1000)
    t.dir("tmp", 0o1777)
    with open(busybox, "rb") as f:
        t.file("bin/busybox", f.read(), 0o755)
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True).stdout
    for a in sorted(set(out.split())):
        if a != "bin/busybox" and "/" in a:        # skip busybox itself and /linuxrc
            t.link(a, "/bin/busybox", tarfile.SYMTYPE)   # as `busybox --install -s` does
    t.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                         "app:x:1000:1000:app:/home/app:/bin/sh\n"
                         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    t.file("etc/group", "root:x:0:\ndaemon:x:1:\napp:x:1000:\nnogroup:x:65534:\n")
    t.file("etc/shadow", "root:*:19675:0:99999:7:::\napp:!:19675::::::\n", 0o640)
    t.file("etc/hostname", "oci-testenv\n")
    t.file("etc/os-release", 'NAME="oci-testenv busybox"\nID=oci-testenv\n')
    return t.done()


def fixture_layers():
    t = Tar()                                   # layer 1: things layer 2 changes
    t.dir("data")
    t.file("data/keep.txt", "keep\n")
    t.file("data/delete-me.txt", "deleted by a .wh. file in layer 2\n")
    t.dir("data/opaque")
    t.file("data/opaque/a.txt", "hidden by the opaque whiteout\n")
    t.dir("data/opaque/sub")
    t.file("data/opaque/sub/b.txt", "hidden by the opaque whiteout\n")
    t.dir("data/gone-dir")
    t.file("data/gone-dir/x.txt", "whole dir removed in layer 2\n")
    t.dir("data/dir-to-file")
    t.file("data/dir-to-file/y.txt", "dir replaced by a file in layer 2\n")
    t.file("data/file-to-dir", "file replaced by a dir in layer 2\n")
    t.link("data/rel-symlink", "keep.txt", tarfile.SYMTYPE)
    t.link("data/abs-symlink", "/data/keep.txt", tarfile.SYMTYPE)
    t.link("data/escape-symlink", "../../../../etc/passwd", tarfile.SYMTYPE)
    t.link("data/dangling-symlink", "does-not-exist", tarfile.SYMTYPE)
    t.link("data/hardlink.txt", "data/keep.txt", tarfile.LNKTYPE)
    t.file("data/setuid-bin", "#!/bin/sh\necho setuid\n", 0o4755)
    t.file("data/setgid-bin", "#!/bin/sh\necho setgid\n", 0o2755)
    t.dir("data/sticky", 0o1777)
    t.file("data/xattr.txt", "has a user.oci-test xattr\n", xattrs={"user.oci-test": "hello"})
    t.file("data/owned-1000.txt", "uid/gid 1000\n", 0o600, 1000, 1000)
    t.file("data/" + "long-name-" * 12 + "end.txt", "name over 100 bytes (PAX path record)\n")
    t.file("data/unicode-\u00e9\u00e8.txt", "non-ascii name\n")
    t.dir("data/empty-dir", 0o750)
    t.fifo("data/fifo")
    l1 = t.done()
    t = Tar()                                   # layer 2: whiteouts + type changes
    t.dir("data")
    t.file("data/.wh.delete-me.txt")            # remove one file
    t.file("data/.wh.gone-dir")                 # remove a whole directory
    t.dir("data/opaque")
    # new.txt comes BEFORE the opaque marker on purpose: the marker hides only
    # lower layers, so an unpacker that clears the dir on sight gets this wrong
    t.file("data/opaque/new.txt", "added in the same layer as the opaque whiteout\n")
    t.file("data/opaque/.wh..wh..opq")
    t.file("data/dir-to-file", "was a directory in layer 1\n")
    t.dir("data/file-to-dir")
    t.file("data/file-to-dir/inner.txt", "was a file in layer 1\n")
    # rewriting keep.txt must not change data/hardlink.txt (unlink, don't truncate)
    t.file("data/keep.txt", "keep (rewritten in layer 2)\n")
    t.file("./data/dot-prefixed.txt", "entry name starts with ./\n")
    t.dir("data/vol")
    return l1, t.done()


def big_layers(total_mb):
    rnd, mb, out = random.Random(42), 1 << 20, []
    plan = [("small-files", 2000, "text", 0.12), ("medium-random", 8, "random", 0.25),
            ("one-large-random", 1, "random", 0.30), ("mixed", 200, "mixed", 0.13),
            ("compressible", 1, "repeat", 0.20)]
    for name, count, kind, share in plan:
        t = Tar()
        t.dir("big")
        t.dir("big/" + name)
        size = max(1, int(total_mb * mb * share) // count)
        for i in range(count):
            n = rnd.randint(size // 2, size * 3 // 2) if kind == "text" else size
            if kind == "random":
                data = rnd.randbytes(n)
            elif kind == "text":
                data = rnd.randbytes(n // 2 + 1).hex().encode()[:n]
            elif kind == "mixed":
                data = rnd.randbytes(n // 2) + bytes(n - n // 2)
            else:
                data = ((b"the quick brown fox jumps over the lazy dog %d\n" % i) * (n // 40 + 1))[:n]
            parent = "big/%s/%02d" % (name, i % 50) if count > 50 else "big/" + name
            if count > 50 and i < 50:
                t.dir(parent)
            t.file("%s/f%05d.bin" % (parent, i), data)
        # zlib writes stored blocks for random data at any level: level 0 gives
        # the same kind of stream ~15x faster
        out.append(t.done(0 if kind == "random" else 6))
    return out


def cmd_gen(root, busybox, big_mb):
    lay = Layout(root)
    bb = busybox_layer(busybox)
    bb_cfg = {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/",
              "Labels": {"org.opencontainers.image.title": "oci-testenv busybox"}}
    bb_desc = lay.image([bb], bb_cfg)
    lay.tag("busybox", bb_desc)

    l1, l2 = fixture_layers()
    cfg = {"User": "1000:1000",
           "Env": [PATH_ENV, "OCI_TESTENV=layers", "EMPTY_VALUE=", "WITH_EQUALS=a=b"],
           "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["ls -la /data && cat /data/keep.txt"],
           "WorkingDir": "/data", "ExposedPorts": {"8080/tcp": {}}, "Volumes": {"/data/vol": {}},
           "StopSignal": "SIGTERM", "Labels": {"org.opencontainers.image.title": "oci-testenv layers"}}
    hist = [{"created": CREATED, "created_by": "busybox layer"},
            {"created": CREATED, "created_by": "ENV OCI_TESTENV=layers", "empty_layer": True},
            {"created": CREATED, "created_by": "fixture layer 1"},
            {"created": CREATED, "created_by": "fixture layer 2: whiteouts"}]
    lay.tag("layers", lay.image([bb, l1, l2], cfg, history=hist))

    lay.tag("big", lay.image([bb] + big_layers(big_mb),
                             {"Env": [PATH_ENV], "Cmd": ["du", "-sh", "/big"], "WorkingDir": "/big"}))

    other = "arm64" if ARCH != "arm64" else "amd64"     # fake sibling: same layer, other arch
    other_desc = lay.image([bb], dict(bb_cfg, Labels={"fake-platform": other}), arch=other,
                           variant="v8" if other == "arm64" else None)
    idx = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [bb_desc, other_desc]}
    lay.tag("multi", lay.put_json(idx, MT_INDEX))
    lay.finish()


# ------------------------------------------------------------------ tree
def cmd_tree(root):
    """Canonical rootfs listing: path type mode uid gid [size sha256|-> target] [xattrs]."""
    root = os.path.abspath(root)
    lines = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            m = st.st_mode
            typ = ("d" if stat.S_ISDIR(m) else "f" if stat.S_ISREG(m) else "l" if stat.S_ISLNK(m)
                   else "p" if stat.S_ISFIFO(m) else "c" if stat.S_ISCHR(m) else "b" if stat.S_ISBLK(m) else "s")
            parts = [rel, typ, "uid=%d" % st.st_uid, "gid=%d" % st.st_gid]
            if typ != "l":
                parts.insert(2, "mode=%04o" % stat.S_IMODE(m))
            if typ == "f":
                with open(p, "rb") as f:
                    parts += ["size=%d" % st.st_size, "sha256=" + hashlib.sha256(f.read()).hexdigest()[:16]]
            if typ == "l":
                parts.append("-> " + os.readlink(p))
            try:
                for x in sorted(os.listxattr(p, follow_symlinks=False)):
                    if not x.startswith("security.selinux"):
                        parts.append("xattr.%s=%s" % (x, os.getxattr(p, x, follow_symlinks=False)
                                                      .decode("utf-8", "backslashreplace")))
            except OSError:
                pass
            lines.append((rel, " ".join(parts)))
    print("\n".join(l for _, l in sorted(lines)))


# ------------------------------------------------------------------ token server
def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cmd_token_server(a):
    """Docker registry token server (GET /token?service=..&scope=..).
    anonymous: pull on every repo except private/*; testuser: pull,push,delete
    everywhere + registry:catalog:*; wrong credentials: 401."""
    with open(a["sign_cert"]) as f:
        pem = f.read()
    der_b64 = "".join(l for l in pem.splitlines() if l and "CERTIFICATE" not in l)
    ttl = int(a.get("ttl", "300"))

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code, obj, extra=()):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            if u.path != "/token":
                return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
            q = urllib.parse.parse_qs(u.query)
            user = None
            authz = self.headers.get("Authorization", "")
            if authz:
                try:
                    scheme, _, cred = authz.partition(" ")
                    name, _, pw = base64.b64decode(cred).decode().partition(":")
                    ok = scheme.lower() == "basic" and (name, pw) == (a["user"], a["pass"])
                except Exception:
                    ok = False
                if not ok:
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                      [("WWW-Authenticate", 'Basic realm="oci-testenv-token"')])
                user = name
            access = []
            for sc in " ".join(q.get("scope", [])).split():
                typ, _, rest = sc.partition(":")
                rname, _, acts = rest.rpartition(":")
                acts = [x for x in acts.split(",") if x]
                if typ == "repository":
                    if user:
                        granted = [x for x in acts if x in ("pull", "push", "delete", "*")]
                    elif rname.startswith("private/"):
                        granted = []
                    else:
                        granted = [x for x in acts if x == "pull"]
                elif typ == "registry" and rname == "catalog" and user:
                    granted = ["*"]
                else:
                    granted = []
                access.append({"type": typ, "name": rname, "actions": granted})
            now = int(time.time())
            claims = {"iss": a["issuer"], "sub": user or "", "aud": q.get("service", [""])[0],
                      "exp": now + ttl, "nbf": now - 5, "iat": now, "jti": uuid.uuid4().hex,
                      "access": access}
            hdr = {"typ": "JWT", "alg": "RS256", "x5c": [der_b64]}
            signing_input = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode())
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a["sign_key"]],
                                 input=signing_input.encode(), capture_output=True, check=True).stdout
            tok = signing_input + "." + b64url(sig)
            self.reply(200, {"token": tok, "access_token": tok, "expires_in": ttl,
                             "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

        def log_message(self, fmt, *args):
            sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
            sys.stderr.flush()

    srv = ThreadingHTTPServer(("127.0.0.1", int(a["port"])), H)
    if a.get("tls_cert"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a["tls_cert"], a["tls_key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


# ------------------------------------------------------------------ small helpers
def cmd_freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's listener does
    try:
        s.bind(("127.0.0.1", int(port)))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cmd_isstatic(path):
    """exit 0 when the ELF file has no PT_INTERP (statically linked)."""
    with open(path, "rb") as f:
        h = f.read(64)
        if h[:4] != b"\x7fELF":
            return 1
        is64, end = h[4] == 2, "<" if h[5] == 1 else ">"
        if is64:
            phoff, = struct.unpack(end + "Q", h[32:40]); phentsize, phnum = struct.unpack(end + "HH", h[54:58])
        else:
            phoff, = struct.unpack(end + "I", h[28:32]); phentsize, phnum = struct.unpack(end + "HH", h[42:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack(end + "I", f.read(4))[0] == 3:
                return 1
    return 0


def cmd_envjson(d):
    """Collect ports, URLs, image digests (layout + pushed) into one JSON object."""
    lay = os.path.join(d, "oci")
    blob = lambda dg: json.load(open(os.path.join(lay, "blobs", "sha256", dg.split(":", 1)[1])))
    images = {}
    for ref in json.load(open(os.path.join(lay, "index.json")))["manifests"]:
        name = ref["annotations"]["org.opencontainers.image.ref.name"]
        img = {"oci_digest": ref["digest"], "media_type": ref["mediaType"]}
        m = blob(ref["digest"])
        if ref["mediaType"] == MT_MANIFEST:
            cfgj = blob(m["config"]["digest"])
            img.update(config_digest=m["config"]["digest"], config=cfgj.get("config", {}),
                       layers=[{"digest": l["digest"], "size": l["size"], "diff_id": di}
                               for l, di in zip(m["layers"], cfgj["rootfs"]["diff_ids"])],
                       compressed_size=sum(l["size"] for l in m["layers"]))
        else:
            img["manifests"] = [{"digest": x["digest"], "platform": x.get("platform")} for x in m["manifests"]]
        images[name] = img
    regs = {}
    for r in ("plain", "basic", "token"):
        rd = os.path.join(d, "registries", r)
        if not os.path.exists(os.path.join(rd, "port")):
            continue
        port = open(os.path.join(rd, "port")).read().strip()
        pushed = {}
        pdir = os.path.join(rd, "pushed")
        for fn in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
            pushed[fn.replace("__", "/").replace("@", ":")] = open(os.path.join(pdir, fn)).read().strip()
        regs[r] = {"host": "127.0.0.1:" + port,
                   "url": ("http://" if r == "plain" else "https://") + "127.0.0.1:" + port,
                   "tags": pushed}
    tsp = os.path.join(d, "token-server", "port")
    if os.path.exists(tsp) and "token" in regs:
        regs["token"]["realm"] = "https://127.0.0.1:%s/token" % open(tsp).read().strip()
        regs["token"]["service"] = "oci-testenv"
    out = {"dir": d, "layout": lay, "ca_cert": os.path.join(d, "tls", "ca.crt"),
           "cert_dir": os.path.join(d, "tls", "certs.d"), "user": os.environ.get("U", ""),
           "password": os.environ.get("P", ""), "registries": regs, "images": images,
           "expected_layers_tree": os.path.join(d, "expected", "layers.tree")}
    print(json.dumps(out, indent=1, sort_keys=True))


def cmd_bench(args):
    """bench REGISTRY_HOST REPO:TAG RUNS WORKDIR: time skopeo copy + umoci unpack."""
    host, ref, runs, wd = args[0], args[1], int(args[2]), args[3]
    policy = os.path.join(os.path.dirname(wd.rstrip("/")), "policy.json")
    rootless = [] if os.geteuid() == 0 else ["--rootless"]
    def run(cmd, env=None):
        os.sync()   # untimed: flush the previous step's dirty pages so they don't bill this one
        r0 = os.times()
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        t1 = time.perf_counter()
        if p.returncode:
            sys.exit("bench step failed: %s\n%s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
        r1 = os.times()
        return t1 - t0, (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    steps = {"skopeo copy docker->oci": [], "umoci unpack": [], "umoci raw unpack": [],
             "curl all blobs (no write)": [], "gzip -dc all layers": [], "tar -xzf each layer": []}
    name, tag = ref.rsplit(":", 1)
    podman = os.geteuid() == 0 and shutil.which("podman") and not os.environ.get("OCI_TESTENV_NO_PODMAN")
    if podman:
        steps["podman pull (overlay)"] = []
    for i in range(runs):
        subprocess.run(["rm", "-rf", wd], check=True)   # slow on ext4 right after big writes (untimed)
        os.makedirs(wd)
        oci = os.path.join(wd, "oci")
        steps["skopeo copy docker->oci"].append(run(["skopeo", "--policy", policy, "copy", "-q",
            "--src-tls-verify=false", "docker://%s/%s" % (host, ref), "oci:%s:%s" % (oci, tag)]))
        steps["umoci unpack"].append(run(["umoci", "unpack"] + rootless +
                                         ["--image", "%s:%s" % (oci, tag), os.path.join(wd, "bundle")]))
        steps["umoci raw unpack"].append(run(["umoci", "raw", "unpack"] + rootless +
                                             ["--image", "%s:%s" % (oci, tag), os.path.join(wd, "rootfs")]))
        idx = json.load(open(os.path.join(oci, "index.json")))["manifests"][0]["digest"]
        man = json.load(open(os.path.join(oci, "blobs", "sha256", idx.split(":")[1])))
        urls = ["http://%s/v2/%s/blobs/%s" % (host, name, l["digest"]) for l in man["layers"]]
        steps["curl all blobs (no write)"].append(
            run(["curl", "-sf"] + sum([["-o", "/dev/null", u] for u in urls], [])))
        blobs = [os.path.join(oci, "blobs", "sha256", l["digest"].split(":")[1]) for l in man["layers"]]
        steps["gzip -dc all layers"].append(run(["sh", "-c", "cat %s | gzip -dc > /dev/null" % " ".join(blobs)]))
        tdir = os.path.join(wd, "tar")
        os.makedirs(tdir)
        steps["tar -xzf each layer"].append(run(["sh", "-c", " && ".join(
            "tar -xzf %s -C %s" % (b, tdir) for b in blobs)]))
        if podman:   # optional peer: podman pull into a fresh overlay store under wd
            pr = os.path.join(wd, "podman")
            os.makedirs(os.path.join(pr, "tmp"))
            with open(os.path.join(pr, "containers.conf"), "w") as f:
                f.write('[engine]\nevents_logger = "file"\nevents_logfile_path = "%s/events.log"\n'
                        'image_copy_tmp_dir = "%s/tmp"\ncgroup_manager = "cgroupfs"\n' % (pr, pr))
            steps["podman pull (overlay)"].append(run(
                ["podman", "--root", pr + "/root", "--runroot", pr + "/run", "--storage-driver",
                 "overlay", "pull", "-q", "--tls-verify=false", "%s/%s" % (host, ref)],
                env=dict(os.environ, CONTAINERS_CONF=pr + "/containers.conf")))
    size = sum(l["size"] for l in man["layers"])
    print("image %s/%s: %d layers, %.1f MiB compressed; %d runs (wall s: median [min..max]; cpu s median)"
          % (host, ref, len(man["layers"]), size / 2**20, runs))
    for k, v in steps.items():
        w = [x[0] for x in v]; c = [x[1] for x in v]
        print("  %-28s %6.2f [%5.2f..%5.2f]  cpu %5.2f  (%.0f MiB/s compressed)"
              % (k, statistics.median(w), min(w), max(w), statistics.median(c), size / 2**20 / statistics.median(w)))
    subprocess.run(["rm", "-rf", wd], check=True)


def main():
    c, a = sys.argv[1], sys.argv[2:]
    if c == "gen":
        cmd_gen(a[0], a[1], int(a[2]))
    elif c == "tree":
        cmd_tree(a[0])
    elif c == "token-server":
        cmd_token_server(dict(x.split("=", 1) for x in a))
    elif c == "freeport":
        cmd_freeport()
    elif c == "portfree":
        sys.exit(0 if port_free(a[0]) else 1)
    elif c == "isstatic":
        sys.exit(cmd_isstatic(a[0]))
    elif c == "envjson":
        cmd_envjson(a[0])
    elif c == "bench":
        cmd_bench(a)
    else:
        sys.exit("unknown helper command " + c)


if __name__ == "__main__":
    main()
PYEOF
  if ! cmp -s "$PY.tmp" "$PY"; then mv "$PY.tmp" "$PY"; else rm -f "$PY.tmp"; fi
  [ -f "$POLICY" ] || printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' > "$POLICY"
}

sko() { timeout 180 skopeo --policy "$POLICY" "$@"; }

# ---------------------------------------------------------------- build
build_stamp() {
  # only the image generator code, the busybox binary and the size matter
  { sed -n '/^# -* image gen/,/^# -* tree/p' "$PY"; sha256sum "$(busybox_bin)" | cut -d' ' -f1; echo "$BIG_MB"; } \
    | sha256sum | cut -c1-16
}

cmd_build() {
  write_helpers
  local stamp t0=$SECONDS; stamp="$(build_stamp)"
  if [ -f "$LAYOUT/.stamp" ] && [ "$(cat "$LAYOUT/.stamp")" = "$stamp" ]; then
    log "build: image layout up to date ($LAYOUT)"
  else
    rm -rf "$LAYOUT"
    timeout 300 python3 "$PY" gen "$LAYOUT" "$(busybox_bin)" "$BIG_MB"
    echo "$stamp" > "$LAYOUT/.stamp"
    log "build: wrote $LAYOUT (busybox layers big multi) in $((SECONDS - t0))s"
  fi
  # reference listing of the merged 'layers' rootfs, as umoci unpacks it
  local estamp tmp="$DIR/expected/.bundle" rootless=()
  estamp="$( { echo "$stamp"; sed -n '/^# -* tree/,/^# -* token server/p' "$PY"; } | sha256sum | cut -c1-16)"
  [ "$(cat "$DIR/expected/.stamp" 2>/dev/null)" = "$estamp" ] && return 0
  [ "$(id -u)" = 0 ] || rootless=(--rootless)
  mkdir -p "$DIR/expected"; rm -rf "$tmp"
  umoci unpack "${rootless[@]}" --image "$LAYOUT:layers" "$tmp" >/dev/null
  python3 "$PY" tree "$tmp/rootfs" > "$DIR/expected/layers.tree"
  rm -rf "$tmp"
  echo "$estamp" > "$DIR/expected/.stamp"
}

# ---------------------------------------------------------------- TLS + auth material
make_tls() {
  mkdir -p "$TLS" "$CERTDIR"
  [ -f "$TLS/server.crt" ] && [ -f "$TLS/token.crt" ] && return 0
  log "tls: creating test CA, server cert (IP:127.0.0.1, DNS:localhost) and token signing key"
  (
    cd "$TLS"
    # 'openssl req' needs a config file; a machine whose /etc/ssl/openssl.cnf
    # is missing gets a minimal one (everything else comes from the flags)
    if [ -z "${OPENSSL_CONF:-}" ] && [ ! -f "$(openssl version -d | sed 's/^OPENSSLDIR: "\(.*\)"$/\1/')/openssl.cnf" ]; then
      printf '[req]\ndistinguished_name = dn\n[dn]\n' > openssl.cnf
      export OPENSSL_CONF="$TLS/openssl.cnf"
    fi
    # a separate CA + leaf: rustls/webpki rejects a CA:TRUE cert used as the server cert
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=oci-testenv test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    # token signing key: RSA so that a plain 'openssl dgst -sign' gives an RS256 JWS
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout token.key -out token.crt \
      -subj "/CN=oci-testenv token signer" 2>/dev/null
    rm -f server.csr server.ext
    chmod 600 ./*.key
  )
  # skopeo --cert-dir: every *.crt is a CA, every *.key needs a *.cert -> CA only
  cp "$TLS/ca.crt" "$CERTDIR/ca.crt"
}

make_htpasswd() {
  mkdir -p "$DIR/auth"
  local f="$DIR/auth/htpasswd"
  if [ -f "$f" ] && htpasswd -vb "$f" "$USER_NAME" "$USER_PASS" >/dev/null 2>&1; then return 0; fi
  htpasswd -Bbc "$f" "$USER_NAME" "$USER_PASS" 2>/dev/null   # registry accepts bcrypt only
}

# ---------------------------------------------------------------- processes
# pidfile + cmdline check: never signal a process we did not start from this DIR
alive() { # pidfile needle
  local pid; pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

stop_pidfile() { # pidfile needle
  local pid i
  if alive "$1" "$2"; then
    pid="$(cat "$1")"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

pick_port() { # dir env_override
  local d="$1" want="$2" p
  if [ -n "$want" ]; then
    # a busy fixed port would let the readiness probe talk to someone else's server
    python3 "$PY" portfree "$want" || die "port $want (fixed by env) is already in use on 127.0.0.1"
    echo "$want" > "$d/port"; return 0
  fi
  p="$(cat "$d/port" 2>/dev/null || true)"
  if [ -n "$p" ] && python3 "$PY" portfree "$p"; then return 0; fi
  python3 "$PY" freeport > "$d/port"
}

wait_http() { # url pidfile curl-args...  (gives up early when the process died)
  local url="$1" pidf="$2" code i; shift 2
  for i in $(seq 1 150); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null || true)"
    case "$code" in 200|401) return 0 ;; esac
    kill -0 "$(cat "$pidf" 2>/dev/null || echo 0)" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

spawn() { # pidfile logfile cmd... (detached, survives this script)
  local pidf="$1" logf="$2"; shift 2
  rm -f "$pidf"
  setsid sh -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@" >>"$logf" 2>&1 </dev/null 9>&- &
  local i; for i in $(seq 1 50); do [ -s "$pidf" ] && return 0; sleep 0.05; done
  die "could not start $*"
}

registry_config() { # name port
  local name="$1" port="$2" rd="$DIR/registries/$1"
  {
    cat <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $rd/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: oci-testenv-not-a-secret
EOF
    if [ "$name" != plain ]; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$TLS/server.crt" "$TLS/server.key"
    fi
    case "$name" in
      basic) printf 'auth:\n  htpasswd:\n    realm: oci-testenv\n    path: %s\n' "$DIR/auth/htpasswd" ;;
      token) printf 'auth:\n  token:\n    realm: https://127.0.0.1:%s/token\n    service: oci-testenv\n    issuer: oci-testenv-token-server\n    rootcertbundle: %s\n' \
               "$(cat "$DIR/token-server/port")" "$TLS/token.crt" ;;
    esac
  } > "$rd/config.yml"
}

start_token_server() {
  local td="$DIR/token-server"; mkdir -p "$td"
  if alive "$td/pid" "$PY"; then return 0; fi
  pick_port "$td" "${OCI_TESTENV_PORT_TOKEN_SERVER:-}"
  spawn "$td/pid" "$td/log" python3 "$PY" token-server "port=$(cat "$td/port")" \
    "tls_cert=$TLS/server.crt" "tls_key=$TLS/server.key" "sign_key=$TLS/token.key" \
    "sign_cert=$TLS/token.crt" "user=$USER_NAME" "pass=$USER_PASS" issuer=oci-testenv-token-server
  wait_http "https://127.0.0.1:$(cat "$td/port")/token" "$td/pid" --cacert "$TLS/ca.crt" \
    || { tail -20 "$td/log" >&2; die "token server did not come up"; }
}

start_registry() { # name
  local name="$1" rd="$DIR/registries/$1" envp
  mkdir -p "$rd"
  # images were rebuilt -> old registry content is stale: wipe it
  if [ "$(cat "$rd/data.stamp" 2>/dev/null)" != "$(cat "$LAYOUT/.stamp")" ]; then
    stop_pidfile "$rd/pid" "$rd/config.yml"
    rm -rf "$rd/data" "$rd/pushed"
    cat "$LAYOUT/.stamp" > "$rd/data.stamp"
  fi
  mkdir -p "$rd/data" "$rd/pushed"
  if alive "$rd/pid" "$rd/config.yml"; then
    # still running: restart only if its config would change (e.g. new token server port)
    cp "$rd/config.yml" "$rd/config.yml.old"
    registry_config "$name" "$(cat "$rd/port")"
    cmp -s "$rd/config.yml" "$rd/config.yml.old" || stop_pidfile "$rd/pid" "$rd/config.yml"
    rm -f "$rd/config.yml.old"
  fi
  if ! alive "$rd/pid" "$rd/config.yml"; then
    case "$name" in plain) envp="${OCI_TESTENV_PORT_PLAIN:-}" ;; basic) envp="${OCI_TESTENV_PORT_BASIC:-}" ;; *) envp="${OCI_TESTENV_PORT_TOKEN:-}" ;; esac
    pick_port "$rd" "$envp"
    registry_config "$name" "$(cat "$rd/port")"
    spawn "$rd/pid" "$rd/log" docker-registry serve "$rd/config.yml"
  fi
}

wait_registry() { # name
  local rd="$DIR/registries/$1" scheme=https
  [ "$1" = plain ] && scheme=http
  wait_http "$scheme://127.0.0.1:$(cat "$rd/port")/v2/" "$rd/pid" --cacert "$TLS/ca.crt" \
    || { tail -20 "$rd/log" >&2; die "registry $1 did not come up"; }
}

# push SRC_REF REGISTRY REPO:TAG [skopeo copy flags]; skipped when the tag is
# already in the registry's storage with the digest recorded at push time
push() {
  local src="$1" name="$2" dst="$3"; shift 3
  local rd="$DIR/registries/$name" repo="${dst%%:*}" tag="${dst##*:}" mark
  mark="$rd/pushed/$(printf '%s' "$repo" | sed 's#/#__#g')@$tag"
  local link="$rd/data/docker/registry/v2/repositories/$repo/_manifests/tags/$tag/current/link"
  if [ -f "$mark" ] && [ -f "$link" ] && [ "$(cat "$link")" = "$(cat "$mark")" ]; then return 0; fi
  local auth=()
  case "$name" in
    plain) auth=(--dest-tls-verify=false) ;;
    *) auth=(--dest-cert-dir "$CERTDIR" --dest-creds "$USER_NAME:$USER_PASS") ;;
  esac
  [ -n "${OCI_TESTENV_DEBUG:-}" ] && log "push $src -> $name/$dst $*"
  sko copy -q --retry-times 2 "${auth[@]}" --digestfile "$mark.tmp" "$@" \
    "oci:$LAYOUT:$src" "docker://127.0.0.1:$(cat "$rd/port")/$dst" >/dev/null
  mv "$mark.tmp" "$mark"
}

cmd_start() {
  need_tools
  cmd_build
  make_tls
  make_htpasswd
  start_token_server
  local r t0=$SECONDS
  for r in "${REGISTRIES[@]}"; do start_registry "$r"; done   # all start in parallel
  for r in "${REGISTRIES[@]}"; do wait_registry "$r"; done
  # plain: every image in OCI form (as built) and converted to Docker schema2
  push busybox plain busybox:latest
  push busybox plain busybox:v2s2 --format v2s2
  push layers  plain layers:latest
  push layers  plain layers:v2s2 --format v2s2
  push big     plain big:latest
  push big     plain big:v2s2 --format v2s2
  push multi   plain multi:latest --all                  # OCI image index
  push multi   plain multi:v2s2 --all --format v2s2      # Docker manifest list
  # basic + token: small images only
  push busybox basic busybox:latest
  push busybox basic busybox:v2s2 --format v2s2
  push layers  basic layers:latest
  push multi   basic multi:latest --all
  push busybox token busybox:latest
  push busybox token busybox:v2s2 --format v2s2
  push busybox token private/busybox:latest              # anonymous pull refused
  push layers  token layers:latest
  push multi   token multi:latest --all
  log "start: registries up, images pushed in $((SECONDS - t0))s"
  write_env
  cmd_env
}

write_env() {
  local p b t ts
  p="$(cat "$DIR/registries/plain/port")"; b="$(cat "$DIR/registries/basic/port")"
  t="$(cat "$DIR/registries/token/port")"; ts="$(cat "$DIR/token-server/port")"
  U="$USER_NAME" P="$USER_PASS" python3 "$PY" envjson "$DIR" > "$DIR/env.json.tmp" && mv "$DIR/env.json.tmp" "$DIR/env.json"
  cat > "$DIR/env.sh" <<EOF
# generated by oci-testenv.sh; source it: . $DIR/env.sh
export OCI_TESTENV_DIR=$DIR
export OCI_TESTENV_JSON=$DIR/env.json
export OCI_TESTENV_PLAIN=127.0.0.1:$p          # http, no auth
export OCI_TESTENV_BASIC=127.0.0.1:$b          # https + basic auth
export OCI_TESTENV_TOKEN=127.0.0.1:$t          # https + bearer token auth
export OCI_TESTENV_TOKEN_REALM=https://127.0.0.1:$ts/token
export OCI_TESTENV_TOKEN_SERVICE=oci-testenv
export OCI_TESTENV_USER=$USER_NAME
export OCI_TESTENV_PASS=$USER_PASS
export OCI_TESTENV_CA_CERT=$TLS/ca.crt
export OCI_TESTENV_CERT_DIR=$CERTDIR
export OCI_TESTENV_LAYOUT=$LAYOUT
export OCI_TESTENV_EXPECTED_LAYERS_TREE=$DIR/expected/layers.tree
EOF
}

cmd_env() {
  [ -f "$DIR/env.sh" ] || die "not started: no $DIR/env.sh"
  cat "$DIR/env.sh"
  local p b t
  p="$(cat "$DIR/registries/plain/port")"; b="$(cat "$DIR/registries/basic/port")"; t="$(cat "$DIR/registries/token/port")"
  cat <<EOF
# images (tag latest = OCI manifest/index as built, v2s2 = Docker schema2 / manifest list):
#   127.0.0.1:$p/{busybox,layers,big,multi}:{latest,v2s2}
#   127.0.0.1:$b/{busybox:latest,busybox:v2s2,layers:latest,multi:latest}  (user $USER_NAME)
#   127.0.0.1:$t/{busybox:latest,busybox:v2s2,private/busybox:latest,layers:latest,multi:latest}
# details (digests, configs, layers): $DIR/env.json
EOF
}

cmd_stop() {
  local r
  for r in "${REGISTRIES[@]}"; do
    [ -f "$DIR/registries/$r/pid" ] && stop_pidfile "$DIR/registries/$r/pid" "$DIR/registries/$r/config.yml"
  done
  [ -f "$DIR/token-server/pid" ] && stop_pidfile "$DIR/token-server/pid" "$PY"
  log "stop: done"
}

cmd_status() {
  local r rc=0
  for r in "${REGISTRIES[@]}"; do
    if alive "$DIR/registries/$r/pid" "$DIR/registries/$r/config.yml"; then
      log "$r: running pid $(cat "$DIR/registries/$r/pid") on 127.0.0.1:$(cat "$DIR/registries/$r/port")"
    else log "$r: stopped"; rc=1; fi
  done
  if alive "$DIR/token-server/pid" "$PY"; then log "token-server: running on 127.0.0.1:$(cat "$DIR/token-server/port")"
  else log "token-server: stopped"; rc=1; fi
  return $rc
}

cmd_clean() {
  cmd_stop
  [ -f "$DIR/.oci-testenv" ] || die "$DIR has no .oci-testenv marker; not removing"
  rm -rf "$DIR"
  log "clean: removed $DIR"
}

# ---------------------------------------------------------------- verify
VOK=0; VBAD=0
check() { # description command...
  local d="$1"; shift
  if "$@" >/dev/null 2>&1; then VOK=$((VOK + 1)); log "ok   $d"; else VBAD=$((VBAD + 1)); log "FAIL $d"; fi
}
ACCEPT_ALL=(-H "Accept: application/vnd.oci.image.index.v1+json" -H "Accept: application/vnd.oci.image.manifest.v1+json"
            -H "Accept: application/vnd.docker.distribution.manifest.list.v2+json"
            -H "Accept: application/vnd.docker.distribution.manifest.v2+json")
hdr() { # header-name curl-args... -> header value of a HEAD/GET
  local h="$1"; shift
  curl -s -D - -o /dev/null "$@" | tr -d '\r' | awk -v h="$h" 'index(tolower($0), tolower(h)":")==1 {sub(/^[^:]*: */,""); v=$0} END{print v}'
}
eq() { [ "$1" = "$2" ]; }
blob_ok() { # url digest curl-args...
  local url="$1" dg="$2"; shift 2
  [ "sha256:$(curl -sf "$@" "$url" | sha256sum | cut -d' ' -f1)" = "$dg" ]
}
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); 
for k in sys.argv[2].split("."): d=d[int(k)] if k.isdigit() else d[k]
print(d)' "$DIR/env.json" "$1"; }

cmd_verify() {
  need_tools; write_helpers
  [ -f "$DIR/env.sh" ] || die "not started"
  # shellcheck disable=SC1091
  . "$DIR/env.sh"
  local P="http://$OCI_TESTENV_PLAIN" B="https://$OCI_TESTENV_BASIC" T="https://$OCI_TESTENV_TOKEN"
  local CA=(--cacert "$OCI_TESTENV_CA_CERT") bb layers multi cfg l0
  bb="$(json_get images.busybox.oci_digest)"; layers="$(json_get images.layers.oci_digest)"
  multi="$(json_get images.multi.oci_digest)"; cfg="$(json_get images.busybox.config_digest)"
  l0="$(json_get images.busybox.layers.0.digest)"

  # plain registry: the calls a puller makes
  check "plain GET /v2/ -> 200 + API version header" eq "$(hdr Docker-Distribution-Api-Version "$P/v2/")" "registry/2.0"
  check "plain manifest busybox:latest (OCI accept) digest" eq "$(hdr Docker-Content-Digest "${ACCEPT_ALL[@]}" "$P/v2/busybox/manifests/latest")" "$bb"
  check "plain manifest busybox:latest content-type OCI" eq "$(hdr Content-Type "${ACCEPT_ALL[@]}" "$P/v2/busybox/manifests/latest")" "application/vnd.oci.image.manifest.v1+json"
  check "plain OCI manifest without OCI Accept -> 404" eq "$(curl -s -o /dev/null -w '%{http_code}' "$P/v2/busybox/manifests/latest")" 404
  check "plain busybox:v2s2 content-type docker v2" eq "$(hdr Content-Type "${ACCEPT_ALL[@]}" "$P/v2/busybox/manifests/v2s2")" "application/vnd.docker.distribution.manifest.v2+json"
  check "plain v2s2 without Accept -> schema1 rewrite" eq "$(hdr Content-Type "$P/v2/busybox/manifests/v2s2")" "application/vnd.docker.distribution.manifest.v1+prettyjws"
  check "plain multi:latest is an OCI index" eq "$(hdr Docker-Content-Digest "${ACCEPT_ALL[@]}" "$P/v2/multi/manifests/latest")" "$multi"
  check "plain multi:v2s2 is a Docker manifest list" eq "$(hdr Content-Type "${ACCEPT_ALL[@]}" "$P/v2/multi/manifests/v2s2")" "application/vnd.docker.distribution.manifest.list.v2+json"
  check "plain layers:latest digest" eq "$(hdr Docker-Content-Digest "${ACCEPT_ALL[@]}" "$P/v2/layers/manifests/latest")" "$layers"
  check "plain config blob sha256" blob_ok "$P/v2/busybox/blobs/$cfg" "$cfg"
  check "plain layer blob sha256" blob_ok "$P/v2/busybox/blobs/$l0" "$l0"
  check "plain blob Range request -> 206" eq "$(curl -s -o /dev/null -w '%{http_code}' -r 0-99 "$P/v2/busybox/blobs/$l0")" 206

  # basic auth + TLS
  check "basic GET /v2/ anonymous -> Basic challenge" eq "$(hdr WWW-Authenticate "${CA[@]}" "$B/v2/")" 'Basic realm="oci-testenv"'
  check "basic GET /v2/ with credentials -> 200" eq "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -u "$OCI_TESTENV_USER:$OCI_TESTENV_PASS" "$B/v2/")" 200
  check "basic manifest with credentials" eq "$(hdr Docker-Content-Digest "${CA[@]}" -u "$OCI_TESTENV_USER:$OCI_TESTENV_PASS" "${ACCEPT_ALL[@]}" "$B/v2/busybox/manifests/latest")" "$bb"
  check "basic TLS rejected without the test CA" sh -c "! curl -sf '$B/v2/'"

  # bearer token flow: 401 challenge -> realm?service&scope -> Bearer
  local chal tok
  chal="$(hdr WWW-Authenticate "${CA[@]}" "$T/v2/")"
  check "token GET /v2/ -> Bearer challenge" eq "$chal" "Bearer realm=\"$OCI_TESTENV_TOKEN_REALM\",service=\"oci-testenv\""
  tok="$(curl -sf "${CA[@]}" "$OCI_TESTENV_TOKEN_REALM?service=oci-testenv&scope=repository:busybox:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  check "token anonymous pull token -> manifest" eq "$(hdr Docker-Content-Digest "${CA[@]}" -H "Authorization: Bearer $tok" "${ACCEPT_ALL[@]}" "$T/v2/busybox/manifests/latest")" "$bb"
  check "token manifest without token -> 401" eq "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" "${ACCEPT_ALL[@]}" "$T/v2/busybox/manifests/latest")" 401
  tok="$(curl -sf "${CA[@]}" "$OCI_TESTENV_TOKEN_REALM?service=oci-testenv&scope=repository:private/busybox:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  check "token private/ repo anonymous -> 401" eq "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -H "Authorization: Bearer $tok" "${ACCEPT_ALL[@]}" "$T/v2/private/busybox/manifests/latest")" 401
  tok="$(curl -sf "${CA[@]}" -u "$OCI_TESTENV_USER:$OCI_TESTENV_PASS" "$OCI_TESTENV_TOKEN_REALM?service=oci-testenv&scope=repository:private/busybox:pull" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  check "token private/ repo with credentials -> 200" eq "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -H "Authorization: Bearer $tok" "${ACCEPT_ALL[@]}" "$T/v2/private/busybox/manifests/latest")" 200
  check "token server rejects a wrong password" eq "$(curl -s -o /dev/null -w '%{http_code}' "${CA[@]}" -u "$OCI_TESTENV_USER:wrong" "$OCI_TESTENV_TOKEN_REALM?service=oci-testenv")" 401

  # skopeo against all three
  check "skopeo inspect plain" sko inspect --tls-verify=false "docker://$OCI_TESTENV_PLAIN/layers:latest"
  check "skopeo inspect basic" sko inspect --cert-dir "$OCI_TESTENV_CERT_DIR" --creds "$OCI_TESTENV_USER:$OCI_TESTENV_PASS" "docker://$OCI_TESTENV_BASIC/busybox:latest"
  check "skopeo inspect token (anonymous)" sko inspect --cert-dir "$OCI_TESTENV_CERT_DIR" "docker://$OCI_TESTENV_TOKEN/busybox:v2s2"
  check "skopeo inspect token private (credentials)" sko inspect --cert-dir "$OCI_TESTENV_CERT_DIR" --creds "$OCI_TESTENV_USER:$OCI_TESTENV_PASS" "docker://$OCI_TESTENV_TOKEN/private/busybox:latest"

  # round trip: pull the v2s2 form back, unpack, compare with the reference tree
  local rt="$DIR/verify-tmp" rootless=()
  [ "$(id -u)" = 0 ] || rootless=(--rootless)
  rm -rf "$rt"; mkdir -p "$rt"
  check "skopeo copy plain layers:v2s2 -> oci" sko copy -q --src-tls-verify=false "docker://$OCI_TESTENV_PLAIN/layers:v2s2" "oci:$rt/oci:layers"
  check "umoci unpack of pulled layers" umoci unpack "${rootless[@]}" --image "$rt/oci:layers" "$rt/bundle"
  python3 "$PY" tree "$rt/bundle/rootfs" > "$rt/layers.tree" 2>/dev/null || true
  check "pulled rootfs == expected/layers.tree" cmp "$rt/layers.tree" "$OCI_TESTENV_EXPECTED_LAYERS_TREE"
  if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    check "busybox runs inside the unpacked rootfs" eq "$(chroot "$rt/bundle/rootfs" /bin/sh -c 'cat /data/keep.txt')" "keep (rewritten in layer 2)"
  fi
  rm -rf "$rt"
  if [ "$VBAD" -eq 0 ]; then log "verify: all $VOK checks ok"; else log "verify: $VBAD of $((VOK + VBAD)) checks FAILED"; return 1; fi
}

cmd_bench() {
  need_tools; write_helpers
  [ -f "$DIR/env.sh" ] || die "not started"
  local runs="${1:-5}"
  python3 "$PY" bench "127.0.0.1:$(cat "$DIR/registries/plain/port")" big:latest "$runs" "$DIR/bench-tmp" | tee "$DIR/bench.txt"
}

# ---------------------------------------------------------------- main
# one invocation at a time per DIR (daemons are started with fd 9 closed)
if command -v flock >/dev/null; then
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "another oci-testenv.sh holds $DIR/.lock"
fi
i=0
while [ $i -lt ${#CMDS[@]} ]; do
  c="${CMDS[$i]}"
  case "$c" in
    up) cmd_install; cmd_start ;;
    install) cmd_install ;;
    build) need_tools; cmd_build ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) write_helpers; cmd_status ;;
    env) cmd_env ;;
    verify) cmd_verify ;;
    bench)
      n=5; if [[ "${CMDS[$((i + 1))]:-}" =~ ^[0-9]+$ ]]; then n="${CMDS[$((i + 1))]}"; i=$((i + 1)); fi
      cmd_bench "$n" ;;
    tree) write_helpers; python3 "$PY" tree "${CMDS[$((i + 1))]:?tree needs a ROOTFS}"; i=$((i + 1)) ;;
    clean) cmd_clean ;;
    *) die "unknown command '$c' (try --help)" ;;
  esac
  i=$((i + 1))
done
