package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-iptables/iptables"
	"github.com/netshim/netshim/test/netcheck"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubenet: NetworkReady is false with kubelet's message until a PodCIDR
// arrives through UpdateRuntimeConfig; then pods get IPs from it on the
// kubenet bridge, reach each other and are reached from the node, with the
// configured MTU and hairpin, and kubenet's masquerade rule in place.
func TestKubenetFromPodCIDRToWorkingPods(t *testing.T) {
	const nonMasq = "198.18.0.0/15" // the test's own traffic is never masqueraded
	removeMasqueradeRuleAfter(t, nonMasq)
	s := startShim(t, withoutConfig(), withKubenet(), withArgs("--non-masquerade-cidr", nonMasq,
		"--network-plugin-mtu", "1400", "--hairpin-mode", "hairpin-veth"))

	netReady := func() *runtimeapi.RuntimeCondition {
		resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range resp.Status.Conditions {
			if c.Type == runtimeapi.NetworkReady {
				return c
			}
		}
		t.Fatal("no NetworkReady condition")
		return nil
	}
	if c := netReady(); c.Status || !strings.Contains(c.Message, "kubenet does not have netConfig") {
		t.Fatalf("NetworkReady before a PodCIDR = %+v, want false with kubenet's message", c)
	}
	if _, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("early")}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("RunPodSandbox before a PodCIDR: %v, want FailedPrecondition", err)
	}

	if _, err := s.rt.UpdateRuntimeConfig(s.ctx(), &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: s.net.Subnet.String()}}}); err != nil {
		t.Fatal(err)
	}
	if c := netReady(); !c.Status {
		t.Fatalf("NetworkReady after the PodCIDR = %+v, want true", c)
	}
	a, b := s.runPod(podConfig("kube-a")), s.runPod(podConfig("kube-b"))
	stA, infoA := s.status(a)
	stB, _ := s.status(b)
	for _, ip := range []string{stA.Network.Ip, stB.Network.Ip} {
		if !s.net.Subnet.Contains(net.ParseIP(ip)) {
			t.Fatalf("pod IP %s is not from the PodCIDR %s", ip, s.net.Subnet)
		}
	}
	if err := netcheck.Ping(infoA.NetNSPath, net.ParseIP(stB.Network.Ip)); err != nil {
		t.Errorf("pod a → pod b: %v", err)
	}
	if err := netcheck.Ping("", net.ParseIP(stA.Network.Ip)); err != nil {
		t.Errorf("node → pod a: %v", err)
	}
	ports := s.bridgePorts()
	if len(ports) != 2 {
		t.Fatalf("kubenet bridge %s ports %v, want the two pods' veths", s.net.Bridge, ports)
	}
	veth, _ := netlink.LinkByName(ports[0])
	if veth.Attrs().MTU != 1400 {
		t.Errorf("pod veth MTU %d, want --network-plugin-mtu 1400", veth.Attrs().MTU)
	}
	if hp, _ := os.ReadFile(filepath.Join("/sys/class/net", ports[0], "brport/hairpin_mode")); strings.TrimSpace(string(hp)) != "1" {
		t.Errorf("hairpin_mode %q on the pod's port, want 1 (hairpin-veth)", hp)
	}
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ipt.Exists("nat", "POSTROUTING", masqueradeRule(nonMasq)...); err != nil || !ok {
		t.Errorf("kubenet masquerade rule missing (err %v)", err)
	}
	s.stopPod(a)
	s.stopPod(b)
	leases, _ := os.ReadDir(filepath.Join(s.dir, "cni-cache", "networks", "kubenet"))
	for _, l := range leases {
		if net.ParseIP(l.Name()) != nil {
			t.Errorf("lease %s left after both pods stopped", l.Name())
		}
	}
}

// withKubenet selects kubenet on the test's own bridge (never cbr0).
func withKubenet() shimOption {
	return func(s *shim) {
		s.args = append(s.args, "--network-plugin", "kubenet", "--kubenet-bridge", s.net.Bridge)
	}
}

func masqueradeRule(nonMasq string) []string {
	return []string{"!", "-d", nonMasq, "-m", "comment", "--comment",
		"kubenet: SNAT for outbound traffic from cluster (" + nonMasq + ")",
		"-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "MASQUERADE"}
}

// removeMasqueradeRuleAfter removes the rule kubenet adds for this test's
// --non-masquerade-cidr, which no one else uses.
func removeMasqueradeRuleAfter(t *testing.T, nonMasq string) {
	t.Cleanup(func() {
		if ipt, err := iptables.New(); err == nil {
			_ = ipt.DeleteIfExists("nat", "POSTROUTING", masqueradeRule(nonMasq)...)
		}
	})
}
