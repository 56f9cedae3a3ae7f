package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testCgroupParent is a cgroup parent of the test's own, and the dirs it
// would have in each hierarchy; t.Cleanup removes whatever of them exists.
func testCgroupParent(t *testing.T, prefix string) (parent string, dirs func() []string) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	dirs = func() []string {
		found, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
		if _, err := os.Stat("/sys/fs/cgroup/" + name); err == nil {
			found = append(found, "/sys/fs/cgroup/"+name)
		}
		return found
	}
	t.Cleanup(func() {
		for _, d := range dirs() {
			removeCgroupTree(d)
		}
	})
	return "/" + name, dirs
}

// removeCgroupTree removes a cgroup and the cgroups under it, deepest
// first: a cgroup dir goes with rmdir, once it has no children.
func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// Requests a hostile-input probe saw accepted, or that came back as
// Internal from runc (issue 14, items 6-8), are refused by the real netshim
// with InvalidArgument naming the field, and nothing of them is made: no
// sandbox, checkpoint, pin, IP, or cgroup under the test's parent (nor where
// a climbing parent points).
func TestValidationRefusesAndMakesNothing(t *testing.T) {
	s := startShim(t)
	parent, parentDirs := testCgroupParent(t, "netshim-e2e-val")
	climbTo, climbDirs := testCgroupParent(t, "netshim-e2e-climb")
	for _, tc := range []struct {
		name, field string
		mutate      func(*runtimeapi.PodSandboxConfig)
	}{
		{"cgroup parent climbing out", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = parent + "/../.." + climbTo }},
		{"systemd slice", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "probe.slice:x:y" }},
		{"cgroup parent on a control file", "config.linux.cgroup_parent", func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = parent + "/cpu.shares" }},
		{"user namespace", "config.linux.security_context.namespace_options.userns_options", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}}
		}},
		{"negative run_as_user", "config.linux.security_context.run_as_user", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: -5}}
		}},
		{"PID TARGET on a sandbox", "config.linux.security_context.namespace_options.pid", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET}}
		}},
		{"network mode the API lacks", "config.linux.security_context.namespace_options.network", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: 42}}
		}},
		{"newline in a sysctl value", "config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1\n0"}
		}},
		{"a sysctl directory, not a sysctl", "config.linux.sysctls[net.ipv4]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net.ipv4": "1"}
		}},
		{"an IPC sysctl runc refuses", "config.linux.sysctls[kernel.shm_next_id]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"kernel.shm_next_id": "1"}
		}},
		{"newline in a search domain", "config.dns_config.searches[0]", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a.example\nnameserver 198.18.0.9"}}
		}},
		{"four DNS servers", "config.dns_config.servers", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"}}
		}},
		{"NUL in the log directory", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/tmp/\x00x" }},
		{"host port mapped twice", "config.port_mappings[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 18080}, {ContainerPort: 81, HostPort: 18080}}
		}},
		{"IPv6 host IP on an IPv4 network", "config.port_mappings[0].host_ip", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 18080, HostIp: "::1"}}
		}},
	} {
		cfg := podConfig("hostile")
		cfg.Linux.CgroupParent = parent
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
	if d := append(parentDirs(), climbDirs()...); len(d) != 0 {
		t.Errorf("cgroups made for refused requests: %v", d)
	}

	// The same parent, clean: the pod is placed under it, so the check
	// above looked where a cgroup would have been.
	cfg := podConfig("placed")
	cfg.Linux.CgroupParent = parent
	id := s.runPod(cfg)
	if !slices.ContainsFunc(parentDirs(), func(d string) bool { _, err := os.Stat(filepath.Join(d, id)); return err == nil }) {
		t.Errorf("pod %s has no cgroup under %s (have %v)", id, parent, parentDirs())
	}
	s.stopPod(id)
	s.removePod(id)
	for _, d := range parentDirs() {
		if _, err := os.Stat(filepath.Join(d, id)); err == nil {
			t.Errorf("cgroup %s/%s left after the pod was removed", d, id)
		}
	}
}

// A container asking for isolation netshim does not give it (a user
// namespace, a network or IPC namespace of its own, a negative uid) is
// refused with InvalidArgument naming the field, and nothing of it is made.
func TestValidationRefusesContainers(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "val-ctr")
	pod := s.runPod(podCfg)
	for _, tc := range []struct {
		name, field string
		mutate      func(*runtimeapi.ContainerConfig)
	}{
		{"user namespace", "config.linux.security_context.namespace_options.userns_options", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}
		}},
		{"network of its own", "config.linux.security_context.namespace_options.network", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_CONTAINER}
		}},
		{"negative run_as_user", "config.linux.security_context.run_as_user", func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: -5}
		}},
		{"NUL in the log path", "config.log_path", func(c *runtimeapi.ContainerConfig) { c.LogPath = "x\x00.log" }},
	} {
		cfg := ctrConfig("refused", image, "true")
		tc.mutate(cfg)
		_, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	list, err := s.rt.ListContainers(s.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.GetContainers()) != 0 {
		t.Errorf("containers after the refused requests: %v (err %v), want none", list.GetContainers(), err)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNoContainersLeft()
}
