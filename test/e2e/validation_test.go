package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Requests a hostile-input probe saw accepted (issue 14, faults 6-8) are
// refused by the real netshim with InvalidArgument naming the field, and
// nothing of them is made: no sandbox, checkpoint, pin, IP or cgroup (the
// harness's clean-up fails the test on a cgroup left behind).
func TestValidationRefusesAndMakesNothing(t *testing.T) {
	s := startShim(t)
	for _, tc := range []struct {
		name, field string
		mutate      func(*runtimeapi.PodSandboxConfig)
	}{
		{"cgroup parent climbing out", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "/netshim/../../x" }},
		{"systemd slice", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "probe.slice:x:y" }},
		{"user namespace", "userns_options", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}}
		}},
		{"newline in a sysctl value", "config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1\n0"}
		}},
		{"newline in a search domain", "config.dns_config.searches[0]", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a.example\nnameserver 198.18.0.9"}}
		}},
		{"host port mapped twice", "config.port_mappings[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 18080}, {ContainerPort: 81, HostPort: 18080}}
		}},
		{"IPv6 host IP on an IPv4 network", "config.port_mappings[0].host_ip", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 18080, HostIp: "::1"}}
		}},
	} {
		cfg := podConfig("hostile")
		tc.mutate(cfg)
		_, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	resp, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(resp.Items) != 0 {
		t.Errorf("sandboxes after the refused requests: %v (err %v), want none", resp.GetItems(), err)
	}
	for _, dir := range []string{filepath.Join(s.dir, "root", "sandboxes"), s.netnsDir} {
		if e, _ := os.ReadDir(dir); len(e) != 0 {
			t.Errorf("%s holds %d entries, want none", dir, len(e))
		}
	}
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP reservations: %v", r)
	}
}
