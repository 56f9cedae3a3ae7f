package network

import (
	"fmt"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// BringUpLoopback sets lo up in the netns pinned at path: all the loopback
// CNI plugin's ADD does, without a plugin process (containerd offers the
// same as use_internal_loopback). Its DEL would only set lo down in a netns
// about to be destroyed, so there is nothing to undo.
func BringUpLoopback(path string) error {
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		return fmt.Errorf("bring up lo in %s: %w", path, err)
	}
	return nil
}
