package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/pkg/atomicfile"
	"github.com/netshim/netshim/pkg/cgroupdriver"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
func writeBundle(bundle, rootfs string, sb *Sandbox, specVersion string) error {
	if err := os.MkdirAll(bundle, traversable); err != nil {
		return fmt.Errorf("create bundle dir: %w", err)
	}
	if err := os.Chmod(bundle, traversable); err != nil {
		return fmt.Errorf("create bundle dir: %w", err)
	}
	if err := writePodFiles(bundle, sb); err != nil {
		return err
	}
	var mounts []specs.Mount
	if sb.Spec.DNS != nil {
		mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: filepath.Join(bundle, resolvConfFile), Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	spec := ociSpec(rootfs, sb, mounts)
	if sb.Spec.UserNS != nil {
		bindSysfs(spec.Mounts)
	}
	if specVersion != "" {
		spec.Version = specVersion
	}
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

// The files a pod's containers share, kept in the sandbox's bundle dir.
const (
	resolvConfFile = "resolv.conf"
	hostnameFile   = "hostname"
	hostsFile      = "hosts"
	shmDir         = "shm"
	// shmSize is /dev/shm's size, as containerd and docker default it.
	shmSize = 64 << 20
)

// Files are the paths of what a pod's containers mount from the sandbox; a
// path is "" where the pod uses the node's own (host IPC: /dev/shm).
type Files struct {
	ResolvConf string
	Hostname   string
	Hosts      string
	Shm        string
}

// writePodFiles writes resolv.conf (the pod's DNSConfig, else the node's, as
// containerd does), hostname and a minimal hosts, and mounts the pod's
// /dev/shm (unless it shares the node's IPC namespace).
func writePodFiles(bundle string, sb *Sandbox) error {
	resolv := []byte(nil)
	if sb.Spec.DNS != nil {
		resolv = resolvConf(sb.Spec.DNS)
	} else if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		resolv = host
	}
	hostname := sb.Spec.Hostname
	if sb.Spec.HostNetwork || hostname == "" {
		hostname, _ = os.Hostname()
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	for name, data := range map[string][]byte{
		resolvConfFile: resolv,
		hostnameFile:   []byte(hostname + "\n"),
		hostsFile:      []byte(hosts),
	} {
		if err := os.WriteFile(filepath.Join(bundle, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if sb.Spec.HostIPC {
		return nil
	}
	shm := filepath.Join(bundle, shmDir)
	if err := os.MkdirAll(shm, 0o700); err != nil {
		return fmt.Errorf("create /dev/shm of the pod: %w", err)
	}
	if mounted, _ := isMountPoint(shm); mounted {
		return nil
	}
	opts := fmt.Sprintf("mode=1777,size=%d", shmSize)
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount /dev/shm of the pod: %w", err)
	}
	return nil
}

// unmountShm unmounts the pod's /dev/shm if it is mounted; it is idempotent.
func unmountShm(bundle string) error {
	shm := filepath.Join(bundle, shmDir)
	if mounted, _ := isMountPoint(shm); !mounted {
		return nil
	}
	if err := unix.Unmount(shm, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount /dev/shm of the pod: %w", err)
	}
	return nil
}

// isMountPoint is true when path is on another filesystem than its parent.
func isMountPoint(path string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(path), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev, nil
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

// cgroupPath is the pause container's cgroup: the pod's cgroup parent (or
// the driver's default) and the sandbox ID, in the node's cgroup driver's
// form. RunPodSandbox admits only parents the driver can place.
func cgroupPath(sb *Sandbox) string {
	p, err := cgroupdriver.Current().ContainerPath(sb.Spec.CgroupParent, sb.ID)
	if err != nil {
		// A pod an older netshim (or another driver) admitted: as before.
		return filepath.Join(sb.Spec.CgroupParent, sb.ID)
	}
	return p
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
	user := specs.User{UID: pauseUser, GID: pauseUser}
	var uidMaps, gidMaps []specs.LinuxIDMapping
	if s.UserNS != nil {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		uidMaps, gidMaps = s.UserNS.UIDs, s.UserNS.GIDs
		if !mapsID(uidMaps, pauseUser) || !mapsID(gidMaps, pauseUser) {
			user = specs.User{} // a short range: the pod's root, unprivileged on the host
		}
	}
	hostname := ""
	if !s.HostNetwork {
		hostname = s.Hostname
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
			User:            user,
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Hostname: hostname,
		Mounts:   mounts,
		// containerd's names, which other runtimes read: gVisor's runsc
		// starts a sandbox for a "sandbox" and puts each "container" into
		// the one its sandbox-id names.
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type":    "sandbox",
			"io.kubernetes.cri.sandbox-id":        sb.ID,
			"io.kubernetes.cri.sandbox-name":      s.Name,
			"io.kubernetes.cri.sandbox-namespace": s.Namespace,
			"io.kubernetes.cri.sandbox-uid":       s.UID,
		},
		Linux: &specs.Linux{
			Namespaces:    namespaces,
			UIDMappings:   uidMaps,
			GIDMappings:   gidMaps,
			Sysctl:        s.Sysctls,
			CgroupsPath:   cgroupPath(sb),
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// mapsID says whether container ID id is in one of the mappings.
func mapsID(maps []specs.LinuxIDMapping, id uint32) bool {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return true
		}
	}
	return false
}

// bindSysfs replaces sysfs with a read-only bind of the host's /sys: a
// user namespace that does not own the pod's netns (netshim makes it
// before the pod's user namespace exists) may not mount sysfs.
func bindSysfs(mounts []specs.Mount) {
	for i, m := range mounts {
		if m.Type == "sysfs" {
			mounts[i] = specs.Mount{Destination: m.Destination, Type: "bind", Source: "/sys", Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}}
		}
	}
}
