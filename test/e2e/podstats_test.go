package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/netshim/netshim/test/netcheck"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podSandboxStats is the pod's entry in PodSandboxStats, checked against
// the same pod's entry in ListPodSandboxStats: kubelet reads either.
func (s *shim) podSandboxStats(id string) *runtimeapi.PodSandboxStats {
	s.t.Helper()
	resp, err := s.rt.PodSandboxStats(s.ctx(), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		s.t.Fatalf("PodSandboxStats %s: %v", id, err)
	}
	list, err := s.rt.ListPodSandboxStats(s.ctx(), &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: id}})
	if err != nil || len(list.Stats) != 1 {
		s.t.Fatalf("ListPodSandboxStats %s: %v (err %v), want one entry", id, list.GetStats(), err)
	}
	if l := list.Stats[0].GetLinux(); l.GetMemory().GetWorkingSetBytes() == nil || (resp.Stats.GetLinux().GetNetwork() == nil) != (l.GetNetwork() == nil) {
		s.t.Errorf("ListPodSandboxStats disagrees with PodSandboxStats: %v vs %v", l, resp.Stats.GetLinux())
	}
	return resp.Stats
}

// A pod with only its pause reports its cgroup's CPU and memory, which
// kubelet's summary API shows as the pod's usage (issue 26, item 9): under a
// cgroup parent of its own, as kubelet gives every pod, and under netshim's
// default parent, which all pods without one share.
func TestPodStatsOfPauseOnlyPod(t *testing.T) {
	s := startShim(t)
	parent, _ := testCgroupParent(t, "netshim-e2e-stats")
	for _, parent := range []string{parent, ""} {
		cfg := podConfig("stats-pause")
		cfg.Linux.CgroupParent = parent
		id := s.runPod(cfg)

		before := time.Now().UnixNano()
		st := s.podSandboxStats(id).GetLinux()
		if st.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
			t.Errorf("parent %q: memory working set of a running pause: %v, want > 0", parent, st.GetMemory())
		}
		if ts := st.GetMemory().GetTimestamp(); ts < before {
			t.Errorf("parent %q: memory timestamp %d is older than the request (%d)", parent, ts, before)
		}
		// The pause has barely run, so its CPU time may read 0 at the
		// cgroup's granularity; the sample itself must be there and stamped.
		if st.GetCpu().GetUsageCoreNanoSeconds() == nil || st.GetCpu().GetTimestamp() < before {
			t.Errorf("parent %q: CPU usage without a value or a current timestamp: %v", parent, st.GetCpu())
		}
		if len(st.GetContainers()) != 0 {
			t.Errorf("parent %q: containers of a pod with only its pause: %v", parent, st.GetContainers())
		}
		s.stopPod(id)
		s.removePod(id)
	}
}

// The pod's interface counters come from eth0 in the pod's netns: pinging
// the pod from the node makes both rx and tx bytes grow. A host-network pod
// reports no network, as in containerd (its traffic is the node's).
func TestPodStatsNetwork(t *testing.T) {
	s := startShim(t)
	id := s.runPod(podConfig("stats-net"))
	defer s.removePod(id)
	stPod, _ := s.status(id)
	ip := net.ParseIP(stPod.GetNetwork().GetIp())

	first := s.podSandboxStats(id).GetLinux().GetNetwork()
	if first.GetDefaultInterface().GetName() != "eth0" || first.GetTimestamp() == 0 {
		t.Fatalf("network stats of a pod: %v, want eth0 with a timestamp", first)
	}
	if err := netcheck.Ping("", ip); err != nil { // the pod's own address, made by this test
		t.Fatalf("node → pod %s: %v", ip, err)
	}
	second := s.podSandboxStats(id).GetLinux().GetNetwork().GetDefaultInterface()
	was := first.GetDefaultInterface()
	if second.GetRxBytes().GetValue() <= was.GetRxBytes().GetValue() || second.GetTxBytes().GetValue() <= was.GetTxBytes().GetValue() {
		t.Errorf("rx/tx bytes after a ping: %v, before: %v; want both to grow", second, was)
	}
	if second.GetRxErrors() == nil || second.GetTxErrors() == nil {
		t.Errorf("no rx/tx error counts: %v", second)
	}

	host := podConfig("stats-host")
	host.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	hostID := s.runPod(host)
	defer s.removePod(hostID)
	if n := s.podSandboxStats(hostID).GetLinux().GetNetwork(); n != nil {
		t.Errorf("network stats of a host-network pod: %v, want none", n)
	}
}
