package cri

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

// sysctlKnown reports whether the kernel has the sysctl, as far as the
// node can tell: a per-interface or per-neighbour-table one names a device
// that exists only in the pod, so only its parent is looked for.
func sysctlKnown(name string) bool {
	parts := strings.Split(strings.ReplaceAll(name, ".", "/"), "/")
	if strings.Contains(name, "/") {
		parts = strings.Split(name, "/") // dots are part of a segment (eth0.100)
	}
	if len(parts) >= 4 && parts[0] == "net" && (parts[2] == "conf" || parts[2] == "neigh") {
		parts = parts[:3] // net/ipv4/conf/<dev>/...: the device is the pod's
	}
	_, err := os.Stat(filepath.Join(append([]string{procSys}, parts...)...))
	return err == nil
}

// namespacedSysctl reports which namespace a sysctl belongs to, as kubelet's
// rules have it: only these may be set per pod, since any other one would
// change the whole node. It returns "" for a sysctl that is not namespaced.
func namespacedSysctl(name string) string {
	n := strings.ReplaceAll(name, "/", ".")
	switch {
	case n == "kernel.sem", strings.HasPrefix(n, "kernel.shm"), strings.HasPrefix(n, "kernel.msg"), strings.HasPrefix(n, "fs.mqueue."):
		return "ipc"
	case strings.HasPrefix(n, "net."):
		return "net"
	}
	return ""
}

// validateSysctls refuses what would escape the pod: unknown or node-wide
// sysctls, net.* with the node's network, and IPC ones with the node's IPC.
func validateSysctls(cfg *runtimeapi.PodSandboxConfig) error {
	ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	for name := range cfg.GetLinux().GetSysctls() {
		field := "config.linux.sysctls[" + name + "]"
		if len(name) > 253 || !sysctlName.MatchString(name) {
			return invalid("%s: %q is not a sysctl name", field, name)
		}
		if v := cfg.GetLinux().GetSysctls()[name]; hasControl(v) || len(v) > maxSysctlValueLen {
			return invalid("%s: the value %q holds a newline or other control character, or is over %d characters", field, v, maxSysctlValueLen)
		}
		if !sysctlKnown(name) {
			return invalid("%s: %q is not a sysctl this kernel has", field, name)
		}
		switch namespacedSysctl(name) {
		case "":
			return invalid("%s: %q is not a namespaced sysctl, so setting it would change the whole node", field, name)
		case "net":
			if ns.GetNetwork() == runtimeapi.NamespaceMode_NODE {
				return invalid("%s: %q cannot be set for a pod on the node's network", field, name)
			}
		case "ipc":
			if ns.GetIpc() == runtimeapi.NamespaceMode_NODE {
				return invalid("%s: %q cannot be set for a pod with the node's IPC namespace", field, name)
			}
		}
	}
	return nil
}
