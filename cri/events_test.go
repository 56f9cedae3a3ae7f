package cri

import (
	"context"
	"testing"
	"time"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/pkg/events"
	"github.com/netshim/netshim/sandbox"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventSandboxes and eventContainers keep the sinks NewServer hands them
// and the records a publisher reads.
type eventSandboxes struct {
	*fakeSandboxes
	sink sandbox.EventSink
}

func (f *eventSandboxes) SetEventSink(s sandbox.EventSink) { f.sink = s }

type eventContainers struct {
	Containers
	sink  container.EventSink
	byPod map[string][]*container.Container
	reads int
}

func (f *eventContainers) SetEventSink(s container.EventSink) { f.sink = s }

func (f *eventContainers) PodRecords(sandboxID string) []*container.Container {
	f.reads++
	return f.byPod[sandboxID]
}

func podRecord(t *testing.T, id string, state sandbox.State) *sandbox.Sandbox {
	t.Helper()
	raw, err := proto.Marshal(&runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "uid-1"}})
	if err != nil {
		t.Fatal(err)
	}
	return &sandbox.Sandbox{ID: id, CreatedAt: time.Unix(1, 0),
		Spec:   sandbox.Spec{Name: "web", Namespace: "ns", UID: "uid-1", Labels: map[string]string{"app": "web"}, Config: raw},
		Status: sandbox.Status{State: state, IPs: []string{"198.18.0.2"}}}
}

func containerRecord(t *testing.T, id, pod string, state container.State) *container.Container {
	t.Helper()
	raw, err := proto.Marshal(&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: id}})
	if err != nil {
		t.Fatal(err)
	}
	c := &container.Container{ID: id, SandboxID: pod, Config: raw, Status: container.Status{State: state, ExitCode: 3}}
	c.Metadata.Name = id
	return c
}

// next receives n events from sub.
func next(t *testing.T, sub *events.Subscription[*runtimeapi.ContainerEventResponse], n int) []*runtimeapi.ContainerEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*runtimeapi.ContainerEventResponse
	_ = sub.Stream(ctx, func(ev *runtimeapi.ContainerEventResponse) error {
		got = append(got, ev)
		if len(got) == n {
			cancel()
		}
		return nil
	})
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	return got
}

// The managers' changes become CRI events as kubelet reads them: a
// sandbox's under its own ID, each with the pod's status (from the record
// the manager hands over, as it stands under its lock) and every container
// of the pod; a container's even when its sandbox is gone (nil status, as
// containerd sends it). With no subscriber nothing is even built.
func TestPublisherBuildsCRIEvents(t *testing.T) {
	sb := podRecord(t, "sb1", sandbox.StateReady)
	sbs := &eventSandboxes{fakeSandboxes: &fakeSandboxes{byID: map[string]*sandbox.Sandbox{"sb1": sb}}}
	ctrs := &eventContainers{byPod: map[string][]*container.Container{
		"sb1": {containerRecord(t, "c1", "sb1", container.StateRunning), containerRecord(t, "c2", "sb1", container.StateExited)},
	}}
	evs := NewEvents(10, nil)
	NewServer(Services{Sandboxes: sbs, Containers: ctrs, Events: evs}, Dirs{})
	if sbs.sink == nil || ctrs.sink == nil {
		t.Fatal("NewServer did not hand the managers an event sink")
	}

	sbs.sink.SandboxEvent(events.Stopped, podRecord(t, "sb1", sandbox.StateNotReady))
	ctrs.sink.ContainerEvent(events.Created, containerRecord(t, "c1", "sb1", container.StateCreated))
	if ctrs.reads != 0 {
		t.Fatalf("%d record reads with no subscriber, want none", ctrs.reads)
	}

	sub, err := evs.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	sbs.sink.SandboxEvent(events.Stopped, podRecord(t, "sb1", sandbox.StateNotReady))
	ctrs.sink.ContainerEvent(events.Deleted, containerRecord(t, "c9", "sb1", container.StateExited))
	ctrs.sink.ContainerEvent(events.Stopped, containerRecord(t, "c3", "gone", container.StateExited))
	got := next(t, sub, 3)

	stopped := got[0]
	if stopped.ContainerId != "sb1" || stopped.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		t.Errorf("sandbox event: %s for %s", stopped.ContainerEventType, stopped.ContainerId)
	}
	ps := stopped.PodSandboxStatus
	if ps.GetId() != "sb1" || ps.GetState() != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || ps.GetMetadata().GetUid() != "uid-1" ||
		ps.GetNetwork().GetIp() != "198.18.0.2" || ps.GetLabels()["app"] != "web" {
		t.Errorf("sandbox event's pod status: %v", ps)
	}
	if cs := stopped.ContainersStatuses; len(cs) != 2 || cs[0].Id != "c1" || cs[0].State != runtimeapi.ContainerState_CONTAINER_RUNNING ||
		cs[1].State != runtimeapi.ContainerState_CONTAINER_EXITED || cs[1].ExitCode != 3 || cs[1].Metadata.GetName() != "c2" {
		t.Errorf("sandbox event's container statuses: %v", cs)
	}
	if stopped.CreatedAt == 0 || got[1].CreatedAt < stopped.CreatedAt {
		t.Errorf("stamps %d then %d", stopped.CreatedAt, got[1].CreatedAt)
	}

	deleted := got[1]
	if deleted.ContainerId != "c9" || deleted.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT ||
		deleted.PodSandboxStatus.GetState() != runtimeapi.PodSandboxState_SANDBOX_READY || len(deleted.ContainersStatuses) != 2 {
		t.Errorf("container event: %v", deleted)
	}
	if orphan := got[2]; orphan.PodSandboxStatus != nil || orphan.ContainersStatuses == nil {
		t.Errorf("event of a container whose sandbox is gone: %v", orphan)
	}
}

// Without a broadcaster the RPC is the generated Unimplemented, which the
// interceptor turns into a sentence.
func TestGetContainerEventsUnimplementedWithoutEvents(t *testing.T) {
	s := NewServer(Services{}, Dirs{})
	if err := s.GetContainerEvents(&runtimeapi.GetEventsRequest{}, nil); status.Code(err) != codes.Unimplemented {
		t.Errorf("GetContainerEvents without events: %v, want Unimplemented", err)
	}
}
