package validate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sysctlName is kubelet's sysctl name syntax: segments of [a-z0-9_-] joined
// by '.' or '/' (with '/' the name may hold dots, as in net/ipv4/conf/eth0.100/...).
var sysctlName = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

// maxSysctlValueLen bounds a value: the kernel reads at most a page.
const maxSysctlValueLen = 4096

// procSys is where the kernel's sysctls are; a variable for the tests.
var procSys = "/proc/sys"

// ipcSysctls are the IPC sysctls runc sets in a pod's own IPC namespace
// (its validator's list, plus fs.mqueue.*). kubelet's rule takes every
// kernel.shm*/kernel.msg* name, but runc refuses the others, such as
// kernel.shm_next_id, and the refusal came back as Internal.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// sysctlFile is the file under procSys that runc writes for name: runc
// turns every '.' into '/', whichever separator the name uses.
func sysctlFile(name string) string {
	return filepath.Join(procSys, strings.ReplaceAll(name, ".", "/"))
}

// sysctlKnown reports whether the kernel has the sysctl as one file, as far
// as the node can tell. A per-interface or per-neighbour-table sysctl names
// a device that may exist only in the pod (eth0 is made by the network
// plugin), so for one the node lacks, the same sysctl of the "default"
// device is looked for: every device has the files "default" has.
func sysctlKnown(name string) bool {
	if isRegular(sysctlFile(name)) {
		return true
	}
	parts := strings.Split(strings.ReplaceAll(name, ".", "/"), "/")
	if len(parts) >= 5 && parts[0] == "net" && (parts[2] == "conf" || parts[2] == "neigh") {
		parts[3] = "default"
		return isRegular(filepath.Join(append([]string{procSys}, parts...)...))
	}
	return false
}

func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// namespacedSysctl reports which namespace a sysctl belongs to, as kubelet's
// rules have it, narrowed to the IPC ones runc accepts: only these may be
// set per pod, since any other one would change the whole node. It returns
// "" for a sysctl that is not namespaced.
func namespacedSysctl(name string) string {
	n := strings.ReplaceAll(name, "/", ".") // a '/' name holds no dots (validateSysctls)
	switch {
	case ipcSysctls[n], strings.HasPrefix(n, "fs.mqueue."):
		return "ipc"
	case strings.HasPrefix(n, "net."):
		return "net"
	}
	return ""
}

// hasValueControl reports a control character other than a tab in a sysctl
// value: the kernel reads tabs and spaces as separators (tcp_rmem is shown
// tab-separated), but a newline starts another write, as `1\n0` did.
func hasValueControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f })
}

// validateSysctls refuses what would escape the pod or fail in runc:
// malformed, unknown or node-wide sysctls, net.* with the node's network,
// and IPC ones with the node's IPC.
func validateSysctls(cfg *runtimeapi.PodSandboxConfig) error {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	for name, value := range cfg.GetLinux().GetSysctls() {
		field := "config.linux.sysctls[" + name + "]"
		if len(name) > 253 || !sysctlName.MatchString(name) {
			return invalid(field, ": %q is not a sysctl name: want parts of lower-case letters, digits, '_' and '-', joined by '.' or '/'", name)
		}
		if strings.Contains(name, "/") && strings.Contains(name, ".") {
			return invalid(field, ": %q names a device with a dot in it; runc, which sets the pod's sysctls, reads every '.' as a separator, so it cannot set this one", name)
		}
		if hasValueControl(value) || len(value) > maxSysctlValueLen {
			return invalid(field, ": the value %q holds a newline or other control character, or is over %d characters", value, maxSysctlValueLen)
		}
		if !sysctlKnown(name) {
			return invalid(field, ": %q is not a sysctl this kernel has (%s is not a file)", name, sysctlFile(name))
		}
		switch namespacedSysctl(name) {
		case "":
			if n := strings.ReplaceAll(name, "/", "."); strings.HasPrefix(n, "kernel.shm") || strings.HasPrefix(n, "kernel.msg") || strings.HasPrefix(n, "kernel.sem") {
				return invalid(field, ": %q is not one of the IPC sysctls runc sets per pod (kernel.msgmax, msgmnb, msgmni, sem, shmall, shmmax, shmmni, shm_rmid_forced and fs.mqueue.*)", name)
			}
			return invalid(field, ": %q is not a namespaced sysctl that runc can set per pod, so setting it would change the whole node", name)
		case "net":
			if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
				return invalid(field, ": %q cannot be set for a pod on the node's network", name)
			}
		case "ipc":
			if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
				return invalid(field, ": %q cannot be set for a pod with the node's IPC namespace", name)
			}
		}
	}
	return nil
}
