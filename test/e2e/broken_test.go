package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A full disk when the checkpoint is written: RunPodSandbox fails with the
// reason and nothing of the sandbox is left. netshim's root dir is a tiny
// tmpfs the test mounts and fills.
func TestFullDiskFailsCleanly(t *testing.T) {
	root, err := os.MkdirTemp("", "netshim-e2e-fullroot-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH); _ = os.Remove(root) })
	s := startShim(t, withArgs("--root-dir", root))
	// Fill what is left.
	filler, err := os.Create(filepath.Join(root, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	filler.Close()

	_, err = s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("nospace")})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("RunPodSandbox on a full disk: %v, want an error saying so", err)
	}
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 0 {
		t.Errorf("netns pins left: %d", len(pins))
	}
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP reservations left: %v", r)
	}
	if e, _ := os.ReadDir(filepath.Join(root, "sandboxes")); len(e) != 0 {
		t.Errorf("checkpoint dir holds %d entries", len(e))
	}
	// With room again, the same pod runs.
	_ = os.Remove(filepath.Join(root, "filler"))
	s.runPod(podConfig("nospace"))
}

// Without its OCI runtime netshim refuses to start and says which is missing.
func TestMissingRuntimeRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join(binDir, "netshim"),
		"--config=", "--container-runtime-endpoint", "unix://"+filepath.Join(dir, "s.sock"),
		"--root-dir", filepath.Join(dir, "root"), "--state-dir", filepath.Join(dir, "run"),
		"--netns-dir", filepath.Join(dir, "netns"), "--cni-conf-dir", filepath.Join(dir, "conf"),
		"--oci-runtime", "/nonexistent/runc").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/nonexistent/runc") {
		t.Fatalf("netshim with a missing runtime: err %v, output %q; want a failure naming it", err, out)
	}
}

// An OCI runtime that disappears while netshim runs makes RuntimeReady false
// with a reason naming it.
func TestRuntimeGoneMakesRuntimeNotReady(t *testing.T) {
	runc := filepath.Join(t.TempDir(), "runc")
	data, err := os.ReadFile(filepath.Join(binDir, "runc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runc, data, 0o755); err != nil {
		t.Fatal(err)
	}
	s := startShim(t, withArgs("--oci-runtime", runc))
	if err := os.Remove(runc); err != nil {
		t.Fatal(err)
	}
	resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Status.Conditions {
		if c.Type == runtimeapi.RuntimeReady && (c.Status || c.Reason != "OCIRuntimeNotAvailable" || !strings.Contains(c.Message, runc)) {
			t.Fatalf("RuntimeReady = %+v, want false naming %s", c, runc)
		}
	}
}
