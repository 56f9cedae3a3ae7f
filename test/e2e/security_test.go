package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The socket is mode 0660 with the --socket-group, and the state dirs are
// 0711: no one else lists them; a user-namespaced pod's runc passes through.
func TestSocketAndStateDirPermissions(t *testing.T) {
	s := startShim(t, withArgs("--socket-group", "4242"))
	st, err := os.Stat(s.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o660 || st.Sys().(*syscall.Stat_t).Gid != 4242 {
		t.Errorf("socket mode %v gid %d, want 0660 and gid 4242", st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Gid)
	}
	for _, d := range []string{"root", "run"} {
		st, err := os.Stat(filepath.Join(s.dir, d))
		if err != nil || st.Mode().Perm() != 0o711 {
			t.Errorf("%s: mode %v (err %v), want 0711", d, st.Mode().Perm(), err)
		}
	}
}

// netshim refuses a socket path that is a symlink (it would remove or chmod
// whatever the link points at).
func TestSymlinkSocketPathIsRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	if err := os.Symlink(target, sock); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(binDir, "netshim"),
		"--config=", "--container-runtime-endpoint", "unix://"+sock,
		"--root-dir", filepath.Join(dir, "root"), "--state-dir", filepath.Join(dir, "run"),
		"--netns-dir", filepath.Join(dir, "netns"), "--cni-conf-dir", filepath.Join(dir, "conf"),
		"--cni-bin-dir", binDir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "symlink") {
		t.Fatalf("netshim on a symlinked socket path: err %v, output %q; want a refusal", err, out)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Fatal("the symlink's target was touched")
	}
}
