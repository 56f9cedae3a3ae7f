package validate

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Each row is a request a probe saw accepted (issue 14, faults 6-8): now
// refused as InvalidArgument naming the field, before anything is made.
func TestHostileConfigsAreRefused(t *testing.T) {
	ns := func(c *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
		if c.Linux.SecurityContext == nil {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{}
		}
		if c.Linux.SecurityContext.NamespaceOptions == nil {
			c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
		}
		return c.Linux.SecurityContext.NamespaceOptions
	}
	cases := []struct {
		name, field string
		mutate      func(*runtimeapi.PodSandboxConfig)
	}{
		// 6: cgroup_parent
		{"climbing parent", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "../../x" }},
		{"climbing absolute parent", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/netshim/../../x" }},
		{"systemd slice", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "probe.slice:x:y" }},
		{"the root", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/" }},
		{"NUL in parent", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/kubepods/a\x00b" }},
		// 7: isolation
		{"user namespace", "config.linux.security_context.namespace_options.userns_options", func(c *runtimeapi.PodSandboxConfig) {
			ns(c).UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
		}},
		{"negative uid", "config.linux.security_context.run_as_user", func(c *runtimeapi.PodSandboxConfig) {
			ns(c)
			c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: -5}
		}},
		{"unknown mode", "config.linux.security_context.namespace_options.network", func(c *runtimeapi.PodSandboxConfig) { ns(c).Network = 42 }},
		{"pid TARGET on a sandbox", "config.linux.security_context.namespace_options.pid", func(c *runtimeapi.PodSandboxConfig) {
			ns(c).Pid = runtimeapi.NamespaceMode_TARGET
		}},
		// 8: validation gaps
		{"newline in search", "config.dns_config.searches[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"a\nnameserver 1.1.1.1"} }},
		{"NUL in search", "config.dns_config.searches[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Searches = []string{"a\x00b"} }},
		{"newline in option", "config.dns_config.options[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{"ndots:5\nx"} }},
		{"four servers", "config.dns_config.servers", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig.Servers = []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"}
		}},
		{"33 searches", "config.dns_config.searches", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig.Searches = strings.Split(strings.Repeat("a.example,", 33)[:len(strings.Repeat("a.example,", 33))-1], ",")
		}},
		{"long search line", "config.dns_config.searches", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig.Searches = []string{strings.Repeat("a", 1100), strings.Repeat("b", 1100)}
		}},
		{"newline in sysctl value", "config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1\n0"}
		}},
		{"sysctl the kernel lacks", "config.linux.sysctls[net.ipv4.no_such_thing]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.no_such_thing": "1"}
		}},
		{"NUL in log directory", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/a\x00b" }},
		{"same host port twice", "config.port_mappings[2]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = append(c.PortMappings, &runtimeapi.PortMapping{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 81, HostPort: 8080})
		}},
		{"same host port on 0.0.0.0", "config.port_mappings[2]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = append(c.PortMappings, &runtimeapi.PortMapping{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 81, HostPort: 8080, HostIp: "0.0.0.0"})
		}},
	}
	for _, tc := range cases {
		cfg := validConfig()
		tc.mutate(cfg)
		err := Sandbox(cfg, testProtected)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !isFieldError(err) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: error %q (%T), want a validation error starting with %s", tc.name, err, err, tc.field)
		}
	}
}

// What kubelet and critest send still passes: a cgroupfs parent, the same
// host port for TCP and UDP, or on two different host IPs, NODE user
// namespaces, and per-interface sysctls whose device only the pod has.
func TestKubeletStyleConfigsStillPass(t *testing.T) {
	cfg := validConfig()
	cfg.Linux.CgroupParent = "/kubepods/besteffort/pod6c3a"
	cfg.PortMappings = []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 53, HostPort: 5353},
		{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.2"},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8081, HostIp: "0.0.0.0"},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8081, HostIp: "::1"},
	}
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
		RunAsUser:        &runtimeapi.Int64Value{Value: 0},
	}
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.conf.eth0.forwarding": "1", "net.ipv4.ping_group_range": "0 2147483647"}
	if err := Sandbox(cfg, testProtected); err != nil {
		t.Fatal(err)
	}
}

func TestHostIPOfAMissingFamilyIsRefused(t *testing.T) {
	mappings := []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "::1"}}
	err := HostIPFamilies(mappings, true, false)
	if err == nil || !strings.HasPrefix(err.Error(), "config.port_mappings[0].host_ip") || !strings.Contains(err.Error(), "IPv6") {
		t.Fatalf("IPv6 host IP on an IPv4-only network: %v", err)
	}
	if err := HostIPFamilies(mappings, true, true); err != nil {
		t.Fatalf("dual-stack network: %v", err)
	}
}
