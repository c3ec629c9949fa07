// A Mesos framework written against mesos-go's api/v1 (the Go client the
// Mesos project published), speaking the scheduler HTTP API with the
// protobuf codec. tests/journeys.rs drives it: it reads commands (JSON lines)
// on stdin and reports what the master tells it (JSON lines) on stdout.
//
// Commands:
//
//	{"op":"launch","cells":[{"cell":"x","launch":"LAUNCH","tasks":[TaskInfo JSON]},
//	                        {"cell":"y","launch":"LAUNCH_GROUP","executor":ExecutorInfo JSON,"tasks":[...]}]}
//	{"op":"kill","task_id":"t"}
//	{"op":"teardown"}
//
// Task and executor JSON is Mesos's JSON mapping; it is decoded into
// mesos-go's generated protobuf types (gogo jsonpb, unknown fields refused:
// a field this client does not know fails the cell instead of being dropped)
// and sent as protobuf.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gogo/protobuf/jsonpb"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli/httpsched"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

type cell struct {
	Cell     string            `json:"cell"`
	Launch   string            `json:"launch"`
	Executor json.RawMessage   `json:"executor"`
	Tasks    []json.RawMessage `json:"tasks"`
}

type command struct {
	Op     string `json:"op"`
	Cells  []cell `json:"cells"`
	TaskID string `json:"task_id"`
}

var (
	outMu sync.Mutex
	out   = json.NewEncoder(os.Stdout)
)

func report(v map[string]interface{}) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

type framework struct {
	caller  calls.Caller
	id      string
	mu      sync.Mutex
	pending []cell
	agents  map[string]string // task id -> agent id
}

func (f *framework) call(c *scheduler.Call) error {
	c.FrameworkID = &mesos.FrameworkID{Value: f.id}
	resp, err := f.caller.Call(context.Background(), c)
	if resp != nil {
		resp.Close()
	}
	if err != nil {
		report(map[string]interface{}{"type": "call_error", "call": c.Type.String(), "error": err.Error()})
	}
	return err
}

// decode reads Mesos JSON into a generated type; a field this client does
// not know is an error (AllowUnknownFields false), never silently dropped.
func decode(raw json.RawMessage, into proto.Message) error {
	u := jsonpb.Unmarshaler{AllowUnknownFields: false}
	return u.Unmarshal(bytes.NewReader(raw), into)
}

// operations turns the pending cells into offer operations on `agent`.
func (f *framework) operations(agent mesos.AgentID) []mesos.Offer_Operation {
	f.mu.Lock()
	cells := f.pending
	f.pending = nil
	f.mu.Unlock()
	var ops []mesos.Offer_Operation
	for _, c := range cells {
		var tasks []mesos.TaskInfo
		failed := false
		for _, raw := range c.Tasks {
			var t mesos.TaskInfo
			if err := decode(raw, &t); err != nil {
				report(map[string]interface{}{"type": "cell_error", "cell": c.Cell, "error": err.Error()})
				failed = true
				break
			}
			t.AgentID = agent
			f.mu.Lock()
			f.agents[t.TaskID.Value] = agent.Value
			f.mu.Unlock()
			tasks = append(tasks, t)
		}
		if failed {
			continue
		}
		switch c.Launch {
		case "LAUNCH":
			ops = append(ops, calls.OpLaunch(tasks...))
		case "LAUNCH_GROUP":
			var e mesos.ExecutorInfo
			if err := decode(c.Executor, &e); err != nil {
				report(map[string]interface{}{"type": "cell_error", "cell": c.Cell, "error": err.Error()})
				continue
			}
			e.FrameworkID = &mesos.FrameworkID{Value: f.id}
			ops = append(ops, calls.OpLaunchGroup(e, tasks...))
		default:
			report(map[string]interface{}{"type": "cell_error", "cell": c.Cell, "error": "unknown launch " + c.Launch})
			continue
		}
		report(map[string]interface{}{"type": "launched", "cell": c.Cell})
	}
	return ops
}

func (f *framework) onEvent(e *scheduler.Event) {
	switch e.Type {
	case scheduler.Event_OFFERS:
		offers := e.GetOffers().GetOffers()
		if len(offers) == 0 {
			return
		}
		ops := f.operations(offers[0].AgentID)
		ids := []mesos.OfferID{}
		for _, o := range offers {
			ids = append(ids, o.ID)
		}
		if len(ops) == 0 {
			_ = f.call(calls.Decline(ids...).With(calls.RefuseSeconds(time.Second)))
			return
		}
		_ = f.call(calls.Accept(calls.OfferOperations(ops).WithOffers(ids...)))
	case scheduler.Event_UPDATE:
		s := e.GetUpdate().GetStatus()
		ev := map[string]interface{}{
			"type":    "update",
			"task_id": s.TaskID.Value,
			"state":   s.State.String(),
			"source":  s.GetSource().String(),
			"message": s.GetMessage(),
		}
		if s.Reason != nil {
			ev["reason"] = s.Reason.String()
		}
		if s.AgentID != nil {
			ev["agent_id"] = s.AgentID.Value
		}
		if s.ExecutorID != nil {
			ev["executor_id"] = s.ExecutorID.Value
		}
		report(ev)
		if len(s.UUID) > 0 && s.AgentID != nil {
			_ = f.call(calls.Acknowledge(s.AgentID.Value, s.TaskID.Value, s.UUID))
		}
	case scheduler.Event_ERROR:
		report(map[string]interface{}{"type": "error", "message": e.GetError().GetMessage()})
	case scheduler.Event_FAILURE:
		report(map[string]interface{}{"type": "failure", "event": e.GetFailure().String()})
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mesosgo-journey <master host:port> <framework name>")
		os.Exit(2)
	}
	cli := httpcli.New(
		httpcli.Endpoint("http://"+os.Args[1]+"/api/v1/scheduler"),
		httpcli.Codec(codecs.ByMediaType[codecs.MediaTypeProtobuf]),
		httpcli.Do(httpcli.With(httpcli.Timeout(30*time.Second))),
	)
	f := &framework{caller: httpsched.NewCaller(cli), agents: map[string]string{}}
	user := "root"
	checkpoint := true
	failover := 300.0
	info := &mesos.FrameworkInfo{
		User:            user,
		Name:            os.Args[2],
		Checkpoint:      &checkpoint,
		FailoverTimeout: &failover,
	}
	resp, err := f.caller.Call(context.Background(), calls.Subscribe(info))
	if err != nil {
		report(map[string]interface{}{"type": "fatal", "error": "subscribe: " + err.Error()})
		os.Exit(1)
	}
	events := make(chan *scheduler.Event, 1024)
	go func() {
		defer close(events)
		for {
			var e scheduler.Event
			if err := resp.Decode(&e); err != nil {
				report(map[string]interface{}{"type": "disconnected", "error": err.Error()})
				return
			}
			events <- &e
		}
	}()
	first, ok := <-events
	if !ok || first.Type != scheduler.Event_SUBSCRIBED {
		report(map[string]interface{}{"type": "fatal", "error": "no SUBSCRIBED event"})
		os.Exit(1)
	}
	f.id = first.GetSubscribed().FrameworkID.Value
	report(map[string]interface{}{"type": "subscribed", "framework_id": f.id, "codec": "protobuf", "client": "mesos-go"})

	go func() {
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 1<<20), 16<<20)
		for in.Scan() {
			var c command
			if err := json.Unmarshal(in.Bytes(), &c); err != nil {
				report(map[string]interface{}{"type": "fatal", "error": "bad command: " + err.Error()})
				continue
			}
			switch c.Op {
			case "launch":
				f.mu.Lock()
				f.pending = append(f.pending, c.Cells...)
				f.mu.Unlock()
				_ = f.call(calls.Revive())
			case "kill":
				f.mu.Lock()
				agent := f.agents[c.TaskID]
				f.mu.Unlock()
				_ = f.call(calls.Kill(c.TaskID, agent))
				report(map[string]interface{}{"type": "killed", "task_id": c.TaskID})
			case "teardown":
				_ = f.call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
				report(map[string]interface{}{"type": "torn_down"})
				os.Exit(0)
			}
		}
		// The test went away: leave nothing running.
		_ = f.call(&scheduler.Call{Type: scheduler.Call_TEARDOWN})
		os.Exit(0)
	}()
	for e := range events {
		f.onEvent(e)
	}
	os.Exit(1)
}
