package container

import (
	"errors"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A container asking for what netshim cannot give, or for nonsense, is
// refused as InvalidArgument naming the field (issue 14, faults 7 and 8).
func TestValidateConfigRefusesHostileRequests(t *testing.T) {
	sc := func(c *runtimeapi.ContainerConfig) *runtimeapi.LinuxContainerSecurityContext {
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}}
		return c.Linux.SecurityContext
	}
	cases := []struct {
		name, field string
		mutate      func(*runtimeapi.ContainerConfig)
	}{
		{"NUL in log path", "config.log_path", func(c *runtimeapi.ContainerConfig) { c.LogPath = "app/0.log\x00x" }},
		{"negative uid", "linux.security_context.run_as_user", func(c *runtimeapi.ContainerConfig) { sc(c).RunAsUser = &runtimeapi.Int64Value{Value: -5} }},
		{"negative gid", "linux.security_context.run_as_group", func(c *runtimeapi.ContainerConfig) {
			s := sc(c)
			s.RunAsUser, s.RunAsGroup = &runtimeapi.Int64Value{Value: 1}, &runtimeapi.Int64Value{Value: -1}
		}},
		{"unknown mode", "linux.security_context.namespace_options.ipc", func(c *runtimeapi.ContainerConfig) { sc(c).NamespaceOptions.Ipc = 9 }},
		{"user namespace", "linux.security_context.namespace_options.userns_options", func(c *runtimeapi.ContainerConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}
		}},
	}
	for _, tc := range cases {
		cfg := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Image: &runtimeapi.ImageSpec{Image: "busybox"}}
		tc.mutate(cfg)
		err := ValidateConfig(cfg)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument starting with %s", tc.name, err, tc.field)
		}
	}
}
