package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A container asking for what netshim cannot give, or for nonsense, is
// refused as InvalidArgument naming the field (issue 14, faults 7 and 8).
func TestContainerRefusesHostileRequests(t *testing.T) {
	sc := func(c *runtimeapi.ContainerConfig) *runtimeapi.LinuxContainerSecurityContext {
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}}
		return c.Linux.SecurityContext
	}
	cases := []struct {
		name, field string
		mutate      func(*runtimeapi.ContainerConfig)
	}{
		{"NUL in log path", "config.log_path", func(c *runtimeapi.ContainerConfig) { c.LogPath = "app/0.log\x00x" }},
		{"negative uid", "config.linux.security_context.run_as_user", func(c *runtimeapi.ContainerConfig) { sc(c).RunAsUser = &runtimeapi.Int64Value{Value: -5} }},
		{"negative gid", "config.linux.security_context.run_as_group", func(c *runtimeapi.ContainerConfig) {
			s := sc(c)
			s.RunAsUser, s.RunAsGroup = &runtimeapi.Int64Value{Value: 1}, &runtimeapi.Int64Value{Value: -1}
		}},
		{"unknown mode", "config.linux.security_context.namespace_options.ipc", func(c *runtimeapi.ContainerConfig) { sc(c).NamespaceOptions.Ipc = 9 }},
		{"user namespace of its own", "config.linux.security_context.namespace_options.userns_options.mode", func(c *runtimeapi.ContainerConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}
		}},
	}
	for _, tc := range cases {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		tc.mutate(cfg)
		err := Container(cfg)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument starting with %s", tc.name, err, tc.field)
		}
	}
}

// The rest of what a container may not ask for, each refused naming its
// field in the same style as a sandbox's fields.
func TestContainerFieldsAreNamed(t *testing.T) {
	privilegedPod := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}}
	cases := []struct {
		name, field string
		pod         *runtimeapi.PodSandboxConfig
		mutate      func(*runtimeapi.ContainerConfig)
	}{
		{"no config", "config.metadata.name", nil, nil},
		{"no name", "config.metadata.name", nil, func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "" }},
		{"slash in name", "config.metadata.name", nil, func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "a/b" }},
		{"no image", "config.image.image", nil, func(c *runtimeapi.ContainerConfig) { c.Image.Image = "" }},
		{"climbing log path", "config.log_path", nil, func(c *runtimeapi.ContainerConfig) { c.LogPath = "../x.log" }},
		{"privileged in an unprivileged pod", "config.linux.security_context.privileged", nil, func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}}
		}},
		{"relative mount target", "config.mounts[0].container_path", nil, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "data", HostPath: "/srv"}}
		}},
		{"relative mount source", "config.mounts[0].host_path", nil, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "srv"}}
		}},
		{"recursive read-only, writable", "config.mounts[0].recursive_read_only", nil, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv", RecursiveReadOnly: true}}
		}},
		{"bidirectional, unprivileged", "config.mounts[1].propagation", nil, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/a", HostPath: "/srv"},
				{ContainerPath: "/data", HostPath: "/srv", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
		}},
		{"device permissions", "config.devices[0].permissions", nil, func(c *runtimeapi.ContainerConfig) {
			c.Devices = []*runtimeapi.Device{{ContainerPath: "/dev/x", HostPath: "/dev/null", Permissions: "rwx"}}
		}},
		{"negative memory limit", "config.linux.resources.memory_limit_in_bytes", nil, func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}}
		}},
		{"cpu quota below -1", "config.linux.resources.cpu_quota", nil, func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{CpuQuota: -2}}
		}},
		{"localhost seccomp without a file", "config.linux.security_context.seccomp.localhost_ref", nil, func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost}}}
		}},
		{"bidirectional in a privileged pod, unprivileged container", "config.mounts[0].propagation", privilegedPod, func(c *runtimeapi.ContainerConfig) {
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}}
		}},
	}
	for _, tc := range cases {
		var cfg *runtimeapi.ContainerConfig
		if tc.mutate != nil {
			cfg = &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
			tc.mutate(cfg)
		}
		err := ContainerInPod(cfg, tc.pod)
		if !isFieldError(err) || !strings.HasPrefix(err.Error(), tc.field+" ") && !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: %v, want a FieldError starting with %s", tc.name, err, tc.field)
		}
	}

	// What kubelet sends for a privileged pod's privileged container with
	// a shared mount passes.
	ok := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
		Mounts: []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: "/srv", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true},
			Resources: &runtimeapi.LinuxContainerResources{CpuQuota: -1, MemoryLimitInBytes: 64 << 20}}}
	if err := ContainerInPod(ok, privilegedPod); err != nil {
		t.Errorf("privileged container with a bidirectional mount in a privileged pod: %v", err)
	}
}

// UpdateContainerResources names its own request's fields.
func TestResourcesFieldIsTheRequests(t *testing.T) {
	err := Resources("linux", &runtimeapi.LinuxContainerResources{CpuShares: -1})
	if !isFieldError(err) || !strings.HasPrefix(err.Error(), "linux.cpu_shares ") {
		t.Errorf("negative cpu shares in an update: %v", err)
	}
}

// A container's name becomes part of its reservation name, conmon's --name
// and log lines: it is held to the rules of a sandbox's name (issue 23,
// fault 19), and a good one still passes.
func TestContainerNameIsCheckedAsASandboxName(t *testing.T) {
	for name, bad := range map[string]string{
		"newline":   "app\nx",
		"control":   "app\x1b[31m",
		"backslash": `a\b`,
		"dot-dot":   "..",
		"dot":       ".",
		"too long":  strings.Repeat("a", 5000),
	} {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: bad}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		err := Container(cfg)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), "config.metadata.name") {
			t.Errorf("%s: %v, want InvalidArgument starting with config.metadata.name", name, err)
		}
	}
	for _, good := range []string{"app", "a.b-c_d", strings.Repeat("a", 253)} {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: good}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		if err := Container(cfg); err != nil {
			t.Errorf("name %q refused: %v", good, err)
		}
	}
}

// A container shares its pod's user namespace: one that asks for another
// mode or other mappings is refused; one that leaves it out gets the pod's.
func TestContainerSharesItsPodsUserNamespace(t *testing.T) {
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	other := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 300000, Length: 65536}}
	pod := &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}}}}}
	ctr := func(u *runtimeapi.UserNamespace) *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u}}}}
	}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"the pod's": {Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids},
		"left out":  nil,
	} {
		if err := ContainerInPod(ctr(u), pod); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"the host's":     {Mode: runtimeapi.NamespaceMode_NODE},
		"other mappings": {Mode: runtimeapi.NamespaceMode_POD, Uids: other, Gids: ids},
	} {
		if err := ContainerInPod(ctr(u), pod); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if err := ContainerInPod(ctr(&runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}), &runtimeapi.PodSandboxConfig{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("a POD user namespace in a pod of the host's: %v, want InvalidArgument", err)
	}
}
