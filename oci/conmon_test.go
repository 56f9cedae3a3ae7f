package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// needRoot skips a test that runs real runc and conmon unless it can; under
// CI=true it fails instead, so a missing dependency is never a silent pass.
func needRoot(t *testing.T) (runc, conmon string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	runc = filepath.Join(filepath.Dir(file), "..", "bin", "runc")
	conmon, _ = exec.LookPath("conmon")
	reason := ""
	switch {
	case os.Geteuid() != 0:
		reason = "needs root"
	case conmon == "":
		reason = "conmon is not installed (hack/install-deps.sh installs it)"
	}
	if _, err := os.Stat(runc); err != nil && reason == "" {
		reason = "bin/runc missing: run make tools"
	}
	if _, err := os.Stat("/bin/busybox"); err != nil && reason == "" {
		reason = "/bin/busybox missing (Debian's busybox-static)"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot run under CI: %s", reason)
		}
		t.Skip(reason)
	}
	return runc, conmon
}

// busyboxBundle writes a bundle whose rootfs holds Debian's static busybox
// and whose process runs sh -c script.
func busyboxBundle(t *testing.T, dir, script string) {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{Args: []string{"/bin/sh", "-c", script}, Cwd: "/", Env: []string{"PATH=/bin"}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}},
			// Unique and without a parent of its own, so tests never share
			// one and runc delete leaves no cgroup dir behind.
			CgroupsPath: fmt.Sprintf("/netshim-oci-test-%d", time.Now().UnixNano()),
		},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The monitor creates the container, the runtime starts it, conmon writes its
// output in kubelet's log format and its exit code, and outlives nothing.
func TestConmonLifecycle(t *testing.T) {
	runcBin, conmonBin := needRoot(t)
	dir := t.TempDir()
	r := &Runc{Binary: runcBin, Root: filepath.Join(dir, "runc")}
	c := &Conmon{Binary: conmonBin, Runtime: r}
	id := fmt.Sprintf("conmontest%d", time.Now().UnixNano())
	bundle := filepath.Join(dir, "bundle")
	exits := filepath.Join(dir, "exits")
	for _, d := range []string{bundle, exits} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	busyboxBundle(t, bundle, "echo hello; echo oops >&2; exit 7")
	logPath := filepath.Join(dir, "logs", "c.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pid, monitorPID, err := c.Create(ctx, MonitorOptions{ID: id, Name: id, Bundle: bundle, LogPath: logPath, ExitDir: exits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.Delete(context.Background(), id, true)
		_ = syscall.Kill(monitorPID, syscall.SIGKILL)
	})
	if pid <= 0 || monitorPID <= 0 {
		t.Fatalf("pid %d, monitor pid %d", pid, monitorPID)
	}
	if _, _, ok, _ := ExitCode(exits, id); ok {
		t.Fatal("exit file before start")
	}
	if err := r.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var code int32
	for {
		var ok bool
		code, _, ok, err = ExitCode(exits, id)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no exit file within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	for _, want := range []string{" stdout F hello\n", " stderr F oops\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if err := r.Delete(ctx, id, false); err != nil {
		t.Fatal(err)
	}
}

// A create that the runtime refuses is an error with the runtime's reason,
// and leaves no container behind.
func TestConmonCreateFails(t *testing.T) {
	runcBin, conmonBin := needRoot(t)
	dir := t.TempDir()
	r := &Runc{Binary: runcBin, Root: filepath.Join(dir, "runc")}
	c := &Conmon{Binary: conmonBin, Runtime: r}
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	busyboxBundle(t, bundle, "true")
	// A process that does not exist in the rootfs.
	data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	data = []byte(strings.Replace(string(data), `"/bin/sh"`, `"/no/such/binary"`, 1))
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("conmonfail%d", time.Now().UnixNano())
	_, _, err := c.Create(context.Background(), MonitorOptions{ID: id, Name: id, Bundle: bundle, ExitDir: dir})
	if err == nil {
		_ = r.Delete(context.Background(), id, true)
		t.Fatal("create of a container with a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), "no such binary") && !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error does not say what failed: %v", err)
	}
	ids, lerr := r.List(context.Background())
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(ids) != 0 {
		t.Errorf("runtime still holds %v", ids)
	}
}
