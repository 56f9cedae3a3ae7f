package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod reaches its own hostPort through a node address, with hairpin on:
// hairpin-veth under cni, promiscuous-bridge under kubenet.
func TestPodReachesItsOwnHostPortThroughTheNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func() []shimOption
	}{
		{"cni/hairpin-veth", func() []shimOption { return []shimOption{withArgs("--hairpin-mode", "hairpin-veth")} }},
		{"kubenet/promiscuous-bridge", func() []shimOption {
			return []shimOption{withoutConfig(), withKubenet(), withArgs("--hairpin-mode", "promiscuous-bridge", "--non-masquerade-cidr", "198.18.0.0/15")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			removeMasqueradeRuleAfter(t, "198.18.0.0/15")
			removePortmapChainsIfNew(t)
			nodeIP := addNodeAddress(t)
			s := startShim(t, tc.opts()...)
			if tc.name == "kubenet/promiscuous-bridge" {
				if _, err := s.rt.UpdateRuntimeConfig(s.ctx(), &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
					NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: s.net.Subnet.String()}}}); err != nil {
					t.Fatal(err)
				}
			}
			const containerPort, hostPort = 8080, 31080
			cfg := podConfig("self")
			cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: containerPort, HostPort: hostPort}}
			id := s.runPod(cfg)
			_, info := s.status(id)
			serveInPod(t, info.NetNSPath, containerPort, "it is me")

			var got string
			err := ns.WithNetNSPath(info.NetNSPath, func(ns.NetNS) error {
				var err error
				got, err = fetch(net.JoinHostPort(nodeIP.String(), fmt.Sprint(hostPort)))
				return err
			})
			if err != nil || got != "it is me" {
				t.Fatalf("pod → node %s:%d → itself: %q, %v", nodeIP, hostPort, got, err)
			}
			if tc.name == "kubenet/promiscuous-bridge" {
				if br, err := netlink.LinkByName(s.net.Bridge); err != nil || br.Attrs().Promisc == 0 {
					t.Errorf("kubenet bridge not promiscuous under promiscuous-bridge (err %v)", err)
				}
			}
		})
	}
}

// addNodeAddress gives the node an address of its own in 198.18.0.0/15 on a
// veth pair made for the test (this kernel may lack dummy links), removed afterwards.
func addNodeAddress(t *testing.T) net.IP {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	ip := net.IPv4(198, 18+b[0]%2, b[1], 250).To4()
	name := "nsthp" + hex.EncodeToString(b)
	madeLinks.Store(name, true)
	dummy := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(dummy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(dummy) })
	if err := netlink.AddrAdd(dummy, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(dummy); err != nil {
		t.Fatal(err)
	}
	return ip
}
