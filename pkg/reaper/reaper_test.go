package reaper

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// hangGuard only ends a test that would otherwise hang; nothing is timed.
const hangGuard = 30 * time.Second

// startUnwaited starts a child that only the reaper will wait for, as a
// pause or a conmon reparented to netshim is.
func startUnwaited(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(p.Pid, syscall.SIGKILL) })
	return p.Pid
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangGuard):
		t.Fatalf("%s: never reported", what)
	}
}

// A tracked child's exit closes its channel, and the child is reaped: no
// zombie is left.
func TestTrackedChildIsReaped(t *testing.T) {
	r := New()
	defer r.Stop()
	pid := startUnwaited(t)
	exited := r.Track(pid)
	select {
	case <-exited:
		t.Fatal("reported exited while it runs")
	default:
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, exited, "the exit of a tracked child")
	if _, err := os.Stat("/proc/" + itoa(pid)); !os.IsNotExist(err) {
		t.Fatalf("pid %d still in /proc after its exit was reported: not reaped (%v)", pid, err)
	}
}

// A child that exited before it was tracked (the pause dying at once) is
// reported too: its zombie waits for the Track.
func TestExitBeforeTrackIsNotLost(t *testing.T) {
	r := New()
	defer r.Stop()
	pid := startUnwaited(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, pid) // the SIGCHLD has come and gone untracked
	waitClosed(t, r.Track(pid), "an exit that came before the Track")
}

// The reaper waits only for the PIDs it tracks: os/exec's own children
// keep their exit status for cmd.Wait.
func TestUntrackedChildrenAreLeftToTheirWaiter(t *testing.T) {
	r := New()
	defer r.Stop()
	cmd := exec.Command("/bin/sh", "-c", "exit 7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Another child's exit makes the reaper scan while sh is a zombie.
	waitZombie(t, cmd.Process.Pid)
	other := startUnwaited(t)
	exited := r.Track(other)
	_ = syscall.Kill(other, syscall.SIGKILL)
	waitClosed(t, exited, "the tracked child")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Fatalf("cmd.Wait = %v, want exit status 7: the reaper took an untracked child's status", err)
	}
}

func waitZombie(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(hangGuard); ; time.Sleep(time.Millisecond) {
		if data, err := os.ReadFile("/proc/" + itoa(pid) + "/stat"); err == nil && zombie(data) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d never became a zombie", pid)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// zombie reports whether /proc/PID/stat's state is Z.
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
