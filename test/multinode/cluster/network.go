package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/sandbox"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// underlayBridge joins the nodes' eth0s, inside the underlay namespace.
const underlayBridge = "underlay0"

// withLinks runs f with a netlink handle bound to the netns pinned at path.
func withLinks(path string, f func(h *netlink.Handle) error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	h, err := netlink.NewHandleAt(target)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	return f(h)
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

func (c *Cluster) makeUnderlay() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	if err := sandbox.CreatePinnedNetNS(c.Underlay); err != nil {
		return fmt.Errorf("underlay: %w", err)
	}
	return withLinks(c.Underlay, func(h *netlink.Handle) error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: underlayBridge, MTU: underlayMTU}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("underlay: add bridge: %w", err)
		}
		if err := setUp(h, underlayBridge); err != nil {
			return fmt.Errorf("underlay: %w", err)
		}
		return setUp(h, "lo")
	})
}

// makeNode creates the node's netns and plugs its eth0 into the underlay
// bridge, with the node's underlay address, and turns forwarding on as a
// node that routes for its pods needs.
func (c *Cluster) makeNode(n *Node) error {
	if err := c.plugIntoUnderlay(n.Name, n.NetNS, n.IP); err != nil {
		return err
	}
	return ns.WithNetNSPath(n.NetNS, func(ns.NetNS) error {
		// /proc/sys/net answers for the netns of the thread that opens it.
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
}

// plugIntoUnderlay creates a netns pinned at pin whose eth0, addressed ip,
// is a port of the underlay bridge (named name on the bridge's side).
func (c *Cluster) plugIntoUnderlay(name, pin, ip string) error {
	if err := sandbox.CreatePinnedNetNS(pin); err != nil {
		return err
	}
	nodeNS, err := netns.GetFromPath(pin)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", pin, err)
	}
	defer nodeNS.Close()
	err = withLinks(c.Underlay, func(h *netlink.Handle) error {
		br, err := h.LinkByName(underlayBridge)
		if err != nil {
			return fmt.Errorf("find underlay bridge: %w", err)
		}
		// The node end is made straight in the node's netns: nothing ever
		// appears in the host's.
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: underlayMTU},
			PeerName: "eth0", PeerNamespace: netlink.NsFd(nodeNS)}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth to underlay: %w", err)
		}
		if err := h.LinkSetMaster(veth, br); err != nil {
			return fmt.Errorf("attach veth to underlay bridge: %w", err)
		}
		return setUp(h, name)
	})
	if err != nil {
		return err
	}
	return withLinks(pin, func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("find eth0: %w", err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(24, 32)}}
		if err := h.AddrAdd(eth0, addr); err != nil {
			return fmt.Errorf("address eth0: %w", err)
		}
		if err := setUp(h, "eth0"); err != nil {
			return err
		}
		return setUp(h, "lo")
	})
}

// joinPodSubnets programs each node the way flannel's daemon would for the
// chosen backend, so that every node can route to every other node's pods.
func (c *Cluster) joinPodSubnets() error {
	if c.Spec.Backend == VXLAN {
		for _, n := range c.Nodes {
			if err := n.makeVTEP(); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
	}
	for _, n := range c.Nodes {
		for _, peer := range c.Nodes {
			if peer == n {
				continue
			}
			var err error
			if c.Spec.Backend == VXLAN {
				err = n.routeViaVTEP(peer)
			} else {
				err = n.routeViaHost(peer)
			}
			if err != nil {
				return fmt.Errorf("%s: route to %s's pods: %w", n.Name, peer.Name, err)
			}
		}
	}
	return nil
}

func (n *Node) podSubnet() *net.IPNet {
	_, cidr, _ := net.ParseCIDR(n.PodCIDR)
	return cidr
}

// vtepIP is the VTEP's address: the pod subnet's network address, as flannel gives flannel.1.
func (n *Node) vtepIP() net.IP { return n.podSubnet().IP }

// routeViaHost is host-gw: the peer's pod subnet via the peer's underlay address.
func (n *Node) routeViaHost(peer *Node) error {
	return withLinks(n.NetNS, func(h *netlink.Handle) error {
		return h.RouteAdd(&netlink.Route{Dst: peer.podSubnet(), Gw: net.ParseIP(peer.IP)})
	})
}

// makeVTEP adds the node's VXLAN device, addressed with its VTEP IP, and
// records the MAC the kernel gave it for the other nodes' entries.
func (n *Node) makeVTEP() error {
	return withLinks(n.NetNS, func(h *netlink.Handle) error {
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("find eth0: %w", err)
		}
		vx := &netlink.Vxlan{
			LinkAttrs:    netlink.LinkAttrs{Name: vxlanDevice, MTU: underlayMTU - vxlanOverhead},
			VxlanId:      vxlanVNI,
			VtepDevIndex: eth0.Attrs().Index,
			SrcAddr:      net.ParseIP(n.IP),
			Port:         vxlanPort,
			Learning:     false, // every peer is programmed, as flannel does
		}
		if err := h.LinkAdd(vx); err != nil {
			return fmt.Errorf("add %s: %w", vxlanDevice, err)
		}
		link, err := h.LinkByName(vxlanDevice)
		if err != nil {
			return fmt.Errorf("find %s: %w", vxlanDevice, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.vtepIP(), Mask: net.CIDRMask(32, 32)}}
		if err := h.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("address %s: %w", vxlanDevice, err)
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", vxlanDevice, err)
		}
		n.VTEPMAC = link.Attrs().HardwareAddr.String()
		return nil
	})
}

// routeViaVTEP is flannel's VXLAN programming for one peer: the peer's pod
// subnet via its VTEP IP on flannel.1 (onlink, as that IP is a /32 elsewhere),
// a permanent ARP entry for that IP, and a permanent FDB entry sending the
// VTEP's MAC to the peer's underlay address.
func (n *Node) routeViaVTEP(peer *Node) error {
	mac, err := net.ParseMAC(peer.VTEPMAC)
	if err != nil {
		return fmt.Errorf("VTEP MAC of %s: %w", peer.Name, err)
	}
	return withLinks(n.NetNS, func(h *netlink.Handle) error {
		vx, err := h.LinkByName(vxlanDevice)
		if err != nil {
			return fmt.Errorf("find %s: %w", vxlanDevice, err)
		}
		idx := vx.Attrs().Index
		arp := &netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: peer.vtepIP(), HardwareAddr: mac}
		if err := h.NeighSet(arp); err != nil {
			return fmt.Errorf("neighbour entry: %w", err)
		}
		fdb := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: net.ParseIP(peer.IP), HardwareAddr: mac}
		if err := h.NeighAppend(fdb); err != nil {
			return fmt.Errorf("FDB entry: %w", err)
		}
		route := &netlink.Route{Dst: peer.podSubnet(), Gw: peer.vtepIP(), LinkIndex: idx, Flags: int(netlink.FLAG_ONLINK)}
		if err := h.RouteAdd(route); err != nil {
			return fmt.Errorf("route: %w", err)
		}
		return nil
	})
}

// unpin removes a netns pin; the namespace, and every link in it, goes
// when its last user does.
func unpin(path string) error {
	if err := sandbox.UnpinNetNS(path); err != nil {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// Host is a namespace on the underlay with no netshim: a control plane, a
// registry, a client.
type Host struct {
	Name  string `json:"name"`
	NetNS string `json:"netns"`
	IP    string `json:"ip"`
}

// AddHost plugs a new namespace, <cluster>-NAME, into the underlay at
// 198.19.0.OCTET. It has no routes to the pods: RouteToPods adds them.
// Down removes it with the rest.
func (c *Cluster) AddHost(name string, octet int) (*Host, error) {
	if octet <= len(c.Nodes) || octet > 254 {
		return nil, fmt.Errorf("host %s: octet %d is a node's or out of range", name, octet)
	}
	h := &Host{Name: name, NetNS: filepath.Join(netnsDir, c.Spec.Name+"-"+name), IP: fmt.Sprintf("198.19.0.%d", octet)}
	c.Hosts = append(c.Hosts, h)
	if err := c.save(); err != nil { // before it exists, so Down finds it
		return nil, err
	}
	if err := c.plugIntoUnderlay(name, h.NetNS, h.IP); err != nil {
		return nil, fmt.Errorf("host %s: %w", name, err)
	}
	return h, nil
}

// RouteToPods routes cidr, a node's pod subnet, from host h via that node,
// as a router that knows every node's PodCIDR would.
func (h *Host) RouteToPods(cidr string, via *Node) error {
	return replaceRoute(h.NetNS, cidr, via.IP)
}

// SetDefaultRoute gives the node a default gateway on the underlay, as a
// real node has one: kube-proxy's Service addresses are routed nowhere
// else, and a node without a route cannot even send to them.
func (n *Node) SetDefaultRoute(gw string) error {
	return replaceRoute(n.NetNS, "0.0.0.0/0", gw)
}

func replaceRoute(pin, cidr, gw string) error {
	_, dst, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	return withLinks(pin, func(h *netlink.Handle) error {
		if err := h.RouteReplace(&netlink.Route{Dst: dst, Gw: net.ParseIP(gw)}); err != nil {
			return fmt.Errorf("route %s via %s: %w", cidr, gw, err)
		}
		return nil
	})
}
