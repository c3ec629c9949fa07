#!/usr/bin/env python3
"""Benchmark: first render of the web UI's overview (and task list) with a
large cluster, in headless Chromium. Not a timed test: prints a table.

It serves the checked-in bundle (webui/dist) and answers the page's calls
with a synthetic cluster in the exact JSON shape of the master's operator
API (a SUBSCRIBED event as `POST /api/v1 SUBSCRIBE` streams it), so what is
measured is the browser's side: fetch, parse, render. Run with the venv of
scripts/deps.sh's install_webui_browser:

    target/webui/venv/bin/python scripts/webui-bench.py [--tasks 1000 --agents 100 --runs 5]
"""

import argparse
import http.server
import json
import os
import statistics
import threading
import time

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

DIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "webui", "dist")
STATES = ["TASK_RUNNING"] * 7 + ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"]


def scalar(name, value, role=None):
    r = {"name": name, "type": "SCALAR", "scalar": {"value": value}}
    if role:
        r["allocation_info"] = {"role": role}
    return r


def cluster(n_tasks, n_agents):
    agents = [{
        "active": True, "deactivated": False, "pid": f"slave(1)@10.0.{i // 250}.{i % 250}:5051",
        "agent_info": {"hostname": f"host-{i}", "id": {"value": f"A-S{i}"}, "port": 5051,
                       "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": f"r{i % 8}"}}]},
        "total_resources": [scalar("cpus", 32), scalar("mem", 131072), scalar("disk", 1e6)],
        "allocated_resources": [scalar("cpus", 10, "*"), scalar("mem", 40000, "*")],
        "registered_time": {"nanoseconds": 1796675387116957440}, "version": "0.1.0",
    } for i in range(n_agents)]
    frameworks = [{"active": True, "connected": True, "recovered": False,
                   "framework_info": {"id": {"value": f"F-{i}"}, "name": f"framework-{i}",
                                      "roles": [f"role-{i % 5}"], "user": "root"}} for i in range(10)]
    tasks, completed = [], []
    for i in range(n_tasks):
        state = STATES[i % len(STATES)]
        fw = f"F-{i % 10}"
        t = {"task_id": {"value": f"task-{i}"}, "name": f"task-{i}", "framework_id": {"value": fw},
             "agent_id": {"value": f"A-S{i % n_agents}"}, "executor_id": {"value": f"task-{i}"},
             "state": state, "resources": [scalar("cpus", 0.5, f"role-{i % 5}"), scalar("mem", 512, f"role-{i % 5}")],
             "statuses": [{"state": s, "timestamp": 1796675389.9 + i, "source": "SOURCE_EXECUTOR",
                           "task_id": {"value": f"task-{i}"}} for s in ["TASK_STARTING", state]]}
        (tasks if state == "TASK_RUNNING" else completed).append(t)
    state = {"get_agents": {"agents": agents}, "get_frameworks": {"frameworks": frameworks},
             "get_tasks": {"tasks": tasks, "completed_tasks": completed}, "get_executors": {}}
    return json.dumps({"type": "SUBSCRIBED", "subscribed": {"get_state": state, "heartbeat_interval_seconds": 15}})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    event = b""

    def log_message(self, *args):
        pass

    def send(self, code, kind, body):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        files = {"/": ("index.html", "text/html"), "/webui/app.js": ("app.js", "text/javascript"),
                 "/webui/app.css": ("app.css", "text/css")}
        if self.path in files:
            name, kind = files[self.path]
            with open(os.path.join(DIST, name), "rb") as f:
                return self.send(200, kind, f.read())
        if self.path == "/webui/access":
            return self.send(200, "application/json", b'{"view": true}')
        self.send(404, "text/plain", b"")

    def do_POST(self):
        call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if call["type"] == "GET_MASTER":
            body = {"type": "GET_MASTER", "get_master": {"master_info": {
                "id": "bench", "hostname": "127.0.0.1", "port": self.server.server_port, "version": "1.11.0"}}}
            return self.send(200, "application/json", json.dumps(body).encode())
        if call["type"] == "SUBSCRIBE":
            record = self.event
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = str(len(record)).encode() + b"\n" + record
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            time.sleep(3)  # open a little while, as the master's stream stays open
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
            return
        self.send(200, "application/json", b"{}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    Handler.event = cluster(args.tasks, args.agents).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"]:
        opts.add_argument(a)
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
    rows = []
    try:
        for route, check in [("#/", "#tasks-count"), ("#/tasks", "#live-tasks")]:
            times = []
            for _ in range(args.runs):
                d.get("about:blank")
                d.get(base + "/" + route)
                WebDriverWait(d, 30, poll_frequency=0.05).until(
                    lambda _: d.execute_script("return performance.getEntriesByName('tepui:first-render').length"))
                assert d.find_elements(By.CSS_SELECTOR, check)
                if route == "#/":
                    assert d.find_element(By.ID, "tasks-count").text == str(args.tasks)
                times.append(d.execute_script(
                    "return performance.getEntriesByName('tepui:first-render')[0].startTime"))
            rows.append((route, min(times), statistics.median(times), max(times)))
    finally:
        d.quit()
        server.shutdown()
    size = {n: os.path.getsize(os.path.join(DIST, n)) for n in ["app.js", "app.css", "index.html"]}
    print(f"web UI first render, {args.tasks} tasks, {args.agents} agents, {args.runs} runs "
          f"(ms from navigation start; SUBSCRIBED event {len(Handler.event) // 1024} KiB)")
    print(f"{'page':<10} {'min':>8} {'median':>8} {'max':>8}")
    for route, lo, med, hi in rows:
        print(f"{route:<10} {lo:8.0f} {med:8.0f} {hi:8.0f}")
    print("bundle: " + ", ".join(f"{n} {s // 1024} KiB" for n, s in size.items()))


if __name__ == "__main__":
    main()
