"""A Mesos framework written with pymesos (PyPI), speaking the scheduler
HTTP API with the JSON codec. tests/journeys.rs drives it: commands (JSON
lines) on stdin, what the master says (JSON lines) on stdout.

Commands:
  {"op": "launch", "cells": [{"cell": "x", "launch": "LAUNCH", "tasks": [TaskInfo]},
                             {"cell": "y", "launch": "LAUNCH_GROUP", "executor": ExecutorInfo,
                              "tasks": [...]}]}
  {"op": "kill", "task_id": "t"}
  {"op": "teardown"}

Tasks are Mesos JSON dicts, sent as they are (pymesos passes them through),
so limits, "Infinity" and share_cgroups reach the master unchanged.
"""
import json
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler

lock = threading.Lock()


def report(event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


class Journey(Scheduler):
    def __init__(self):
        self.pending = []
        self.agents = {}
        self.mutex = threading.Lock()

    def registered(self, driver, framework_id, master_info):
        report({"type": "subscribed", "framework_id": framework_id["value"],
                "codec": "json", "client": "pymesos"})

    def resourceOffers(self, driver, offers):
        with self.mutex:
            cells, self.pending = self.pending, []
        ids = [o["id"] for o in offers]
        if not cells:
            driver.declineOffer(ids, filters={"refuse_seconds": 1})
            return
        agent = offers[0]["agent_id"]
        operations = []
        for cell in cells:
            tasks = []
            for task in cell["tasks"]:
                task = dict(task, agent_id=agent)
                with self.mutex:
                    self.agents[task["task_id"]["value"]] = agent
                tasks.append(task)
            if cell["launch"] == "LAUNCH":
                operations.append({"type": "LAUNCH", "launch": {"task_infos": tasks}})
            else:
                executor = dict(cell["executor"], framework_id={"value": driver.framework_id})
                operations.append({"type": "LAUNCH_GROUP", "launch_group": {
                    "executor": executor, "task_group": {"tasks": tasks}}})
            report({"type": "launched", "cell": cell["cell"]})
        driver.acceptOffers(ids, operations)

    def statusUpdate(self, driver, status):
        event = {"type": "update", "task_id": status["task_id"]["value"],
                 "state": status["state"], "source": status.get("source", ""),
                 "message": status.get("message", "")}
        for key in ("reason", "executor_id", "agent_id"):
            if key in status:
                value = status[key]
                event[key] = value["value"] if isinstance(value, dict) else value
        report(event)

    def error(self, driver, message):
        report({"type": "error", "message": message})

    def launch(self, driver, cells):
        with self.mutex:
            self.pending.extend(cells)
        driver.reviveOffers()

    def kill(self, driver, task_id):
        driver.killTask({"value": task_id})
        report({"type": "killed", "task_id": task_id})


def main():
    master, name = sys.argv[1], sys.argv[2]
    sched = Journey()
    framework = {"user": "root", "name": name, "checkpoint": True,
                 "failover_timeout": 300.0}
    driver = MesosSchedulerDriver(sched, framework, master, use_addict=False)
    driver.start()
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "launch":
            sched.launch(driver, command["cells"])
        elif command["op"] == "kill":
            sched.kill(driver, command["task_id"])
        elif command["op"] == "teardown":
            break
    # stop() without failover tears the framework down.
    driver.stop()
    report({"type": "torn_down"})
    driver.join()


if __name__ == "__main__":
    main()
