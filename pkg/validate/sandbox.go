package validate

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Limits as Kubernetes sets them: object names are DNS subdomains (253),
// namespaces DNS labels (63); UIDs are UUIDs but the CRI does not insist.
const (
	maxNameLen      = 253
	maxNamespaceLen = 63
	maxUIDLen       = 128
	maxHostnameLen  = 64

	// kubelet's resolv.conf limits (pkg/apis/core/validation, applied in
	// pkg/kubelet/network/dns): what it would never pass, and what libc
	// would not read past. The search line counts the spaces between
	// domains; a domain over 253 characters kubelet drops, since glibc
	// 2.28 aborts on one.
	maxDNSServers       = 3
	maxDNSSearches      = 32
	maxDNSSearchListLen = 2048
	maxDNSSearchLen     = 253

	// A cgroup parent leaves room under PATH_MAX (4096) for the
	// hierarchy's mount point, the 64-hex sandbox and container IDs and
	// the file runc opens; each element is one directory name (NAME_MAX).
	maxCgroupParentLen = 3072
	maxCgroupNameLen   = 255
)

// Sandbox checks every field of a RunPodSandbox config the sandbox path uses. Names are
// not held to DNS rules (critest uses upper case), but they become parts of
// file names, so nothing that can steer a path is accepted.
// protectedDirs are netshim's own directories, which no pod may write into.
func Sandbox(cfg *runtimeapi.PodSandboxConfig, protectedDirs []string) error {
	if cfg == nil {
		return invalid("config", "is required")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return invalid("config.metadata", "is required")
	}
	if err := validatePathSafe("config.metadata.name", md.GetName(), maxNameLen); err != nil {
		return err
	}
	if err := validatePathSafe("config.metadata.namespace", md.GetNamespace(), maxNamespaceLen); err != nil {
		return err
	}
	if err := validatePathSafe("config.metadata.uid", md.GetUid(), maxUIDLen); err != nil {
		return err
	}
	if h := cfg.GetHostname(); h != "" && !isDNSLabelish(h, maxHostnameLen) {
		return invalid("config.hostname", "%q is not a valid hostname: want at most %d letters, digits, '-' and '.', starting and ending with a letter or digit", h, maxHostnameLen)
	}
	if err := validatePortMappings(cfg.GetPortMappings()); err != nil {
		return err
	}
	if err := validateDNS(cfg.GetDnsConfig()); err != nil {
		return err
	}
	if err := validateIsolation(cfg.GetLinux().GetSecurityContext()); err != nil {
		return err
	}
	if err := validateCgroupParent(cfg.GetLinux().GetCgroupParent()); err != nil {
		return err
	}
	if _, _, err := Bandwidth(cfg.GetAnnotations()); err != nil {
		return err
	}
	if err := validateSysctls(cfg); err != nil {
		return err
	}
	if d := cfg.GetLogDirectory(); d != "" {
		if hasControl(d) {
			return invalid("config.log_directory", "%q holds a control character", d)
		}
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return invalid("config.log_directory", "%q must be an absolute, clean path", d)
		}
		for _, own := range protectedDirs {
			if own = filepath.Clean(own); d == own || strings.HasPrefix(d, own+"/") {
				return invalid("config.log_directory", "%q is inside netshim's own directory %s", d, own)
			}
		}
	}
	return nil
}

// validatePortMappings checks each mapping, and that no host port is
// published twice for one protocol on overlapping host IPs (the second
// would silently lose to the first in portmap's rules).
func validatePortMappings(mappings []*runtimeapi.PortMapping) error {
	type key struct {
		port  int32
		proto runtimeapi.Protocol
	}
	seen := map[key][]string{} // host IPs, "" for all
	for i, pm := range mappings {
		field := fmt.Sprintf("config.port_mappings[%d]", i)
		if pm.GetContainerPort() < 1 || pm.GetContainerPort() > 65535 {
			return invalid(field+".container_port", "%d is out of range 1-65535", pm.GetContainerPort())
		}
		if pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 {
			return invalid(field+".host_port", "%d is out of range 0-65535", pm.GetHostPort())
		}
		if _, ok := runtimeapi.Protocol_name[int32(pm.GetProtocol())]; !ok {
			return invalid(field+".protocol", "%d is not TCP, UDP or SCTP", pm.GetProtocol())
		}
		ip := pm.GetHostIp()
		if ip != "" && net.ParseIP(ip) == nil {
			return invalid(field+".host_ip", "%q is not an IP address", ip)
		}
		if pm.GetHostPort() == 0 {
			continue // publishes nothing
		}
		k := key{pm.GetHostPort(), pm.GetProtocol()}
		for _, other := range seen[k] {
			if hostIPsOverlap(ip, other) {
				return invalid(field, ": host port %d/%s on host IP %q is already mapped by an earlier port mapping of this pod", pm.GetHostPort(), pm.GetProtocol(), ip)
			}
		}
		seen[k] = append(seen[k], ip)
	}
	return nil
}

// HostIPFamilies refuses a port mapping on a host IP of a family
// the pod network does not give the pod: it could never be reached.
func HostIPFamilies(mappings []*runtimeapi.PortMapping, v4, v6 bool) error {
	for i, pm := range mappings {
		ip := net.ParseIP(pm.GetHostIp())
		if ip == nil || pm.GetHostPort() == 0 {
			continue
		}
		if is4 := ip.To4() != nil; (is4 && !v4) || (!is4 && !v6) {
			family := map[bool]string{true: "IPv4", false: "IPv6"}[is4]
			return invalid(fmt.Sprintf("config.port_mappings[%d].host_ip", i), "%s is %s, which the pod network does not give pods", ip, family)
		}
	}
	return nil
}

// hostIPsOverlap: "" is every address of both families, 0.0.0.0 and ::
// every address of theirs.
func hostIPsOverlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if (ia.To4() != nil) != (ib.To4() != nil) {
		return false
	}
	return ia.Equal(ib) || ia.IsUnspecified() || ib.IsUnspecified()
}

// validateDNS keeps resolv.conf well formed and within kubelet's limits:
// every line netshim writes comes from these fields.
func validateDNS(dns *runtimeapi.DNSConfig) error {
	if dns == nil {
		return nil
	}
	if n := len(dns.GetServers()); n > maxDNSServers {
		return invalid("config.dns_config.servers", ": %d servers, the limit is %d", n, maxDNSServers)
	}
	for i, s := range dns.GetServers() {
		// netip takes a link-local server with its zone (fe80::1%eth0),
		// which kubelet copies from the node's resolv.conf.
		if _, err := netip.ParseAddr(s); err != nil || hasControl(s) || strings.ContainsAny(s, " \t") {
			return invalid(fmt.Sprintf("config.dns_config.servers[%d]", i), "%q is not an IP address", s)
		}
	}
	if n := len(dns.GetSearches()); n > maxDNSSearches {
		return invalid("config.dns_config.searches", ": %d search domains, the limit is %d", n, maxDNSSearches)
	}
	if n := len(strings.Join(dns.GetSearches(), " ")); n > maxDNSSearchListLen {
		return invalid("config.dns_config.searches", ": the search line is %d characters, the limit is %d", n, maxDNSSearchListLen)
	}
	for i, s := range dns.GetSearches() {
		if s == "" || strings.ContainsAny(s, " \t") || hasControl(s) {
			return invalid(fmt.Sprintf("config.dns_config.searches[%d]", i), "%q is empty or holds white space or a control character", s)
		}
		if len(s) > maxDNSSearchLen {
			return invalid(fmt.Sprintf("config.dns_config.searches[%d]", i), "is %d characters long, the limit for a domain is %d", len(s), maxDNSSearchLen)
		}
	}
	for i, s := range dns.GetOptions() {
		if s == "" || strings.ContainsAny(s, " \t") || hasControl(s) {
			return invalid(fmt.Sprintf("config.dns_config.options[%d]", i), "%q is empty or holds white space or a control character", s)
		}
	}
	return nil
}

// validateIsolation refuses what netshim cannot give: it never runs a pod
// with less isolation than asked for.
func validateIsolation(sc *runtimeapi.LinuxSandboxSecurityContext) error {
	const field = "config.linux.security_context"
	ns := sc.GetNamespaceOptions()
	for name, mode := range map[string]runtimeapi.NamespaceMode{"network": ns.GetNetwork(), "pid": ns.GetPid(), "ipc": ns.GetIpc()} {
		if _, ok := runtimeapi.NamespaceMode_name[int32(mode)]; !ok {
			return invalid(fmt.Sprintf("%s.namespace_options.%s", field, name), "%d is not a namespace mode (POD, CONTAINER, NODE, TARGET)", mode)
		}
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		return invalid(field+".namespace_options.pid", "TARGET is for containers; a sandbox takes POD, CONTAINER or NODE")
	}
	if ns.GetNetwork() == runtimeapi.NamespaceMode_TARGET || ns.GetIpc() == runtimeapi.NamespaceMode_TARGET {
		return invalid(field+".namespace_options", ": TARGET is only a pid namespace mode")
	}
	if err := validateUserns(field+".namespace_options.userns_options", ns.GetUsernsOptions()); err != nil {
		return err
	}
	if v := sc.GetRunAsUser(); v != nil && v.GetValue() < 0 {
		return invalid(field+".run_as_user", "%d is negative", v.GetValue())
	}
	if v := sc.GetRunAsGroup(); v != nil && v.GetValue() < 0 {
		return invalid(field+".run_as_group", "%d is negative", v.GetValue())
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 {
			return invalid(fmt.Sprintf("%s.supplemental_groups[%d]", field, i), "%d is negative", g)
		}
	}
	return nil
}

// validateCgroupParent accepts what the node's cgroup driver can place
// safely: under cgroupfs a clean absolute path, which cannot climb out of
// the hierarchy; under systemd a slice's name (kubelet's
// kubepods-burstable-pod<uid>.slice).
func validateCgroupParent(p string) error {
	const field = "config.linux.cgroup_parent"
	driver := cgroupdriver.Current()
	switch {
	case p == "":
		return nil
	case len(p) > maxCgroupParentLen:
		return invalid(field, "is %d characters long, the limit is %d", len(p), maxCgroupParentLen)
	case hasControl(p):
		return invalid(field, "%q holds a control character", p)
	case driver == cgroupdriver.Systemd:
		if err := driver.ValidateParent(p); err != nil {
			return invalid(field, "%q %v: %s", p, err, driver.ParentAdvice())
		}
		return nil
	case driver.ValidateParent(p) != nil:
		return invalid(field, "%q is a systemd slice: %s", p, driver.ParentAdvice())
	case !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/":
		return invalid(field, "%q: %s", p, driver.ParentAdvice())
	}
	for _, name := range strings.Split(p[1:], "/") {
		if len(name) > maxCgroupNameLen {
			return invalid(field, "has a %d-character element, the limit is %d", len(name), maxCgroupNameLen)
		}
		if isCgroupInterfaceFile(name) {
			return invalid(field, "%q: %q is the name of a cgroup control file, so no cgroup can be made there", p, name)
		}
	}
	return nil
}

// cgroupControllers prefix the control files of every cgroup (v1 and v2).
var cgroupControllers = []string{"cgroup", "cpu", "cpuacct", "cpuset", "memory", "blkio", "io",
	"devices", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "pids", "rdma", "misc"}

// isCgroupInterfaceFile reports a name the kernel already uses for a file
// in each cgroup directory (cpu.shares, cgroup.procs, tasks): mkdir there
// fails inside runc, which reported it as Internal.
func isCgroupInterfaceFile(name string) bool {
	switch name {
	case "tasks", "notify_on_release", "release_agent":
		return true
	}
	prefix, _, dotted := strings.Cut(name, ".")
	return dotted && slices.Contains(cgroupControllers, prefix)
}

// hasControl reports a NUL, newline or other control character: none may
// reach a file netshim writes or a path it builds.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func validatePathSafe(field, value string, maxLen int) error {
	switch {
	case value == "":
		return invalid(field, "is required")
	case len(value) > maxLen:
		return invalid(field, "is %d characters long, the limit is %d", len(value), maxLen)
	case value == "." || value == "..":
		return invalid(field, "%q is not allowed", value)
	}
	for _, r := range value {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return invalid(field, "%q holds %q, which is not allowed", value, r)
		}
	}
	return nil
}

// isDNSLabelish accepts RFC 1123 host names (labels joined by dots), case-insensitively.
func isDNSLabelish(s string, maxLen int) bool {
	if len(s) > maxLen {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateUserns checks a pod's user namespace: NODE without mappings, or
// POD with exactly one UID and one GID mapping that maps container ID 0, as
// kubelet sends them and as runc needs them for idmapped mounts.
func validateUserns(field string, u *runtimeapi.UserNamespace) error {
	if u == nil {
		return nil
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		// As containerd: mappings ask for a user namespace that NODE denies.
		if len(u.GetUids()) != 0 || len(u.GetGids()) != 0 {
			return invalid(field, ": mode NODE with %d UID and %d GID mappings; mappings need mode POD", len(u.GetUids()), len(u.GetGids()))
		}
		return nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return invalid(field+".mode", "%s: a pod's user namespace is NODE (the host's) or POD (its own)", u.GetMode())
	}
	for kind, maps := range map[string][]*runtimeapi.IDMapping{"uids": u.GetUids(), "gids": u.GetGids()} {
		if len(maps) != 1 {
			return invalid(field+"."+kind, "has %d mappings; mode POD takes exactly one", len(maps))
		}
		m := maps[0]
		if m.GetContainerId() != 0 {
			return invalid(field+"."+kind+"[0].container_id", "is %d: container ID 0 must be mapped", m.GetContainerId())
		}
		if m.GetLength() == 0 {
			return invalid(field+"."+kind+"[0].length", "is 0")
		}
		if uint64(m.GetHostId())+uint64(m.GetLength()) > 1<<32-1 {
			return invalid(field+"."+kind+"[0]", "host IDs %d+%d run past the last ID", m.GetHostId(), m.GetLength())
		}
	}
	return nil
}
