package preflight

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/pkg/cgroupdriver"
)

// persistSysctl is where the fixes put sysctls so they survive a reboot.
const persistSysctl = "/etc/sysctl.d/99-netshim.conf"

// checkBridgeNetfilter: without br_netfilter and bridge-nf-call-iptables,
// traffic between pods on one bridge skips iptables, so Services (kube-proxy's
// DNAT) fail between pods of the same node.
func checkBridgeNetfilter(c Config) []Result {
	sev := c.networkSeverity()
	bridgeDir := filepath.Join(c.ProcDir, "sys/net/bridge")
	if _, err := os.Stat(bridgeDir); err != nil {
		r := Result{Check: "br_netfilter", Severity: sev,
			Fix: "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/netshim.conf"}
		r.Message = "module not loaded (" + bridgeDir + " is missing): pod-to-Service traffic on the node's bridge bypasses iptables"
		if has, known := hasModule(c.ModulesDir, "br_netfilter"); known && !has {
			r.Message = "not in this kernel (neither loaded nor under " + c.ModulesDir + "): pod-to-Service traffic on the node's bridge bypasses iptables"
			r.Fix = "boot a kernel with CONFIG_BRIDGE_NETFILTER (Debian's has it as a module)"
		}
		return []Result{r}
	}
	return []Result{
		{Check: "br_netfilter", Message: "loaded"},
		checkSysctl(c, "net/bridge/bridge-nf-call-iptables", sev, "bridged IPv4 pod traffic bypasses iptables: Services fail between pods of this node"),
		checkSysctl(c, "net/bridge/bridge-nf-call-ip6tables", Warning, "bridged IPv6 pod traffic bypasses ip6tables: IPv6 Services fail between pods of this node"),
	}
}

func checkIPForward(c Config) Result {
	return checkSysctl(c, "net/ipv4/ip_forward", c.networkSeverity(), "the node does not route: pods cannot reach anything beyond it")
}

// checkSysctl wants the sysctl at name (a path under /proc/sys) to be 1.
func checkSysctl(c Config, name string, off Severity, why string) Result {
	dotted := strings.ReplaceAll(name, "/", ".")
	r := Result{Check: dotted}
	fix := fmt.Sprintf("sysctl -w %s=1 && echo '%s = 1' >> %s", dotted, dotted, persistSysctl)
	v, err := readTrimmed(filepath.Join(c.ProcDir, "sys", name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Severity, r.Fix = off, fix
		r.Message = "missing from this kernel: " + why
	case err != nil:
		r.Severity, r.Fix = off, fix
		r.Message = fmt.Sprintf("cannot read: %v", err)
	case v != "1":
		r.Severity, r.Fix = off, fix
		r.Message = fmt.Sprintf("is %s, want 1: %s", v, why)
	default:
		r.Message = "1"
	}
	return r
}

// checkOverlay: every container's rootfs is an overlay of its image's layers.
func checkOverlay(c Config) Result {
	r := Result{Check: "overlayfs"}
	path := filepath.Join(c.ProcDir, "filesystems")
	f, err := os.Open(path)
	if err != nil {
		r.Severity, r.Message = Failure, fmt.Sprintf("cannot read %s: %v", path, unwrapPathError(err))
		r.Fix = "mount proc on /proc"
		return r
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[len(fields)-1] == "overlay" {
			r.Message = "supported"
			return r
		}
	}
	if has, _ := hasModule(c.ModulesDir, "overlay"); has {
		// The kernel loads it on the first overlay mount.
		r.Message = "supported (module, loaded on first use)"
		return r
	}
	r.Severity = Failure
	r.Message = "not supported by this kernel: containers get their rootfs as an overlay mount"
	r.Fix = "modprobe overlay && echo overlay > /etc/modules-load.d/netshim.conf"
	return r
}

// hasModule reports whether this kernel has module, built in or to load,
// from modules.builtin and modules.dep of dir; known is false when dir has
// neither, so a missing module tree is not taken for a missing module.
func hasModule(dir, module string) (has, known bool) {
	if dir == "" {
		return false, false
	}
	for _, index := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(filepath.Join(dir, index))
		if err != nil {
			continue
		}
		known = true
		for _, line := range strings.Split(string(b), "\n") {
			path, _, _ := strings.Cut(line, ":")
			if strings.HasPrefix(filepath.Base(path), module+".ko") {
				return true, true
			}
		}
	}
	return false, known
}

// cgroupControllers are the ones kubelet and netshim limit pods with.
var cgroupControllers = []string{"cpu", "memory", "pids"}

// checkCgroups reports the cgroup version and netshim's driver, which kubelet
// must be configured to match.
func checkCgroups(c Config) Result {
	r := Result{Check: "cgroups"}
	root := filepath.Join(c.SysDir, "fs/cgroup")
	name := c.CgroupDriver
	if name == "" {
		name = string(cgroupdriver.Cgroupfs)
	}
	driver := fmt.Sprintf("driver %s (set kubelet's cgroupDriver: %s to match)", name, name)
	if name == string(cgroupdriver.Systemd) {
		runDir := c.RunDir
		if runDir == "" {
			runDir = "/run"
		}
		if err := cgroupdriver.CheckInit(c.ProcDir, runDir); err != nil {
			r.Severity = Failure
			r.Message = err.Error()
			r.Fix = "use --cgroup-driver=cgroupfs here, or run netshim on a node that systemd booted"
			return r
		}
	}
	var version string
	var have map[string]bool
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		version = "v2"
		have = map[string]bool{}
		for _, name := range strings.Fields(string(b)) {
			have[name] = true
		}
	} else if st, err := os.Stat(filepath.Join(root, "memory")); err == nil && st.IsDir() {
		version = "v1"
		have = map[string]bool{}
		for _, name := range cgroupControllers {
			if st, err := os.Stat(filepath.Join(root, name)); err == nil && st.IsDir() {
				have[name] = true
			}
		}
	} else {
		r.Severity = Failure
		r.Message = "no cgroup hierarchy at " + root + ": netshim cannot limit or account for pods"
		r.Fix = "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)"
		return r
	}
	var missing []string
	for _, name := range cgroupControllers {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		r.Severity = Warning
		r.Message = fmt.Sprintf("%s, %s; controllers missing: %s (pods' limits on them are not applied)", version, driver, strings.Join(missing, ", "))
		r.Fix = "enable them on the kernel command line (e.g. cgroup_enable=memory) and reboot"
		return r
	}
	r.Message = version + ", " + driver
	return r
}
