package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// SpecInput is everything BuildSpec needs.
type SpecInput struct {
	ID     string
	Config *runtimeapi.ContainerConfig
	Pod    PodContext
	Image  ImageConfig
	// Rootfs is the mounted rootfs: user and group names resolve in its
	// /etc/passwd and /etc/group.
	Rootfs string
}

// defaultCapabilities is containerd's (and docker's) default set.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Paths hidden from and read-only in unprivileged containers unless the
// config names its own (kubelet sends them).
var (
	defaultMaskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func invalid(field, format string, args ...any) error {
	return errdefs.InvalidField(field, format, args...)
}

// BuildSpec returns the OCI runtime spec that runc runs the container with.
func BuildSpec(in SpecInput) (*specs.Spec, error) {
	cfg := in.Config
	if err := validate.Container(cfg, in.Pod.Config); err != nil {
		return nil, err
	}
	sc := cfg.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()

	args, err := processArgs(cfg, in.Image)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(in.Rootfs, sc, in.Image.User)
	if err != nil {
		return nil, err
	}
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Process: &specs.Process{
			Terminal:        cfg.GetTty(),
			Args:            args,
			Env:             mergeEnv(in.Image.Env, cfg.GetEnvs()),
			Cwd:             cwd,
			User:            user,
			NoNewPrivileges: sc.GetNoNewPrivs(),
			OOMScoreAdj:     nil,
		},
		Annotations: map[string]string{},
		// The pod's sysctls are already set in the namespaces it joins.
		Linux: &specs.Linux{},
	}
	for k, v := range cfg.GetAnnotations() {
		spec.Annotations[k] = v
	}
	spec.Annotations["io.kubernetes.cri.container-type"] = "container"
	spec.Annotations["io.kubernetes.cri.sandbox-id"] = in.Pod.SandboxID

	caps, err := capabilities(sc, privileged)
	if err != nil {
		return nil, err
	}
	spec.Process.Capabilities = caps

	spec.Linux.Namespaces, err = namespaces(in.Pod, sc)
	if err != nil {
		return nil, err
	}
	spec.Mounts, err = mounts(cfg, in.Pod, privileged)
	if err != nil {
		return nil, err
	}
	spec.Linux.RootfsPropagation = rootfsPropagation(spec.Mounts)
	if err := devices(spec, cfg, privileged); err != nil {
		return nil, err
	}
	res, err := LinuxResources(cfg.GetLinux().GetResources())
	if err != nil {
		return nil, err
	}
	if res != nil {
		res.Devices = spec.Linux.Resources.Devices
		spec.Linux.Resources = res
	}
	if adj := cfg.GetLinux().GetResources().GetOomScoreAdj(); adj != 0 {
		v := clampOOMScoreAdj(int(adj))
		spec.Process.OOMScoreAdj = &v
	}
	parent := in.Pod.CgroupParent
	if parent == "" {
		parent = "/netshim"
	}
	// RunPodSandbox admits only clean absolute parents; a pod recorded by
	// an older netshim may hold another, and Join would put the container
	// wherever that points (../../x climbs out of every hierarchy).
	if !filepath.IsAbs(parent) || filepath.Clean(parent) != parent || strings.ContainsAny(parent, ":\x00\n") {
		return nil, fmt.Errorf("the pod's linux.cgroup_parent %q is not a clean absolute path (an older netshim accepted it); remove the pod and run it again: %w", in.Pod.CgroupParent, errdefs.ErrFailedPrecondition)
	}
	spec.Linux.CgroupsPath = filepath.Join(parent, in.ID)

	if !privileged {
		spec.Linux.MaskedPaths = defaultMaskedPaths
		if p := sc.GetMaskedPaths(); p != nil {
			spec.Linux.MaskedPaths = p
		}
		spec.Linux.ReadonlyPaths = defaultReadonlyPaths
		if p := sc.GetReadonlyPaths(); p != nil {
			spec.Linux.ReadonlyPaths = p
		}
		spec.Linux.Seccomp, err = seccompProfile(sc, spec)
		if err != nil {
			return nil, err
		}
	}
	ignoreLSMs(sc)
	return spec, nil
}

// processArgs merges the config's command and args with the image's
// entrypoint and cmd, as kubelet and containerd do.
func processArgs(cfg *runtimeapi.ContainerConfig, img ImageConfig) ([]string, error) {
	var args []string
	switch {
	case len(cfg.GetCommand()) > 0:
		args = append(append(args, cfg.GetCommand()...), cfg.GetArgs()...)
	case len(cfg.GetArgs()) > 0:
		args = append(append(args, img.Entrypoint...), cfg.GetArgs()...)
	default:
		args = append(append(args, img.Entrypoint...), img.Cmd...)
	}
	if len(args) == 0 {
		return nil, invalid("config.command", "is empty and the image has no entrypoint or cmd: no command to run")
	}
	return args, nil
}

// mergeEnv is the image's environment overridden by the config's, in order.
func mergeEnv(image []string, kvs []*runtimeapi.KeyValue) []string {
	env := append([]string(nil), image...)
	index := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, kv := range kvs {
		e := kv.GetKey() + "=" + string(kv.GetValue())
		if i, ok := index[kv.GetKey()]; ok {
			env[i] = e
			continue
		}
		index[kv.GetKey()] = len(env)
		env = append(env, e)
	}
	if _, ok := index["PATH"]; !ok {
		env = append([]string{defaultPath}, env...)
	}
	return env
}

func capabilities(sc *runtimeapi.LinuxContainerSecurityContext, privileged bool) (*specs.LinuxCapabilities, error) {
	set := map[string]bool{}
	if privileged {
		for _, c := range grantableCapabilities() {
			set[c] = true
		}
	} else {
		for _, c := range defaultCapabilities {
			set[c] = true
		}
		add, drop := sc.GetCapabilities().GetAddCapabilities(), sc.GetCapabilities().GetDropCapabilities()
		for _, c := range add {
			if strings.EqualFold(c, "ALL") {
				for _, a := range grantableCapabilities() {
					set[a] = true
				}
				continue
			}
			name, err := capName(c)
			if err != nil {
				return nil, invalid("config.linux.security_context.capabilities.add_capabilities", ": %v", err)
			}
			set[name] = true
		}
		for _, c := range drop {
			if strings.EqualFold(c, "ALL") {
				clear(set)
				// Added ones survive dropping ALL, as in containerd.
				for _, a := range add {
					if name, err := capName(a); err == nil && !strings.EqualFold(a, "ALL") {
						set[name] = true
					}
				}
				continue
			}
			name, err := capName(c)
			if err != nil {
				return nil, invalid("config.linux.security_context.capabilities.drop_capabilities", ": %v", err)
			}
			delete(set, name)
		}
	}
	list := make([]string, 0, len(set))
	for c := range set {
		list = append(list, c)
	}
	sort.Strings(list)
	return &specs.LinuxCapabilities{Bounding: list, Effective: list, Permitted: list}, nil
}

func capName(c string) (string, error) {
	name := strings.ToUpper(c)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for _, known := range allCapabilities() {
		if known == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("unknown capability %q", c)
}

// allCapabilities are the capabilities this kernel knows.
func allCapabilities() []string {
	last := 40 // CAP_CHECKPOINT_RESTORE
	if data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			last = n
		}
	}
	var out []string
	for i, name := range capNames {
		if i <= last {
			out = append(out, name)
		}
	}
	return out
}

// grantableCapabilities are what "ALL" and privileged mean: the known
// capabilities netshim itself holds, as containerd takes its own. Where
// netshim runs without some (a container, a hardened node), asking runc for
// them would fail every such container.
func grantableCapabilities() []string {
	all := allCapabilities()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return all
	}
	for _, line := range strings.Split(string(data), "\n") {
		hexMask, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hexMask), 16, 64)
		if err != nil {
			return all
		}
		var out []string
		for i, name := range all {
			if mask&(1<<uint(i)) != 0 {
				out = append(out, name)
			}
		}
		return out
	}
	return all
}

// capNames are the capabilities by number.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// namespaces joins the pod's: the netns by its pin, IPC and UTS (and PID
// when asked) through the pause process.
func namespaces(pod PodContext, sc *runtimeapi.LinuxContainerSecurityContext) ([]specs.LinuxNamespace, error) {
	podNS := pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	pausePath := func(kind string) (string, error) {
		if pod.PausePID <= 0 {
			return "", fmt.Errorf("the pod sandbox's pause process is not running: %w", errdefs.ErrFailedPrecondition)
		}
		return fmt.Sprintf("/proc/%d/ns/%s", pod.PausePID, kind), nil
	}
	if pod.NetNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pod.NetNSPath})
	}
	if podNS.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		p, err := pausePath("uts")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: p})
	}
	if podNS.GetIpc() != runtimeapi.NamespaceMode_NODE {
		p, err := pausePath("ipc")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: p})
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		p, err := pausePath("pid")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: p})
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtimeapi.NamespaceMode_NODE:
	default:
		return nil, invalid("config.linux.security_context.namespace_options.pid", "%s is not supported", sc.GetNamespaceOptions().GetPid())
	}
	return ns, nil
}

// mounts are the defaults every container gets, the pod's shared files,
// then the config's mounts; a config mount replaces a default at its path.
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

func mounts(cfg *runtimeapi.ContainerConfig, pod PodContext, privileged bool) ([]specs.Mount, error) {
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
			if err := needPropagation(host, false); err != nil {
				return nil, fmt.Errorf("mounts[%d]: %w", i, err)
			}
			opts = append(opts, "rslave")
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			if err := needPropagation(host, true); err != nil {
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
func needPropagation(host string, shared bool) error {
	info, err := mountInfoOf(host)
	if err != nil {
		return err
	}
	isShared := strings.Contains(info.optional, "shared:")
	isSlave := strings.Contains(info.optional, "master:")
	switch {
	case shared && !isShared:
		return fmt.Errorf("path %q is mounted on %q but it is not a shared mount: %w", host, info.mountpoint, errdefs.ErrFailedPrecondition)
	case !shared && !isShared && !isSlave:
		return fmt.Errorf("path %q is mounted on %q but it is not a shared or slave mount: %w", host, info.mountpoint, errdefs.ErrFailedPrecondition)
	}
	return nil
}

type mountInfo struct{ mountpoint, optional string }

// mountInfoOf finds the mount holding path in /proc/self/mountinfo.
func mountInfoOf(p string) (mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mountInfo{}, err
	}
	defer f.Close()
	var best mountInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := fields[4]
		if !(p == mp || mp == "/" || strings.HasPrefix(p, mp+"/")) || len(mp) < len(best.mountpoint) {
			continue
		}
		var optional []string
		for _, f := range fields[6:] {
			if f == "-" {
				break
			}
			optional = append(optional, f)
		}
		best = mountInfo{mountpoint: mp, optional: strings.Join(optional, " ")}
	}
	if best.mountpoint == "" {
		return best, fmt.Errorf("no mount holds %s", p)
	}
	return best, sc.Err()
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

// LinuxResources turns the CRI's resources into the OCI spec's; it is also
// what UpdateContainerResources applies.
func LinuxResources(r *runtimeapi.LinuxContainerResources) (*specs.LinuxResources, error) {
	if r == nil {
		return nil, nil
	}
	// The CRI server checked the request; this guards the conversion
	// (a negative value would wrap around as a uint64).
	if err := validate.Resources("config.linux.resources", r); err != nil {
		return nil, err
	}
	if r.GetCpuQuota() > 0 && r.GetCpuPeriod() == 0 {
		// runc's default period applies, as in containerd.
		klog.V(4).InfoS("cpu_quota without cpu_period: the runtime's default period applies")
	}
	out := &specs.LinuxResources{}
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if v := uint64(r.GetCpuShares()); v != 0 {
		cpu.Shares = &v
	}
	if v := r.GetCpuQuota(); v != 0 {
		cpu.Quota = &v
	}
	if v := uint64(r.GetCpuPeriod()); v != 0 {
		cpu.Period = &v
	}
	out.CPU = cpu
	if v := r.GetMemoryLimitInBytes(); v != 0 {
		swap := v
		if r.GetMemorySwapLimitInBytes() > 0 {
			swap = r.GetMemorySwapLimitInBytes()
		}
		out.Memory = &specs.LinuxMemory{Limit: &v}
		if swapAccounting() {
			out.Memory.Swap = &swap
		}
	}
	if len(r.GetHugepageLimits()) > 0 {
		if hugetlbController() {
			for _, h := range r.GetHugepageLimits() {
				out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
			}
		} else {
			// kubelet sends a limit for every page size the kernel has, even
			// where no hugetlb cgroup exists to set it: runc would fail the
			// container, so the limits go, as CRI-O drops them.
			klog.V(2).InfoS("Ignoring hugepage limits: this node has no hugetlb cgroup controller")
		}
	}
	if len(r.GetUnified()) > 0 {
		if isCgroup2() {
			out.Unified = r.GetUnified()
		} else {
			klog.InfoS("Ignoring linux.resources.unified: this node uses cgroup v1")
		}
	}
	return out, nil
}

// swapAccounting is true when the memory cgroup can limit swap.
func swapAccounting() bool {
	if isCgroup2() {
		_, err := os.Stat("/sys/fs/cgroup/memory.swap.max")
		return err == nil
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// clampOOMScoreAdj keeps a container from asking for a lower oom_score_adj
// than netshim's own: without CAP_SYS_RESOURCE the kernel refuses it (as
// containerd's restrict_oom_score_adj does).
func clampOOMScoreAdj(v int) int {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return v
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || v >= own {
		return v
	}
	return own
}

// seccompProfile picks the container's seccomp filter: RuntimeDefault is
// moby's default profile, Localhost a profile file, Unconfined or unset none.
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	kind, localhost := runtimeapi.SecurityProfile_Unconfined, ""
	if p := sc.GetSeccomp(); p != nil {
		kind, localhost = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		switch old := sc.GetSeccompProfilePath(); {
		case old == "", old == "unconfined":
		case old == "runtime/default", old == "docker/default":
			kind = runtimeapi.SecurityProfile_RuntimeDefault
		case strings.HasPrefix(old, "localhost/"):
			kind, localhost = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(old, "localhost/")
		default:
			return nil, invalid("config.linux.security_context.seccomp_profile_path", "%q: want runtime/default, unconfined or localhost/<path>", old)
		}
	}
	switch kind {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		prof, err := seccomp.GetDefaultProfile(spec)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		return prof, nil
	case runtimeapi.SecurityProfile_Localhost:
		body, err := os.ReadFile(localhost)
		if err != nil {
			return nil, invalid("config.linux.security_context.seccomp.localhost_ref", "%q: %v", localhost, err)
		}
		prof, err := seccomp.LoadProfile(string(body), spec)
		if err != nil {
			return nil, invalid("config.linux.security_context.seccomp.localhost_ref", "%q: %v", localhost, err)
		}
		return prof, nil
	}
	return nil, nil
}

// ignoreLSMs logs AppArmor and SELinux requests, which this node cannot
// honour when the kernel has neither (as containerd does with AppArmor off).
func ignoreLSMs(sc *runtimeapi.LinuxContainerSecurityContext) {
	if p := sc.GetApparmor(); p != nil && p.GetProfileType() != runtimeapi.SecurityProfile_Unconfined && !apparmorEnabled() {
		klog.InfoS("Ignoring the AppArmor profile: AppArmor is not enabled on this node", "profile", p.GetLocalhostRef())
	}
	if o := sc.GetSelinuxOptions(); o != nil && (o.GetType() != "" || o.GetLevel() != "") {
		klog.InfoS("Ignoring SELinux options: netshim does not label containers")
	}
}

func apparmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
}
