package cri

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Limits as Kubernetes sets them: object names are DNS subdomains (253),
// namespaces DNS labels (63); UIDs are UUIDs but the CRI does not insist.
const (
	maxNameLen      = 253
	maxNamespaceLen = 63
	maxUIDLen       = 128
	maxHostnameLen  = 64
)

// validationError is an InvalidArgument: its text names the field at fault.
type validationError struct{ msg string }

func (e *validationError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &validationError{msg: fmt.Sprintf(format, args...)}
}

// validateSandboxConfig checks every field the sandbox path uses. Names are
// not held to DNS rules (critest uses upper case), but they become parts of
// file names, so nothing that can steer a path is accepted.
// protectedDirs are netshim's own directories, which no pod may write into.
func validateSandboxConfig(cfg *runtimeapi.PodSandboxConfig, protectedDirs []string) error {
	if cfg == nil {
		return invalid("config is required")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return invalid("config.metadata is required")
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
		return invalid("config.hostname %q is not a valid hostname: want at most %d letters, digits, '-' and '.', starting and ending with a letter or digit", h, maxHostnameLen)
	}
	for i, pm := range cfg.GetPortMappings() {
		field := fmt.Sprintf("config.port_mappings[%d]", i)
		if pm.GetContainerPort() < 1 || pm.GetContainerPort() > 65535 {
			return invalid("%s.container_port %d is out of range 1-65535", field, pm.GetContainerPort())
		}
		if pm.GetHostPort() < 0 || pm.GetHostPort() > 65535 {
			return invalid("%s.host_port %d is out of range 0-65535", field, pm.GetHostPort())
		}
		if _, ok := runtimeapi.Protocol_name[int32(pm.GetProtocol())]; !ok {
			return invalid("%s.protocol %d is not TCP, UDP or SCTP", field, pm.GetProtocol())
		}
		if ip := pm.GetHostIp(); ip != "" && net.ParseIP(ip) == nil {
			return invalid("%s.host_ip %q is not an IP address", field, ip)
		}
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		for i, s := range dns.GetServers() {
			if net.ParseIP(s) == nil {
				return invalid("config.dns_config.servers[%d] %q is not an IP address", i, s)
			}
		}
		for i, s := range append(dns.GetSearches(), dns.GetOptions()...) {
			if s == "" || strings.ContainsAny(s, " \t\r\n") {
				return invalid("config.dns_config search or option %d %q is empty or holds white space", i, s)
			}
		}
	}
	if _, err := bandwidthFromAnnotations(cfg.GetAnnotations()); err != nil {
		return err
	}
	if err := validateSysctls(cfg); err != nil {
		return err
	}
	if d := cfg.GetLogDirectory(); d != "" {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return invalid("config.log_directory %q must be an absolute, clean path", d)
		}
		for _, own := range protectedDirs {
			if own = filepath.Clean(own); d == own || strings.HasPrefix(d, own+"/") {
				return invalid("config.log_directory %q is inside netshim's own directory %s", d, own)
			}
		}
	}
	return nil
}

func validatePathSafe(field, value string, maxLen int) error {
	switch {
	case value == "":
		return invalid("%s is required", field)
	case len(value) > maxLen:
		return invalid("%s is %d characters long, the limit is %d", field, len(value), maxLen)
	case value == "." || value == "..":
		return invalid("%s %q is not allowed", field, value)
	}
	for _, r := range value {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return invalid("%s %q holds %q, which is not allowed", field, value, r)
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
