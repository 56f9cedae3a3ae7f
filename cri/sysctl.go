package cri

import (
	"regexp"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sysctlName is kubelet's sysctl name syntax: segments of [a-z0-9_-] joined
// by '.' or '/' (with '/' the name may hold dots, as in net/ipv4/conf/eth0.100/...).
var sysctlName = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`)

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
