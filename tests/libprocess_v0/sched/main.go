// A framework on mesos-go 0.0.6's api/v0 scheduler driver (the pure-Go
// libmesos): it registers with the master over libprocess and reports
// every callback as one JSON line on stdout; commands on stdin drive it.
//
// Usage: v0sched MASTER_ADDR [FRAMEWORK_ID]
//
// Commands (one per line):
//   launch TASK_ID CPUS MEM SHELL...       a command task on a held offer
//   launchexec TASK_ID EXECUTOR_PATH       a task on a custom executor
//   decline                                declines every held offer (and says how many)
//   kill TASK_ID
//   reconcile [TASK_ID AGENT_ID]           implicit, or explicit for one task
//   message EXECUTOR_ID AGENT_ID DATA      a framework message to an executor
//   revive
//   crash                                  exits without telling the master
//   stop                                   unregisters (teardown) and exits
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v0/mesosproto"
	util "github.com/mesos/mesos-go/api/v0/mesosutil"
	sched "github.com/mesos/mesos-go/api/v0/scheduler"
)

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func emit(kind string, fields map[string]interface{}) {
	if fields == nil {
		fields = map[string]interface{}{}
	}
	fields["event"] = kind
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(fields)
}

type scheduler struct {
	mu     sync.Mutex
	offers map[string]*mesos.Offer
}

func (s *scheduler) Registered(_ sched.SchedulerDriver, id *mesos.FrameworkID, mi *mesos.MasterInfo) {
	emit("registered", map[string]interface{}{"framework_id": id.GetValue(), "master_pid": mi.GetPid()})
}

func (s *scheduler) Reregistered(_ sched.SchedulerDriver, mi *mesos.MasterInfo) {
	emit("reregistered", map[string]interface{}{"master_pid": mi.GetPid()})
}

func (s *scheduler) Disconnected(sched.SchedulerDriver) { emit("disconnected", nil) }

func scalar(o *mesos.Offer, name string) float64 {
	total := 0.0
	for _, r := range o.GetResources() {
		if r.GetName() == name {
			total += r.GetScalar().GetValue()
		}
	}
	return total
}

func (s *scheduler) ResourceOffers(_ sched.SchedulerDriver, offers []*mesos.Offer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range offers {
		s.offers[o.GetId().GetValue()] = o
		emit("offer", map[string]interface{}{
			"id": o.GetId().GetValue(), "agent_id": o.GetSlaveId().GetValue(),
			"cpus": scalar(o, "cpus"), "mem": scalar(o, "mem"),
		})
	}
}

func (s *scheduler) OfferRescinded(_ sched.SchedulerDriver, id *mesos.OfferID) {
	s.mu.Lock()
	delete(s.offers, id.GetValue())
	s.mu.Unlock()
	emit("rescinded", map[string]interface{}{"id": id.GetValue()})
}

func (s *scheduler) StatusUpdate(_ sched.SchedulerDriver, st *mesos.TaskStatus) {
	emit("status", map[string]interface{}{
		"task_id": st.GetTaskId().GetValue(), "state": st.GetState().String(),
		"agent_id": st.GetSlaveId().GetValue(), "executor_id": st.GetExecutorId().GetValue(),
		"reason": st.GetReason().String(), "message": st.GetMessage(),
		"source": st.GetSource().String(),
	})
}

func (s *scheduler) FrameworkMessage(_ sched.SchedulerDriver, e *mesos.ExecutorID, a *mesos.SlaveID, data string) {
	emit("message", map[string]interface{}{"executor_id": e.GetValue(), "agent_id": a.GetValue(), "data": data})
}

func (s *scheduler) SlaveLost(_ sched.SchedulerDriver, a *mesos.SlaveID) {
	emit("agent_lost", map[string]interface{}{"agent_id": a.GetValue()})
}

func (s *scheduler) ExecutorLost(_ sched.SchedulerDriver, e *mesos.ExecutorID, a *mesos.SlaveID, status int) {
	emit("executor_lost", map[string]interface{}{"executor_id": e.GetValue(), "agent_id": a.GetValue(), "status": status})
}

func (s *scheduler) Error(_ sched.SchedulerDriver, err string) {
	emit("error", map[string]interface{}{"message": err})
}

// takeOffer removes and returns a held offer with at least cpus and mem.
func (s *scheduler) takeOffer(cpus, mem float64) *mesos.Offer {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.offers {
		if scalar(o, "cpus") >= cpus && scalar(o, "mem") >= mem {
			delete(s.offers, id)
			return o
		}
	}
	return nil
}

func (s *scheduler) launch(d sched.SchedulerDriver, task *mesos.TaskInfo, cpus, mem float64) {
	o := s.takeOffer(cpus, mem)
	if o == nil {
		emit("launch_failed", map[string]interface{}{"task_id": task.GetTaskId().GetValue(), "why": "no offer fits"})
		return
	}
	task.SlaveId = o.SlaveId
	task.Resources = []*mesos.Resource{
		util.NewScalarResource("cpus", cpus),
		util.NewScalarResource("mem", mem),
	}
	filters := &mesos.Filters{RefuseSeconds: proto.Float64(0.2)}
	if _, err := d.LaunchTasks([]*mesos.OfferID{o.Id}, []*mesos.TaskInfo{task}, filters); err != nil {
		emit("launch_failed", map[string]interface{}{"task_id": task.GetTaskId().GetValue(), "why": err.Error()})
		return
	}
	emit("launched", map[string]interface{}{"task_id": task.GetTaskId().GetValue(), "offer_id": o.GetId().GetValue()})
}

func main() {
	// glog: to stderr, never to files under /tmp.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	args := flag.Args()
	if len(args) < 1 {
		fmt.Fprintln(os.Stderr, "usage: v0sched MASTER_ADDR [FRAMEWORK_ID]")
		os.Exit(2)
	}
	info := &mesos.FrameworkInfo{
		User:            proto.String("root"),
		Name:            proto.String("tepui-v0-go"),
		FailoverTimeout: proto.Float64(60),
		Checkpoint:      proto.Bool(true),
		Role:            proto.String("v0"),
	}
	if len(args) > 1 {
		info.Id = util.NewFrameworkID(args[1])
	}
	s := &scheduler{offers: map[string]*mesos.Offer{}}
	driver, err := sched.NewMesosSchedulerDriver(sched.DriverConfig{
		Scheduler:      s,
		Framework:      info,
		Master:         args[0],
		BindingAddress: net.ParseIP("127.0.0.1"),
	})
	if err != nil {
		emit("error", map[string]interface{}{"message": err.Error()})
		os.Exit(1)
	}
	if _, err := driver.Start(); err != nil {
		emit("error", map[string]interface{}{"message": err.Error()})
		os.Exit(1)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "launch":
			cpus, _ := strconv.ParseFloat(f[2], 64)
			mem, _ := strconv.ParseFloat(f[3], 64)
			task := &mesos.TaskInfo{
				Name:    proto.String(f[1]),
				TaskId:  util.NewTaskID(f[1]),
				Command: util.NewCommandInfo(strings.Join(f[4:], " ")),
			}
			s.launch(driver, task, cpus, mem)
		case "launchexec":
			task := &mesos.TaskInfo{
				Name:   proto.String(f[1]),
				TaskId: util.NewTaskID(f[1]),
				Executor: &mesos.ExecutorInfo{
					ExecutorId: util.NewExecutorID("exec-" + f[1]),
					Name:       proto.String("tepui v0 go executor"),
					Command:    &mesos.CommandInfo{Value: proto.String(f[2]), Shell: proto.Bool(false), Arguments: []string{f[2]}},
					Resources: []*mesos.Resource{
						util.NewScalarResource("cpus", 0.1),
						util.NewScalarResource("mem", 32),
					},
				},
				Data: []byte("hello executor"),
			}
			s.launch(driver, task, 0.1, 32)
		case "decline":
			s.mu.Lock()
			declined := 0
			for id, o := range s.offers {
				_, _ = driver.DeclineOffer(o.Id, &mesos.Filters{RefuseSeconds: proto.Float64(0.2)})
				delete(s.offers, id)
				declined++
			}
			s.mu.Unlock()
			emit("declined", map[string]interface{}{"count": declined})
		case "kill":
			_, _ = driver.KillTask(util.NewTaskID(f[1]))
		case "reconcile":
			var statuses []*mesos.TaskStatus
			if len(f) == 3 {
				statuses = append(statuses, &mesos.TaskStatus{
					TaskId:  util.NewTaskID(f[1]),
					SlaveId: util.NewSlaveID(f[2]),
					State:   mesos.TaskState_TASK_RUNNING.Enum(),
				})
			}
			_, _ = driver.ReconcileTasks(statuses)
		case "message":
			_, err := driver.SendFrameworkMessage(util.NewExecutorID(f[1]), util.NewSlaveID(f[2]), strings.Join(f[3:], " "))
			if err != nil {
				emit("message_failed", map[string]interface{}{"why": err.Error()})
			}
		case "revive":
			_, _ = driver.ReviveOffers()
		case "crash":
			emit("crashing", nil)
			os.Exit(0)
		case "stop":
			_, _ = driver.Stop(false)
			emit("stopped", nil)
			os.Exit(0)
		}
		emit("done", map[string]interface{}{"command": f[0]})
	}
}
