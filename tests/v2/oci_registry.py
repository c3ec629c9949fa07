#!/usr/bin/env python3
"""A read-only OCI distribution registry (plain http) serving an OCI image
layout directory, stdlib only. The v2 guest has no network: this serves the
test images scripts/oci-testenv.sh builds (shared over 9p) to the agent
inside the guest, as `127.0.0.1:PORT/<name>:latest`.

usage: oci_registry.py LAYOUT_DIR [--port 5000]
Tags: a manifest in index.json annotated `org.opencontainers.image.ref.name`
= NAME (or NAME:TAG) is NAME:latest (or NAME:TAG); digests resolve to blobs.
"""
import argparse
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REF = "org.opencontainers.image.ref.name"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def load_tags(layout):
    with open(os.path.join(layout, "index.json")) as f:
        index = json.load(f)
    tags = {}
    for m in index.get("manifests", []):
        ref = m.get("annotations", {}).get(REF)
        if ref:
            name, _, tag = ref.partition(":")
            tags[(name, tag or "latest")] = m["digest"]
    return tags


def make_handler(layout, tags):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("oci_registry: " + (fmt % args) + "\n")

        def send(self, code, body=b"", ctype="application/json", extra=None, head=False):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def blob(self, digest):
            if not DIGEST.match(digest):
                return None
            path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
            return path if os.path.isfile(path) else None

        def route(self, head):
            path = self.path.split("?", 1)[0]
            if path in ("/v2", "/v2/"):
                return self.send(200, b"{}", head=head)
            m = re.match(r"^/v2/(.+)/(manifests|blobs)/([^/]+)$", path)
            if not m:
                return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', head=head)
            name, kind, ref = m.groups()
            digest = ref if DIGEST.match(ref) else tags.get((name, ref))
            blob = self.blob(digest) if digest else None
            if blob is None:
                code = "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"
                return self.send(404, ('{"errors":[{"code":"%s"}]}' % code).encode(), head=head)
            with open(blob, "rb") as f:
                body = f.read()
            ctype = "application/octet-stream"
            if kind == "manifests":
                ctype = json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json")
            return self.send(200, body, ctype, {"Docker-Content-Digest": digest}, head=head)

        def do_GET(self):
            self.route(False)

        def do_HEAD(self):
            self.route(True)

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("layout")
    p.add_argument("--port", type=int, default=5000)
    a = p.parse_args()
    tags = load_tags(a.layout)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.layout, tags))
    print("serving %s on 127.0.0.1:%d: %s" % (a.layout, a.port,
          ", ".join("%s:%s" % t for t in sorted(tags))), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
