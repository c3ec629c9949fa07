"""Runs the journeys' pymesos framework (tests/journeys/pymesos/journey.py,
a scheduler written with pymesos from PyPI, not by tepui) against the master
in the v2 guest: it launches an image task group (busybox from the guest's
registry) with the default executor and waits for both tasks to finish.
Prints CHECK PASS/FAIL lines; exit status 0 when every task finished.

usage: pymesos_journey.py MASTER JOURNEY_PY TASK_GROUP_JSON
(pymesos and its dependencies on PYTHONPATH)
"""
import json
import subprocess
import sys
import threading
import time

master, journey, group_file = sys.argv[1:4]
with open(group_file) as f:
    tasks = json.load(f)["tasks"]
for task in tasks:
    task["task_id"]["value"] = "py-" + task["task_id"]["value"]
    task["name"] = "py-" + task["name"]
second = json.loads(json.dumps(tasks[0]))
second["task_id"]["value"] = second["name"] = "py-img2"
tasks.append(second)
wanted = {t["task_id"]["value"] for t in tasks}
executor = {
    "executor_id": {"value": "py-default"},
    "type": "DEFAULT",
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
    ],
}
proc = subprocess.Popen([sys.executable, journey, master, "v2-pymesos"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
events = []
done = threading.Event()


def read():
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event)
        print("pymesos:", line.strip(), flush=True)
        if event["type"] == "subscribed":
            proc.stdin.write(json.dumps({"op": "launch", "cells": [
                {"cell": "img", "launch": "LAUNCH_GROUP", "executor": executor,
                 "tasks": tasks}]}) + "\n")
            proc.stdin.flush()
        finals = {e["task_id"]: e["state"] for e in events if e["type"] == "update"
                  and e["state"] in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED",
                                     "TASK_LOST", "TASK_ERROR", "TASK_DROPPED")}
        if wanted <= set(finals):
            done.set()


threading.Thread(target=read, daemon=True).start()
ok = done.wait(240)
try:
    proc.stdin.write(json.dumps({"op": "teardown"}) + "\n")
    proc.stdin.flush()
    proc.wait(30)
except Exception:
    proc.kill()
finals = {e["task_id"]: e["state"] for e in events if e["type"] == "update"}
states = {t: [e["state"] for e in events if e["type"] == "update" and e["task_id"] == t]
          for t in sorted(wanted)}
passed = ok and all(finals.get(t) == "TASK_FINISHED" for t in wanted)
print(("CHECK PASS " if passed else "CHECK FAIL ")
      + "pymesos (PyPI) launches an image task group through the master: both TASK_FINISHED")
print("      " + json.dumps(states)[:380])
sys.exit(0 if passed else 1)
