package validate

import (
	"fmt"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerInPod checks a CreateContainer config in its pod: Container's
// checks, and what the pod must allow (a privileged container needs a
// privileged pod). pod is the sandbox's config, as RunPodSandbox recorded it.
func ContainerInPod(cfg *runtimeapi.ContainerConfig, pod *runtimeapi.PodSandboxConfig) error {
	if err := Container(cfg); err != nil {
		return err
	}
	if cfg.GetLinux().GetSecurityContext().GetPrivileged() && !pod.GetLinux().GetSecurityContext().GetPrivileged() {
		return invalid("config.linux.security_context.privileged", "is true but the pod sandbox is not privileged")
	}
	return nil
}

// Container checks a CreateContainer config on its own, before its pod is
// looked up and anything of the container is made: what netshim cannot
// give (a user, network or IPC namespace of the container's own) is
// refused, never quietly weakened.
func Container(cfg *runtimeapi.ContainerConfig) error {
	// No config at all reads as what kubelet never leaves out: the name.
	// It goes into the reservation name, conmon's --name and log lines, so
	// it is held to a sandbox name's rules: bounded, no '/', '\', control
	// characters, "." or "..".
	if err := validatePathSafe("config.metadata.name", cfg.GetMetadata().GetName(), maxNameLen); err != nil {
		return err
	}
	if cfg.GetImage().GetImage() == "" {
		return invalid("config.image.image", "is required")
	}
	if p := cfg.GetLogPath(); hasControl(p) {
		return invalid("config.log_path", "%q holds a control character", p)
	} else if p != "" && (filepath.IsAbs(p) || hasDotDot(p)) {
		return invalid("config.log_path", "%q: must be relative to the pod's log directory, without '..'", p)
	}
	sc := cfg.GetLinux().GetSecurityContext()
	if err := containerMounts(cfg.GetMounts(), sc.GetPrivileged()); err != nil {
		return err
	}
	for i, d := range cfg.GetDevices() {
		field := fmt.Sprintf("config.devices[%d]", i)
		if !filepath.IsAbs(d.GetContainerPath()) || !filepath.IsAbs(d.GetHostPath()) {
			return invalid(field, ": host_path %q and container_path %q must be absolute", d.GetHostPath(), d.GetContainerPath())
		}
		if strings.Trim(d.GetPermissions(), "rwm") != "" {
			return invalid(field+".permissions", "%q: only r, w and m are allowed", d.GetPermissions())
		}
	}
	if err := containerIsolation(sc); err != nil {
		return err
	}
	if p := sc.GetSeccomp(); p.GetProfileType() == runtimeapi.SecurityProfile_Localhost && p.GetLocalhostRef() == "" {
		return invalid("config.linux.security_context.seccomp.localhost_ref", "is required for a Localhost profile")
	}
	return Resources("config.linux.resources", cfg.GetLinux().GetResources())
}

func containerMounts(mounts []*runtimeapi.Mount, privileged bool) error {
	for i, m := range mounts {
		field := fmt.Sprintf("config.mounts[%d]", i)
		if !filepath.IsAbs(m.GetContainerPath()) || hasDotDot(m.GetContainerPath()) {
			return invalid(field+".container_path", "%q: must be an absolute path without '..'", m.GetContainerPath())
		}
		if m.GetImage() != nil {
			if err := imageMount(field, m); err != nil {
				return err
			}
			continue
		}
		if !filepath.IsAbs(m.GetHostPath()) {
			return invalid(field+".host_path", "%q: must be an absolute path", m.GetHostPath())
		}
		if m.GetRecursiveReadOnly() {
			if !m.GetReadonly() {
				return invalid(field+".recursive_read_only", "needs readonly")
			}
			if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
				return invalid(field+".recursive_read_only", "needs propagation PRIVATE, not %s", m.GetPropagation())
			}
		}
		if m.GetPropagation() == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL && !privileged {
			return invalid(field+".propagation", "BIDIRECTIONAL needs a privileged container")
		}
	}
	return nil
}

// imageMount checks an image volume (KEP-4639): an image's root file
// system, which is mounted read-only, as kubelet always asks. Its
// host_path, if any, is not used.
func imageMount(field string, m *runtimeapi.Mount) error {
	switch {
	case m.GetImage().GetImage() == "":
		return invalid(field+".image.image", "is required for an image volume")
	case !m.GetReadonly():
		return invalid(field+".readonly", "must be true: an image volume is read-only")
	case m.GetPropagation() == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		return invalid(field+".propagation", "BIDIRECTIONAL: an image volume is read-only")
	}
	return nil
}

func containerIsolation(sc *runtimeapi.LinuxContainerSecurityContext) error {
	const field = "config.linux.security_context"
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return invalid(field+".run_as_group", "needs run_as_user or run_as_username")
	}
	if v := sc.GetRunAsUser(); v != nil && v.GetValue() < 0 {
		return invalid(field+".run_as_user", "%d is negative", v.GetValue())
	}
	if v := sc.GetRunAsGroup(); v != nil && v.GetValue() < 0 {
		return invalid(field+".run_as_group", "%d is negative", v.GetValue())
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 {
			return invalid(fmt.Sprintf("%s.supplemental_groups[%d]", field, i), "%d is negative", g)
		}
	}
	ns := sc.GetNamespaceOptions()
	for _, k := range []struct {
		name string
		mode runtimeapi.NamespaceMode
	}{{"network", ns.GetNetwork()}, {"pid", ns.GetPid()}, {"ipc", ns.GetIpc()}} {
		if _, ok := runtimeapi.NamespaceMode_name[int32(k.mode)]; !ok {
			return invalid(field+".namespace_options."+k.name, "%d is not a namespace mode (POD, CONTAINER, NODE, TARGET)", k.mode)
		}
		// A container always joins its pod's network and IPC namespaces
		// (as in containerd); one of its own would be ignored, so refuse.
		if k.name != "pid" && (k.mode == runtimeapi.NamespaceMode_CONTAINER || k.mode == runtimeapi.NamespaceMode_TARGET) {
			return invalid(field+".namespace_options."+k.name, "%s: netshim gives a container its pod's %s namespace; ask for POD or NODE", k.mode, k.name)
		}
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		return invalid(field+".namespace_options.pid", "TARGET is not supported by netshim")
	}
	if u := ns.GetUsernsOptions(); u != nil && u.GetMode() != runtimeapi.NamespaceMode_NODE {
		return invalid(field+".namespace_options.userns_options.mode", "%s: netshim does not run containers in user namespaces; use NODE", u.GetMode())
	} else if u != nil && (len(u.GetUids()) != 0 || len(u.GetGids()) != 0) {
		return invalid(field+".namespace_options.userns_options", ": mode NODE with %d UID and %d GID mappings; mappings need a user namespace, which netshim does not make", len(u.GetUids()), len(u.GetGids()))
	}
	return nil
}

// Resources checks container resources, at field: config.linux.resources
// in a CreateContainer, linux in an UpdateContainerResources.
func Resources(field string, r *runtimeapi.LinuxContainerResources) error {
	if r == nil {
		return nil
	}
	for _, v := range []struct {
		name  string
		value int64
	}{{"cpu_shares", r.GetCpuShares()}, {"cpu_period", r.GetCpuPeriod()}, {"memory_limit_in_bytes", r.GetMemoryLimitInBytes()}} {
		if v.value < 0 {
			return invalid(field+"."+v.name, "%d is negative", v.value)
		}
	}
	if r.GetCpuQuota() < -1 {
		return invalid(field+".cpu_quota", "%d is below -1 (no limit)", r.GetCpuQuota())
	}
	return nil
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}
