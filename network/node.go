package network

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"
)

// bridgeNFSysctls make bridged pod traffic traverse iptables, which kube-proxy
// and the portmap plugin rely on.
var bridgeNFSysctls = []string{"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"}

// procSys is where sysctls live; a variable so unit tests can point it at a temp dir.
var procSys = "/proc/sys"

// InitNode does the node set-up every plugin shares: load br_netfilter where
// the machine allows and switch the bridge-nf-call sysctls on. It warns rather
// than fails, as kubelet did, because some nodes run without br_netfilter.
func InitNode() {
	if _, err := os.Stat(filepath.Join(procSys, "net/bridge")); os.IsNotExist(err) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			klog.InfoS("Could not load br_netfilter; bridged traffic may bypass iptables", "err", err, "output", string(out))
		}
	}
	for _, s := range bridgeNFSysctls {
		if err := setSysctl(s, "1"); err != nil {
			klog.InfoS("Could not enable bridge netfilter sysctl", "sysctl", s, "err", err)
		}
	}
}

func setSysctl(name, value string) error {
	path := filepath.Join(procSys, name)
	cur, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(cur) > 0 && string(cur[:len(cur)-1]) == value {
		return nil
	}
	return os.WriteFile(path, []byte(value), 0o644)
}

// ApplyHairpin sets the hairpin mode on the bridge port of a pod's host-side
// interface: hairpin_mode on the port itself, or promiscuous mode on its
// bridge. Without it a pod cannot reach itself through a service or hostPort.
func ApplyHairpin(mode HairpinMode, hostIfName string) error {
	if mode == HairpinNone || hostIfName == "" {
		return nil
	}
	link, err := netlink.LinkByName(hostIfName)
	if err != nil {
		return fmt.Errorf("find host interface %s: %w", hostIfName, err)
	}
	if link.Attrs().MasterIndex == 0 {
		return nil // not attached to a bridge: nothing to hairpin
	}
	switch mode {
	case HairpinVeth:
		if err := netlink.LinkSetHairpin(link, true); err != nil {
			return fmt.Errorf("set hairpin_mode on %s: %w", hostIfName, err)
		}
	case HairpinPromiscuousBridge:
		bridge, err := netlink.LinkByIndex(link.Attrs().MasterIndex)
		if err != nil {
			return fmt.Errorf("find bridge of %s: %w", hostIfName, err)
		}
		if bridge.Attrs().Promisc == 0 {
			if err := netlink.SetPromiscOn(bridge); err != nil {
				return fmt.Errorf("set bridge %s promiscuous: %w", bridge.Attrs().Name, err)
			}
		}
	}
	return nil
}
