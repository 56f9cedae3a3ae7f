package e2e

// Reproductions of the faults a hostile-input and fault probe found
// (issue 14): each failed before its fix.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/pkg/proc"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// natRules returns the nat table's rules that mention the test's subnet:
// the bridge plugin's masquerade rule of each pod is one.
func (s *shim) natRules() []string {
	s.t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		s.t.Fatalf("iptables-save: %v", err)
	}
	prefix := strings.TrimSuffix(s.net.Subnet.IP.String(), "0") // "198.18.7."
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A") && strings.Contains(line, prefix) {
			rules = append(rules, line)
		}
	}
	return rules
}

// takePlugin removes a plugin from the shim's own bin dir and returns a
// function that puts it back.
func (s *shim) takePlugin(name string) (putBack func()) {
	s.t.Helper()
	link := filepath.Join(s.binDir, name)
	if err := os.Remove(link); err != nil {
		s.t.Fatal(err)
	}
	return func() {
		if err := os.Symlink(filepath.Join(binDir, name), link); err != nil && !os.IsExist(err) {
			s.t.Fatal(err)
		}
	}
}

// assertNothingLeft checks what a removed pod could leak.
func (s *shim) assertNothingLeft() {
	s.t.Helper()
	if r := s.natRules(); len(r) != 0 {
		s.t.Errorf("iptables rules left for the test's pods:\n%s", strings.Join(r, "\n"))
	}
	if r := s.ipReservations(); len(r) != 0 {
		s.t.Errorf("IP reservations left: %v", r)
	}
	if p := s.bridgePorts(); len(p) != 0 {
		s.t.Errorf("links left on the bridge: %v", p)
	}
	if e, _ := os.ReadDir(s.netnsDir); len(e) != 0 {
		s.t.Errorf("netns pins left: %d (first %s)", len(e), e[0].Name())
	}
}

// Fault 1: a sandbox whose DEL cannot run at restart (its plugin binary is
// gone) no longer makes netshim exit. It is kept NOTREADY with its DEL owed;
// netshim serves the rest; once the plugin is back, removing it leaves
// nothing, iptables rules included.
func TestRestartPastASandboxThatCannotBeUndone(t *testing.T) {
	s := startShim(t, withIPMasq(), withOwnPluginDir())
	s.restartWithEnv(crashpoint.EnvVar + "=" + crashpoint.AfterCNIDefault)
	runConcurrently(s, 20)
	s.waitKilled()
	s.env = nil
	putBack := s.takePlugin("portmap")
	s.start()

	if _, err := s.rt.Version(s.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("netshim does not serve after the restart: %v", err)
	}
	if !strings.Contains(s.log(), "Could not undo a sandbox whose set-up was interrupted") {
		t.Fatalf("the failed undo was not logged; log:\n%s", s.log())
	}
	resp, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Items) == 0 {
		t.Fatal("no sandbox listed: the interrupted ones were forgotten with their DEL owed")
	}
	for _, p := range resp.Items {
		if p.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("sandbox %s is %s, want NOTREADY", p.Id[:12], p.State)
		}
	}
	// Still owed: a remove without the plugin fails and says why.
	_, err = s.rt.RemovePodSandbox(s.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.Items[0].Id})
	if err == nil || !strings.Contains(err.Error(), "portmap") {
		t.Fatalf("RemovePodSandbox without portmap = %v, want the DEL's error naming it", err)
	}
	putBack()
	for _, p := range resp.Items {
		s.removePod(p.Id)
	}
	s.assertNothingLeft()
}

// Fault 2: a stop whose DEL fails keeps the netns pinned, so the retried
// DEL runs in the netns and removes the pod's masquerade rule.
func TestFailedDelKeepsTheNetnsForItsRetry(t *testing.T) {
	s := startShim(t, withIPMasq(), withOwnPluginDir())
	id := s.runPod(podConfig("retry-del"))
	_, info := s.status(id)
	if len(s.natRules()) == 0 {
		t.Fatal("the pod has no masquerade rule: this test would prove nothing")
	}
	putBack := s.takePlugin("portmap")
	if _, err := s.rt.StopPodSandbox(s.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err == nil {
		t.Fatal("StopPodSandbox without portmap succeeded; want the DEL's error")
	}
	if !isNetNS(info.NetNSPath) {
		t.Fatalf("netns pin %s is gone while its DEL is still owed", info.NetNSPath)
	}
	st, _ := s.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("sandbox is %s after the failed stop, want NOTREADY", st.State)
	}
	putBack()
	s.removePod(id)
	s.assertNothingLeft()
}

// Fault 4: a second netshim on the same netns dir leaves the first one's
// pins alone, and the first still stops its pod cleanly.
func TestSharedNetnsDirKeepsTheOtherInstancesPins(t *testing.T) {
	a := startShim(t, withIPMasq())
	id := a.runPod(podConfig("shared-netns"))
	_, info := a.status(id)
	startShim(t, withArgs("--netns-dir", a.netnsDir))
	if !isNetNS(info.NetNSPath) {
		t.Fatalf("the second netshim removed the first one's pin %s", info.NetNSPath)
	}
	a.stopPod(id)
	a.removePod(id)
	a.assertNothingLeft()
}

// Fault 5 (and 2b): a checkpoint replaced by a directory is reported and set
// aside; the pod it held is reclaimed whole: the network GC sends its DEL
// while its netns is still pinned, then the orphans are swept.
func TestCheckpointReplacedByADirectoryIsReported(t *testing.T) {
	s := startShim(t, withIPMasq())
	id := s.runPod(podConfig("lost-checkpoint"))
	_, info := s.status(id)
	s.stop(unix.SIGTERM)
	cp := filepath.Join(s.dir, "root", "sandboxes", id+".json")
	if err := os.Remove(cp); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cp, 0o700); err != nil {
		t.Fatal(err)
	}
	s.start()
	if log := s.log(); !strings.Contains(log, id+".json") || !strings.Contains(log, "not a regular file") {
		t.Fatalf("the directory in place of the checkpoint was not reported; log:\n%s", log)
	}
	if _, err := os.Stat(cp + ".corrupt"); err != nil {
		t.Errorf("the directory was not set aside: %v", err)
	}
	eventually(t, orphanReapWait, "the orphan pause to be gone", func() bool { return !proc.Alive(info.PID) })
	s.assertNothingLeft()
}

// Fault 3: with the root dir's disk full, a pod can still be stopped and
// removed (the only way the CRI offers to free space), leaving nothing.
func TestFullDiskStillStopsAndRemovesPods(t *testing.T) {
	root, err := os.MkdirTemp("", "netshim-e2e-fullroot-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH); _ = os.Remove(root) })
	s := startShim(t, withIPMasq(), withArgs("--root-dir", root))
	cfg := podConfig("full-disk")
	cfg.Annotations["big"] = strings.Repeat("a", 8<<10)
	ids := []string{s.runPod(cfg), s.runPod(podConfig("full-disk-2"))}
	fillDisk(t, root)

	s.stopPod(ids[0])
	s.removePod(ids[0])
	s.removePod(ids[1]) // stop and remove in one call
	s.assertNothingLeft()
	if e, _ := os.ReadDir(filepath.Join(root, "sandboxes")); len(e) != 0 {
		t.Errorf("checkpoint dir holds %d entries after the removes", len(e))
	}
}

func fillDisk(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// Fault 11: a first start on fresh dirs logs no error.
func TestFirstStartLogsNoError(t *testing.T) {
	s := startShim(t)
	s.runPod(podConfig("first-start")) // the start is complete once a pod ran
	for _, line := range strings.Split(s.log(), "\n") {
		if len(line) > 1 && line[0] == 'E' && line[1] >= '0' && line[1] <= '9' {
			t.Errorf("error logged on a first start: %s", line)
		}
	}
}

func isNetNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
