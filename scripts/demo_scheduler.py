#!/usr/bin/env python3
"""A minimal Mesos framework written directly against the scheduler HTTP API
v1 (JSON), as in Mesos's "Running Workloads" document: it subscribes, takes
an offer, launches a task group of two tasks with per-task requests and
limits (the document's ACCEPT / LAUNCH_GROUP payload, with an artifact
fetched before launch), prints every status update, acknowledges it, and
tears down once both tasks ended.

usage: demo_scheduler.py [--master 127.0.0.1:5050] [--timeout 120]
Exit status 0 when both tasks finished.
"""

import argparse
import base64
import http.client
import json
import os
import sys
import tarfile
import tempfile
import time

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST",
            "TASK_ERROR", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}


def artifact():
    """The document's my-artifact.tar.gz: a tarball with a run.sh."""
    d = tempfile.mkdtemp(prefix="tepui-demo-")
    src = os.path.join(d, "my-artifact")
    os.makedirs(src)
    with open(os.path.join(src, "run.sh"), "w") as f:
        f.write("#!/bin/sh\n"
                "echo \"hello from $MESOS_TASK_NAME in $(pwd)\"\n"
                "echo \"memory limit: $(cat /sys/fs/cgroup/memory.max 2>/dev/null || "
                "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo unknown)\"\n"
                "sleep 1\n")
    os.chmod(os.path.join(src, "run.sh"), 0o755)
    path = os.path.join(d, "my-artifact.tar.gz")
    with tarfile.open(path, "w:gz") as t:
        t.add(src, arcname="my-artifact")
    return path


def scalar(name, value):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


SHARE_CGROUPS = False


def task(task_id, agent_id, uri):
    # The document's task: requests, limits (cpus Infinity, mem 4096),
    # share_cgroups=false (required for per-task limits), a fetched artifact.
    # With --share_cgroups: no limits (Mesos refuses limits on shared
    # tasks), the tasks share the pod's limit (the executor's + theirs).
    t = {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": agent_id,
        "resources": [scalar("cpus", 0.1), scalar("mem", 64), scalar("disk", 32)],
        "limits": {"cpus": "Infinity", "mem": 256},
        "command": {"value": "MESOS_TASK_NAME=%s ./my-artifact/run.sh" % task_id},
        "container": {"type": "MESOS", "linux_info": {"share_cgroups": SHARE_CGROUPS}},
        "uris": [{"value": "file://" + uri}],
    }
    if SHARE_CGROUPS:
        del t["limits"]
    return t


class Scheduler:
    def __init__(self, master):
        self.host, self.port = master.split(":")
        self.stream_id = None
        self.framework_id = None

    def post(self, body):
        c = http.client.HTTPConnection(self.host, int(self.port), timeout=30)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.stream_id:
            headers["Mesos-Stream-Id"] = self.stream_id
        c.request("POST", "/api/v1/scheduler", json.dumps(body), headers)
        r = c.getresponse()
        data = r.read()
        if r.status != 202:
            raise SystemExit("master answered %d to %s: %s" % (r.status, body["type"], data.decode()))

    def subscribe(self):
        c = http.client.HTTPConnection(self.host, int(self.port))
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "tepui demo", "roles": ["*"], "checkpoint": True,
            "capabilities": [{"type": "MULTI_ROLE"}]}}}
        c.request("POST", "/api/v1/scheduler", json.dumps(body),
                  {"Content-Type": "application/json", "Accept": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit("SUBSCRIBE failed: %d %s" % (r.status, r.read().decode()))
        self.stream_id = r.getheader("Mesos-Stream-Id")
        return r

    def events(self, response):
        while True:
            line = response.readline()
            if not line:
                return
            size = int(line.strip())
            yield json.loads(response.read(size))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--master", default="127.0.0.1:5050")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--share_cgroups", action="store_true",
                   help="tasks share the pod's cgroup limits (no per-task limits)")
    args = p.parse_args()
    global SHARE_CGROUPS
    SHARE_CGROUPS = args.share_cgroups
    deadline = time.time() + args.timeout

    uri = artifact()
    s = Scheduler(args.master)
    stream = s.subscribe()
    launched = False
    states = {}
    for event in s.events(stream):
        if time.time() > deadline:
            raise SystemExit("timed out; states so far: %s" % states)
        kind = event["type"]
        if kind == "SUBSCRIBED":
            s.framework_id = event["subscribed"]["framework_id"]
            print("subscribed as framework %s" % s.framework_id["value"], flush=True)
        elif kind == "OFFERS":
            for offer in event["offers"]["offers"]:
                if launched:
                    s.post({"framework_id": s.framework_id, "type": "DECLINE",
                            "decline": {"offer_ids": [offer["id"]]}})
                    continue
                agent_id = offer["agent_id"]
                executor = {
                    "type": "DEFAULT",
                    "executor_id": {"value": "demo-pod"},
                    "framework_id": s.framework_id,
                    "resources": [scalar("cpus", 0.1), scalar("mem", 32), scalar("disk", 32)],
                }
                s.post({"framework_id": s.framework_id, "type": "ACCEPT", "accept": {
                    "offer_ids": [offer["id"]],
                    "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                        "executor": executor,
                        "task_group": {"tasks": [task("task-000001", agent_id, uri),
                                                 task("task-000002", agent_id, uri)]}}}],
                    "filters": {"refuse_seconds": 5.0}}})
                launched = True
                print("launched a task group of 2 tasks on agent %s" % agent_id["value"], flush=True)
        elif kind == "UPDATE":
            status = event["update"]["status"]
            task_id = status["task_id"]["value"]
            states[task_id] = status["state"]
            print("%s: %s%s" % (task_id, status["state"],
                                (" (%s)" % status["message"]) if status.get("message") else ""), flush=True)
            if "uuid" in status:
                s.post({"framework_id": s.framework_id, "type": "ACKNOWLEDGE", "acknowledge": {
                    "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}})
            if len(states) == 2 and all(v in TERMINAL for v in states.values()):
                s.post({"framework_id": s.framework_id, "type": "TEARDOWN"})
                ok = all(v == "TASK_FINISHED" for v in states.values())
                print("both tasks ended: %s" % ("finished" if ok else states), flush=True)
                sys.exit(0 if ok else 1)
        elif kind == "ERROR":
            raise SystemExit("master error: %s" % event["error"]["message"])
    raise SystemExit("the master closed the stream; states: %s" % states)


if __name__ == "__main__":
    main()
