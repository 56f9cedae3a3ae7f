package container

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withDevices gives the container the config's devices and its device
// cgroup, then its CDI devices, whose edits may add device nodes (and
// their cgroup rules), mounts, environment variables and hooks.
func withDevices(spec *specs.Spec, in SpecInput, _ HostFacts) error {
	if err := devices(spec, in.Config, in.Config.GetLinux().GetSecurityContext().GetPrivileged()); err != nil {
		return err
	}
	return cdiDevices(spec, in)
}

// devices adds the config's devices, and the device cgroup: deny all but
// what runc allows by default and what is listed; all for privileged.
func devices(spec *specs.Spec, cfg *runtimeapi.ContainerConfig, privileged bool) error {
	spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if privileged {
		spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for i, d := range cfg.GetDevices() {
		var st unix.Stat_t
		if err := unix.Stat(d.GetHostPath(), &st); err != nil {
			return invalid(fmt.Sprintf("config.devices[%d].host_path", i), "%q: %v", d.GetHostPath(), err)
		}
		var kind string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			kind = "c"
		case unix.S_IFBLK:
			kind = "b"
		default:
			return invalid(fmt.Sprintf("config.devices[%d].host_path", i), "%q is not a device", d.GetHostPath())
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := uint32(0), uint32(0)
		spec.Linux.Devices = append(spec.Linux.Devices, specs.LinuxDevice{
			Path: d.GetContainerPath(), Type: kind, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid,
		})
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		spec.Linux.Resources.Devices = append(spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: kind, Major: &major, Minor: &minor, Access: perms,
		})
	}
	return nil
}
