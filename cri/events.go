package cri

import (
	"time"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/pkg/events"
	"github.com/netshim/netshim/sandbox"
	"github.com/prometheus/client_golang/prometheus"
	grpcmd "google.golang.org/grpc/metadata"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Events is the broadcaster behind GetContainerEvents.
type Events = events.Broadcaster[*runtimeapi.ContainerEventResponse]

// DefaultEventBuffer is how many events a GetContainerEvents subscriber
// may be behind before its stream is ended: kubelet's own PLEG channel
// holds as many.
const DefaultEventBuffer = 1000

// NewEvents returns the broadcaster GetContainerEvents streams from, each
// subscriber at most buffer events behind, with its counters registered
// with reg (may be nil). Close it before the gRPC server's GracefulStop:
// a subscriber's stream lasts until then.
func NewEvents(buffer int, reg prometheus.Registerer) *Events {
	sent := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netshim_container_events_sent_total",
		Help: "Container events sent to GetContainerEvents subscribers (one per subscriber an event reaches).",
	})
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "netshim_container_events_subscribers_dropped_total",
		Help: "GetContainerEvents subscribers whose stream was ended because they fell more than the buffer behind.",
	})
	if reg != nil {
		reg.MustRegister(sent, dropped)
	}
	return events.New[*runtimeapi.ContainerEventResponse](events.Config{Buffer: buffer, Sent: sent, Dropped: dropped})
}

// GetContainerEvents streams every sandbox and container event from the
// subscription on, as containerd does: each with the pod's sandbox status
// and the statuses of all its containers, a sandbox's under its own ID.
// A subscriber more than the buffer behind is ended with ResourceExhausted;
// kubelet then relists and subscribes again.
func (s *Server) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	if s.events == nil {
		return s.UnimplementedRuntimeServiceServer.GetContainerEvents(nil, stream)
	}
	sub, err := s.events.Subscribe()
	if err != nil {
		return err
	}
	defer sub.Close()
	// The headers say the subscription is live: a client that waits for
	// them misses no event that comes after.
	if err := stream.SendHeader(grpcmd.MD{}); err != nil {
		return err
	}
	klog.V(2).InfoS("Container events subscriber joined")
	err = sub.Stream(stream.Context(), stream.Send)
	klog.V(2).InfoS("Container events subscriber left", "err", err)
	return err
}

// publisher makes CRI events of the managers' changes. The managers call
// it with a record's lock held, so it reads records only as they stand.
type publisher struct{ s *Server }

func (p publisher) SandboxEvent(kind events.Kind, sb *sandbox.Sandbox) {
	if !p.s.events.Active() {
		return
	}
	// Stamped before the statuses are read: an event's statuses then hold
	// every change made before its time, so the latest event (kubelet keeps
	// the newest by this time) is never stale.
	ev := &runtimeapi.ContainerEventResponse{ContainerId: sb.ID, ContainerEventType: eventType(kind), CreatedAt: time.Now().UnixNano()}
	ev.PodSandboxStatus = p.sandboxStatus(sb)
	ev.ContainersStatuses = p.containerStatuses(sb.ID)
	p.s.events.Publish(ev)
}

func (p publisher) ContainerEvent(kind events.Kind, c *container.Container) {
	if !p.s.events.Active() {
		return
	}
	ev := &runtimeapi.ContainerEventResponse{ContainerId: c.ID, ContainerEventType: eventType(kind), CreatedAt: time.Now().UnixNano()}
	// Gone only if removed behind the pod's back; kubelet ignores such an
	// event, and its next relist finds the truth (as with containerd).
	if sb, err := p.s.sandboxes.Get(c.SandboxID); err == nil {
		ev.PodSandboxStatus = p.sandboxStatus(sb)
	}
	ev.ContainersStatuses = p.containerStatuses(c.SandboxID)
	p.s.events.Publish(ev)
}

func (p publisher) sandboxStatus(sb *sandbox.Sandbox) *runtimeapi.PodSandboxStatus {
	cfg, err := decodeConfig(sb)
	if err != nil {
		klog.ErrorS(err, "Container event without the pod's config", "sandbox", sb.ID)
		cfg = &runtimeapi.PodSandboxConfig{}
	}
	return sandboxStatus(sb, cfg)
}

// containerStatuses are those of every container the pod has, in any state.
func (p publisher) containerStatuses(sandboxID string) []*runtimeapi.ContainerStatus {
	out := []*runtimeapi.ContainerStatus{}
	for _, c := range p.s.containers.PodRecords(sandboxID) {
		st, err := p.s.containerStatus(c)
		if err != nil {
			klog.ErrorS(err, "Container left out of a container event", "container", c.ID)
			continue
		}
		out = append(out, st)
	}
	return out
}

func eventType(k events.Kind) runtimeapi.ContainerEventType {
	switch k {
	case events.Started:
		return runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	case events.Stopped:
		return runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	case events.Deleted:
		return runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	}
	return runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
}
