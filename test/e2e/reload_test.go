package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SIGHUP reloads instead of ending netshim: the process stays up and
// answers, a changed registries.conf takes effect, and so does a changed
// --verbosity-file; each reload is logged (issue 26.1: SIGHUP ended netshim
// silently, and systemd counted it a clean exit).
func TestSIGHUPReloadsAndKeepsServing(t *testing.T) {
	reg := testRegistry(t)
	image := busyboxImage(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	verbosity := filepath.Join(dir, "verbosity")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(conf, "[[registry]]\nlocation = \""+reg.Addr+"\"\nblocked = true\n")
	write(verbosity, "2\n")
	s := startShim(t, withArgs("--registry-config", conf, "--verbosity-file", verbosity))
	pid := s.cmd.Process.Pid
	if _, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err == nil ||
		!strings.Contains(err.Error(), "blocked") {
		t.Fatalf("pull from a blocked registry: %v, want refused as blocked", err)
	}
	if strings.Contains(s.log(), `"CRI call" method="PullImage"`) {
		t.Errorf("the verbosity file's 2 did not override -v 4: a V(4) line was logged")
	}

	write(conf, "[[registry]]\nlocation = \""+reg.Addr+"\"\ninsecure = true\n")
	write(verbosity, "4\n")
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the reload to be logged", func() bool {
		return strings.Contains(s.log(), "Reloaded the CNI config")
	})
	if _, err := s.rt.Version(s.ctx(), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("after SIGHUP netshim does not answer: %v\n%s", err, s.log())
	}
	if s.cmd.ProcessState != nil || syscall.Kill(pid, 0) != nil {
		t.Fatalf("netshim (PID %d) ended on SIGHUP", pid)
	}
	s.pull(image) // the registry is no longer blocked
	log := s.log()
	for _, want := range []string{"Reloaded the registry config", `"Log verbosity set" v="4"`, `"CRI call" method="PullImage"`} {
		if !strings.Contains(log, want) {
			t.Errorf("after SIGHUP the log lacks %q", want)
		}
	}
}
