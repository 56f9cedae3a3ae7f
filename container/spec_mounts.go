package container

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withMounts sets the container's mounts and the root's propagation they need.
func withMounts(spec *specs.Spec, in SpecInput, host HostFacts) error {
	list, err := mounts(in.Config, in.Pod, in.Config.GetLinux().GetSecurityContext().GetPrivileged(), host, in.ImageVolumes)
	if err != nil {
		return err
	}
	spec.Mounts = list
	spec.Linux.RootfsPropagation = rootfsPropagation(list)
	return nil
}

// rootfsPropagation is what the container's root must be for its mounts'
// propagation to work, as containerd sets it: runc makes the root rslave by
// default, which would keep a BIDIRECTIONAL mount's submounts from ever
// reaching the host. "" leaves runc's default.
func rootfsPropagation(list []specs.Mount) string {
	out := ""
	for _, m := range list {
		for _, o := range m.Options {
			switch o {
			case "rshared":
				return "rshared"
			case "rslave":
				out = "rslave"
			}
		}
	}
	return out
}

// mounts are the defaults every container gets, the pod's shared files,
// then the config's mounts; a config mount replaces a default at its path.
// A propagating mount needs its host path on a mount that propagates (facts).
// An image volume binds its mounted image (volumes, by the mount's index)
// read-only; it is not noexec, so the image's programs run.
func mounts(cfg *runtimeapi.ContainerConfig, pod PodContext, privileged bool, facts HostFacts, volumes map[int]string) ([]specs.Mount, error) {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts, cgroupOpts = sysOpts[:3], cgroupOpts[:4]
	}
	list := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
	}
	bind := func(dst, src string, ro bool) specs.Mount {
		opts := []string{"rbind", "rprivate"}
		if ro {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	if pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE {
		list = append(list, bind("/dev/shm", "/dev/shm", false))
	} else if pod.ShmPath != "" {
		list = append(list, bind("/dev/shm", pod.ShmPath, false))
	}
	ro := cfg.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	for dst, src := range map[string]string{"/etc/hostname": pod.HostnamePath, "/etc/resolv.conf": pod.ResolvConfPath, "/etc/hosts": pod.HostsPath} {
		if src != "" {
			list = append(list, bind(dst, src, ro))
		}
	}
	for i, m := range cfg.GetMounts() {
		if m.GetImage() != nil {
			src, ok := volumes[i]
			if !ok {
				return nil, fmt.Errorf("mounts[%d]: image volume of image %q is not mounted", i, m.GetImage().GetImage())
			}
			dst := path.Clean(m.GetContainerPath())
			list = slicesDeleteDst(list, dst)
			list = append(list, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev"}})
			continue
		}
		host := m.GetHostPath()
		if _, err := os.Stat(host); errors.Is(err, os.ErrNotExist) {
			// containerd makes a missing host path as a directory.
			if err := os.MkdirAll(host, 0o755); err != nil {
				return nil, fmt.Errorf("mounts[%d]: create host path %s: %w", i, host, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("mounts[%d]: %w", i, err)
		}
		if resolved, err := filepath.EvalSymlinks(host); err == nil {
			host = resolved
		}
		opts := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
			opts = append(opts, "rprivate")
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			if err := needPropagation(facts, host, false); err != nil {
				return nil, fmt.Errorf("mounts[%d]: %w", i, err)
			}
			opts = append(opts, "rslave")
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			if err := needPropagation(facts, host, true); err != nil {
				return nil, fmt.Errorf("mounts[%d]: %w", i, err)
			}
			opts = append(opts, "rshared")
		}
		switch {
		case m.GetRecursiveReadOnly():
			opts = append(opts, "rro")
		case m.GetReadonly():
			opts = append(opts, "ro")
		}
		dst := path.Clean(m.GetContainerPath())
		list = slicesDeleteDst(list, dst)
		list = append(list, specs.Mount{Destination: dst, Type: "bind", Source: host, Options: opts})
	}
	// Parents before children.
	sort.SliceStable(list, func(i, j int) bool {
		return strings.Count(path.Clean(list[i].Destination), "/") < strings.Count(path.Clean(list[j].Destination), "/")
	})
	return list, nil
}

func slicesDeleteDst(list []specs.Mount, dst string) []specs.Mount {
	out := list[:0]
	for _, m := range list {
		if path.Clean(m.Destination) != dst {
			out = append(out, m)
		}
	}
	return out
}

// needPropagation checks that the mount holding host propagates as asked:
// shared for BIDIRECTIONAL, shared or slave for HOST_TO_CONTAINER.
func needPropagation(facts HostFacts, host string, shared bool) error {
	mountpoint, optional, err := facts.MountOf(host)
	if err != nil {
		return err
	}
	isShared := strings.Contains(optional, "shared:")
	isSlave := strings.Contains(optional, "master:")
	switch {
	case shared && !isShared:
		return fmt.Errorf("path %q is mounted on %q but it is not a shared mount: %w", host, mountpoint, errdefs.ErrFailedPrecondition)
	case !shared && !isShared && !isSlave:
		return fmt.Errorf("path %q is mounted on %q but it is not a shared or slave mount: %w", host, mountpoint, errdefs.ErrFailedPrecondition)
	}
	return nil
}
