package sandbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/proc"
	"github.com/netshim/netshim/pkg/reaper"
)

// node is a fake runtime and netns pinner that record what was done and can
// be told to fail at a step. A pause is a real sleep process, a child of the
// test, so liveness checks and the reaper see a real PID; a pin is a plain
// file.
type node struct {
	t *testing.T

	mu      sync.Mutex
	pauses  map[string]int // runtime container → PID of its pause
	deleted map[string][]bool
	pins    map[string]bool

	failRun, failDelete, failPin, failUnpin error
}

func newNode(t *testing.T) *node {
	n := &node{t: t, pauses: map[string]int{}, deleted: map[string][]bool{}, pins: map[string]bool{}}
	t.Cleanup(func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, pid := range n.pauses {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return n
}

func (n *node) Run(_ context.Context, id, bundle string) (int, error) {
	if n.failRun != nil {
		return 0, n.failRun
	}
	if _, err := os.Stat(filepath.Join(bundle, "config.json")); err != nil {
		return 0, errors.New("run without a bundle")
	}
	// Not waited for: the manager's reaper reaps it, as it does a pause.
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
	if err != nil {
		return 0, err
	}
	n.mu.Lock()
	n.pauses[id] = p.Pid
	n.mu.Unlock()
	return p.Pid, nil
}

func (n *node) Delete(_ context.Context, id string, force bool) error {
	if n.failDelete != nil {
		return n.failDelete
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if pid, ok := n.pauses[id]; ok && force {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	delete(n.pauses, id)
	n.deleted[id] = append(n.deleted[id], force)
	return nil
}

func (n *node) List(context.Context) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string
	for id := range n.pauses {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

func (n *node) Available() error { return nil }

func (n *node) State(_ context.Context, id string) (string, error) { return "", nil }

func (n *node) Pin(path string) error {
	if n.failPin != nil {
		return n.failPin
	}
	if err := os.WriteFile(path, nil, 0o444); err != nil {
		return err
	}
	n.mu.Lock()
	n.pins[path] = true
	n.mu.Unlock()
	return nil
}

func (n *node) Unpin(path string) error {
	if n.failUnpin != nil {
		return n.failUnpin
	}
	n.mu.Lock()
	delete(n.pins, path)
	n.mu.Unlock()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// killPause kills the pause of id on its own, as an OOM kill or a CNI
// plugin gone wrong would, and returns once the reaper has reaped it.
func (n *node) killPause(m *Manager, id string) {
	n.t.Helper()
	m.mu.RLock()
	exited := m.children[id]
	m.mu.RUnlock()
	n.mu.Lock()
	pid := n.pauses[id]
	n.mu.Unlock()
	if pid == 0 || exited == nil {
		n.t.Fatalf("sandbox %s has no pause to kill", id)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		n.t.Fatal(err)
	}
	<-exited
}

func (n *node) pinned() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pins)
}

// harness is a manager over temp dirs, the fake node and a real reaper.
type harness struct {
	*Manager
	node *node
	cfg  Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	pause := filepath.Join(dir, "pause-binary")
	if err := os.WriteFile(pause, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNode(t)
	r := reaper.New()
	t.Cleanup(r.Stop)
	cfg := Config{RootDir: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "run"), NetNSDir: filepath.Join(dir, "netns"),
		PauseBinary: pause, Runtime: n, Reaper: r, NetNS: n}
	return &harness{Manager: newManager(t, cfg), node: n, cfg: cfg}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// restart is a new manager over the same dirs, as after a netshim restart;
// its pauses are no longer children it watches.
func (h *harness) restart(t *testing.T) *Manager {
	t.Helper()
	cfg := h.cfg
	cfg.Reaper = reaper.New()
	t.Cleanup(cfg.Reaper.Stop)
	return newManager(t, cfg)
}

// spec is a pod with its own network namespace; HostIPC keeps the pod's
// /dev/shm tmpfs (a mount, which needs root) out of the unit tests.
func spec(name string) Spec {
	return Spec{Name: name, Namespace: "ns", UID: "uid-" + name, HostIPC: true}
}

// start runs the manager's part of a RunPodSandbox up to the network ADD.
func (h *harness) start(t *testing.T, name string) *Sandbox {
	t.Helper()
	sb, err := h.Create(spec(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.StartPause(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	got, err := h.Get(sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// undo is what cri does after a failed start, or for a stop and remove:
// stop (the DEL having succeeded), then remove.
func (h *harness) undo(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	if err := h.MarkNotReady(id); err != nil {
		t.Fatal(err)
	}
	if err := h.StopPause(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.NetworkDetached(id); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// nothingLeft asserts that no trace of the sandbox remains: record, name,
// checkpoint, bundle, pin and its marker, runtime container.
func (h *harness) nothingLeft(t *testing.T, sb *Sandbox) {
	t.Helper()
	if _, err := h.Get(sb.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("record of %s still there: %v", sb.ID, err)
	}
	if _, err := h.Resolve(sb.ID[:8]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("ID %s still resolves: %v", sb.ID, err)
	}
	if holder, held := h.records.Holder(sb.Spec.ReservationName()); held && holder == sb.ID {
		t.Errorf("name of %s still reserved", sb.ID)
	}
	for _, p := range []string{h.checkpoints.Path(sb.ID), h.bundleDir(sb.ID), sb.NetNSPath, h.pinMarker(sb.NetNSPath)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	h.node.mu.Lock()
	defer h.node.mu.Unlock()
	if h.node.pins[sb.NetNSPath] {
		t.Errorf("netns pin %s left", sb.NetNSPath)
	}
	if _, ok := h.node.pauses[sb.ID]; ok {
		t.Errorf("runtime container %s left", sb.ID)
	}
}

func onDisk(t *testing.T, h *harness, id string) *Sandbox {
	t.Helper()
	good, bad := h.checkpoints.LoadAll()
	if len(bad) != 0 {
		t.Fatalf("corrupt checkpoints: %v", bad)
	}
	for _, sb := range good {
		if sb.ID == id {
			return sb
		}
	}
	t.Fatalf("no checkpoint of %s", id)
	return nil
}

func TestSandboxStartReadyStopRemove(t *testing.T) {
	h := newHarness(t)
	sb := h.start(t, "web")
	if sb.State != StateCreating || !sb.NetworkAttached || sb.PausePID == 0 || !proc.SameAlive(sb.PausePID, sb.PauseStartTime) {
		t.Fatalf("after the start: %+v", sb.Status)
	}
	if _, err := os.Stat(sb.NetNSPath); err != nil {
		t.Fatalf("netns not pinned: %v", err)
	}
	// Intent before action: the ADD's DEL is owed from the first write.
	if d := onDisk(t, h, sb.ID); d.State != StateCreating || !d.NetworkAttached || d.NetNSPath != sb.NetNSPath {
		t.Fatalf("checkpoint before the ADD: %+v", d.Status)
	}
	if _, err := h.Create(spec("web")); !errors.Is(err, ErrNameReserved) {
		t.Fatalf("second create of the same pod: %v, want its name reserved", err)
	}
	if err := h.Ready(sb.ID, []string{"198.18.0.2"}); err != nil {
		t.Fatal(err)
	}
	if d := onDisk(t, h, sb.ID); d.State != StateReady || d.PausePID != sb.PausePID || len(d.IPs) != 1 {
		t.Fatalf("checkpoint once ready: %+v", d.Status)
	}
	if err := h.Ready(sb.ID, nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("second Ready: %v, want refused", err)
	}
	if got, _ := h.Get(sb.ID); len(got.IPs) != 1 {
		t.Fatalf("a refused Ready changed the IPs: %v", got.IPs)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
	if proc.SameAlive(sb.PausePID, sb.PauseStartTime) {
		t.Error("pause still running after the stop")
	}
}

// The bug of issue 22: a pause that dies while the network ADD runs must
// keep the sandbox from becoming ready, whichever comes first, the exit's
// watcher or the Ready.
func TestPauseDeathDuringSetUpRefusesReady(t *testing.T) {
	for _, watcherFirst := range []bool{true, false} {
		h := newHarness(t)
		sb := h.start(t, "web")
		if watcherFirst {
			h.node.killPause(h.Manager, sb.ID)
			waitFor(t, "the exit to be recorded", func() bool {
				got, _ := h.Get(sb.ID)
				return got.PauseExited
			})
		} else {
			// The watcher cannot record it while Ready holds the lock.
			unlock := h.locks.Lock(sb.ID)
			h.node.killPause(h.Manager, sb.ID)
			h.recordPendingExit(sb.ID)
			unlock()
		}
		err := h.Ready(sb.ID, []string{"198.18.0.2"})
		if !errors.Is(err, ErrPauseExited) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatalf("watcher first %v: Ready after the pause died: %v, want ErrPauseExited", watcherFirst, err)
		}
		got, _ := h.Get(sb.ID)
		if got.State != StateNotReady {
			t.Fatalf("state %s, want notready", got.State)
		}
		// On disk it is still being created, so that a crash now is undone at start.
		if d := onDisk(t, h, sb.ID); d.State != StateCreating {
			t.Fatalf("checkpoint says %s, want creating", d.State)
		}
		interrupted, err := h.restart(t).Recover()
		if err != nil || len(interrupted) != 1 || interrupted[0].ID != sb.ID {
			t.Fatalf("a restart now finds %v interrupted (%v), want the sandbox", interrupted, err)
		}
		h.undo(t, sb.ID)
		h.nothingLeft(t, sb)
	}
}

// A pause that dies once the sandbox is ready makes it NOTREADY, on disk too.
func TestPauseDeathWhenReadyMakesNotReady(t *testing.T) {
	h := newHarness(t)
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	h.node.killPause(h.Manager, sb.ID)
	waitFor(t, "the sandbox to be notready", func() bool {
		got, _ := h.Get(sb.ID)
		return got.State == StateNotReady
	})
	if d := onDisk(t, h, sb.ID); d.State != StateNotReady || !d.PauseExited {
		t.Fatalf("checkpoint: %+v", d.Status)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// A pause killed on purpose (a stop) is no exit to record.
func TestStopIsNoPauseExit(t *testing.T) {
	h := newHarness(t)
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.StopPause(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := h.Get(sb.ID)
	if got.PauseExited || got.PausePID != 0 {
		t.Fatalf("after a stop: %+v", got.Status)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// A netns that cannot be made undoes the create: no record, checkpoint,
// name or marker.
func TestCreateUndoneWhenThePinFails(t *testing.T) {
	h := newHarness(t)
	h.node.failPin = errors.New("no netns for you")
	_, err := h.Create(spec("web"))
	if err == nil {
		t.Fatal("create succeeded without a netns")
	}
	if len(h.List()) != 0 {
		t.Fatalf("records left: %v", h.List())
	}
	if entries, _ := os.ReadDir(h.checkpoints.Dir); len(entries) != 0 {
		t.Fatalf("checkpoints left: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.cfg.StateDir, pinMarkerDir)); len(entries) != 0 {
		t.Fatalf("pin markers left: %v", entries)
	}
	h.node.failPin = nil
	if _, err := h.Create(spec("web")); err != nil {
		t.Fatalf("the name was not released: %v", err)
	}
}

// A pause that cannot start has its runtime container force-deleted; the
// sandbox stays creating for the caller to undo.
func TestStartPauseFailureDeletesTheRuntimeContainer(t *testing.T) {
	h := newHarness(t)
	sb, err := h.Create(spec("web"))
	if err != nil {
		t.Fatal(err)
	}
	h.node.failRun = errors.New("runc said no")
	if err := h.StartPause(context.Background(), sb.ID); err == nil {
		t.Fatal("StartPause succeeded")
	}
	if forced := h.node.deleted[sb.ID]; len(forced) != 1 || !forced[0] {
		t.Fatalf("deletes %v, want one forced", forced)
	}
	if got, _ := h.Get(sb.ID); got.State != StateCreating || got.PausePID != 0 {
		t.Fatalf("after the failed start: %+v", got.Status)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// A stop whose DEL did not succeed keeps the pin, which the DEL needs, and
// remove refuses to forget the sandbox; once the DEL succeeds both go.
func TestStopWithADELOwedKeepsThePin(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.MarkNotReady(sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx, sb.ID); err != nil { // the DEL failed: no NetworkDetached
		t.Fatal(err)
	}
	got, _ := h.Get(sb.ID)
	if got.State != StateNotReady || !got.NetworkAttached || got.NetNSPath == "" || h.node.pinned() != 1 {
		t.Fatalf("after a stop with the DEL owed: %+v, %d pins", got.Status, h.node.pinned())
	}
	if d := onDisk(t, h, sb.ID); !d.NetworkAttached || d.NetNSPath != sb.NetNSPath {
		t.Fatalf("checkpoint lost the owed DEL: %+v", d.Status)
	}
	if err := h.Remove(ctx, sb.ID); err == nil {
		t.Fatal("remove forgot a sandbox whose DEL is owed")
	}
	// The DEL is retried after a restart too.
	m2 := h.restart(t)
	if _, err := m2.Recover(); err != nil {
		t.Fatal(err)
	}
	if got, _ := m2.Get(sb.ID); !got.NetworkAttached || got.NetNSPath != sb.NetNSPath {
		t.Fatalf("after a restart: %+v", got.Status)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// A runtime delete that fails fails the stop and keeps the record, so the
// stop can be retried.
func TestStopRetriedAfterTheRuntimeFails(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	h.node.failDelete = errors.New("runc delete failed")
	if err := h.StopPause(ctx, sb.ID); err == nil {
		t.Fatal("StopPause succeeded without deleting the runtime container")
	}
	if got, err := h.Get(sb.ID); err != nil || got.PausePID == 0 {
		t.Fatalf("after the failed stop: %+v, %v; want the PID kept for the retry", got, err)
	}
	h.node.failDelete = nil
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// Recovery: a ready sandbox whose pause died while netshim was down is
// NOTREADY; one caught being created is handed back to be undone; orphans
// (a runtime container and a pin no record knows) are swept.
func TestRecoverReconcilesWithTheNode(t *testing.T) {
	h := newHarness(t)
	ready := h.start(t, "ready")
	if err := h.Ready(ready.ID, nil); err != nil {
		t.Fatal(err)
	}
	creating := h.start(t, "creating")
	alive := h.start(t, "alive")
	if err := h.Ready(alive.ID, nil); err != nil {
		t.Fatal(err)
	}
	// The first pause dies "while netshim is down": the new manager has
	// no watcher for it.
	m2 := h.restart(t)
	h.node.killPause(h.Manager, ready.ID)
	orphanPin := filepath.Join(h.cfg.NetNSDir, "orphan_ns_0123456789ab")
	if err := m2.pin(orphanPin); err != nil {
		t.Fatal(err)
	}
	if _, err := h.node.Run(context.Background(), "orphan", h.bundleDir(ready.ID)); err != nil {
		t.Fatal(err)
	}

	interrupted, err := m2.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(interrupted) != 1 || interrupted[0].ID != creating.ID {
		t.Fatalf("interrupted %v, want the creating sandbox", interrupted)
	}
	if got, _ := m2.Get(ready.ID); got.State != StateNotReady || !got.PauseExited {
		t.Fatalf("sandbox whose pause died: %+v", got.Status)
	}
	if got, _ := m2.Get(alive.ID); got.State != StateReady {
		t.Fatalf("sandbox whose pause lives: %+v", got.Status)
	}
	m2.SweepOrphans(context.Background())
	if _, err := os.Stat(orphanPin); !os.IsNotExist(err) {
		t.Errorf("orphan pin not swept: %v", err)
	}
	if ids, _ := h.node.List(context.Background()); len(ids) != 3 {
		t.Errorf("runtime containers %v after the sweep, want the three sandboxes' and not the orphan", ids)
	}
	h.Manager = m2
	for _, sb := range []*Sandbox{ready, creating, alive} {
		h.undo(t, sb.ID)
		h.nothingLeft(t, sb)
	}
}

// waitFor polls cond; the deadline only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The network ADD failed: the caller undoes the sandbox from creating. If
// the DEL of that failed ADD fails too, the stopped sandbox keeps its pin
// and its DEL owed, and is no longer one that recovery would undo.
func TestFailedAddUndoneFromCreating(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sb := h.start(t, "web")
	if err := h.MarkNotReady(sb.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Get(sb.ID); got.State != StateCreating {
		t.Fatalf("stopping a sandbox being created made it %s; recovery would not undo it", got.State)
	}
	if err := h.StopPause(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.Stop(ctx, sb.ID); err != nil { // the DEL failed: no NetworkDetached
		t.Fatal(err)
	}
	if err := h.Remove(ctx, sb.ID); err == nil {
		t.Fatal("remove forgot a sandbox whose DEL is owed")
	}
	if d := onDisk(t, h, sb.ID); d.State != StateNotReady || !d.NetworkAttached || h.node.pinned() != 1 {
		t.Fatalf("after the undo's DEL failed: %+v, %d pins", d.Status, h.node.pinned())
	}
	if err := h.Ready(sb.ID, nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("Ready of a stopped sandbox: %v, want refused", err)
	}
	if interrupted, err := h.restart(t).Recover(); err != nil || len(interrupted) != 0 {
		t.Fatalf("a restart finds %v interrupted (%v): the stopped sandbox is kept for its DEL, not undone", interrupted, err)
	}
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// A pause adopted after a restart is not netshim's child: its death is
// seen when the sandbox's status is asked for.
func TestAdoptedPauseDeathSeenOnRefresh(t *testing.T) {
	h := newHarness(t)
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	m2 := h.restart(t)
	if _, err := m2.Recover(); err != nil {
		t.Fatal(err)
	}
	m2.RefreshState(sb.ID)
	if got, _ := m2.Get(sb.ID); got.State != StateReady {
		t.Fatalf("a live adopted pause: %s", got.State)
	}
	h.node.killPause(h.Manager, sb.ID)
	m2.RefreshState(sb.ID)
	got, _ := m2.Get(sb.ID)
	if got.State != StateNotReady || !got.PauseExited {
		t.Fatalf("after the adopted pause died: %+v", got.Status)
	}
	h.Manager = m2
	h.undo(t, sb.ID)
	h.nothingLeft(t, sb)
}

// An unpin that fails fails the stop, keeps the pin recorded and the
// sandbox known, so that a later stop retries it; nothing is forgotten.
func TestStopRetriedAfterTheUnpinFails(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sb := h.start(t, "web")
	if err := h.Ready(sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.NetworkDetached(sb.ID); err != nil {
		t.Fatal(err)
	}
	h.node.failUnpin = errors.New("device busy")
	if err := h.Stop(ctx, sb.ID); err == nil {
		t.Fatal("Stop succeeded without unpinning")
	}
	if err := h.Remove(ctx, sb.ID); err == nil {
		t.Fatal("Remove succeeded without unpinning")
	}
	got, err := h.Get(sb.ID)
	if err != nil || got.NetNSPath != sb.NetNSPath || h.node.pinned() != 1 {
		t.Fatalf("after the failed unpin: %+v, %v, %d pins; want the pin kept for the retry", got, err, h.node.pinned())
	}
	if _, err := os.Stat(h.pinMarker(sb.NetNSPath)); err != nil {
		t.Fatalf("the pin's marker went before the pin: %v", err)
	}
	h.node.failUnpin = nil
	if err := h.Remove(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	h.nothingLeft(t, sb)
}
