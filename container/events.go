package container

import (
	"sort"

	"github.com/netshim/netshim/pkg/events"
)

// EventSink is told of each change of a container that GetContainerEvents
// reports; package cri makes CRI events of them. It is called with the
// container's status lock held, right after the change is published, so a
// container's events come in the order of its changes. It must not block,
// and must not ask for a container's state to be brought up to date (Get,
// List): PodRecords is what it may read.
type EventSink interface {
	ContainerEvent(kind events.Kind, c *Container)
}

// SetEventSink sets who is told of container changes; nil tells no one.
func (m *Manager) SetEventSink(s EventSink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = s
}

// PodRecords returns copies of the records of a pod's containers, oldest
// first, as they stand: unlike List it takes no lock of theirs and reads
// nothing on disk, so an EventSink may call it.
func (m *Manager) PodRecords(sandboxID string) []*Container {
	var out []*Container
	for _, c := range m.records.List() {
		if c.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// announce reports a published change of c's state as containerd does:
// created, started (running), stopped (exited or unknown). The caller holds
// c's status lock.
func (m *Manager) announce(before State, c *Container) {
	if c.State == before {
		return
	}
	switch c.State {
	case StateCreated:
		m.send(events.Created, c)
	case StateRunning:
		m.send(events.Started, c)
	case StateExited, StateUnknown:
		m.send(events.Stopped, c)
	}
}

// announceRemoved reports that c's record is gone, unless it never got past
// creating: a create that failed was never announced.
func (m *Manager) announceRemoved(c *Container) {
	if c.State != StateCreating {
		m.send(events.Deleted, c)
	}
}

func (m *Manager) send(kind events.Kind, c *Container) {
	m.mu.Lock()
	sink := m.events
	m.mu.Unlock()
	if sink != nil {
		sink.ContainerEvent(kind, c.clone())
	}
}
