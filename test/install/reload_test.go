package install

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// `systemctl reload netshim` (the unit's ExecReload=) sends SIGHUP: the
// netshim systemd started stays up, logs what it reloaded, and answers
// (issue 26.1: SIGHUP ended it silently, which systemd counted as clean).
func TestSIGHUPReloadsUnderTheUnit(t *testing.T) {
	n := newNotifyNode(t)
	n.start()
	n.awaitReady()
	pid := n.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readFile(t, n.log), "SIGHUP: reloading") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged 30s after SIGHUP; log:\n%s", readFile(t, n.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.client().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("after SIGHUP netshim does not answer: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("netshim (PID %d) ended on SIGHUP", pid)
	}
}
