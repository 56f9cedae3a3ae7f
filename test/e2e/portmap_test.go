package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/coreos/go-iptables/iptables"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A hostPort mapping reaches a TCP listener in the pod from the node, through
// 127.0.0.1 and through an address the test gave the node, and is gone after stop.
func TestPortMappingReachesThePod(t *testing.T) {
	removePortmapChainsIfNew(t)
	s := startShim(t)
	nodeIP := addNodeAddress(t)
	for _, hostIP := range []string{"127.0.0.1", nodeIP.String()} {
		t.Run("hostIP="+hostIP, func(t *testing.T) {
			const containerPort = 8080
			hostPort := int32(30000 + rand.IntN(20000))
			cfg := podConfig("ports")
			cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: containerPort, HostPort: hostPort, HostIp: hostIP}}
			id := s.runPod(cfg)
			_, info := s.status(id)
			serveInPod(t, info.NetNSPath, containerPort, "hello from the pod")

			addr := net.JoinHostPort(hostIP, fmt.Sprint(hostPort))
			if got, err := fetch(addr); err != nil || got != "hello from the pod" {
				t.Fatalf("via %s: %q, %v", addr, got, err)
			}
			s.stopPod(id)
			if _, err := fetch(addr); err == nil {
				t.Errorf("%s still answers after the pod stopped: the mapping was not removed", addr)
			}
			s.removePod(id)
		})
	}
}

// serveInPod listens on port inside the netns and answers each connection with msg.
func serveInPod(t *testing.T, nsPath string, port int, msg string) {
	t.Helper()
	var lis net.Listener
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		var err error
		lis, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in the pod: %v", err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, msg)
			c.Close()
		}
	}()
}

func fetch(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	data, err := io.ReadAll(c)
	return string(data), err
}

// portmap creates shared chains in the nat table on first use and never
// removes them. If this test is what created them, it removes them again,
// once they are empty, so the node is left as the test found it.
func removePortmapChainsIfNew(t *testing.T) {
	t.Helper()
	ipt, err := iptables.New()
	if err != nil {
		t.Fatalf("iptables: %v", err)
	}
	existed, err := ipt.ChainExists("nat", "CNI-HOSTPORT-DNAT")
	if err != nil || existed {
		return
	}
	t.Cleanup(func() {
		if rules, err := ipt.List("nat", "CNI-HOSTPORT-DNAT"); err != nil || len(rules) > 1 {
			return // in use by someone else now: leave it
		}
		jumps := []struct {
			chain string
			rule  []string
		}{
			{"PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"}},
			{"OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"}},
			{"POSTROUTING", []string{"-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"}},
		}
		for _, j := range jumps {
			if err := ipt.DeleteIfExists("nat", j.chain, j.rule...); err != nil {
				t.Errorf("remove portmap jump from %s: %v", j.chain, err)
			}
		}
		for _, c := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
			if err := ipt.ClearAndDeleteChain("nat", c); err != nil {
				t.Errorf("remove chain %s: %v", c, err)
			}
		}
	})
}
