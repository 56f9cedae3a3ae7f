package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// 200 sequential run/stop/remove cycles leave no growth in netshim's open
// file descriptors or goroutines, and nothing behind on the node.
func TestManyCyclesLeakNothing(t *testing.T) {
	const cycles = 200
	addr := freeLoopbackAddr(t)
	s := startShim(t, withArgs("--metrics-address", addr))
	pausesBefore := countPause(t, s)

	cycle := func() {
		id := s.runPod(podConfig("cycle"))
		s.stopPod(id)
		s.removePod(id)
	}
	for range 5 { // warm-up: lazily started goroutines and caches
		cycle()
	}
	fdsBefore, goroutinesBefore := s.openFDs(), goroutines(t, addr)
	for range cycles {
		cycle()
	}
	fdsAfter, goroutinesAfter := s.openFDs(), goroutines(t, addr)
	t.Logf("%d cycles: fds %d → %d, goroutines %v → %v", cycles, fdsBefore, fdsAfter, goroutinesBefore, goroutinesAfter)
	// A few of slack for connections and timers in flight at the moment of reading.
	if fdsAfter > fdsBefore+3 {
		t.Errorf("open fds grew from %d to %d over %d cycles", fdsBefore, fdsAfter, cycles)
	}
	if goroutinesAfter > goroutinesBefore+3 {
		t.Errorf("goroutines grew from %v to %v over %d cycles", goroutinesBefore, goroutinesAfter, cycles)
	}
	if p := s.bridgePorts(); len(p) != 0 {
		t.Errorf("links left on the bridge: %v", p)
	}
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP reservations left: %v", r)
	}
	for _, d := range []string{s.netnsDir, filepath.Join(s.dir, "run", "runtime"), filepath.Join(s.dir, "run", "sandboxes"), filepath.Join(s.dir, "root", "sandboxes")} {
		if e, _ := os.ReadDir(d); len(e) != 0 {
			t.Errorf("%s holds %d entries, want 0", d, len(e))
		}
	}
	eventually(t, reapWait, "no pause process left", func() bool { return countPause(t, s) <= pausesBefore })
}

// openFDs counts netshim's open file descriptors.
func (s *shim) openFDs() int {
	s.t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(entries)
}

// goroutines reads go_goroutines from netshim's metrics.
func goroutines(t *testing.T, addr string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	v, ok := metricValue(string(body), "go_goroutines")
	if !ok {
		t.Fatal("no go_goroutines in the metrics")
	}
	return v
}
