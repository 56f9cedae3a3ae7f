package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startedContainer is a created and started container of a test manager.
func startedContainer(t *testing.T, m *Manager, name string) *Container {
	t.Helper()
	c, err := m.Create(context.Background(), request(name))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitSignalled waits until the container was sent sig.
func waitSignalled(t *testing.T, w *world, id string, sig syscall.Signal) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		sigs := append([]syscall.Signal(nil), w.signals[id]...)
		w.mu.Unlock()
		for _, s := range sigs {
			if s == sig {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("container %s never got %v", id, sig)
}

// While a stop waits out a long grace period, listing, status and stats
// answer (issue 23, fault 5): kubelet's relist must not stall for a grace
// period. Nothing is timed: each must answer before the stop ends, which
// it does only when the container exits.
func TestListAndStatusDoNotWaitOnAStop(t *testing.T) {
	m, w, _ := newTestManager(t)
	c := startedContainer(t, m, "web")
	w.mu.Lock()
	w.ignoreTerm = true
	w.mu.Unlock()
	const grace = 20 * time.Second
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(context.Background(), c.ID, grace) }()
	waitSignalled(t, w, c.ID, syscall.SIGTERM)

	answered := make(chan string, 3)
	go func() { _ = m.List(); answered <- "list" }()
	go func() { _, _ = m.Get(c.ID); answered <- "status" }()
	go func() {
		if got, err := m.Get(c.ID); err == nil {
			_, _ = m.Stats(got)
		}
		answered <- "stats"
	}()
	for range 3 {
		select {
		case what := <-answered:
			t.Logf("%s answered during the stop", what)
		case err := <-stopped:
			t.Fatalf("the stop ended (%v) before list, status and stats answered: they waited on it", err)
		}
	}
	w.exit(c.ID, 143) // the container gives in to SIGTERM after all
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("stop never returned after the container exited")
	}
	if got, _ := m.Get(c.ID); got.State != StateExited || got.ExitCode != 143 {
		t.Fatalf("after the stop: %s exit %d, want exited 143", got.State, got.ExitCode)
	}
}

// breakCheckpoints makes every checkpoint write fail, as a full disk does,
// until the returned func mends it.
func breakCheckpoints(t *testing.T, m *Manager) (mend func()) {
	t.Helper()
	dir := m.checkpoints.Dir
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dir+".away", dir); err != nil {
			t.Fatal(err)
		}
	}
}

// A stop whose checkpoint write fails (a full disk) still publishes the
// exit (issue 23, fault 7): the status said RUNNING exit 0 while the exit
// file said 143. The record is written once the disk takes it again.
func TestExitIsPublishedWhenTheCheckpointCannotBeWritten(t *testing.T) {
	m, _, cfg := newTestManager(t)
	c := startedContainer(t, m, "web")
	mend := breakCheckpoints(t, m)
	if err := m.Stop(context.Background(), c.ID, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(c.ID)
	if err != nil || got.State != StateExited || got.ExitCode != 143 {
		t.Fatalf("after a stop on a full disk: %+v, %v; want exited 143", got, err)
	}
	mend()
	_, _ = m.Get(c.ID) // any look at it persists what was published
	onDisk, err := m.checkpoints.Load(c.ID)
	if err != nil || onDisk.State != StateExited || onDisk.ExitCode != 143 {
		t.Fatalf("checkpoint once there is room: %+v, %v; want exited 143", onDisk, err)
	}
	m.Close()
	m2, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m2.Close)
	if err := m2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, err := m2.Get(c.ID); err != nil || got.State != StateExited || got.ExitCode != 143 {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
}

// A container the runtime says runs is never left CREATED (issue 23, fault
// 6): a start whose record was cut short (netshim killed after `runc
// start`, or its checkpoint write failing on a full disk) is reconciled on
// status and at start, and a stop then sends the stop signal first.
func TestStartedContainerFoundCreatedIsReconciled(t *testing.T) {
	t.Run("on status", func(t *testing.T) {
		m, w, _ := newTestManager(t)
		c, err := m.Create(context.Background(), request("web"))
		if err != nil {
			t.Fatal(err)
		}
		w.setRunState(c.ID, "running") // runc start ran; its record did not
		got, _ := m.Get(c.ID)
		if got.State != StateRunning || got.StartedAt.IsZero() {
			t.Fatalf("status of a container runc runs: %s, started %v; want running", got.State, got.StartedAt)
		}
		if err := m.Stop(context.Background(), c.ID, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		sigs := w.signals[c.ID]
		w.mu.Unlock()
		if len(sigs) == 0 || sigs[0] != syscall.SIGTERM {
			t.Fatalf("stop sent %v, want SIGTERM first", sigs)
		}
	})
	t.Run("at start", func(t *testing.T) {
		m, w, cfg := newTestManager(t)
		c, err := m.Create(context.Background(), request("web"))
		if err != nil {
			t.Fatal(err)
		}
		w.setRunState(c.ID, "running")
		m.Close()
		m2, err := NewManager(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m2.Close)
		if err := m2.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		onDisk, err := m2.checkpoints.Load(c.ID)
		if err != nil || onDisk.State != StateRunning {
			t.Fatalf("checkpoint after recovery: %+v, %v; want running", onDisk, err)
		}
	})
	t.Run("start on a full disk", func(t *testing.T) {
		m, _, _ := newTestManager(t)
		c, err := m.Create(context.Background(), request("web"))
		if err != nil {
			t.Fatal(err)
		}
		mend := breakCheckpoints(t, m)
		defer mend()
		_ = m.Start(context.Background(), c.ID)
		if got, _ := m.Get(c.ID); got.State != StateRunning {
			t.Fatalf("after a start on a full disk: %s, want running", got.State)
		}
	})
}

// A create cancelled after runc made the container's cgroup leaves no
// cgroup behind (issue 23, fault 13): the path was recorded only once the
// create succeeded, so the undo did not know it.
func TestCancelledCreateLeavesNoCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make a cgroup")
		}
		t.Skip("needs root to make a cgroup")
	}
	m, w, _ := newTestManager(t)
	req := request("web")
	req.Pod.CgroupParent = fmt.Sprintf("/netshim-unit-%d", os.Getpid())
	hierarchies := func(path string) []string {
		if isCgroup2() {
			return []string{filepath.Join(cgroupRoot, path)}
		}
		var dirs []string
		entries, _ := os.ReadDir(cgroupRoot)
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(cgroupRoot, e.Name(), path))
			}
		}
		return dirs
	}
	t.Cleanup(func() {
		for _, parent := range hierarchies(req.Pod.CgroupParent) {
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if e.IsDir() {
					_ = os.Remove(filepath.Join(parent, e.Name()))
				}
			}
			_ = os.Remove(parent)
		}
	})
	var made []string
	w.makeCgroup = func(path string) {
		for _, d := range hierarchies(path) {
			if err := os.MkdirAll(d, 0o755); err == nil {
				made = append(made, d)
			}
		}
	}
	if _, err := m.Create(context.Background(), req); !errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v, want the cancel", err)
	}
	if len(made) == 0 {
		t.Fatal("the fake runtime made no cgroup: this test would prove nothing")
	}
	for _, d := range made {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left behind by a cancelled create", d)
		}
	}
}

// Stats do not walk a container's writable layer on every call (issue 23,
// fault 20: 0.7–0.9 s a call with 200k files): the usage is measured once,
// then served from a cache of bounded age that is refreshed in the
// background, so a later change still shows.
func TestStatsDoNotWalkTheLayerOnEveryCall(t *testing.T) {
	m, _, _ := newTestManager(t)
	c := startedContainer(t, m, "web")
	upper := filepath.Join(m.layerDir(c.ID), "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "a"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	var walks atomic.Int32
	measure, maxAge := measureLayer, layerUsageMaxAge
	t.Cleanup(func() { measureLayer, layerUsageMaxAge = measure, maxAge })
	measureLayer = func(dir string) (uint64, uint64) {
		walks.Add(1)
		return diskUsage(dir)
	}
	layerUsageMaxAge = time.Hour
	var first *Stats
	for range 5 {
		st, err := m.Stats(c)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = st
		}
		if st.WritableLayerInodes != first.WritableLayerInodes || st.WritableLayerInodes < 2 || st.WritableLayerBytes == 0 {
			t.Fatalf("usage %d bytes %d inodes, first %d inodes", st.WritableLayerBytes, st.WritableLayerInodes, first.WritableLayerInodes)
		}
	}
	if n := walks.Load(); n != 1 {
		t.Fatalf("5 stats calls walked the layer %d times, want once", n)
	}

	// Once the measure is older than the bound, a call starts a new one
	// and the next calls see it.
	if err := os.WriteFile(filepath.Join(upper, "b"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	layerUsageMaxAge = 0
	deadline := time.Now().Add(hangGuard)
	for {
		st, err := m.Stats(c)
		if err != nil {
			t.Fatal(err)
		}
		if st.WritableLayerInodes == first.WritableLayerInodes+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new file never showed in the stats: %d inodes", st.WritableLayerInodes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.Close() // no refresh runs past the test
}
