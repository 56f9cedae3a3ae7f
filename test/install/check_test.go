package install

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// checkNode is a healthy node for `netshim check` in a temp dir: fake proc
// and sysfs (through check's hidden --proc-dir and --sys-dir), fake runc,
// conmon, iptables and pause, CNI plugins and a network config.
type checkNode struct {
	t   *testing.T
	dir string
}

func newCheckNode(t *testing.T) *checkNode {
	t.Helper()
	n := &checkNode{t: t, dir: t.TempDir()}
	n.write("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n", 0o644)
	n.write("proc/sys/net/bridge/bridge-nf-call-ip6tables", "1\n", 0o644)
	n.write("proc/sys/net/ipv4/ip_forward", "1\n", 0o644)
	n.write("proc/filesystems", "nodev\tproc\n\text4\nnodev\toverlay\n", 0o644)
	for _, c := range []string{"cpu", "memory", "pids"} {
		if err := os.MkdirAll(n.path("sys/fs/cgroup/"+c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.write("bin/runc", "#!/bin/sh\necho 'runc version 1.5.2'\n", 0o755)
	n.write("bin/conmon", "#!/bin/sh\necho 'conmon version 2.1.6'\n", 0o755)
	n.write("bin/iptables", "#!/bin/sh\necho 'iptables v1.8.9 (nf_tables)'\n", 0o755)
	n.write("bin/pause", "", 0o755)
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		n.write("cni/bin/"+p, "#!/bin/sh\n", 0o755)
	}
	n.write("cni/net.d/10-check.conflist", `{"cniVersion":"1.0.0","name":"check","plugins":[
		{"type":"bridge","bridge":"nscheck0","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.0.0/24"}]]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`, 0o644)
	return n
}

func (n *checkNode) path(rel string) string { return filepath.Join(n.dir, rel) }

func (n *checkNode) write(rel, content string, mode os.FileMode) {
	n.t.Helper()
	_ = os.Remove(n.path(rel))
	writeFile(n.t, n.path(rel), content, mode)
}

// check runs `netshim check` with the flags a unit would give netshim,
// pointed at the fake node, and returns its output and exit status.
func (n *checkNode) check(extra ...string) (string, int) {
	n.t.Helper()
	args := append([]string{"check",
		"--proc-dir", n.path("proc"), "--sys-dir=" + n.path("sys"),
		"--container-runtime-endpoint", "unix://" + n.path("run/netshim/netshim.sock"),
		"--root-dir", n.path("lib/netshim"), "--state-dir", n.path("run/netshim"),
		"--cni-conf-dir", n.path("cni/net.d"), "--cni-bin-dir", n.path("cni/none") + "," + n.path("cni/bin"),
		"--oci-runtime", n.path("bin/runc"), "--conmon", n.path("bin/conmon"), "--pause-binary", n.path("bin/pause"),
	}, extra...)
	cmd := exec.Command(filepath.Join(binDir, "netshim"), args...)
	// iptables is found on PATH, as netshim's plugins find it.
	cmd.Env = append(os.Environ(), "PATH="+n.path("bin")+":/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	}
	n.t.Fatalf("netshim check: %v\n%s", err, out)
	return "", -1
}

func TestCheckHealthyNode(t *testing.T) {
	needRoot(t) // the first check is that netshim runs as root
	needBinary(t, "netshim")
	n := newCheckNode(t)
	out, code := n.check()
	if code != 0 {
		t.Fatalf("netshim check on a healthy node exits %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[0], "netshim ") || !strings.HasPrefix(lines[len(lines)-1], "all checks passed") &&
		!strings.HasPrefix(lines[len(lines)-1], "no failures") {
		t.Errorf("output does not start with the version and end with the verdict:\n%s", out)
	}
	// One line per check, each ok; names an operator looks for.
	for _, l := range lines[1 : len(lines)-1] {
		if strings.Contains(l, "fix:") || !strings.HasPrefix(l, "ok ") && !strings.HasPrefix(l, "WARN ") {
			t.Errorf("unexpected line on a healthy node: %q", l)
		}
	}
	for _, want := range []string{"runc version 1.5.2", "conmon version 2.1.6", "iptables v1.8.9", "br_netfilter", "net.ipv4.ip_forward",
		"overlayfs", "cgroups", `default network "check"`, "cni plugin host-local", "socket", "space --root-dir", "space --state-dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Each condition that keeps pods from running makes check exit 1, with a
// FAIL line naming it and a fix line right under it.
func TestCheckBrokenNode(t *testing.T) {
	needRoot(t)
	needBinary(t, "netshim")
	for _, tc := range []struct {
		name    string
		breakIt func(n *checkNode) []string // extra flags
		check   string                      // the FAIL line's check
		fix     string                      // part of the fix line
	}{
		{"missing plugin binary", func(n *checkNode) []string {
			_ = os.Remove(n.path("cni/bin/portmap"))
			return nil
		}, "cni plugin portmap", "--cni-bin-dir"},
		{"missing conf", func(n *checkNode) []string {
			_ = os.Remove(n.path("cni/net.d/10-check.conflist"))
			return nil
		}, "cni config", "/etc/cni/net.d"},
		{"bridge-nf-call-iptables off", func(n *checkNode) []string {
			n.write("proc/sys/net/bridge/bridge-nf-call-iptables", "0\n", 0o644)
			return nil
		}, "net.bridge.bridge-nf-call-iptables", "sysctl -w net.bridge.bridge-nf-call-iptables=1"},
		{"ip_forward off", func(n *checkNode) []string {
			n.write("proc/sys/net/ipv4/ip_forward", "0\n", 0o644)
			return nil
		}, "net.ipv4.ip_forward", "sysctl -w net.ipv4.ip_forward=1"},
		{"runc missing", func(n *checkNode) []string {
			return []string{"--oci-runtime", n.path("bin/no-runc")}
		}, "runc", "--oci-runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newCheckNode(t)
			out, code := n.check(tc.breakIt(n)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", code, out)
			}
			lines := strings.Split(out, "\n")
			found := false
			for i, l := range lines {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "FAIL" && strings.HasPrefix(l[4:], "  "+tc.check+" ") {
					found = true
					if i+1 >= len(lines) || !strings.Contains(lines[i+1], "fix: ") || !strings.Contains(lines[i+1], tc.fix) {
						t.Errorf("FAIL %s is not followed by a fix naming %q:\n%s", tc.check, tc.fix, out)
					}
				} else if len(f) > 0 && f[0] == "FAIL" {
					t.Errorf("another check failed too: %q", l)
				}
			}
			if !found {
				t.Errorf("no FAIL line for %s:\n%s", tc.check, out)
			}
			if !strings.Contains(out, "1 failed") {
				t.Errorf("the verdict does not count one failure:\n%s", out)
			}
		})
	}
}

// --cgroup-driver=systemd where systemd is not PID 1: netshim refuses to
// start, naming the flag and what PID 1 is, before it touches anything;
// netshim check fails the cgroups line the same way.
func TestSystemdCgroupDriverRefusedWithoutSystemd(t *testing.T) {
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		t.Fatal(err)
	}
	pid1 := strings.TrimSpace(string(comm))
	if pid1 == "systemd" {
		t.Skip("PID 1 is systemd here: the refusal cannot happen")
	}
	netshim := needBinary(t, "netshim")
	dir := t.TempDir()
	cmd := exec.Command(netshim, "--config=", "--cgroup-driver=systemd",
		"--container-runtime-endpoint=unix://"+filepath.Join(dir, "s.sock"),
		"--root-dir", filepath.Join(dir, "root"), "--state-dir", filepath.Join(dir, "run"))
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); err == nil || code != 1 {
		t.Fatalf("netshim --cgroup-driver=systemd exited %d (%v); want 1:\n%s", code, err, out)
	}
	want := `--cgroup-driver=systemd needs systemd as PID 1 (runc has systemd make each pod's cgroups over D-Bus), but PID 1 is \"` + pid1 + `\"`
	if !strings.Contains(string(out), want) {
		t.Errorf("the refusal does not say %s:\n%s", want, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "root")); !os.IsNotExist(err) {
		t.Errorf("netshim made its root dir before refusing: %v", err)
	}
	out, _ = exec.Command(netshim, "check", "--config=", "--cgroup-driver=systemd", "--network-plugin=none").CombinedOutput()
	if !strings.Contains(string(out), "FAIL  cgroups") || !strings.Contains(string(out), "--cgroup-driver=cgroupfs") {
		t.Errorf("netshim check --cgroup-driver=systemd does not fail the cgroups line:\n%s", out)
	}
}
