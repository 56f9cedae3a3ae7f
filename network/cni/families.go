package cni

import (
	"encoding/json"
	"net"
	"sync"

	"github.com/containernetworking/cni/libcni"
)

// IPFamilies says which address families the default network gives pods,
// as far as its IPAM config tells (host-local's subnet and ranges, which
// kubenet's generated network uses too). known is false when no plugin
// names a subnet (another IPAM, or no network loaded). It is asked on
// every RunPodSandbox, so each network's config is read once.
func (p *Plugin) IPFamilies() (v4, v6, known bool) {
	def := p.defaultNet.Load()
	if def == nil {
		return false, false, false
	}
	f := &def.families
	f.once.Do(func() { f.v4, f.v6, f.known = ipamFamilies(def.List) })
	return f.v4, f.v6, f.known
}

// familiesOnce holds a network's address families once they are read.
type familiesOnce struct {
	once          sync.Once
	v4, v6, known bool
}

// ipamFamilies reads the address families from the subnets the list's
// plugins give their IPAM.
func ipamFamilies(list *libcni.NetworkConfigList) (v4, v6, known bool) {
	for _, plugin := range list.Plugins {
		var conf struct {
			IPAM struct {
				Subnet string `json:"subnet"`
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		}
		if json.Unmarshal(plugin.Bytes, &conf) != nil {
			continue
		}
		subnets := []string{conf.IPAM.Subnet}
		for _, set := range conf.IPAM.Ranges {
			for _, r := range set {
				subnets = append(subnets, r.Subnet)
			}
		}
		for _, s := range subnets {
			ip, _, err := net.ParseCIDR(s)
			if err != nil {
				continue
			}
			known = true
			if ip.To4() != nil {
				v4 = true
			} else {
				v6 = true
			}
		}
	}
	return v4, v6, known
}
