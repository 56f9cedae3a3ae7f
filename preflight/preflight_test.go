package preflight

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNode is a healthy node in a temp dir: proc and sysfs files, programs
// that answer --version, CNI plugins and a network config.
type fakeNode struct {
	t   *testing.T
	dir string
	cfg Config
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	n := &fakeNode{t: t, dir: t.TempDir()}
	n.write("proc/sys/net/bridge/bridge-nf-call-iptables", "1\n", 0o644)
	n.write("proc/sys/net/bridge/bridge-nf-call-ip6tables", "1\n", 0o644)
	n.write("proc/sys/net/ipv4/ip_forward", "1\n", 0o644)
	n.write("proc/filesystems", "nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\n", 0o644)
	for _, c := range []string{"cpu", "memory", "pids"} {
		n.mkdir("sys/fs/cgroup/" + c)
	}
	n.mkdir("modules")
	n.program("bin/runc", "runc version 1.5.2")
	n.program("bin/conmon", "conmon version 2.1.6")
	n.program("bin/iptables", "iptables v1.8.9 (nf_tables)")
	n.write("bin/pause", "\x7fELF", 0o755)
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		n.write("cni/bin/"+p, "#!/bin/sh\n", 0o755)
	}
	n.write("cni/net.d/10-test.conflist", `{"cniVersion":"1.0.0","name":"test","plugins":[
		{"type":"bridge","bridge":"nstest0","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.0.0/24"}]]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`, 0o644)
	n.cfg = Config{
		ProcDir:       n.path("proc"),
		SysDir:        n.path("sys"),
		ModulesDir:    n.path("modules"),
		NetworkPlugin: "cni",
		CNIConfDir:    n.path("cni/net.d"),
		CNIBinDirs:    []string{n.path("cni/other"), n.path("cni/bin")},
		OCIRuntime:    n.path("bin/runc"),
		Conmon:        n.path("bin/conmon"),
		Iptables:      n.path("bin/iptables"),
		PauseBinary:   n.path("bin/pause"),
		Endpoint:      "unix://" + n.path("run/netshim/netshim.sock"),
		RootDir:       n.path("lib/netshim"),
		StateDir:      n.path("run/netshim"),
		Euid:          0,
		Statfs: func(string) (uint64, uint64, error) {
			return 50 << 30, 100 << 30, nil
		},
	}
	return n
}

func (n *fakeNode) path(rel string) string { return filepath.Join(n.dir, rel) }

func (n *fakeNode) mkdir(rel string) {
	n.t.Helper()
	if err := os.MkdirAll(n.path(rel), 0o755); err != nil {
		n.t.Fatal(err)
	}
}

func (n *fakeNode) write(rel, content string, mode os.FileMode) {
	n.t.Helper()
	n.mkdir(filepath.Dir(rel))
	_ = os.Remove(n.path(rel)) // so mode applies to a rewritten file too
	if err := os.WriteFile(n.path(rel), []byte(content), mode); err != nil {
		n.t.Fatal(err)
	}
}

// program writes a script that prints version for --version.
func (n *fakeNode) program(rel, version string) {
	n.write(rel, "#!/bin/sh\necho '"+version+"'\necho second line\n", 0o755)
}

func (n *fakeNode) remove(rel string) {
	n.t.Helper()
	if err := os.RemoveAll(n.path(rel)); err != nil {
		n.t.Fatal(err)
	}
}

// statfsUnder makes Statfs answer avail, total and err for paths under rel;
// others keep the healthy answer.
func (n *fakeNode) statfsUnder(rel string, avail, total uint64, err error) {
	healthy := n.cfg.Statfs
	n.cfg.Statfs = func(p string) (uint64, uint64, error) {
		if p == n.path(rel) || strings.HasPrefix(p, n.path(rel)+"/") {
			return avail, total, err
		}
		return healthy(p)
	}
}

func (n *fakeNode) run() []Result {
	return Run(context.Background(), n.cfg)
}

// find returns the one result of check, failing the test if there is not exactly one.
func find(t *testing.T, rs []Result, check string) Result {
	t.Helper()
	var found []Result
	for _, r := range rs {
		if r.Check == check {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d results for %q, want 1: %+v", len(found), check, rs)
	}
	return found[0]
}

func TestHealthyNodePasses(t *testing.T) {
	n := newFakeNode(t)
	rs := n.run()
	for _, r := range rs {
		if r.Severity != OK {
			t.Errorf("%s: %v %s (fix: %s), want ok", r.Check, r.Severity, r.Message, r.Fix)
		}
	}
	if Blocking(rs) {
		t.Error("Blocking = true on a healthy node")
	}
	// What an operator reads: versions and the paths found.
	for check, want := range map[string]string{
		"runc":              "runc version 1.5.2 (" + n.path("bin/runc") + ")",
		"conmon":            "conmon version 2.1.6",
		"iptables":          "iptables v1.8.9 (nf_tables)",
		"cni config":        `default network "test" from ` + n.path("cni/net.d/10-test.conflist"),
		"cni plugin bridge": n.path("cni/bin/bridge"),
		"cgroups":           "v1, driver cgroupfs",
		"socket":            "is free",
	} {
		if got := find(t, rs, check).Message; !strings.Contains(got, want) {
			t.Errorf("%s: message %q, want it to contain %q", check, got, want)
		}
	}
	// The IPAM plugin a network names is a binary it needs too.
	find(t, rs, "cni plugin host-local")
}

// Each broken condition is reported under its check, with its severity and a
// fix an operator can act on.
func TestBrokenConditions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		breakIt  func(n *fakeNode)
		check    string
		severity Severity
		message  string // part of the message
		fix      string // part of the fix
	}{
		{"missing plugin binary", func(n *fakeNode) { n.remove("cni/bin/portmap") },
			"cni plugin portmap", Failure, "10-test.conflist needs it", "--cni-bin-dir"},
		{"missing IPAM plugin binary", func(n *fakeNode) { n.remove("cni/bin/host-local") },
			"cni plugin host-local", Failure, "in none of", "make install"},
		{"plugin binary not executable", func(n *fakeNode) { n.write("cni/bin/bridge", "x", 0o644) },
			"cni plugin bridge", Failure, "not an executable", "chmod 0755"},
		{"missing conf", func(n *fakeNode) { n.remove("cni/net.d/10-test.conflist") },
			"cni config", Failure, "no network config", "/etc/cni/net.d"},
		{"missing conf dir", func(n *fakeNode) { n.remove("cni/net.d") },
			"cni config", Failure, "no network config", "--cni-conf-dir"},
		{"bridge-nf-call-iptables off", func(n *fakeNode) { n.write("proc/sys/net/bridge/bridge-nf-call-iptables", "0\n", 0o644) },
			"net.bridge.bridge-nf-call-iptables", Failure, "is 0, want 1", "sysctl -w net.bridge.bridge-nf-call-iptables=1"},
		{"bridge-nf-call-ip6tables off", func(n *fakeNode) { n.write("proc/sys/net/bridge/bridge-nf-call-ip6tables", "0\n", 0o644) },
			"net.bridge.bridge-nf-call-ip6tables", Warning, "is 0", "/etc/sysctl.d/"},
		{"ip_forward off", func(n *fakeNode) { n.write("proc/sys/net/ipv4/ip_forward", "0\n", 0o644) },
			"net.ipv4.ip_forward", Failure, "pods cannot reach anything beyond", "sysctl -w net.ipv4.ip_forward=1"},
		{"ip_forward off without a pod network", func(n *fakeNode) {
			n.write("proc/sys/net/ipv4/ip_forward", "0\n", 0o644)
			n.cfg.NetworkPlugin = "none"
		}, "net.ipv4.ip_forward", Warning, "is 0", "sysctl -w"},
		{"br_netfilter not loaded", func(n *fakeNode) { n.remove("proc/sys/net/bridge") },
			"br_netfilter", Failure, "not loaded", "modprobe br_netfilter"},
		{"br_netfilter not in the kernel", func(n *fakeNode) {
			n.remove("proc/sys/net/bridge")
			n.write("modules/modules.dep", "kernel/fs/overlayfs/overlay.ko.xz:\n", 0o644)
		}, "br_netfilter", Failure, "not in this kernel", "CONFIG_BRIDGE_NETFILTER"},
		{"runc missing", func(n *fakeNode) { n.remove("bin/runc") },
			"runc", Failure, "not found", "--oci-runtime"},
		{"runc does not run", func(n *fakeNode) { n.write("bin/runc", "#!/bin/sh\necho broken >&2\nexit 3\n", 0o755) },
			"runc", Failure, "does not run", "--oci-runtime"},
		{"conmon missing", func(n *fakeNode) { n.remove("bin/conmon") },
			"conmon", Failure, "not found", "apt-get install conmon"},
		{"iptables missing", func(n *fakeNode) { n.remove("bin/iptables") },
			"iptables", Failure, "not found", "apt-get install iptables"},
		{"pause missing", func(n *fakeNode) { n.remove("bin/pause") },
			"pause", Failure, "no such file", "--pause-binary"},
		{"overlay missing", func(n *fakeNode) { n.write("proc/filesystems", "nodev\tproc\n\text4\n", 0o644) },
			"overlayfs", Failure, "not supported", "modprobe overlay"},
		{"no cgroups", func(n *fakeNode) { n.remove("sys/fs/cgroup") },
			"cgroups", Failure, "no cgroup hierarchy", "cgroup2"},
		{"cgroup v2 without pids", func(n *fakeNode) {
			n.remove("sys/fs/cgroup")
			n.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory\n", 0o444)
		}, "cgroups", Warning, "v2, driver cgroupfs (set kubelet's cgroupDriver: cgroupfs to match); controllers missing: pids", "kernel command line"},
		{"systemd driver, PID 1 not systemd", func(n *fakeNode) {
			n.write("proc/1/comm", "process_api\n", 0o644)
			n.cfg.CgroupDriver, n.cfg.RunDir = "systemd", n.path("run")
		}, "cgroups", Failure, `--cgroup-driver=systemd needs systemd as PID 1 (runc has systemd make each pod's cgroups over D-Bus), but PID 1 is "process_api"`, "--cgroup-driver=cgroupfs"},
		{"socket path is a file", func(n *fakeNode) { n.write("run/netshim/netshim.sock", "", 0o600) },
			"socket", Failure, "not a socket", "--container-runtime-endpoint"},
		{"socket path is a symlink", func(n *fakeNode) {
			n.mkdir("run/netshim")
			if err := os.Symlink("/etc/passwd", n.path("run/netshim/netshim.sock")); err != nil {
				t.Fatal(err)
			}
		}, "socket", Failure, "symlink", "rm "},
		{"socket of another user", func(n *fakeNode) {
			n.mkdir("run/netshim")
			sock := n.path("run/netshim/netshim.sock")
			lis, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lis.Close() })
			if err := os.Chown(sock, 4242, -1); err != nil {
				// Only root may give a file away; under CI or as root,
				// failing to is a failure, not a skip.
				if os.Geteuid() == 0 || os.Getenv("CI") == "true" {
					n.t.Fatalf("chown a socket to another user: %v", err)
				}
				n.t.Skipf("chown a socket to another user needs root: %v", err)
			}
		}, "socket", Failure, "belongs to uid 4242", "rm "},
		{"socket dir writable by others", func(n *fakeNode) {
			n.mkdir("run/netshim")
			if err := os.Chmod(n.path("run/netshim"), 0o777); err != nil {
				t.Fatal(err)
			}
		}, "socket dir", Warning, "other users can replace the socket", "chmod 0700"},
		{"endpoint not unix", func(n *fakeNode) { n.cfg.Endpoint = "tcp://127.0.0.1:1" },
			"socket", Failure, "not unix:///path", "--container-runtime-endpoint"},
		{"socket group unknown", func(n *fakeNode) { n.cfg.SocketGroup = "netshim-no-such-group" },
			"socket group", Failure, "will not start", "groupadd"},
		{"no space", func(n *fakeNode) {
			n.mkdir("lib")
			n.statfsUnder("lib", 10<<20, 100<<30, nil)
		}, "space --root-dir", Failure, "too little", "--root-dir"},
		{"low space", func(n *fakeNode) {
			n.mkdir("run")
			n.statfsUnder("run", 10<<30, 100<<30, nil)
		}, "space --state-dir", Warning, "kubelet evicts", "--state-dir"},
		{"statfs fails", func(n *fakeNode) {
			n.mkdir("lib")
			n.statfsUnder("lib", 0, 0, errors.New("boom"))
		}, "space --root-dir", Failure, "boom", "mounted"},
		{"not root", func(n *fakeNode) { n.cfg.Euid = 1000 },
			"user", Failure, "uid 1000", "as root"},
		{"kubenet without bandwidth", func(n *fakeNode) { n.cfg.NetworkPlugin = "kubenet" },
			"cni plugin bandwidth", Failure, "kubenet needs it", "make install"},
		{"unknown network plugin", func(n *fakeNode) { n.cfg.NetworkPlugin = "flannel" },
			"network", Failure, `"flannel"`, "cni, kubenet or none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode(t)
			tc.breakIt(n)
			rs := n.run()
			r := find(t, rs, tc.check)
			if r.Severity != tc.severity || !strings.Contains(r.Message, tc.message) || !strings.Contains(r.Fix, tc.fix) {
				t.Errorf("%s: got %v %q (fix %q), want %v containing %q (fix containing %q)",
					tc.check, r.Severity, r.Message, r.Fix, tc.severity, tc.message, tc.fix)
			}
			if r.Fix == "" || strings.Contains(r.Fix, "\n") {
				t.Errorf("fix %q: want one line", r.Fix)
			}
			if got := Blocking(rs); got != (tc.severity == Failure) {
				t.Errorf("Blocking = %v with a %v finding", got, tc.severity)
			}
			// Nothing else on the node is reported broken.
			for _, other := range rs {
				if other.Severity != OK && other.Check != tc.check {
					t.Errorf("also reported: %s: %v %s", other.Check, other.Severity, other.Message)
				}
			}
		})
	}
}

// A file that does not parse is skipped with a warning; the next valid file
// is the default network, as netshim loads it.
func TestBadConfSkippedForNextFile(t *testing.T) {
	n := newFakeNode(t)
	n.write("cni/net.d/05-broken.conf", "{not json", 0o644)
	n.write("cni/net.d/07-ignored.txt", "{}", 0o644)
	rs := n.run()
	if Blocking(rs) {
		t.Fatalf("a skipped file blocks pods: %+v", rs)
	}
	var confs []Result
	for _, r := range rs {
		if r.Check == "cni config" {
			confs = append(confs, r)
		}
	}
	if len(confs) != 2 || confs[0].Severity != Warning || !strings.Contains(confs[0].Message, "05-broken.conf is skipped") ||
		confs[1].Severity != OK || !strings.Contains(confs[1].Message, "10-test.conflist") {
		t.Fatalf("cni config results %+v: want 05-broken.conf skipped, then 10-test.conflist", confs)
	}
}

// A single-plugin .conf counts, its IPAM plugin included.
func TestSinglePluginConf(t *testing.T) {
	n := newFakeNode(t)
	n.remove("cni/net.d/10-test.conflist")
	n.write("cni/net.d/10-single.conf", `{"cniVersion":"0.4.0","name":"single","type":"bridge","ipam":{"type":"dhcp"}}`, 0o644)
	rs := n.run()
	if r := find(t, rs, "cni plugin dhcp"); r.Severity != Failure {
		t.Errorf("dhcp (absent) reported %v %s", r.Severity, r.Message)
	}
	if r := find(t, rs, "cni config"); !strings.Contains(r.Message, `"single"`) {
		t.Errorf("cni config: %s", r.Message)
	}
}

// A modular overlay not loaded yet is fine: the kernel loads it on mount.
func TestOverlayAsModule(t *testing.T) {
	n := newFakeNode(t)
	n.write("proc/filesystems", "nodev\tproc\n", 0o644)
	n.write("modules/modules.dep", "kernel/net/bridge/br_netfilter.ko.xz: kernel/net/bridge/bridge.ko.xz\nkernel/fs/overlayfs/overlay.ko.xz:\n", 0o644)
	if r := find(t, n.run(), "overlayfs"); r.Severity != OK || !strings.Contains(r.Message, "module") {
		t.Errorf("overlayfs: %v %s", r.Severity, r.Message)
	}
}

// A socket a netshim serves on is fine; so is a stale one, which netshim
// replaces at start.
func TestSocketServedOrStale(t *testing.T) {
	n := newFakeNode(t)
	n.cfg.Euid = os.Geteuid() // the socket below is the test's user's
	n.mkdir("run/netshim")
	sock := n.path("run/netshim/netshim.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	if err := os.Chmod(sock, 0o660); err != nil {
		t.Fatal(err)
	}
	if r := find(t, n.run(), "socket"); r.Severity != OK || !strings.Contains(r.Message, "being served") {
		t.Errorf("served socket: %v %s", r.Severity, r.Message)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if r := find(t, n.run(), "socket"); r.Severity != Warning || !strings.Contains(r.Message, "any user") {
		t.Errorf("world-writable served socket: %v %s", r.Severity, r.Message)
	}
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	lis.Close()
	if r := find(t, n.run(), "socket"); r.Severity != OK || !strings.Contains(r.Message, "stale") {
		t.Errorf("stale socket: %v %s", r.Severity, r.Message)
	}
}

// Free space is read where the dir will be: its nearest existing parent.
func TestFreeSpaceOfNearestParent(t *testing.T) {
	n := newFakeNode(t)
	n.mkdir("lib")
	var asked []string
	n.cfg.Statfs = func(p string) (uint64, uint64, error) {
		asked = append(asked, p)
		return 50 << 30, 100 << 30, nil
	}
	r := find(t, n.run(), "space --root-dir")
	if len(asked) == 0 || asked[0] != n.path("lib") {
		t.Errorf("statfs asked for %v, want %s first", asked, n.path("lib"))
	}
	if !strings.Contains(r.Message, "50.0 GiB free of 100.0 GiB (50%)") {
		t.Errorf("message %q", r.Message)
	}
}

func TestWriteOneLinePerCheckAndFixes(t *testing.T) {
	var b bytes.Buffer
	Write(&b, []Result{
		{Check: "runc", Message: "runc version 1.5.2"},
		{Check: "net.ipv4.ip_forward", Severity: Failure, Message: "is 0, want 1", Fix: "sysctl -w net.ipv4.ip_forward=1"},
		{Check: "cgroups", Severity: Warning, Message: "v2", Fix: "enable pids"},
	})
	want := "ok    runc                 runc version 1.5.2\n" +
		"FAIL  net.ipv4.ip_forward  is 0, want 1\n" +
		"                           fix: sysctl -w net.ipv4.ip_forward=1\n" +
		"WARN  cgroups              v2\n" +
		"                           fix: enable pids\n" +
		"1 failed, 1 warnings: pods will not run (or not be reachable) until the failures are fixed\n"
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want)
	}
}
