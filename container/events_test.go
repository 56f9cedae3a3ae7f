package container

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/events"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sink records each event as "kind state", the state being what the pod's
// records said while the sink was called: an event must come after its
// change is published, and reading the records then must not deadlock.
type sink struct {
	m   *Manager
	mu  sync.Mutex
	got []string
}

func (s *sink) ContainerEvent(kind events.Kind, c *Container) {
	seen := "gone"
	for _, r := range s.m.PodRecords(c.SandboxID) {
		if r.ID == c.ID {
			seen = string(r.State)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf("%s %s", kind, seen))
}

func (s *sink) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func withSink(m *Manager) *sink {
	s := &sink{m: m}
	m.SetEventSink(s)
	return s
}

func wantEvents(t *testing.T, s *sink, want ...string) {
	t.Helper()
	if got := s.events(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// A container's life is announced as containerd announces it, each event
// once its change is published; refused changes say nothing.
func TestContainerEventsFollowItsLife(t *testing.T) {
	m, w, _ := newTestManager(t)
	s := withSink(m)
	ctx := context.Background()
	c, err := m.Create(ctx, request("web"))
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, "created created")
	if err := m.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, "created created", "started running")
	if err := m.Start(ctx, c.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: %v", err)
	}
	wantEvents(t, s, "created created", "started running")
	// It exits on its own: the exit dir's watcher publishes it.
	w.exit(c.ID, 0)
	deadline := time.Now().Add(hangGuard)
	for len(s.events()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	wantEvents(t, s, "created created", "started running", "stopped exited")
	if err := m.Stop(ctx, c.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, "created created", "started running", "stopped exited", "deleted gone")
}

// A stop is one stopped event, published even when its checkpoint cannot
// be written (the exit is a fact); the removal of a never-started
// container stops it first.
func TestStopAndRemoveEvents(t *testing.T) {
	m, _, _ := newTestManager(t)
	s := withSink(m)
	ctx := context.Background()
	c := startedContainer(t, m, "web")
	mend := breakCheckpoints(t, m)
	if err := m.Stop(ctx, c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mend()
	wantEvents(t, s, "created created", "started running", "stopped exited")

	s.mu.Lock()
	s.got = nil
	s.mu.Unlock()
	idle, err := m.Create(ctx, request("idle"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, idle.ID); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, "created created", "stopped exited", "deleted gone")
}

// A create that fails at any step, or a start that fails, says nothing: a
// failed create was never announced, so neither is its undo.
func TestFailedTransitionsAreNotAnnounced(t *testing.T) {
	boom := errors.New("boom")
	for _, step := range []string{"mount", "spec", "monitor", "checkpoint"} {
		t.Run(step, func(t *testing.T) {
			m, w, _ := newTestManager(t)
			s := withSink(m)
			req := request("web")
			switch step {
			case "mount":
				w.failMount = boom
			case "spec":
				req.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "relative", HostPath: "/tmp"}}
			case "monitor":
				w.failMonitor = boom
			case "checkpoint":
				defer breakCheckpoints(t, m)()
			}
			if _, err := m.Create(context.Background(), req); err == nil {
				t.Fatal("create succeeded")
			}
			wantEvents(t, s)
		})
	}
	t.Run("start", func(t *testing.T) {
		m, w, _ := newTestManager(t)
		s := withSink(m)
		c, err := m.Create(context.Background(), request("web"))
		if err != nil {
			t.Fatal(err)
		}
		w.failStart = boom
		if err := m.Start(context.Background(), c.ID); err == nil {
			t.Fatal("start succeeded")
		}
		wantEvents(t, s, "created created")
	})
}
