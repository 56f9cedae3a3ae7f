package sandbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/netshim/netshim/pkg/events"
)

// sink records the events it is told of as "kind state".
type sink struct {
	mu  sync.Mutex
	got []string
}

func (s *sink) SandboxEvent(kind events.Kind, sb *Sandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf("%s %s %s", kind, sb.State, sb.ID))
}

func (s *sink) events(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.got {
		if len(e) > len(id) && e[len(e)-len(id):] == id {
			out = append(out, e[:len(e)-len(id)-1])
		}
	}
	return out
}

func withSink(h *harness) *sink {
	s := &sink{}
	h.SetEventSink(s)
	return s
}

func wantEvents(t *testing.T, s *sink, id string, want ...string) {
	t.Helper()
	if got := s.events(id); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// A pod's life, as cri drives it, is announced as containerd announces a
// sandbox: created and started once ready, stopped when the stop makes it
// notready, deleted with its last status; refused changes say nothing.
func TestSandboxEventsFollowItsLife(t *testing.T) {
	h := newHarness(t)
	s := withSink(h)
	sb := h.start(t, "web")
	wantEvents(t, s, sb.ID) // being created: nothing to tell yet
	if err := h.Ready(sb.ID, []string{"198.18.0.2"}); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, sb.ID, "created ready", "started ready")
	if err := h.Ready(sb.ID, nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("second Ready: %v", err)
	}
	wantEvents(t, s, sb.ID, "created ready", "started ready")
	h.undo(t, sb.ID) // MarkNotReady, StopPause, NetworkDetached, Stop, Remove
	wantEvents(t, s, sb.ID, "created ready", "started ready", "stopped notready", "deleted notready")
	if err := h.Remove(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, s, sb.ID, "created ready", "started ready", "stopped notready", "deleted notready")
}

// A set-up that fails (the ADD failed, or the pause died and Ready was
// refused) is undone without a word: kubelet never heard of the sandbox.
func TestFailedSetUpIsNeverAnnounced(t *testing.T) {
	h := newHarness(t)
	s := withSink(h)
	failedAdd := h.start(t, "add")
	h.undo(t, failedAdd.ID)
	wantEvents(t, s, failedAdd.ID)

	died := h.start(t, "died")
	h.node.killPause(h.Manager, died.ID)
	if err := h.Ready(died.ID, nil); !errors.Is(err, ErrPauseExited) {
		t.Fatalf("Ready after the pause died: %v", err)
	}
	h.undo(t, died.ID)
	wantEvents(t, s, died.ID)

	h.node.failPin = errors.New("no netns for you")
	if _, err := h.Create(spec("pin")); err == nil {
		t.Fatal("Create succeeded without its netns")
	}
	h.node.failPin = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 0 {
		t.Fatalf("events of sandboxes never set up: %q", s.got)
	}
}

// A pause that dies on its own stops a ready sandbox: one stopped event,
// from the exit's watcher, and none again when the pod is then stopped.
func TestPauseExitIsAStoppedEvent(t *testing.T) {
	h := newHarness(t)
	s := withSink(h)
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	h.node.killPause(h.Manager, sb.ID)
	waitFor(t, "the stopped event", func() bool { return len(s.events(sb.ID)) == 3 })
	wantEvents(t, s, sb.ID, "created ready", "started ready", "stopped notready")
	h.undo(t, sb.ID)
	wantEvents(t, s, sb.ID, "created ready", "started ready", "stopped notready", "deleted notready")
}

// A sandbox recovered after a restart was announced by the netshim before:
// its removal is an event.
func TestRecoveredSandboxRemovalIsAnnounced(t *testing.T) {
	h := newHarness(t)
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	h.Manager = h.restart(t)
	s := withSink(h)
	if _, err := h.Recover(); err != nil {
		t.Fatal(err)
	}
	h.undo(t, sb.ID)
	wantEvents(t, s, sb.ID, "stopped notready", "deleted notready")
}
