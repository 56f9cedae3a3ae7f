// Package kubenet is kubelet's kubenet network plugin rebuilt on the CNI
// reference plugins: a Linux bridge (cbr0) with host-local IPAM over the
// node's PodCIDR, portmap and bandwidth, after loopback. It needs no files
// in the conf dir; its config is generated when the PodCIDR arrives.
package kubenet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/coreos/go-iptables/iptables"
	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/network/cni"
	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"
)

// PluginName is the --network-plugin value that selects kubenet.
const PluginName = "kubenet"

// DefaultBridge is kubenet's bridge name.
const DefaultBridge = "cbr0"

// notReady is kubelet's message for a kubenet without a PodCIDR, kept word for word.
const notReady = "kubenet does not have netConfig. This is most likely due to lack of PodCIDR"

// Config places kubenet's bridge and state.
type Config struct {
	BinDirs  []string
	CacheDir string // libcni's cache; host-local keeps its leases in CacheDir/networks
	Bridge   string
	// LoopbackPlugin: see cni.Config.
	LoopbackPlugin bool
}

// Plugin is kubenet: the cni engine with a generated network.
type Plugin struct {
	*cni.Plugin
	cfg               Config
	hairpinMode       network.HairpinMode
	nonMasqueradeCIDR string
	mtu               int

	mu       sync.Mutex
	podCIDRs []string
	masqDone bool
}

// New returns an uninitialised kubenet.
func New(cfg Config) (*Plugin, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	engine, err := cni.New(cni.Config{BinDirs: cfg.BinDirs, CacheDir: cfg.CacheDir, LoopbackPlugin: cfg.LoopbackPlugin})
	if err != nil {
		return nil, err
	}
	return &Plugin{Plugin: engine, cfg: cfg}, nil
}

func (p *Plugin) Name() string { return PluginName }

// Init keeps kubenet's settings. Hairpin goes into the bridge config (kubenet
// owns its bridge). With br_netfilter on, though, a DNATed frame is bridged
// straight back out of the port it came in on, which only the port's
// hairpin_mode allows: a promiscuous bridge alone no longer lets a pod reach
// itself. The bridge plugin refuses both flags at once, so under
// promiscuous-bridge the engine sets hairpin on each pod's port after ADD.
func (p *Plugin) Init(host network.Host, hairpinMode network.HairpinMode, nonMasqueradeCIDR string, mtu int) error {
	if _, _, err := net.ParseCIDR(nonMasqueradeCIDR); err != nil {
		return fmt.Errorf("--non-masquerade-cidr %q: %w", nonMasqueradeCIDR, err)
	}
	p.hairpinMode, p.nonMasqueradeCIDR, p.mtu = hairpinMode, nonMasqueradeCIDR, mtu
	if p.mtu == 0 {
		p.mtu = defaultRouteMTU()
	}
	portHairpin := network.HairpinNone
	if hairpinMode == network.HairpinPromiscuousBridge {
		portHairpin = network.HairpinVeth
	}
	return p.Plugin.Init(host, portHairpin, nonMasqueradeCIDR, mtu)
}

// Status is kubelet's "no netConfig" until a PodCIDR has arrived.
func (p *Plugin) Status() error {
	p.mu.Lock()
	cidrs := p.podCIDRs
	p.mu.Unlock()
	if len(cidrs) == 0 {
		return fmt.Errorf("%s", notReady)
	}
	return p.Plugin.Status()
}

// SetPodCIDR generates the network for the node's PodCIDR(s) and swaps it in.
func (p *Plugin) SetPodCIDR(cidrs []string) error {
	if err := p.Plugin.SetPodCIDR(cidrs); err != nil {
		return err
	}
	conf, err := p.netConfig(cidrs)
	if err != nil {
		return err
	}
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil {
		return fmt.Errorf("kubenet config for %v: %w", cidrs, err)
	}
	p.mu.Lock()
	p.podCIDRs = append([]string(nil), cidrs...)
	p.mu.Unlock()
	p.SetNetwork(&cni.Network{File: "kubenet (generated for PodCIDR " + fmt.Sprint(cidrs) + ")", List: list})
	return nil
}

// SetUpPod makes sure outbound traffic is masqueraded, then wires the pod.
func (p *Plugin) SetUpPod(ctx context.Context, pod network.Pod) (*network.PodNetworkStatus, error) {
	if err := p.ensureMasquerade(); err != nil {
		return nil, err
	}
	return p.Plugin.SetUpPod(ctx, pod)
}

// netConfig is kubelet's kubenet template as a conflist: the bridge is the
// gateway, masquerading is kubenet's own rule (not the bridge plugin's), and
// the hairpin mode is the bridge's to apply.
func (p *Plugin) netConfig(cidrs []string) ([]byte, error) {
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, c := range cidrs {
		ip, _, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("invalid pod CIDR %q: %w", c, err)
		}
		ranges = append(ranges, []map[string]string{{"subnet": c}})
		dst := "0.0.0.0/0"
		if ip.To4() == nil {
			dst = "::/0"
		}
		routes = append(routes, map[string]string{"dst": dst})
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": p.cfg.Bridge, "mtu": p.mtu, "addIf": "eth0",
		"isGateway": true, "ipMasq": false,
		"hairpinMode": p.hairpinMode == network.HairpinVeth,
		"promiscMode": p.hairpinMode == network.HairpinPromiscuousBridge,
		"ipam": map[string]any{
			"type": "host-local", "ranges": ranges, "routes": routes,
			"dataDir": filepath.Join(p.cfg.CacheDir, "networks"),
		},
	}
	return json.Marshal(map[string]any{
		"cniVersion": "1.0.0",
		"name":       PluginName,
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
			map[string]any{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}},
		},
	})
}

// masqueradeRule is kubenet's outbound rule; its comment names the CIDR so a changed
// --non-masquerade-cidr adds its own rule rather than matching an old one.
func (p *Plugin) masqueradeRule() []string {
	return []string{"!", "-d", p.nonMasqueradeCIDR, "-m", "comment", "--comment",
		"kubenet: SNAT for outbound traffic from cluster (" + p.nonMasqueradeCIDR + ")",
		"-m", "addrtype", "!", "--dst-type", "LOCAL", "-j", "MASQUERADE"}
}

// ensureMasquerade adds kubenet's outbound masquerade rule once, as kubelet did:
// traffic to outside --non-masquerade-cidr leaves with the node's address.
func (p *Plugin) ensureMasquerade() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.masqDone {
		return nil
	}
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("kubenet masquerade rule: %w", err)
	}
	if err := ipt.AppendUnique("nat", "POSTROUTING", p.masqueradeRule()...); err != nil {
		return fmt.Errorf("kubenet masquerade rule: %w", err)
	}
	p.masqDone = true
	return nil
}

// defaultRouteMTU is the MTU of the interface the default route uses, as
// kubelet picked for kubenet; 1500 when there is none.
func defaultRouteMTU() int {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err == nil {
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
					return l.Attrs().MTU
				}
			}
		}
	}
	klog.V(2).InfoS("No default route; kubenet uses MTU 1500")
	return 1500
}
