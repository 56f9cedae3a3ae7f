package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/pkg/atomicfile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pauseUser is the uid/gid the pause process runs as, as upstream's pause image sets.
const pauseUser = 65535

// prepareRootfs lays out the one read-only rootfs that every pause container
// shares: the pause binary and the mount points runc needs. Sharing it makes
// a sandbox cost no disk and no copy.
func prepareRootfs(dir, pauseBinary string) error {
	for _, d := range []string{"proc", "dev", "sys", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("create pause rootfs: %w", err)
		}
	}
	for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			return fmt.Errorf("create pause rootfs: %w", err)
		}
	}
	bin, err := os.ReadFile(pauseBinary)
	if err != nil {
		return fmt.Errorf("read pause binary: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, "pause"), bin, 0o755)
}

// writeBundle writes the OCI bundle of sb: config.json and its resolv.conf.
func writeBundle(bundle, rootfs string, sb *Sandbox) error {
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return fmt.Errorf("create bundle dir: %w", err)
	}
	var mounts []specs.Mount
	if sb.Spec.DNS != nil {
		resolv := filepath.Join(bundle, "resolv.conf")
		if err := os.WriteFile(resolv, resolvConf(sb.Spec.DNS), 0o644); err != nil {
			return fmt.Errorf("write resolv.conf: %w", err)
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: resolv, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	spec := ociSpec(rootfs, sb, mounts)
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode OCI spec: %w", err)
	}
	// The bundle lives in a tmpfs and is rebuilt from the checkpoint when
	// needed, so a plain write (no fsync) is enough.
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write OCI spec: %w", err)
	}
	return nil
}

func resolvConf(dns *DNS) []byte {
	var b strings.Builder
	for _, s := range dns.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(dns.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
	}
	if len(dns.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
	}
	return []byte(b.String())
}

func ociSpec(rootfs string, sb *Sandbox, extraMounts []specs.Mount) *specs.Spec {
	s := sb.Spec
	namespaces := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	if !s.HostNetwork {
		// A pod with host network shares the node's UTS namespace too, as in containerd.
		namespaces = append(namespaces,
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: sb.NetNSPath},
			specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	if !s.HostIPC {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !s.HostPID {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	hostname := ""
	if !s.HostNetwork {
		hostname = s.Hostname
	}
	cgroupParent := s.CgroupParent
	if cgroupParent == "" {
		cgroupParent = "/netshim"
	}
	mounts := append([]specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
	}, extraMounts...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            []string{"/pause"},
			Cwd:             "/",
			Env:             []string{"PATH=/"},
			User:            specs.User{UID: pauseUser, GID: pauseUser},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Hostname: hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces:    namespaces,
			Sysctl:        s.Sysctls,
			CgroupsPath:   filepath.Join(cgroupParent, sb.ID),
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}
