package container

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

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

// withSecurity sets the capabilities and, for an unprivileged container,
// the masked and read-only paths and the seccomp filter; it logs the LSM
// requests this node cannot honour.
func withSecurity(spec *specs.Spec, in SpecInput, host HostFacts) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	caps, err := capabilities(sc, privileged, host)
	if err != nil {
		return err
	}
	spec.Process.Capabilities = caps
	if !privileged {
		spec.Linux.MaskedPaths = defaultMaskedPaths
		if p := sc.GetMaskedPaths(); p != nil {
			spec.Linux.MaskedPaths = p
		}
		spec.Linux.ReadonlyPaths = defaultReadonlyPaths
		if p := sc.GetReadonlyPaths(); p != nil {
			spec.Linux.ReadonlyPaths = p
		}
		// The default profile allows what the capabilities set above need.
		spec.Linux.Seccomp, err = seccompProfile(sc, spec)
		if err != nil {
			return err
		}
	}
	ignoreLSMs(sc, host)
	return nil
}

// capabilities are the default set with the config's added and dropped;
// "ALL" and privileged mean what netshim holds (grantable).
func capabilities(sc *runtimeapi.LinuxContainerSecurityContext, privileged bool, host HostFacts) (*specs.LinuxCapabilities, error) {
	known, grantable := host.Capabilities()
	set := map[string]bool{}
	if privileged {
		for _, c := range grantable {
			set[c] = true
		}
	} else {
		for _, c := range defaultCapabilities {
			set[c] = true
		}
		add, drop := sc.GetCapabilities().GetAddCapabilities(), sc.GetCapabilities().GetDropCapabilities()
		for _, c := range add {
			if strings.EqualFold(c, "ALL") {
				for _, a := range grantable {
					set[a] = true
				}
				continue
			}
			name, err := capName(c, known)
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
					if name, err := capName(a, known); err == nil && !strings.EqualFold(a, "ALL") {
						set[name] = true
					}
				}
				continue
			}
			name, err := capName(c, known)
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

// capName is c as the kernel names it (CAP_ prefix, upper case), if this
// kernel knows it.
func capName(c string, known []string) (string, error) {
	name := strings.ToUpper(c)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	if slices.Contains(known, name) {
		return name, nil
	}
	return "", fmt.Errorf("unknown capability %q", c)
}

// seccompProfile picks the container's seccomp filter: RuntimeDefault is
// moby's default profile, Localhost a profile file, Unconfined or unset none.
// Without the seccomp field, the deprecated seccomp_profile_path is read:
// kubelet no longer sets it, but critest's SeccompProfilePath specs do, and
// a profile asked for must never be quietly dropped.
func seccompProfile(sc *runtimeapi.LinuxContainerSecurityContext, spec *specs.Spec) (*specs.LinuxSeccomp, error) {
	kind, localhost := runtimeapi.SecurityProfile_Unconfined, ""
	if p := sc.GetSeccomp(); p != nil {
		kind, localhost = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		//lint:ignore SA1019 read only when the seccomp field is unset; see above
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
		field := "config.linux.security_context.seccomp.localhost_ref"
		if sc.GetSeccomp() == nil {
			field = "config.linux.security_context.seccomp_profile_path"
		}
		// The path is the node's; a FIFO or a device there must not hang
		// or exhaust netshim, so only a bounded regular file is read.
		body, err := readRegular(localhost, maxSeccompSize, false)
		if err != nil {
			return nil, invalid(field, "%q: %v", localhost, err)
		}
		prof, err := seccomp.LoadProfile(string(body), spec)
		if err != nil {
			return nil, invalid(field, "%q: %v", localhost, err)
		}
		return prof, nil
	}
	return nil, nil
}

// ignoreLSMs logs AppArmor and SELinux requests, which this node cannot
// honour when the kernel has neither (as containerd does with AppArmor off).
func ignoreLSMs(sc *runtimeapi.LinuxContainerSecurityContext, host HostFacts) {
	if p := sc.GetApparmor(); p != nil && p.GetProfileType() != runtimeapi.SecurityProfile_Unconfined && !host.AppArmorEnabled() {
		klog.InfoS("Ignoring the AppArmor profile: AppArmor is not enabled on this node", "profile", p.GetLocalhostRef())
	}
	if o := sc.GetSelinuxOptions(); o != nil && (o.GetType() != "" || o.GetLevel() != "") {
		klog.InfoS("Ignoring SELinux options: netshim does not label containers")
	}
}
