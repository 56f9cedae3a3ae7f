package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/proc"
	"k8s.io/klog/v2"
)

// exitWatch watches the dir where conmon writes each container's exit file
// (inotify, through fsnotify), so that an exit is seen when it is written:
// a stop returns then, and the container's state is brought up to date
// without anyone asking, instead of being polled for.
type exitWatch struct {
	dir    string
	w      *fsnotify.Watcher
	onExit func(id string) // called, in a goroutine of its own, for every exit file written

	mu      sync.Mutex
	waiters map[string]chan struct{} // closed at the next event for the ID's exit file

	exited  chan struct{}
	running sync.WaitGroup // onExit calls under way: close waits for them
}

func watchExits(dir string, onExit func(id string)) (*exitWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch exit dir %s: %w", dir, err)
	}
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch exit dir %s: %w", dir, err)
	}
	x := &exitWatch{dir: dir, w: w, onExit: onExit, waiters: map[string]chan struct{}{}, exited: make(chan struct{})}
	go x.loop()
	return x, nil
}

// next returns a channel closed at the next write of id's exit file. Call
// it before reading the file, so that a write in between is not missed.
func (x *exitWatch) next(id string) <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	ch, ok := x.waiters[id]
	if !ok {
		ch = make(chan struct{})
		x.waiters[id] = ch
	}
	return ch
}

func (x *exitWatch) wake(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ch, ok := x.waiters[id]; ok {
		close(ch)
		delete(x.waiters, id)
	}
}

// wakeAll wakes every waiter, to read its file again: after a lost event.
func (x *exitWatch) wakeAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, ch := range x.waiters {
		close(ch)
		delete(x.waiters, id)
	}
}

func (x *exitWatch) loop() {
	defer close(x.exited)
	for {
		select {
		case ev, ok := <-x.w.Events:
			if !ok {
				return
			}
			// conmon creates the file and writes the code: either event
			// may be the one after which the code is there. A removal (the
			// container's own) is nothing to wake for.
			if !ev.Has(fsnotify.Create|fsnotify.Write) || filepath.Dir(ev.Name) != x.dir {
				continue
			}
			id := filepath.Base(ev.Name)
			x.wake(id)
			if x.onExit != nil {
				x.running.Add(1)
				go func() {
					defer x.running.Done()
					x.onExit(id)
				}()
			}
		case err, ok := <-x.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: every waiter reads its file again.
			klog.InfoS("Exit dir watch error; rereading every awaited exit file", "dir", x.dir, "err", err)
			x.wakeAll()
		}
	}
}

func (x *exitWatch) close() {
	_ = x.w.Close()
	<-x.exited
	x.wakeAll()
	x.running.Wait() // no record is written after Close returns
}

// adoptedRecheck is how often a wait looks whether the monitor of a
// container adopted after a restart, which is not seen exiting, is gone
// without having written an exit code.
const adoptedRecheck = 100 * time.Millisecond

// waitExit waits until the monitor wrote the container's exit code, which
// the exit dir's watch reports when it is written, or until monitor and
// container are both gone without one.
func (m *Manager) waitExit(ctx context.Context, id string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	m.mu.Lock()
	monitorGone, child := m.monitors[id]
	m.mu.Unlock()
	for {
		written := m.exits.next(id) // before the read: a write in between wakes it
		if _, _, ok, _ := oci.ExitCode(m.exitDir(), id); ok {
			return true
		}
		if c, err := m.get(id); err == nil && !m.anyAlive(c) {
			return true // monitor and container both gone: no code will come
		}
		var recheck <-chan time.Time
		if !child {
			recheck = time.After(adoptedRecheck)
		}
		select {
		case <-written:
		case <-monitorGone:
			// Seen; the next round reads what it left, and from then on
			// looks now and then, as for an adopted one.
			monitorGone, child = nil, false
		case <-recheck:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (m *Manager) anyAlive(c *Container) bool {
	return proc.SameAlive(c.PID, c.PIDStartTime) || proc.SameAlive(c.MonitorPID, c.MonitorPIDStartTime)
}

// stateTimeout bounds the runtime's answer on a created container.
const stateTimeout = 5 * time.Second

// refresh brings the recorded state up to date with the monitor's exit file
// and, for a created container, the runtime's word that it runs. It takes
// no lifecycle lock, so listing, status and stats never wait on a stop; the
// update's status lock and the transition table keep it from undoing what a
// lifecycle operation recorded (an exit is final; start keeps a running
// one running). It also writes a status a full disk kept off the disk.
func (m *Manager) refresh(id string) {
	m.persistPending(id)
	c, err := m.get(id)
	if err != nil || !live(c.State) {
		return
	}
	code, at, ok, err := oci.ExitCode(m.exitDir(), id)
	if err != nil {
		klog.ErrorS(err, "Could not read exit file", "container", id)
		return
	}
	if !ok {
		if m.anyAlive(c) {
			if c.State == StateCreated {
				m.reconcileStarted(id)
			}
			return
		}
		// The monitor writes the code before it exits: one written since
		// the first read is there now.
		if code, at, ok, err = oci.ExitCode(m.exitDir(), id); err != nil || ok {
			if ok {
				m.recordExit(c, code, at)
			}
			return
		}
		// Monitor and container both gone without an exit code (killed,
		// or the node rebooted): the state cannot be known.
		_, _ = m.update(id, publishFirst, func(st Status) (Status, error) {
			if !live(st.State) {
				return st, nil
			}
			st.State, st.FinishedAt, st.ExitCode = StateUnknown, time.Now(), 255
			st.Reason, st.Message = "Unknown", "the container's monitor is gone and left no exit code"
			return st, nil
		})
		return
	}
	m.recordExit(c, code, at)
}

// recordExit publishes the exit code the monitor wrote.
func (m *Manager) recordExit(c *Container, code int32, at time.Time) {
	oom := oomKilled(c.Bundle)
	_, err := m.update(c.ID, publishFirst, func(st Status) (Status, error) {
		if !live(st.State) {
			return st, nil // recorded meanwhile
		}
		st.State, st.ExitCode, st.FinishedAt = StateExited, code, at
		if st.StartedAt.IsZero() {
			st.StartedAt = at
		}
		switch {
		case oom:
			st.Reason = "OOMKilled"
		case code == 0:
			st.Reason = "Completed"
		default:
			st.Reason = "Error"
		}
		return st, nil
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) { // removed meanwhile
		klog.ErrorS(err, "Could not record container exit", "container", c.ID)
	}
}

// runcInitComm is the command name of runc's init before it runs the
// container's process.
const runcInitComm = "runc:[2:INIT]"

// reconcileStarted records as running a created container that the runtime
// says runs: a start cut short after `runc start` (netshim killed, or its
// record's write failed) would otherwise leave it CREATED for good, its
// retried start refused and its stop skipping the stop signal.
func (m *Manager) reconcileStarted(id string) {
	// runc's init waits for the start as "runc:[2:INIT]" and is the
	// container's process only once it is started: while it is still
	// that, the container is created, and no `runc state` (an exec, 5 ms,
	// on every look at a created container) need say so.
	if c, err := m.get(id); err == nil && c.PID > 0 {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.PID)); err == nil && strings.TrimSpace(string(comm)) == runcInitComm {
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	state, err := m.runtimeOf(id).State(ctx, id)
	if err != nil {
		klog.ErrorS(err, "Could not ask the runtime whether a created container runs", "container", id)
		return
	}
	if state != "running" {
		return
	}
	_, err = m.update(id, publishFirst, func(st Status) (Status, error) {
		if st.State == StateCreated {
			st.State, st.StartedAt = StateRunning, time.Now()
		}
		return st, nil
	})
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) { // removed meanwhile
			klog.ErrorS(err, "Could not record a started container as running", "container", id)
		}
		return
	}
	klog.InfoS("Container the runtime runs was recorded created; now recorded running", "container", id)
}

func oomKilled(bundle string) bool {
	_, err := os.Stat(filepath.Join(bundle, oci.OOMFile))
	return err == nil
}
