package cri

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func validConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "PodSandbox-for-test-1", Namespace: "ns", Uid: "c0ffee"},
		Hostname: "web-0.example",
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53},
		},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"198.18.0.10"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux:     &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}},
	}
}

var testProtected = []string{"/var/lib/netshim", "/run/netshim"}

func TestValidConfigPasses(t *testing.T) {
	cfg := validConfig()
	cfg.LogDirectory = "/var/log/pods/ns_web_c0ffee"
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net/ipv4/conf/eth0.100/forwarding": "1"}
	if err := validateSandboxConfig(cfg, testProtected); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfigsNameTheField(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*runtimeapi.PodSandboxConfig)
	}{
		{"config.metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }},
		{"config.metadata.uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../../etc" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = ".." }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a\x00b" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = strings.Repeat("n", 64) }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = strings.Repeat("n", 254) }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "-bad-" }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "under_score" }},
		{"config.port_mappings[0].container_port", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].ContainerPort = 0 }},
		{"config.port_mappings[0].host_port", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostPort = 70000 }},
		{"config.port_mappings[1].protocol", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[1].Protocol = 7 }},
		{"config.port_mappings[0].host_ip", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostIp = "localhost" }},
		{"config.dns_config.servers[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers[0] = "dns.example" }},
		{"config.dns_config", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{"ndots:5 x"} }},
		{"config.linux.sysctls[../x]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"../x": "1"} }},
		{"config.linux.sysctls[vm.swappiness]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"vm.swappiness": "1"} }},
		{"config.linux.sysctls[kernel.panic]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }},
		{"config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		}},
		{"config.linux.sysctls[kernel.shm_rmid_forced]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}
		}},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "relative/logs" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/../lib/x" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/lib/netshim/sandboxes" }},
	}
	for _, tc := range cases {
		cfg := validConfig()
		tc.mutate(cfg)
		err := validateSandboxConfig(cfg, testProtected)
		if err == nil {
			t.Errorf("%s: invalid config accepted", tc.field)
			continue
		}
		if _, ok := err.(*validationError); !ok {
			t.Errorf("%s: error %T, want a validation error (InvalidArgument)", tc.field, err)
		}
		if !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("error %q does not start with the field %s", err, tc.field)
		}
	}
}

func FuzzValidateSandboxConfig(f *testing.F) {
	f.Add("web", "default", "uid-1", "web")
	f.Add("../x", "..", "", "-")
	f.Add("PodSandbox-for-test", "ns", "u", "a.b.c")
	f.Fuzz(func(t *testing.T, name, namespace, uid, hostname string) {
		cfg := validConfig()
		cfg.Metadata = &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid}
		cfg.Hostname = hostname
		if validateSandboxConfig(cfg, testProtected) != nil {
			return
		}
		// Whatever passes must be safe as one path element.
		for _, v := range []string{name, namespace, uid} {
			if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
				t.Fatalf("accepted path-unsafe value %q", v)
			}
		}
	})
}
