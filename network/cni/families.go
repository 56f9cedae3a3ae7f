package cni

import (
	"encoding/json"
	"net"
)

// IPFamilies says which address families the default network gives pods,
// as far as its IPAM config tells (host-local's subnet and ranges, which
// kubenet's generated network uses too). known is false when no plugin
// names a subnet (another IPAM, or no network loaded).
func (p *Plugin) IPFamilies() (v4, v6, known bool) {
	def := p.defaultNet.Load()
	if def == nil {
		return false, false, false
	}
	for _, plugin := range def.List.Plugins {
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
