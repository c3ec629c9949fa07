# pymesos's own executor driver, unchanged: it sends no token. Run by
# tests/hostile_tenant.rs as a custom executor with the agent's
# authentication flags on: the agent knows it by its pod.
import threading
import time

from pymesos import Executor, MesosExecutorDriver


class Finish(Executor):
    def launchTask(self, driver, task):
        def run():
            for state in ("TASK_RUNNING", "TASK_FINISHED"):
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": state})
                time.sleep(0.3)
            time.sleep(1)
            driver.stop()

        threading.Thread(target=run).start()


MesosExecutorDriver(Finish()).run()
