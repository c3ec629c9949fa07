# Run inside a task by tests/hostile_tenant.rs: every way one tenant could
# reach another through the agent (and the victim's sandbox through the
# filesystem), each attempt's HTTP status recorded in a JSON file. Two
# calls on the attacker's own pod are the controls (they must succeed: the
# refusals are about whose pod it is, not a broken connection).
import json
import os
import sys
import urllib.error
import urllib.request
import uuid

params = json.load(open(sys.argv[1]))
agent = params["agent"]
victim = params["victim"]
token = os.environ.get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN")
results = {}


def call(name, path, body=None, accept="application/json", extra=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(agent + path, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", accept)
    for k, v in (extra or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            results[name] = [r.status, r.read(300).decode(errors="replace")]
    except urllib.error.HTTPError as e:
        results[name] = [e.code, e.read(300).decode(errors="replace")]
    except Exception as e:  # noqa: BLE001 - recorded, the test decides
        results[name] = [0, repr(e)]


def cid(value, parent=None):
    c = {"value": value}
    if parent:
        c["parent"] = {"value": parent}
    return c


root, task = victim["root"], victim["task"]
stream = {"Message-Accept": "application/json"}
call("session", "/api/v1", {"type": "LAUNCH_NESTED_CONTAINER_SESSION",
     "launch_nested_container_session": {"container_id": cid("evil-" + uuid.uuid4().hex, root),
                                         "command": {"value": "id; cat /proc/1/environ"}}},
     accept="application/recordio", extra=stream)
call("launch_nested", "/api/v1", {"type": "LAUNCH_CONTAINER",
     "launch_container": {"container_id": cid("evil-" + uuid.uuid4().hex, root),
                          "command": {"value": "sleep 1000"}}})
call("launch_nested_deprecated", "/api/v1", {"type": "LAUNCH_NESTED_CONTAINER",
     "launch_nested_container": {"container_id": cid("evil-" + uuid.uuid4().hex, root),
                                 "command": {"value": "sleep 1000"}}})
call("attach_output", "/api/v1", {"type": "ATTACH_CONTAINER_OUTPUT",
     "attach_container_output": {"container_id": cid(task, root)}},
     accept="application/recordio", extra=stream)
call("wait", "/api/v1", {"type": "WAIT_CONTAINER",
     "wait_container": {"container_id": cid(task, root)}})
call("kill_task", "/api/v1", {"type": "KILL_CONTAINER",
     "kill_container": {"container_id": cid(task, root), "signal": 9}})
call("kill_executor", "/api/v1", {"type": "KILL_CONTAINER",
     "kill_container": {"container_id": cid(root), "signal": 9}})
call("remove", "/api/v1", {"type": "REMOVE_CONTAINER",
     "remove_container": {"container_id": cid(task, root)}})
call("forged_update", "/api/v1/executor", {"type": "UPDATE",
     "framework_id": {"value": victim["framework"]}, "executor_id": {"value": victim["executor"]},
     "update": {"status": {"task_id": {"value": victim["task_id"]}, "state": "TASK_FINISHED",
                           "source": "SOURCE_EXECUTOR", "uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
                           "executor_id": {"value": victim["executor"]}}}})
call("forged_subscribe", "/api/v1/executor", {"type": "SUBSCRIBE",
     "framework_id": {"value": victim["framework"]}, "executor_id": {"value": victim["executor"]},
     "subscribe": {"unacknowledged_tasks": [], "unacknowledged_updates": []}})
secret = victim["sandbox"] + "/secret"
call("files_read", "/files/read?offset=0&length=100&path=" + secret)
call("files_download", "/files/download?path=" + secret)
call("files_browse", "/files/browse?path=" + victim["sandbox"])
call("list_files", "/api/v1", {"type": "LIST_FILES", "list_files": {"path": victim["sandbox"]}})
call("read_file", "/api/v1", {"type": "READ_FILE", "read_file": {"path": secret, "offset": 0}})
call("get_state", "/api/v1", {"type": "GET_STATE"})
call("get_containers", "/api/v1", {"type": "GET_CONTAINERS"})
call("v0_state", "/state")
call("v0_containers", "/containers")
# Per-container series name other tenants' tasks: operators only.
call("v0_prometheus", "/metrics")


def fs(name, action):
    """A filesystem attempt: 200 and what it got, or 403 and why not."""
    try:
        results[name] = [200, repr(action())[:300]]
    except OSError as e:
        results[name] = [403, repr(e)]


def read(path):
    with open(path) as f:
        return f.read()


def refuse_empty(listing):
    # The mask over the work dir holds only the way down to the task's own
    # sandbox; anything else in it is the agent's, seen.
    extra = [n for n in listing if n != "slaves"]
    if extra:
        return extra
    raise PermissionError("only the way to its own sandbox: %r" % listing)


def connect(path):
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return "connected"


def environ_secrets():
    # Every process this task can see: none may be the victim's.
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                env = open("/proc/%s/environ" % pid, "rb").read()
            except OSError:
                continue
            if b"env-s3cret" in env:
                found.append(pid)
    if found:
        return found
    raise PermissionError("not in any visible process")


def umount(path):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(path.encode(), 2) != 0:  # MNT_DETACH
        raise OSError(ctypes.get_errno(), "umount2 " + path)
    return "unmounted"


host = params["host"]
fs("fs_read", lambda: read(secret))
fs("fs_list_sandbox", lambda: os.listdir(victim["sandbox"]))
fs("fs_meta", lambda: [read(p) for p in host["meta"]])
fs("fs_list_meta", lambda: os.listdir(host["work_dir"] + "/meta"))
fs("fs_credential", lambda: read(host["credential"]))
fs("fs_list_work_dir", lambda: refuse_empty(os.listdir(host["work_dir"])))


def read_secret(path):
    # Masked, it reads as /dev/null: empty.
    got = read(path)
    if not got:
        raise PermissionError("empty: masked")
    return got


for i, path in enumerate(host["secret_files"]):
    # The agent's executor key, where the operator keeps it: with it any
    # executor's token could be minted.
    fs("fs_secret_file_%d" % i, lambda path=path: read_secret(path))
fs("fs_list_run_dir", lambda: refuse_empty(os.listdir(host["run_dir"])))
fs("fs_supervisor_socket", lambda: connect(host["socket"]))
fs("fs_proc_environ", environ_secrets)
fs("fs_write_mask", lambda: open(host["work_dir"] + "/planted", "w").write("x"))
fs("fs_umount_mask", lambda: umount(host["work_dir"]))
fs("fs_read_after_umount", lambda: read(secret))


def own_sandbox():
    # Its own sandbox (MESOS_SANDBOX, the working dir) stays readable and
    # writable.
    path = os.path.join(os.environ["MESOS_SANDBOX"], "own-" + uuid.uuid4().hex)
    with open(path, "w") as f:
        f.write("mine")
    got = read(path)
    os.remove(path)
    if got != "mine":
        raise OSError("read back %r" % got)
    return got


try:
    results["own_sandbox"] = [200, own_sandbox()]
except OSError as e:
    results["own_sandbox"] = [500, repr(e)]

# Fire and reset: send, then close with a zero linger at once, so the
# socket is gone before the agent can ask the kernel who held it. The
# answer is never read; the test checks the victim is untouched.
def fire_and_reset(path, body):
    import socket
    import struct
    import time
    host, port = agent.split("//", 1)[1].split(":")
    data = json.dumps(body).encode()
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Accept: application/json\r\nContent-Length: %d\r\n" % (path, len(data)))
    if token:
        head += "Authorization: Bearer %s\r\n" % token
    for _ in range(20):
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(head.encode() + b"\r\n" + data)
        s.close()
        time.sleep(0.01)


fire_and_reset("/api/v1", {"type": "KILL_CONTAINER",
               "kill_container": {"container_id": cid(task, root), "signal": 9}})
fire_and_reset("/api/v1/executor", {"type": "UPDATE",
               "framework_id": {"value": victim["framework"]},
               "executor_id": {"value": victim["executor"]},
               "update": {"status": {"task_id": {"value": victim["task_id"]},
                                     "state": "TASK_FINISHED", "source": "SOURCE_EXECUTOR",
                                     "uuid": "AQEBAQEBAQEBAQEBAQEBAQ==",
                                     "executor_id": {"value": victim["executor"]}}}})

# Controls: the attacker's own pod.
call("own_health", "/api/v1", {"type": "GET_HEALTH"})
call("own_files", "/api/v1", {"type": "LIST_FILES", "list_files": {"path": os.getcwd()}})

with open(params["out"], "w") as f:
    json.dump(results, f)
