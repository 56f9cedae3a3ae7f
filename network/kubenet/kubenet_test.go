package kubenet

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/netshim/netshim/network"
)

func newPlugin(t *testing.T) *Plugin {
	t.Helper()
	p, err := New(Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p.nonMasqueradeCIDR, p.mtu = "198.18.0.0/15", 1450
	return p
}

// The generated network is kubelet's kubenet: bridge cbr0 as the gateway
// with host-local over the PodCIDR(s), then portmap and bandwidth; a route
// per family; masquerading left to kubenet's own rule.
func TestGeneratedNetworkIsKubenets(t *testing.T) {
	p := newPlugin(t)
	conf, err := p.netConfig([]string{"198.18.4.0/24", "fd00:198:18::/64"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil {
		t.Fatalf("libcni refuses the generated config: %v\n%s", err, conf)
	}
	var types []string
	for _, pl := range list.Plugins {
		types = append(types, pl.Network.Type)
	}
	if list.Name != PluginName || strings.Join(types, ",") != "bridge,portmap,bandwidth" {
		t.Fatalf("network %q with plugins %v", list.Name, types)
	}
	var bridge struct {
		Bridge    string `json:"bridge"`
		MTU       int    `json:"mtu"`
		IsGateway bool   `json:"isGateway"`
		IPMasq    bool   `json:"ipMasq"`
		Hairpin   bool   `json:"hairpinMode"`
		Promisc   bool   `json:"promiscMode"`
		IPAM      struct {
			Type    string                `json:"type"`
			DataDir string                `json:"dataDir"`
			Ranges  [][]map[string]string `json:"ranges"`
			Routes  []map[string]string   `json:"routes"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Bridge != DefaultBridge || bridge.MTU != 1450 || !bridge.IsGateway || bridge.IPMasq {
		t.Errorf("bridge %+v: want cbr0, MTU 1450, the gateway, no masquerade of its own", bridge)
	}
	if bridge.IPAM.Type != "host-local" || bridge.IPAM.DataDir != filepath.Join(p.cfg.CacheDir, "networks") {
		t.Errorf("ipam %+v", bridge.IPAM)
	}
	if len(bridge.IPAM.Ranges) != 2 || bridge.IPAM.Ranges[0][0]["subnet"] != "198.18.4.0/24" || bridge.IPAM.Ranges[1][0]["subnet"] != "fd00:198:18::/64" {
		t.Errorf("ranges %v, want one per PodCIDR", bridge.IPAM.Ranges)
	}
	if len(bridge.IPAM.Routes) != 2 || bridge.IPAM.Routes[0]["dst"] != "0.0.0.0/0" || bridge.IPAM.Routes[1]["dst"] != "::/0" {
		t.Errorf("routes %v, want a default route per family", bridge.IPAM.Routes)
	}
	if bridge.Hairpin || bridge.Promisc {
		t.Errorf("hairpin %v promisc %v with no hairpin mode", bridge.Hairpin, bridge.Promisc)
	}
}

// kubelet's hairpin modes: hairpin-veth sets the bridge's hairpinMode,
// promiscuous-bridge its promiscMode; never both (the plugin refuses that).
func TestHairpinModeReachesTheBridge(t *testing.T) {
	for mode, want := range map[network.HairpinMode][2]bool{
		network.HairpinVeth:              {true, false},
		network.HairpinPromiscuousBridge: {false, true},
		network.HairpinNone:              {false, false},
	} {
		p := newPlugin(t)
		p.hairpinMode = mode
		conf, err := p.netConfig([]string{"198.18.4.0/24"})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Plugins []struct {
				Hairpin bool `json:"hairpinMode"`
				Promisc bool `json:"promiscMode"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(conf, &got); err != nil {
			t.Fatal(err)
		}
		if b := got.Plugins[0]; [2]bool{b.Hairpin, b.Promisc} != want {
			t.Errorf("%s: hairpinMode %v promiscMode %v, want %v", mode, b.Hairpin, b.Promisc, want)
		}
	}
}

// Until a PodCIDR arrives, kubenet is not ready with kubelet's own message;
// a bad PodCIDR is refused and leaves it so.
func TestNotReadyUntilAPodCIDR(t *testing.T) {
	p := newPlugin(t)
	if err := p.Status(); err == nil || err.Error() != notReady {
		t.Fatalf("Status before a PodCIDR: %v, want %q", err, notReady)
	}
	if err := p.SetPodCIDR([]string{"198.18.4.0/33"}); err == nil {
		t.Fatal("a bad PodCIDR was accepted")
	}
	if err := p.Status(); err == nil || err.Error() != notReady {
		t.Fatalf("Status after a refused PodCIDR: %v, want %q", err, notReady)
	}
	if err := p.SetPodCIDR([]string{"198.18.4.0/24"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Status(); err != nil && err.Error() == notReady {
		t.Fatal("still no netConfig after a PodCIDR")
	}
}

// The masquerade rule spares the cluster's CIDR and local destinations, and
// names its CIDR, so a changed --non-masquerade-cidr adds its own rule.
func TestMasqueradeRule(t *testing.T) {
	p := newPlugin(t)
	rule := strings.Join(p.masqueradeRule(), " ")
	for _, want := range []string{"! -d 198.18.0.0/15", "(198.18.0.0/15)", "! --dst-type LOCAL", "-j MASQUERADE"} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule %q lacks %q", rule, want)
		}
	}
	p.nonMasqueradeCIDR = "10.0.0.0/8"
	if other := strings.Join(p.masqueradeRule(), " "); other == rule {
		t.Error("another --non-masquerade-cidr gives the same rule")
	}
}

// A bad --non-masquerade-cidr is refused before kubenet touches the node.
func TestInitRefusesABadNonMasqueradeCIDR(t *testing.T) {
	p := newPlugin(t)
	if err := p.Init(nil, network.HairpinNone, "198.18.0.0/99", 0); err == nil {
		t.Fatal("Init accepted a bad --non-masquerade-cidr")
	}
}
