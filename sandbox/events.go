package sandbox

import (
	"sync"

	"github.com/netshim/netshim/pkg/events"
)

// EventSink is told of each change of a sandbox that GetContainerEvents
// reports; package cri makes CRI events of them. It is called with the
// sandbox's lock held, right after the change is published, so a
// sandbox's events come in the order of its changes. It must not block,
// and must not take a sandbox's lock (reading records is fine).
type EventSink interface {
	SandboxEvent(kind events.Kind, sb *Sandbox)
}

// SetEventSink sets who is told of sandbox changes; nil tells no one.
func (m *Manager) SetEventSink(s EventSink) {
	m.events.mu.Lock()
	defer m.events.mu.Unlock()
	m.events.sink = s
}

// announcer turns committed changes into events, as containerd does for
// sandboxes: created and started once set-up is done (ready), stopped when
// a ready sandbox becomes notready (a stop, or its pause exited), deleted
// when the record is removed. A sandbox whose set-up fails is never
// announced, so neither is its removal.
type announcer struct {
	mu          sync.Mutex
	sink        EventSink
	unannounced map[string]bool // made by this netshim, not ready yet
}

func (a *announcer) created(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.unannounced == nil {
		a.unannounced = map[string]bool{}
	}
	a.unannounced[id] = true
}

// changed is told of every published change; sb is a copy of the new record.
func (a *announcer) changed(before State, sb *Sandbox) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case before == StateCreating && sb.State == StateReady:
		delete(a.unannounced, sb.ID)
		a.send(events.Created, sb)
		a.send(events.Started, sb)
	case before == StateReady && sb.State == StateNotReady:
		a.send(events.Stopped, sb)
	}
}

// removed is told that the record of id is gone; last is its final copy
// (nil if there was none).
func (a *announcer) removed(id string, last *Sandbox) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.unannounced[id] {
		delete(a.unannounced, id)
		return
	}
	if last != nil {
		a.send(events.Deleted, last)
	}
}

func (a *announcer) send(kind events.Kind, sb *Sandbox) {
	if a.sink != nil {
		a.sink.SandboxEvent(kind, sb.clone())
	}
}
