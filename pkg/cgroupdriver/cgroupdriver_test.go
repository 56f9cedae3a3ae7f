package cgroupdriver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The parents kubelet's systemd driver sends, placed as runc's systemd
// driver places them.
func TestSystemdPaths(t *testing.T) {
	for _, tc := range []struct{ parent, cgroupsPath, fsPath string }{
		{"kubepods-burstable-pod6c3a0e4e_1b2c_4d5e_8f90_123456789abc.slice",
			"kubepods-burstable-pod6c3a0e4e_1b2c_4d5e_8f90_123456789abc.slice:netshim:abc123",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6c3a0e4e_1b2c_4d5e_8f90_123456789abc.slice/netshim-abc123.scope"},
		{"kubepods-besteffort-pod1.slice", "kubepods-besteffort-pod1.slice:netshim:abc123",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/netshim-abc123.scope"},
		{"kubepods-pod1.slice", "kubepods-pod1.slice:netshim:abc123", "/kubepods.slice/kubepods-pod1.slice/netshim-abc123.scope"},
		{"system.slice", "system.slice:netshim:abc123", "/system.slice/netshim-abc123.scope"},
		{"", "netshim.slice:netshim:abc123", "/netshim.slice/netshim-abc123.scope"},
	} {
		got, err := Systemd.ContainerPath(tc.parent, "abc123")
		if err != nil || got != tc.cgroupsPath {
			t.Errorf("ContainerPath(%q) = %q, %v; want %q", tc.parent, got, err, tc.cgroupsPath)
		}
		if fs := FSPath(got); fs != tc.fsPath {
			t.Errorf("FSPath(%q) = %q; want %q", got, fs, tc.fsPath)
		}
		if err := Systemd.ValidateParent(tc.parent); err != nil {
			t.Errorf("ValidateParent(%q): %v", tc.parent, err)
		}
	}
	// A pod's parent alone (its stats read it) expands to the slice's dir.
	if got := FSPath("kubepods-burstable-pod1.slice"); got != "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice" {
		t.Errorf("FSPath of a slice = %q", got)
	}
	// cgroupfs paths are what they are.
	for _, p := range []string{"/kubepods/burstable/pod1/abc", "/netshim/abc", "/a.slice/b"} {
		if got := FSPath(p); got != p {
			t.Errorf("FSPath(%q) = %q; want it unchanged", p, got)
		}
	}
}

func TestSystemdRefusesWhatIsNotASlice(t *testing.T) {
	for _, p := range []string{
		"/kubepods/burstable/pod1", // cgroupfs's form
		"kubepods/burstable.slice", // a path
		"kubepods.slice:netshim:x", // runc's form, not a parent
		"kubepods",                 // no .slice
		"-.slice",                  // the root slice
		"kubepods--pod1.slice",     // an empty level
		"-kubepods.slice",          // an empty first level
		"kube pods.slice",          // space
		strings.Repeat("a", 250) + ".slice",
	} {
		if err := Systemd.ValidateParent(p); err == nil {
			t.Errorf("systemd accepted parent %q", p)
		}
		if _, err := Systemd.ContainerPath(p, "x"); err == nil {
			t.Errorf("systemd placed a container under %q", p)
		}
	}
}

func TestCgroupfsPaths(t *testing.T) {
	if got, err := Cgroupfs.ContainerPath("/kubepods/besteffort/pod1", "abc"); err != nil || got != "/kubepods/besteffort/pod1/abc" {
		t.Errorf("cgroupfs: %q, %v", got, err)
	}
	if got, err := Cgroupfs.ContainerPath("", "abc"); err != nil || got != "/netshim/abc" {
		t.Errorf("cgroupfs default parent: %q, %v", got, err)
	}
	for _, p := range []string{"../x", "/a/../../x", "kubepods", "/a:b"} {
		if _, err := Cgroupfs.ContainerPath(p, "abc"); err == nil {
			t.Errorf("cgroupfs placed a container under %q", p)
		}
	}
	for _, p := range []string{"kubepods-besteffort-pod1.slice", "x.slice:netshim:y"} {
		if err := Cgroupfs.ValidateParent(p); err == nil || !strings.Contains(err.Error(), "systemd slice") {
			t.Errorf("cgroupfs took slice %q: %v", p, err)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"cgroupfs", "systemd"} {
		if d, err := Parse(s); err != nil || string(d) != s {
			t.Errorf("Parse(%q) = %q, %v", s, d, err)
		}
	}
	if _, err := Parse("Systemd"); err == nil || !strings.Contains(err.Error(), "cgroupfs or systemd") {
		t.Errorf("Parse(Systemd): %v", err)
	}
}

// The refusal names the flag and what PID 1 is; a systemd-booted node
// (PID 1 systemd, /run/systemd/system a dir) passes.
func TestCheckInit(t *testing.T) {
	proc, run := t.TempDir(), t.TempDir()
	write := func(comm string) {
		if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, "1/comm"), []byte(comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("process_api")
	err := CheckInit(proc, run)
	if err == nil || !strings.Contains(err.Error(), "--cgroup-driver=systemd") || !strings.Contains(err.Error(), `PID 1 is "process_api"`) {
		t.Errorf("not systemd: %v", err)
	}
	write("systemd")
	if err := CheckInit(proc, run); err == nil {
		t.Error("PID 1 systemd without /run/systemd/system passed (not booted by systemd)")
	}
	if err := os.MkdirAll(filepath.Join(run, "systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckInit(proc, run); err != nil {
		t.Errorf("systemd booted: %v", err)
	}
}
