#!/usr/bin/env python3
"""A checkpointing framework with one long command task, for the restart
checks of tests/v2/guest.sh: a framework with `checkpoint: true` is one whose
tasks an agent restart must keep (Mesos kills the executors of frameworks
without checkpointing when the agent restarts: slave.cpp, Slave::recover).

usage: long_task.py [--master 127.0.0.1:5050] [--task-id longtask] [--command 'exec sleep 600']
Prints each status update, acknowledges it and stays subscribed; on SIGTERM
it tears the framework down (the task is killed) and exits 0.
"""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from demo_scheduler import Scheduler, scalar  # noqa: E402  (the share mirrors the repo)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--master", default="127.0.0.1:5050")
    p.add_argument("--task-id", default="longtask")
    p.add_argument("--command", default="exec sleep 600")
    a = p.parse_args()
    s = Scheduler(a.master)

    def teardown(*_):
        if s.framework_id:
            s.post({"framework_id": s.framework_id, "type": "TEARDOWN"})
        print("torn down", flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, teardown)
    stream = s.subscribe()
    launched = False
    for event in s.events(stream):
        kind = event["type"]
        if kind == "SUBSCRIBED":
            s.framework_id = event["subscribed"]["framework_id"]
            print("subscribed as %s" % s.framework_id["value"], flush=True)
        elif kind == "OFFERS":
            for offer in event["offers"]["offers"]:
                ops = []
                if not launched:
                    ops = [{"type": "LAUNCH", "launch": {"task_infos": [{
                        "name": a.task_id, "task_id": {"value": a.task_id},
                        "agent_id": offer["agent_id"],
                        "resources": [scalar("cpus", 0.1), scalar("mem", 32)],
                        "command": {"value": a.command}}]}}]
                    launched = True
                s.post({"framework_id": s.framework_id, "type": "ACCEPT", "accept": {
                    "offer_ids": [offer["id"]], "operations": ops,
                    "filters": {"refuse_seconds": 3600.0}}})
        elif kind == "UPDATE":
            status = event["update"]["status"]
            print("%s: %s" % (status["task_id"]["value"], status["state"]), flush=True)
            if "uuid" in status:
                s.post({"framework_id": s.framework_id, "type": "ACKNOWLEDGE", "acknowledge": {
                    "agent_id": status["agent_id"], "task_id": status["task_id"],
                    "uuid": status["uuid"]}})
        elif kind == "ERROR":
            sys.exit("master error: %s" % event["error"]["message"])
    sys.exit("the master closed the stream")


if __name__ == "__main__":
    main()
