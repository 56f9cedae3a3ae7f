package e2e

import (
	"fmt"

	"github.com/netshim/netshim/pkg/proc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Debian's gVisor and crun, which hack/install-deps.sh installs.
const (
	runscBinary = "/usr/bin/runsc"
	crunBinary  = "/usr/bin/crun"
)

// withHandler configures one more runtime handler, as an operator does: a
// [runtime_handlers.NAME] table in netshim's config file.
func withHandler(name, path string, args ...string) shimOption {
	return func(s *shim) {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = strconv.Quote(a)
		}
		file := filepath.Join(s.t.TempDir(), "netshim.toml")
		conf := fmt.Sprintf("[runtime_handlers.%s]\npath = %q\nargs = [%s]\n", name, path, strings.Join(quoted, ", "))
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			s.t.Fatal(err)
		}
		s.args = append(s.args, "--config", file)
	}
}

// gVisorArgs: Debian 12's runsc (2022) cannot start its own network stack
// on kernels that show /proc/sys/net/core/rmem_default in every netns; its
// host network, inside the pod's netns, works.
var gVisorArgs = []string{"--network=host"}

// needBinary skips, saying why, where a handler's runtime is not installed.
func needBinary(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("SKIP: %s is not installed here (hack/install-deps.sh installs it): %v", path, err)
	}
}

// Status lists the default handler under "" and "runc" and each configured
// one, with the features measured here; a RuntimeClass that names a handler
// nobody configured is InvalidArgument naming the ones there are.
func TestStatusListsRuntimeHandlers(t *testing.T) {
	needBinary(t, runscBinary)
	s := startShim(t, withHandler("runsc", runscBinary, gVisorArgs...))
	resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*runtimeapi.RuntimeHandlerFeatures{}
	for _, h := range resp.RuntimeHandlers {
		got[h.Name] = h.Features
	}
	for _, name := range []string{"", "runc", "runsc"} {
		if _, ok := got[name]; !ok {
			t.Errorf("Status lists handlers %v: %q missing", keys(got), name)
		}
	}
	if !resp.GetFeatures().GetSupplementalGroupsPolicy() {
		t.Error("Status.features.supplemental_groups_policy is false; netshim does Strict")
	}
	// runc 1.5 does rro and the kernel here is ≥5.12; gVisor does neither
	// rro nor user namespaces.
	if !got["runc"].GetRecursiveReadOnlyMounts() || !got[""].GetRecursiveReadOnlyMounts() {
		t.Errorf("runc handler features %v: want recursive read-only mounts", got["runc"])
	}
	if f := got["runsc"]; f.GetRecursiveReadOnlyMounts() || f.GetUserNamespaces() {
		t.Errorf("runsc handler features %v: gVisor has neither", f)
	}

	_, err = s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("kata"), RuntimeHandler: "kata"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "runsc") {
		t.Errorf("RunPodSandbox with handler kata: %v; want InvalidArgument listing runsc", err)
	}
}

func keys[V any](m map[string]V) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A pod whose RuntimeClass names runsc runs in gVisor's sandbox: its
// container's dmesg is gVisor's kernel, it has the pod's CNI address and the
// node reaches it there, exec and logs work, and removing it leaves nothing.
func TestGVisorPod(t *testing.T) {
	needBinary(t, runscBinary)
	s := startShim(t, withHandler("runsc", runscBinary, gVisorArgs...))
	// Should the test fail before netshim removed the pod, its gVisor
	// sandbox and gofers (started for this test, under its dir) must not
	// outlive it: they hold the pod's netns and veth.
	t.Cleanup(func() { killGVisorUnder(t, s.dir) })
	if strings.Contains(s.log(), "Runtime handler cannot run pods on this host") {
		t.Skipf("SKIP: gVisor cannot run here; netshim said:\n%s", grepLines(s.log(), "cannot run pods"))
	}
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "gvisor")
	resp, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "runsc"})
	if err != nil {
		t.Fatalf("RunPodSandbox with handler runsc: %v\n%s", err, s.log())
	}
	pod := resp.PodSandboxId
	st, _ := s.status(pod)
	if st.RuntimeHandler != "runsc" {
		t.Errorf("PodSandboxStatus.runtime_handler = %q, want runsc", st.RuntimeHandler)
	}
	ip := st.GetNetwork().GetIp()
	if ip == "" {
		t.Fatal("gVisor pod has no IP")
	}
	ctr := s.createContainer(pod, podCfg, ctrConfig("kernel", image, "dmesg; echo logged; exec sleep 300"))
	if _, err := s.rt.StartContainer(s.ctx(), &runtimeapi.StartContainerRequest{ContainerId: ctr}); err != nil {
		st := s.containerStatus(ctr)
		var files string
		for _, f := range []string{"conmon.log", "runtime.log"} {
			data, _ := os.ReadFile(filepath.Join(s.dir, "run", "containers", "bundles", ctr, f))
			files += f + ":\n" + string(data) + "\n"
		}
		t.Fatalf("StartContainer under gVisor: %v; container %s: %s\n%s", err, st.Reason, st.Message, files)
	}
	log := waitLog(t, filepath.Join(podCfg.LogDirectory, "kernel.log"), "logged")
	if !strings.Contains(log, "gVisor") {
		t.Errorf("container's dmesg is not gVisor's:\n%s", log)
	}
	if out := s.execSync(ctr, "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, ip+"/") {
		t.Errorf("eth0 in the gVisor pod: %q; want the pod IP %s", out, ip)
	}
	if out, err := exec.Command("ping", "-c", "1", "-W", "5", ip).CombinedOutput(); err != nil {
		t.Errorf("the node cannot reach the gVisor pod at %s: %v\n%s", ip, err, out)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNothingLeft()
	// No gVisor process (sandbox, gofer), nor its zombie, is left.
	var left []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = nil
		for _, pid := range proc.PIDs() {
			if ppid, _ := proc.ParentPID(pid); ppid == s.cmd.Process.Pid {
				if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(data), "(conmon)") {
					left = append(left, string(data))
				}
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("processes of netshim's left after the gVisor pod was removed: %q", left)
	}
}

// crun, where this host can run it, runs a pod; where it cannot (Debian's
// crun 1.8 refuses a hybrid cgroup host) netshim said so once at start and
// refuses its pods with FailedPrecondition naming the reason, never with a
// per-pod Internal error.
func TestCrunHandler(t *testing.T) {
	needBinary(t, crunBinary)
	s := startShim(t, withHandler("crun", crunBinary))
	podCfg := podWithLogs(t, "crun")
	resp, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "crun"})
	if err != nil {
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cannot run pods on this host") {
			t.Fatalf("RunPodSandbox with an unusable crun: %v; want FailedPrecondition saying why", err)
		}
		if n := strings.Count(s.log(), "Runtime handler cannot run pods on this host"); n != 1 {
			t.Errorf("netshim said %d times that crun cannot run here; want once, at start", n)
		}
		t.Logf("crun cannot run on this host, as netshim says: %v", err)
		return
	}
	pod := resp.PodSandboxId
	image := busyboxImage(t)
	s.pull(image)
	ctr := s.runContainer(pod, podCfg, ctrConfig("c", image, "echo ran-under-crun; exec sleep 300"))
	waitLog(t, filepath.Join(podCfg.LogDirectory, "c.log"), "ran-under-crun")
	if out := s.execSync(ctr, "echo", "exec-ok"); !strings.Contains(out, "exec-ok") {
		t.Errorf("exec under crun: %q", out)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNothingLeft()
}

// killGVisorUnder kills, by PID, the runsc processes whose command line
// names dir.
func killGVisorUnder(t *testing.T, dir string) {
	for _, pid := range proc.PIDs() {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.HasPrefix(string(cmdline), "runsc") || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		t.Logf("killing gVisor process %d left by the test", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
