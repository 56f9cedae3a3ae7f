package proc

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

func TestAliveFollowsAProcessThroughItsExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !Alive(pid) || !slices.Contains(PIDs(), pid) {
		t.Fatalf("a running child: Alive %v, listed %v", Alive(pid), slices.Contains(PIDs(), pid))
	}
	start, _ := StartTime(pid)
	self, _ := StartTime(os.Getpid())
	if start < self {
		t.Errorf("child started at %d, before this process (%d)", start, self)
	}
	_ = cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pid) { // a zombie until reaped: already not alive
		if time.Now().After(deadline) {
			t.Fatal("a killed child still counts as alive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Wait()
	if Alive(pid) {
		t.Error("a reaped child counts as alive")
	}
}

// SameAlive tells the process from a later one with its PID: a start
// time that is not the process's is not it.
func TestSameAliveChecksTheStartTime(t *testing.T) {
	self := os.Getpid()
	start, alive := StartTime(self)
	if !alive {
		t.Fatal("this process is not alive")
	}
	if !SameAlive(self, start) {
		t.Error("SameAlive(self, its start) = false")
	}
	if SameAlive(self, start+1) {
		t.Error("a PID with another start time counts as the same process")
	}
	if SameAlive(0, 0) || SameAlive(-1, 0) {
		t.Error("PID 0 or below counts as alive")
	}
}
