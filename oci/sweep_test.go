package oci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/proc"
)

// What a killed netshim's execs left is swept at start: each exec dir
// goes, its process is killed if it is still the one runc started, and a
// later process that reuses a PID (younger than the pid file) is spared.
func TestSweepExecsKillsOnlyLostExecs(t *testing.T) {
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	writePID := func(name string, pid int, mtime time.Time) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(d, "pid")
		if err := os.WriteFile(f, []byte(strconv.Itoa(pid)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	lost, reused := start(), start()
	writePID("exec-lost", lost.Process.Pid, time.Now())
	// A pid file written an hour before its PID's process started.
	writePID("exec-reused", reused.Process.Pid, time.Now().Add(-time.Hour))
	if err := os.MkdirAll(filepath.Join(dir, "exec-nopid"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "other"), 0o700); err != nil {
		t.Fatal(err)
	}

	killed, err := SweepExecs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) != 1 || killed[0] != lost.Process.Pid {
		t.Errorf("killed %v, want only the lost exec's %d", killed, lost.Process.Pid)
	}
	done := make(chan error, 1)
	go func() { done <- lost.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Errorf("the lost exec's process %d is still running", lost.Process.Pid)
	}
	if !proc.Alive(reused.Process.Pid) { // a killed child would be a zombie
		t.Errorf("the process reusing a PID was killed")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "other" {
		t.Errorf("left in the exec dir: %v, want only the foreign %q", entries, "other")
	}
	if killed, err := SweepExecs(filepath.Join(dir, "missing")); err != nil || killed != nil {
		t.Errorf("sweep of a missing dir: %v, %v", killed, err)
	}
}
