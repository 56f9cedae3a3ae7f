package preflight

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/netshim/netshim/network/cni"
)

// confExtensions are the files netshim (and kubelet, containerd) read from
// the conf dir, in lexical order.
var confExtensions = []string{".conf", ".conflist", ".json"}

// kubenetPlugins are the binaries kubenet's generated network runs.
var kubenetPlugins = []string{"bridge", "host-local", "portmap", "bandwidth"}

const installPluginsFix = "make install (puts the CNI reference plugins in /opt/cni/bin), or set --cni-bin-dir to where they are"

// checkNetwork reports the default network netshim would load and every
// plugin binary it names, its IPAM plugins included.
func checkNetwork(c Config) []Result {
	switch c.NetworkPlugin {
	case "", "none":
		return []Result{{Check: "network", Message: "plugin none: pods get loopback only; no CNI config needed"}}
	case "kubenet":
		rs := []Result{{Check: "network", Message: "plugin kubenet: its network is generated once kubelet sends the PodCIDR"}}
		for _, p := range kubenetPlugins {
			rs = append(rs, checkPluginBinary(c, p, "kubenet"))
		}
		return rs
	case "cni":
	default:
		return []Result{{Check: "network", Severity: Failure,
			Message: fmt.Sprintf("unknown --network-plugin %q", c.NetworkPlugin),
			Fix:     "set --network-plugin to cni, kubenet or none"}}
	}

	noConf := Result{Check: "cni config", Severity: Failure,
		Fix: "make install (puts 10-netshim.conflist in /etc/cni/net.d when it holds none), or write a network config there, or set --cni-conf-dir"}
	files, err := libcni.ConfFiles(c.CNIConfDir, confExtensions)
	if err != nil {
		noConf.Message = fmt.Sprintf("cannot read %s: %v", c.CNIConfDir, err)
		return []Result{noConf}
	}
	var rs []Result
	for _, file := range files {
		list, err := cni.LoadFile(file)
		if err != nil {
			rs = append(rs, Result{Check: "cni config", Severity: Warning,
				Message: fmt.Sprintf("%s is skipped: %v", file, err),
				Fix:     "fix or remove " + file})
			continue
		}
		rs = append(rs, Result{Check: "cni config",
			Message: fmt.Sprintf("default network %q from %s (cniVersion %s)", list.Name, file, list.CNIVersion)})
		for _, p := range pluginsOf(list) {
			rs = append(rs, checkPluginBinary(c, p, filepath.Base(file)))
		}
		return rs
	}
	noConf.Message = fmt.Sprintf("no network config (*.conf, *.conflist, *.json) in %s: NetworkReady stays false and no pod starts", c.CNIConfDir)
	return append(rs, noConf)
}

// pluginsOf lists the binaries a network runs: each plugin's type and its
// IPAM type, once each, in order.
func pluginsOf(list *libcni.NetworkConfigList) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, p := range list.Plugins {
		add(p.Network.Type)
		add(p.Network.IPAM.Type)
	}
	return names
}

// checkPluginBinary finds plugin in the bin dirs, as libcni will.
func checkPluginBinary(c Config, plugin, namedBy string) Result {
	r := Result{Check: "cni plugin " + plugin}
	for _, dir := range c.CNIBinDirs {
		path := filepath.Join(dir, plugin)
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			r.Severity, r.Fix = Failure, "chmod 0755 "+path
			r.Message = path + " is not an executable file"
			return r
		}
		r.Message = path
		return r
	}
	r.Severity, r.Fix = Failure, installPluginsFix
	r.Message = fmt.Sprintf("%s needs it and it is in none of %s", namedBy, strings.Join(c.CNIBinDirs, ", "))
	if namedBy != "kubenet" {
		r.Message += ": netshim skips that network"
	}
	return r
}
