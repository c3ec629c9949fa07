"""tepui's web UI in headless Chromium (Selenium + Debian's chromedriver),
against a real master and agent that tests/webui_browser.rs started.

Usage: browser.py journey|auth|ha  (env: MASTER=host:port, TEPUI=the binary,
SCREENS=dir for screenshots, GROUP=a task group JSON file; for auth:
UI_USER/SECRET of a principal allowed to view, NOBODY/NOBODY_SECRET of one
that is not). Exits non-zero with the failed check on stderr.
"""

import json
import os
import signal
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MASTER = os.environ["MASTER"]
BASE = f"http://{MASTER}"
SCREENS = os.environ.get("SCREENS", "target/webui-screens")
os.makedirs(SCREENS, exist_ok=True)
XSS = "<img src=x onerror=alert(1)>"


def driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    return webdriver.Chrome(options=opts, service=service)


def wait(d, what, cond, timeout=30):
    def attempt(_):
        # The page re-renders as events arrive: an element read a moment
        # ago may be gone; try again.
        try:
            return cond()
        except StaleElementReferenceException:
            return None
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]).until(attempt)
    except TimeoutException:
        shot(d, "failed")
        raise AssertionError(f"timed out waiting for {what}") from None


def text(d, css):
    els = d.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else None


def shot(d, name):
    d.save_screenshot(os.path.join(SCREENS, f"{name}.png"))


def no_alert(d):
    try:
        d.switch_to.alert
    except NoAlertPresentException:
        return
    raise AssertionError("a JavaScript alert opened: markup from a task ran")


def run(*args):
    """`tepui run` in the background: a scheduler launching one task."""
    return subprocess.Popen([os.environ["TEPUI"], "run", f"--master={MASTER}", "--offer_timeout=30", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def row_with(d, table, needle):
    for tr in d.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
        if needle in tr.text:
            return tr
    return None


def open_row(d, table, needle, what):
    """Follows the link of the row mentioning `needle` (by its href: rows are
    re-rendered live, so the element itself may be replaced any moment)."""
    href = wait(d, what, lambda: (r := row_with(d, table, needle)) and
                r.find_element(By.CSS_SELECTOR, "a").get_attribute("href"))
    go(d, href[href.index("#"):])


def go(d, route):
    # Only the hash changes: the page is never reloaded.
    d.execute_script("location.hash = arguments[0]", route)


def journey():
    d = driver()
    procs = []
    try:
        d.get(BASE + "/")
        wait(d, "the live stream", lambda: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
        wait(d, "one agent", lambda: text(d, "#agents-count") == "1")
        # A marker a reload would wipe out: everything below arrives live.
        d.execute_script("window.__noReload = 42")

        # Output with colour codes and a byte that is not UTF-8.
        loop = ("printf 'start \\033[31mred\\033[0m \\377 end\\n'; i=0; "
                "while true; do echo \"tick $i\"; i=$((i+1)); sleep 1; done")
        procs.append(run("--name=ticker", "--", loop))
        procs.append(run("--name=failer", "--", "echo going down >&2; exit 3"))
        procs.append(run(f"--name={XSS}", "--", "sleep 600"))
        procs.append(run(f"--task_group={os.environ['GROUP']}", "--name=group"))

        wait(d, "3 running tasks on the overview",
             lambda: text(d, "#running-count") and int(text(d, "#running-count")) >= 3)
        wait(d, "the failed task counted", lambda: int(text(d, "[data-state=TASK_FAILED]") or 0) >= 1)
        assert int(text(d, "#frameworks-count")) >= 3, text(d, "#frameworks-count")
        assert "cpus" in text(d, "#resources")
        wait(d, "the per-role allocation chart", lambda: int(
            d.find_element(By.ID, "role-chart").get_attribute("data-points")) >= 2)
        shot(d, "overview")

        go(d, "#/tasks")
        wait(d, "the ticker running in the task list", lambda: (r := row_with(d, "live-tasks", "ticker")) and "RUNNING" in r.text)
        # The task named like markup shows as text, and no image was made of it.
        wait(d, "the markup-named task as text", lambda: row_with(d, "live-tasks", XSS) is not None)
        assert not d.find_elements(By.CSS_SELECTOR, "main img"), "a task name became an <img>"
        no_alert(d)
        shot(d, "tasks")

        # The failed task: its reason and message.
        open_row(d, "ended-tasks", "failer", "the failed task in the ended list")
        wait(d, "the failed task's message", lambda: "exited with status 3" in (text(d, "#task-message") or ""))
        assert "FAILED" in text(d, "#task-state")
        history = text(d, "#history")
        assert "STARTING" in history and "FAILED" in history, history
        wait(d, "the failed task's stderr", lambda: any(
            a.text == "stderr" for a in d.find_elements(By.CSS_SELECTOR, "#files a.file")))
        shot(d, "task-failed")

        # The ticker: sandbox, live log, chart.
        go(d, "#/tasks")
        open_row(d, "live-tasks", "ticker", "the ticker")
        wait(d, "the sandbox listing", lambda: {"stdout", "stderr"} <= {
            a.get_attribute("data-name") for a in d.find_elements(By.CSS_SELECTOR, "#files a.file")})
        wait(d, "the log tail", lambda: "tick" in (text(d, "#log") or ""))
        log = text(d, "#log")
        assert "start red" in log and "end" in log, log
        raw = d.execute_script("return document.getElementById('log').textContent")
        assert "\x1b" not in raw, "an escape sequence reached the page"
        # Every line whole: the byte that is not UTF-8 did not shift the tail.
        ticks = [w for w in raw.splitlines() if "tick" in w]
        assert all(w.startswith("tick ") for w in ticks), ticks
        first = max(int(w.split()[1]) for w in raw.splitlines() if w.startswith("tick "))
        wait(d, "the log to grow live", lambda: max(
            int(w.split()[1]) for w in d.execute_script("return document.getElementById('log').textContent").splitlines()
            if w.startswith("tick ")) >= first + 2)
        wait(d, "a chart with data points", lambda: int(
            d.find_element(By.ID, "usage-chart").get_attribute("data-points")) >= 2)
        assert d.find_elements(By.CSS_SELECTOR, "#usage-chart canvas"), "no chart canvas"
        shot(d, "task-ticker")

        # A shell in the running task, typed into the terminal.
        wait(d, "the shell button", lambda: d.find_element(By.ID, "open-terminal").click() or True)
        wait(d, "the shell connected", lambda: text(d, "#term-status") == "connected")
        d.find_element(By.CSS_SELECTOR, "#terminal .xterm-helper-textarea").send_keys("echo webui-$((6*7))\n")
        wait(d, "the command's output in the terminal", lambda: "webui-42" in d.execute_script(
            "return document.querySelector('#terminal .xterm-rows').textContent"))
        shot(d, "terminal")
        d.find_element(By.CSS_SELECTOR, "#terminal .xterm-helper-textarea").send_keys("exit 7\n")
        wait(d, "the shell's exit status", lambda: "exited with status 7" in (text(d, "#term-status") or ""))

        # A task group's task: its siblings.
        go(d, "#/tasks")
        open_row(d, "live-tasks", "web", "a task group task")
        wait(d, "its sibling", lambda: "db" in (text(d, "#siblings") or ""))
        wait(d, "the group task's sandbox", lambda: "stdout" in (text(d, "#files") or ""))
        shot(d, "task-group")

        # The rest of the pages render.
        for route, css, name in [("#/frameworks", "#frameworks", "frameworks"), ("#/agents", "#agents", "agents"),
                                 ("#/roles", "#roles", "roles"), ("#/maintenance", "#maintenance", "maintenance")]:
            go(d, route)
            wait(d, name, lambda css=css: d.find_elements(By.CSS_SELECTOR, css))
            shot(d, name)
        assert "*" in text(d, "#roles") if d.find_elements(By.ID, "roles") else True
        # Frameworks list their outstanding offers (read by GET_FRAMEWORKS).
        go(d, "#/frameworks")
        wait(d, "the offers columns", lambda: "Offered CPUs" in (text(d, "#frameworks") or ""))
        go(d, "#/agents")
        wait(d, "the agent row", lambda: "active" in (text(d, "#agents") or ""))
        go(d, "#/tasks/no-such-task")
        wait(d, "no such task", lambda: "No such task" in (text(d, "#notfound") or ""))
        shot(d, "no-such-task")

        assert d.execute_script("return window.__noReload") == 42, "the page was reloaded"
        no_alert(d)
        errors = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert not errors, f"browser errors: {errors}"
        print("journey: ok")
    finally:
        for p in procs:
            p.terminate()
        d.quit()


def auth():
    d = driver()
    try:
        d.get(BASE + "/")
        wait(d, "the sign-in form", lambda: d.find_elements(By.ID, "login"))
        shot(d, "login")
        d.find_element(By.ID, "user").send_keys(os.environ["UI_USER"])
        d.find_element(By.ID, "password").send_keys("wrong")
        d.find_element(By.CSS_SELECTOR, "#login button").click()
        wait(d, "a refusal", lambda: d.find_elements(By.CSS_SELECTOR, "#login .error"))
        d.find_element(By.ID, "user").clear()
        d.find_element(By.ID, "user").send_keys(os.environ["UI_USER"])
        d.find_element(By.ID, "password").send_keys(os.environ["SECRET"])
        d.find_element(By.CSS_SELECTOR, "#login button").click()
        wait(d, "live after signing in", lambda: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
        wait(d, "the overview", lambda: d.find_elements(By.ID, "overview"))
        # Someone the ACLs let see nothing gets told so, not empty tables.
        d.execute_script("sessionStorage.clear()")
        d.get(BASE + "/")
        wait(d, "the sign-in form again", lambda: d.find_elements(By.ID, "login"))
        d.find_element(By.ID, "user").send_keys(os.environ["NOBODY"])
        d.find_element(By.ID, "password").send_keys(os.environ["NOBODY_SECRET"])
        d.find_element(By.CSS_SELECTOR, "#login button").click()
        wait(d, "the 403 page", lambda: "403" in (text(d, "#forbidden") or ""))
        shot(d, "forbidden")
        # Signed in again, then the master goes away: the page says so.
        d.find_element(By.CSS_SELECTOR, "#forbidden button").click()
        wait(d, "the sign-in form", lambda: d.find_elements(By.ID, "login"))
        d.find_element(By.ID, "user").send_keys(os.environ["UI_USER"])
        d.find_element(By.ID, "password").send_keys(os.environ["SECRET"])
        d.find_element(By.CSS_SELECTOR, "#login button").click()
        wait(d, "live again", lambda: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
        os.kill(int(os.environ["MASTER_PID"]), signal.SIGKILL)
        wait(d, "the reconnecting state", lambda: d.find_element(By.ID, "conn").text.startswith("reconnecting"))
        shot(d, "reconnecting")
        print("auth: ok")
    finally:
        d.quit()


def master_rows(d):
    """(address, role) of the overview's masters table."""
    out = []
    for tr in d.find_elements(By.CSS_SELECTOR, "#masters tbody tr"):
        cells = [td.text for td in tr.find_elements(By.CSS_SELECTOR, "td")]
        out.append((cells[0], cells[1]))
    return out


def ha():
    """ZooKeeper HA: the page on the leader lists leader and standby; the
    leader is SIGKILLed and the page must be live on the standby (now the
    leader) within 45 s, its route kept and the agent active there."""
    standby = os.environ["STANDBY"]
    d = driver()
    try:
        d.get(BASE + "/")
        wait(d, "the live stream", lambda: d.find_element(By.ID, "conn").get_attribute("data-state") == "live")
        wait(d, "leader and standby listed",
             lambda: master_rows(d) == [(MASTER, "leader"), (standby, "standby")])
        wait(d, "one agent", lambda: text(d, "[data-agent-state=active]") == "1")
        shot(d, "masters")
        go(d, "#/agents")
        wait(d, "the agents page", lambda: "active" in (text(d, "#agents") or ""))
        os.kill(int(os.environ["LEADER_PID"]), signal.SIGKILL)
        killed = time.monotonic()
        wait(d, "the reconnecting state", lambda: d.find_element(By.ID, "conn").text.startswith("reconnecting"))
        wait(d, "the page on the other master",
             lambda: d.execute_script("return location.host") == standby, timeout=45)
        wait(d, "live on the new leader", lambda: d.find_element(By.ID, "conn").get_attribute("data-state") == "live",
             timeout=max(1, 45 - (time.monotonic() - killed)))
        took = time.monotonic() - killed
        assert d.execute_script("return location.hash") == "#/agents", d.current_url
        wait(d, "the agent active on the new leader", lambda: "active" in (text(d, "#agents") or ""))
        go(d, "#/")
        wait(d, "the new leader alone listed", lambda: master_rows(d) == [(standby, "leader")])
        wait(d, "one agent on the new leader", lambda: text(d, "[data-agent-state=active]") == "1")
        shot(d, "failover")
        print(f"ha: ok (live on {standby} {took:.1f}s after the leader was killed)")
    finally:
        d.quit()


if __name__ == "__main__":
    {"journey": journey, "auth": auth, "ha": ha}[sys.argv[1]]()
