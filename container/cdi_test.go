package container

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testCDISpec injects /dev/null as /dev/netshim-null, a bind of hostDir
// and an environment variable.
func testCDISpec(hostDir string) string {
	return `cdiVersion: "0.6.0"
kind: netshim.test/device
devices:
- name: null0
  containerEdits:
    deviceNodes:
    - path: /dev/netshim-null
      hostPath: /dev/null
    env:
    - NETSHIM_CDI=null0
    mounts:
    - hostPath: ` + hostDir + `
      containerPath: /cdi-mount
      options: [ro, bind]
`
}

func writeCDISpec(t *testing.T, dir, hostDir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "netshim-test.yaml"), []byte(testCDISpec(hostDir)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A CDI device named in CDI_devices or in a cdi.k8s.io/ annotation brings
// its device node (with its device cgroup rule), mount and environment
// variable; a spec written after the registry was made is seen.
func TestCDIDevicesAreInjected(t *testing.T) {
	specDir, hostDir := t.TempDir(), t.TempDir()
	reg, err := NewCDIRegistry([]string{specDir})
	if err != nil {
		t.Fatal(err)
	}
	writeCDISpec(t, specDir, hostDir)
	for name, ask := range map[string]func(*runtimeapi.ContainerConfig){
		"field": func(c *runtimeapi.ContainerConfig) {
			c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "netshim.test/device=null0"}}
		},
		"annotation": func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"cdi.k8s.io/test_null0": "netshim.test/device=null0"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := specInput(t)
			in.CDI = reg
			ask(in.Config)
			spec := build(t, in)
			var node *specs.LinuxDevice
			for i := range spec.Linux.Devices {
				if spec.Linux.Devices[i].Path == "/dev/netshim-null" {
					node = &spec.Linux.Devices[i]
				}
			}
			if node == nil || node.Type != "c" || node.Major != 1 || node.Minor != 3 {
				t.Fatalf("device node: %+v in %+v", node, spec.Linux.Devices)
			}
			allowed := slices.ContainsFunc(spec.Linux.Resources.Devices, func(d specs.LinuxDeviceCgroup) bool {
				return d.Allow && d.Type == "c" && d.Major != nil && *d.Major == 1 && d.Minor != nil && *d.Minor == 3
			})
			if !allowed {
				t.Errorf("device cgroup does not allow c 1:3: %+v", spec.Linux.Resources.Devices)
			}
			if !slices.Contains(spec.Process.Env, "NETSHIM_CDI=null0") {
				t.Errorf("env %v lacks NETSHIM_CDI=null0", spec.Process.Env)
			}
			if m := mountAt(spec, "/cdi-mount"); m == nil || m.Source != hostDir {
				t.Errorf("mount at /cdi-mount: %+v", m)
			}
		})
	}
}

// A device no spec defines, a malformed annotation, or any device when
// there is no registry, is refused with the field and the name: never
// dropped.
func TestCDIUnknownDevicesAreRefused(t *testing.T) {
	specDir := t.TempDir()
	writeCDISpec(t, specDir, t.TempDir())
	reg, err := NewCDIRegistry([]string{specDir})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cdi   CDIInjector
		ask   func(*runtimeapi.ContainerConfig)
		field string
		says  string
	}{
		"unknown device": {reg, func(c *runtimeapi.ContainerConfig) {
			c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "netshim.test/device=null0"}, {Name: "netshim.test/device=gpu9"}}
		}, "config.CDI_devices", "netshim.test/device=gpu9"},
		"unknown annotated device": {reg, func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"cdi.k8s.io/x": "vendor.example/none=0"}
		}, "config.CDI_devices", "vendor.example/none=0"},
		"malformed annotation": {reg, func(c *runtimeapi.ContainerConfig) {
			c.Annotations = map[string]string{"cdi.k8s.io/x": "not-qualified"}
		}, "config.annotations", "not-qualified"},
		"no registry": {nil, func(c *runtimeapi.ContainerConfig) {
			c.CDIDevices = []*runtimeapi.CDIDevice{{Name: "netshim.test/device=null0"}}
		}, "config.CDI_devices", "netshim.test/device=null0"},
	} {
		t.Run(name, func(t *testing.T) {
			in := specInput(t)
			in.CDI = tc.cdi
			tc.ask(in.Config)
			_, err := BuildSpec(in)
			var fe *errdefs.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v: want a refusal of %s naming %s", err, tc.field, tc.says)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%v is not InvalidArgument", err)
			}
		})
	}
}
