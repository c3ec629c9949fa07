// A custom executor on mesos-go 0.0.6's api/v0 executor driver (the
// pure-Go libmesos): it registers with the agent named by MESOS_SLAVE_PID
// over libprocess, runs each task until killed, and talks to its
// scheduler with framework messages ("ping X" is answered "pong X";
// "exit" makes it exit with status 3).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/gogo/protobuf/proto"
	exec "github.com/mesos/mesos-go/api/v0/executor"
	mesos "github.com/mesos/mesos-go/api/v0/mesosproto"
)

type executor struct{}

func status(d exec.ExecutorDriver, id *mesos.TaskID, state mesos.TaskState, msg string) {
	if _, err := d.SendStatusUpdate(&mesos.TaskStatus{
		TaskId:  id,
		State:   state.Enum(),
		Message: proto.String(msg),
	}); err != nil {
		fmt.Fprintln(os.Stderr, "status update:", err)
	}
}

func (executor) Registered(d exec.ExecutorDriver, e *mesos.ExecutorInfo, f *mesos.FrameworkInfo, s *mesos.SlaveInfo) {
	fmt.Fprintf(os.Stderr, "registered as %s of %s on %s\n", e.GetExecutorId().GetValue(), f.GetName(), s.GetHostname())
}

func (executor) Reregistered(exec.ExecutorDriver, *mesos.SlaveInfo) {
	fmt.Fprintln(os.Stderr, "reregistered")
}

func (executor) Disconnected(exec.ExecutorDriver) { fmt.Fprintln(os.Stderr, "disconnected") }

func (executor) LaunchTask(d exec.ExecutorDriver, t *mesos.TaskInfo) {
	status(d, t.TaskId, mesos.TaskState_TASK_RUNNING, "running on a v0 executor")
	_, _ = d.SendFrameworkMessage("started " + t.GetTaskId().GetValue() + " with " + string(t.GetData()))
}

func (executor) KillTask(d exec.ExecutorDriver, id *mesos.TaskID) {
	status(d, id, mesos.TaskState_TASK_KILLED, "killed by the v0 executor")
}

func (executor) FrameworkMessage(d exec.ExecutorDriver, msg string) {
	if strings.HasPrefix(msg, "ping ") {
		_, _ = d.SendFrameworkMessage("pong " + strings.TrimPrefix(msg, "ping "))
	}
	if msg == "exit" {
		// Dies on its own: the scheduler hears of it (ExitedExecutorMessage).
		fmt.Fprintln(os.Stderr, "exiting on request")
		os.Exit(3)
	}
}

func (executor) Shutdown(d exec.ExecutorDriver) {
	fmt.Fprintln(os.Stderr, "shutdown")
	_, _ = d.Stop()
}

func (executor) Error(_ exec.ExecutorDriver, err string) { fmt.Fprintln(os.Stderr, "error:", err) }

func main() {
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	driver, err := exec.NewMesosExecutorDriver(exec.DriverConfig{
		Executor:       executor{},
		BindingAddress: net.ParseIP("127.0.0.1"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
	if _, err := driver.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}
