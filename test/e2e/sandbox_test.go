package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/pkg/proc"
	"github.com/netshim/netshim/test/bench"
	"github.com/netshim/netshim/test/netcheck"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Point 2: a pod gets a READY sandbox, an IP from the subnet, a pinned netns
// named after it with eth0 holding that IP, and a running pause process.
func TestRunPodSandboxWiresThePod(t *testing.T) {
	s := startShim(t)
	cfg := podConfig("web")
	id := s.runPod(cfg)

	st, info := s.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state %v, want SANDBOX_READY", st.State)
	}
	ip := net.ParseIP(st.GetNetwork().GetIp())
	if ip == nil || !s.net.Subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not in the configured subnet %s", st.GetNetwork().GetIp(), s.net.Subnet)
	}
	if filepath.Dir(info.NetNSPath) != s.netnsDir || !strings.Contains(filepath.Base(info.NetNSPath), "web_e2e_") {
		t.Fatalf("netns pin %q: want it in %s, named after the sandbox (web_e2e_…)", info.NetNSPath, s.netnsDir)
	}
	if !proc.Alive(info.PID) {
		t.Fatalf("pause pid %d is not running", info.PID)
	}
	// The pause process lives in the pinned netns.
	pinned, err := os.Stat(info.NetNSPath)
	if err != nil {
		t.Fatal(err)
	}
	pauseNS, err := os.Stat(filepathProcNetNS(info.PID))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(pinned, pauseNS) {
		t.Fatal("pause process is not in the pinned netns")
	}
	var eth0Addrs []netlink.Addr
	err = ns.WithNetNSPath(info.NetNSPath, func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		eth0Addrs, err = netlink.AddrList(l, netlink.FAMILY_V4)
		return err
	})
	if err != nil {
		t.Fatalf("read eth0 in the pod's netns: %v", err)
	}
	if len(eth0Addrs) != 1 || !eth0Addrs[0].IP.Equal(ip) {
		t.Fatalf("eth0 addresses %v, want exactly %s", eth0Addrs, ip)
	}
	if got := s.ipReservations(); len(got) != 1 || got[0] != ip.String() {
		t.Fatalf("host-local reservations %v, want [%s]", got, ip)
	}
	if st.Metadata.Name != "web" || st.Metadata.Namespace != "e2e" || st.Labels["app"] != "web" || st.Annotations["note"] != "e2e" {
		t.Fatalf("status lost metadata, labels or annotations: %+v", st)
	}
}

func filepathProcNetNS(pid int) string { return filepath.Join("/proc", strconv.Itoa(pid), "ns", "net") }

// Point 2: ListPodSandbox and its filters (id prefix, state, labels).
func TestListPodSandboxFilters(t *testing.T) {
	s := startShim(t)
	a := s.runPod(podConfig("alpha"))
	b := s.runPod(podConfig("beta"))
	s.stopPod(b)

	list := func(f *runtimeapi.PodSandboxFilter) []string {
		t.Helper()
		resp, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range resp.Items {
			ids = append(ids, p.Id)
		}
		return ids
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %v, want %v", what, got, want)
		}
	}
	check("no filter", list(nil), a, b)
	check("id prefix", list(&runtimeapi.PodSandboxFilter{Id: a[:12]}), a)
	check("state ready", list(&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}}), a)
	check("state notready", list(&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}), b)
	check("label", list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "beta"}}), b)
	check("label no match", list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "gamma"}}))
}

// Point 3: two pods reach each other by pod IP, and the node reaches both.
func TestPodsReachEachOtherAndTheNode(t *testing.T) {
	s := startShim(t)
	a, b := s.runPod(podConfig("ping-a")), s.runPod(podConfig("ping-b"))
	stA, infoA := s.status(a)
	stB, infoB := s.status(b)
	ipA, ipB := net.ParseIP(stA.Network.Ip), net.ParseIP(stB.Network.Ip)
	if err := netcheck.Ping(infoA.NetNSPath, ipB); err != nil {
		t.Errorf("pod a → pod b: %v", err)
	}
	if err := netcheck.Ping(infoB.NetNSPath, ipA); err != nil {
		t.Errorf("pod b → pod a: %v", err)
	}
	for _, ip := range []net.IP{ipA, ipB} {
		if err := netcheck.Ping("", ip); err != nil {
			t.Errorf("node → %s: %v", ip, err)
		}
	}
}

// Point 4: stop runs CNI DEL, stops pause and unpins; remove leaves nothing.
// Both are idempotent, and unknown IDs succeed.
func TestStopAndRemoveLeaveNothingBehind(t *testing.T) {
	s := startShim(t)
	cfg := podConfig("gone")
	id := s.runPod(cfg)
	_, info := s.status(id)
	if len(s.bridgePorts()) != 1 || len(s.ipReservations()) != 1 {
		t.Fatalf("after run: bridge ports %v, reservations %v; want one each", s.bridgePorts(), s.ipReservations())
	}

	s.stopPod(id)
	st, _ := s.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("state after stop %v, want SANDBOX_NOTREADY", st.State)
	}
	if p := s.bridgePorts(); len(p) != 0 {
		t.Errorf("host veth still on the bridge after stop: %v", p)
	}
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP still reserved in host-local after stop: %v", r)
	}
	if _, err := os.Stat(info.NetNSPath); !os.IsNotExist(err) {
		t.Errorf("netns pin %s still there after stop (err %v)", info.NetNSPath, err)
	}
	eventually(t, reapWait, "pause to exit", func() bool { return !proc.Alive(info.PID) })
	s.stopPod(id) // idempotent

	s.removePod(id)
	s.removePod(id) // idempotent
	for _, leftover := range []string{
		filepath.Join(s.dir, "root", "sandboxes", id+".json"),
		filepath.Join(s.dir, "run", "sandboxes", id),
		filepath.Join(s.dir, "run", "runtime", id),
	} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Errorf("%s left behind after remove", leftover)
		}
	}
	if _, err := s.rt.PodSandboxStatus(s.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("status after remove: %v, want NotFound", err)
	}
	// The name reservation is released: the same pod attempt can run again.
	again := s.runPod(cfg)
	s.removePod(again)

	unknown := strings.Repeat("0", 64)
	s.stopPod(unknown)
	s.removePod(unknown)
}

// Point 5: a host-network pod gets no netns of its own and no CNI call.
func TestHostNetworkPodSkipsCNI(t *testing.T) {
	s := startShim(t)
	cfg := podConfig("hostnet")
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE},
	}
	id := s.runPod(cfg)
	st, info := s.status(id)
	if st.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Network.Ip != "" {
		t.Fatalf("state %v ip %q, want READY with no pod IP", st.State, st.Network.Ip)
	}
	if info.NetNSPath != "" {
		t.Errorf("host-network pod has a netns pin %q", info.NetNSPath)
	}
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 0 {
		t.Errorf("netns dir holds %d pins, want 0", len(pins))
	}
	if len(s.ipReservations()) != 0 || len(s.bridgePorts()) != 0 {
		t.Errorf("CNI ran for a host-network pod: reservations %v, ports %v", s.ipReservations(), s.bridgePorts())
	}
	host, _ := os.Stat("/proc/self/ns/net")
	pause, err := os.Stat(filepathProcNetNS(info.PID))
	if err != nil || !os.SameFile(host, pause) {
		t.Errorf("pause of a host-network pod is not in the node's netns (err %v)", err)
	}
}

// Point 6: NetworkReady follows the conf dir without a restart.
func TestNetworkReadyFollowsConfDir(t *testing.T) {
	s := startShim(t, withoutConfig())
	cond := func() *runtimeapi.RuntimeCondition {
		resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var net, rt *runtimeapi.RuntimeCondition
		for _, c := range resp.Status.Conditions {
			switch c.Type {
			case runtimeapi.NetworkReady:
				net = c
			case runtimeapi.RuntimeReady:
				rt = c
			}
		}
		if rt == nil || !rt.Status {
			t.Fatalf("RuntimeReady %v, want true", rt)
		}
		if net == nil {
			t.Fatal("no NetworkReady condition")
		}
		return net
	}
	c := cond()
	if c.Status || c.Reason != "NetworkPluginNotReady" || !strings.Contains(c.Message, s.confDir) {
		t.Fatalf("NetworkReady without config = %+v; want false, NetworkPluginNotReady, message naming %s", c, s.confDir)
	}
	_, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("early")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RunPodSandbox without network config: %v, want FailedPrecondition", err)
	}
	s.writeBridgeConf("10-e2e.conflist", s.net.Bridge, "")
	eventually(t, reloadWait, "NetworkReady=true after a config appeared", func() bool { return cond().Status })
	s.runPod(podConfig("late"))
}

// A plugin failing in RunPodSandbox: everything done so far is undone (DEL
// sent, pause stopped, netns unpinned, checkpoint removed) and the error names
// the plugin and its message. The /30 has room for one pod, so the second
// pod's ADD fails in bridge's IPAM after bridge made its veth.
func TestFailedNetworkSetUpIsUndone(t *testing.T) {
	s := startShim(t, withTinySubnet())
	first := s.runPod(podConfig("first"))
	_, info := s.status(first)
	pausesBefore := countPause(t, s)

	cfg := podConfig("doomed")
	_, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded in a full subnet")
	}
	if !strings.Contains(err.Error(), `plugin type="bridge"`) || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Fatalf("error %q does not name the failing plugin and its message", err)
	}
	resp, lerr := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if lerr != nil || len(resp.Items) != 1 || resp.Items[0].Id != first {
		t.Errorf("sandboxes after a failed run: %v (err %v), want only the first", resp.GetItems(), lerr)
	}
	if r := s.ipReservations(); len(r) != 1 {
		t.Errorf("reservations after the undo %v, want only the first pod's", r)
	}
	if p := s.bridgePorts(); len(p) != 1 {
		t.Errorf("bridge ports after the undo %v, want only the first pod's", p)
	}
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 1 || filepath.Join(s.netnsDir, pins[0].Name()) != info.NetNSPath {
		t.Errorf("netns pins after the undo: %d, want only the first pod's", len(pins))
	}
	for _, d := range []string{"root/sandboxes", "run/sandboxes", "run/runtime"} {
		if e, _ := os.ReadDir(filepath.Join(s.dir, d)); len(e) != 1 {
			t.Errorf("%s holds %d entries after the undo, want the first pod's only", d, len(e))
		}
	}
	eventually(t, reapWait, "the failed pod's pause process to be gone", func() bool { return countPause(t, s) == pausesBefore })

	// With room made, the same pod attempt runs: its name was released too.
	s.removePod(first)
	s.runPod(cfg)
}

// A plugin that fails ADD and DEL alike: the sandbox is stopped (pause gone,
// netns unpinned) but kept NOTREADY, because its ADD has not had a DEL that
// succeeded; once the config is fixed, a remove sends it and the IP is freed.
func TestFailedDeleteKeepsSandboxUntilDeleteSucceeds(t *testing.T) {
	// bandwidth refuses a rate without a burst, after bridge has wired the pod.
	s := startShim(t, withExtraPlugin(`{"type":"bandwidth","ingressRate":1000000}`))
	_, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("stuck")})
	if err == nil || !strings.Contains(err.Error(), `plugin type="bandwidth"`) {
		t.Fatalf("RunPodSandbox: %v, want an error naming the bandwidth plugin", err)
	}
	resp, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.Items) != 1 || resp.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("sandboxes: %v (err %v), want one NOTREADY kept for its DEL", resp.GetItems(), err)
	}
	id := resp.Items[0].Id
	// The pin outlives the failed DEL, so the retried DEL runs in the netns.
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 1 {
		t.Errorf("%d netns pins, want the one whose DEL is owed", len(pins))
	}
	if len(s.ipReservations()) != 1 {
		t.Fatalf("reservations %v: want the one whose DEL failed", s.ipReservations())
	}
	if _, err := s.rt.RemovePodSandbox(s.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err == nil {
		t.Fatal("RemovePodSandbox succeeded while the DEL still fails")
	}
	s.writeBridgeConf("10-e2e.conflist", s.net.Bridge, "")
	eventually(t, reloadWait, "a remove to succeed after the config was fixed", func() bool {
		_, err := s.rt.RemovePodSandbox(s.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		return err == nil
	})
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP still reserved after the DEL succeeded: %v", r)
	}
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 0 {
		t.Errorf("netns still pinned after the DEL succeeded: %d pins", len(pins))
	}
}

// countPause counts the live pause processes on the node that may be this
// test's: those of another netshim (a cluster sharing the machine) are its
// children and are left out. A pause of s's netshim is its child, or
// init's once that netshim was killed. s may be nil (not started yet).
func countPause(t *testing.T, s *shim) int {
	t.Helper()
	ours := 0
	if s != nil && s.cmd != nil && s.cmd.Process != nil {
		ours = s.cmd.Process.Pid
	}
	n := 0
	for _, pid := range bench.LivePIDsNamed("pause") {
		if parent := parentPID(pid); parent == ours || !isNetshim(parent) {
			n++
		}
	}
	return n
}

// parentPID is field 4 of /proc/PID/stat, 0 if it cannot be read.
func parentPID(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

func isNetshim(pid int) bool {
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	return err == nil && strings.TrimSpace(string(comm)) == "netshim"
}

// Sandboxes survive a netshim restart: same states and IPs, and stop and
// remove still clean up fully. The pause processes keep running meanwhile.
func TestSandboxesSurviveRestart(t *testing.T) {
	s := startShim(t)
	ready := s.runPod(podConfig("keeper"))
	stopped := s.runPod(podConfig("stopped"))
	s.stopPod(stopped)
	stBefore, infoBefore := s.status(ready)

	s.restart()
	if !proc.Alive(infoBefore.PID) {
		t.Fatal("pause process died when netshim restarted")
	}
	stAfter, infoAfter := s.status(ready)
	if stAfter.State != runtimeapi.PodSandboxState_SANDBOX_READY || stAfter.Network.Ip != stBefore.Network.Ip || infoAfter.PID != infoBefore.PID {
		t.Fatalf("after restart: state %v ip %s pid %d; want READY %s %d", stAfter.State, stAfter.Network.Ip, infoAfter.PID, stBefore.Network.Ip, infoBefore.PID)
	}
	if st, _ := s.status(stopped); st.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("stopped sandbox is %v after restart, want NOTREADY", st.State)
	}
	if err := netcheck.Ping("", net.ParseIP(stAfter.Network.Ip)); err != nil {
		t.Fatalf("pod unreachable after the restart: %v", err)
	}
	s.stopPod(ready)
	s.removePod(ready)
	s.removePod(stopped)
	if len(s.ipReservations()) != 0 || len(s.bridgePorts()) != 0 {
		t.Errorf("after stop+remove: reservations %v, ports %v; want none", s.ipReservations(), s.bridgePorts())
	}
	eventually(t, orphanReapWait, "the adopted pause process to be gone", func() bool { return !proc.Alive(infoBefore.PID) })
}

// A pause process killed behind netshim's back makes its sandbox NOTREADY.
func TestPauseDeathMakesSandboxNotReady(t *testing.T) {
	s := startShim(t)
	id := s.runPod(podConfig("fragile"))
	_, info := s.status(id)
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, reapWait, "NOTREADY after the pause process died", func() bool {
		st, _ := s.status(id)
		return st.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
	s.stopPod(id)
	if len(s.ipReservations()) != 0 {
		t.Errorf("IP still reserved after stop: %v", s.ipReservations())
	}
}
