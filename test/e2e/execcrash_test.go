package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// execPIDs are the processes whose command line is exactly args.
func execPIDs(args ...string) []int {
	want := strings.Join(args, "\x00") + "\x00"
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// A netshim killed during execs leaves nothing of them once it is back:
// the exec'd processes, whose timeouts died with it, are killed, and their
// dirs (a TTY exec's holds the container's environment) are under the
// state dir, 0700, and swept at start, never in /tmp (issue 23.14).
func TestKilledNetshimLeavesNoExecs(t *testing.T) {
	s := startShim(t)
	pod, ctr := streamPod(t, s)
	cmds := [][]string{{"sleep", "3571"}, {"sleep", "3572"}}
	for i, cmd := range cmds {
		go func() {
			_, _ = s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: cmd, Timeout: 600})
		}()
		if i == 1 { // one on a terminal too: its dir holds the process spec
			resp, err := s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sleep", "3573"}, Stdin: true, Stdout: true, Tty: true})
			if err != nil {
				t.Fatal(err)
			}
			dialStream(t, resp.Url, "v4.channel.k8s.io")
		}
	}
	cmds = append(cmds, []string{"sleep", "3573"})
	eventually(t, 20*time.Second, "the execs to run", func() bool {
		for _, cmd := range cmds {
			if len(execPIDs(cmd...)) != 1 {
				return false
			}
		}
		return true
	})
	tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "exec-*"))
	execDir := filepath.Join(s.dir, "run", "execs")
	dirs, _ := filepath.Glob(filepath.Join(execDir, "exec-*"))
	if len(dirs) != 3 {
		t.Fatalf("exec dirs under the state dir: %v, want the 3 execs' (in /tmp: %v)", dirs, tmpBefore)
	}
	if st, err := os.Stat(execDir); err != nil {
		t.Errorf("exec dir: %v", err)
	} else if st.Mode().Perm() != 0o700 {
		t.Errorf("exec dir %s has mode %v, want 0700", execDir, st.Mode().Perm())
	}

	// Killed once runc has written each exec's pid file: killed before,
	// runc's own set-up fails and takes the process with it.
	eventually(t, 20*time.Second, "runc to write the execs' pid files", func() bool {
		pids, _ := filepath.Glob(filepath.Join(execDir, "exec-*", "pid"))
		return len(pids) == 3
	})
	// SIGKILL before the client's connection closes: a cancelled call
	// would have netshim end its exec itself.
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.stop(syscall.SIGKILL)
	s.start()
	eventually(t, 20*time.Second, "the lost execs' processes to be killed", func() bool {
		for _, cmd := range cmds {
			if len(execPIDs(cmd...)) != 0 {
				return false
			}
		}
		return true
	})
	if left, _ := filepath.Glob(filepath.Join(execDir, "exec-*")); len(left) != 0 {
		t.Errorf("exec dirs left after the restart: %v", left)
	}
	if !strings.Contains(s.log(), "Killed the processes of execs a killed netshim left running") {
		t.Errorf("the start did not log what it killed")
	}
	s.removePod(pod)
}
