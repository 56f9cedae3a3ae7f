package container

import (
	"fmt"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// withUserNamespace puts the container in its pod's user namespace (the
// pause process's), when the pod has one: the same ID mappings, which runc
// checks against the namespace it joins, and its bind mounts idmapped with
// them, so that a volume's files owned by the host's root are the pod's
// root's inside, as they are in a pod without one.
func withUserNamespace(spec *specs.Spec, in SpecInput, _ HostFacts) error {
	if len(in.Pod.UIDMappings) == 0 {
		return nil
	}
	if in.Pod.PausePID <= 0 {
		return fmt.Errorf("the pod sandbox's pause process is not running: %w", errdefs.ErrFailedPrecondition)
	}
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{
		Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", in.Pod.PausePID),
	})
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = in.Pod.UIDMappings, in.Pod.GIDMappings
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		if m.Type == "sysfs" {
			// A user namespace that does not own the pod's netns may not
			// mount sysfs: the host's, read-only, as the pause has it.
			*m = specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}
			continue
		}
		if m.Type != "bind" || !idmappable(m.Source) {
			continue
		}
		// runc maps them with the container's mappings; "ridmap" does the
		// mounts under an rbind too.
		m.Options = append(m.Options, "ridmap")
	}
	return nil
}

// idmappable: an overlay (an image volume) cannot be idmapped; its files
// show as the overflow ID, read-only anyway.
func idmappable(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) != nil || st.Type != unix.OVERLAYFS_SUPER_MAGIC
}
