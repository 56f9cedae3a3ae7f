package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second netshim on the root dir or the state dir of a running one, with
// its own socket, netns dir and CNI cache dir, is refused, naming the first
// one's PID and the flag to change, rather than adopting its checkpoints
// and pods (issue 26.2).
func TestSecondInstanceOnSameRootOrStateDirIsRefused(t *testing.T) {
	first := startShim(t)
	pid := fmt.Sprint(first.cmd.Process.Pid)
	for _, c := range []struct{ shared, flag string }{
		{"root", "--root-dir"},
		{"run", "--state-dir"},
	} {
		t.Run(c.flag, func(t *testing.T) {
			own := t.TempDir()
			dirs := map[string]string{"root": filepath.Join(own, "root"), "run": filepath.Join(own, "run")}
			dirs[c.shared] = filepath.Join(first.dir, c.shared)
			out, started := runSecondShim(t, first, own, dirs["root"], dirs["run"])
			if started {
				t.Fatalf("a second netshim on the first one's %s started serving CRI; log:\n%s", c.flag, out)
			}
			if !strings.Contains(out, "another netshim (pid "+pid+")") || !strings.Contains(out, c.flag) {
				t.Errorf("the second netshim's refusal does not name the first (pid %s) and %s; log:\n%s", pid, c.flag, out)
			}
		})
	}
	// The first one is untouched.
	first.runPod(podConfig("dirlock-first"))
}

// runSecondShim runs netshim on rootDir and stateDir with everything else
// of its own under own, until it exits (it must, non-zero) or serves CRI
// (then it is stopped, by its PID). It returns netshim's output.
func runSecondShim(t *testing.T, first *shim, own, rootDir, stateDir string) (out string, started bool) {
	t.Helper()
	sock := filepath.Join(own, "netshim.sock")
	logPath := filepath.Join(own, "netshim.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(binDir, "netshim"),
		"--config=", "--container-runtime-endpoint", "unix://"+sock,
		"--root-dir", rootDir,
		"--state-dir", stateDir,
		"--netns-dir", filepath.Join(own, "netns"),
		"--cni-conf-dir", first.confDir,
		"--cni-bin-dir", first.binDir,
		"--cni-cache-dir", filepath.Join(own, "cni-cache"),
		"--streaming-address", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	read := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	// Generous: the refusal comes before any work, but the machine is shared.
	deadline := time.After(60 * time.Second)
	for {
		select {
		case err := <-exited:
			if err == nil {
				t.Errorf("the second netshim exited 0, want non-zero")
			}
			return read(), false
		case <-deadline:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("the second netshim neither exited nor served in 60s; log:\n%s", read())
		case <-time.After(50 * time.Millisecond):
			if c, err := net.Dial("unix", sock); err == nil {
				c.Close()
				_ = cmd.Process.Signal(os.Interrupt)
				<-exited
				return read(), true
			}
		}
	}
}
