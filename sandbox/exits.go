package sandbox

import (
	"github.com/netshim/netshim/pkg/proc"
	"k8s.io/klog/v2"
)

// A pause process's exit is an event like any other (see state.go): it is
// applied whenever it comes, in whatever state the sandbox is.

// watchExit records the exit of a pause process whenever it comes.
func (m *Manager) watchExit(id string, pid int, exited <-chan struct{}) {
	<-exited
	defer m.locks.Lock(id)()
	m.recordExit(id, pid)
}

// recordExit applies the pause-exited event to the sandbox whose pause pid
// was. While the sandbox is being created the change stays in memory: on
// disk it is still creating, which recovery undoes. The caller holds the
// sandbox's lock.
func (m *Manager) recordExit(id string, pid int) {
	sb, err := m.Get(id)
	if err != nil || sb.PausePID != pid || sb.PauseExited {
		return // removed, stopped on purpose, or already recorded
	}
	klog.InfoS("Pause process exited", "sandbox", id, "pid", pid, "state", sb.State)
	w := teardown
	if sb.State == StateCreating {
		w = memory
	}
	if _, err := m.update(id, w, pauseExited); err != nil {
		klog.ErrorS(err, "Could not record a pause process's exit", "sandbox", id)
	}
}

// recordPendingExit applies the exit of a pause process that has exited
// but whose watcher has not run yet, so that what is asked next (Ready)
// sees the exit that came first. The caller holds the sandbox's lock.
func (m *Manager) recordPendingExit(id string) {
	m.mu.RLock()
	exited, child := m.children[id]
	m.mu.RUnlock()
	if !child {
		return
	}
	select {
	case <-exited:
		if sb, err := m.Get(id); err == nil {
			m.recordExit(id, sb.PausePID)
		}
	default:
	}
}

// RefreshState marks a READY sandbox whose pause process is no longer alive
// NOTREADY; it covers pause processes adopted across a restart, which are not
// netshim's children and so are not seen exiting.
func (m *Manager) RefreshState(id string) {
	m.mu.RLock()
	_, child := m.children[id]
	m.mu.RUnlock()
	if child {
		return // the reaper sees our own children exit
	}
	sb, err := m.Get(id)
	if err != nil || sb.State != StateReady || proc.SameAlive(sb.PausePID, sb.PauseStartTime) {
		return
	}
	defer m.locks.Lock(id)()
	if sb, err := m.Get(id); err == nil && sb.State == StateReady {
		_, _ = m.update(id, teardown, pauseExited)
	}
}
