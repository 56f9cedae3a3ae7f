package container

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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
	return withLSMs(spec, sc, host)
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

// withLSMs applies the AppArmor profile asked for, or refuses what this
// node cannot apply: a pod never runs less confined than it asked.
//   - Unconfined, or nothing: no profile.
//   - RuntimeDefault: where AppArmor is off, nothing, as kubelet and
//     containerd have it (kubelet asks for it only where AppArmor is on);
//     where it is on, netshim's own default profile (apparmor.go), or a
//     refusal when it could not be loaded, never unconfined.
//   - Localhost NAME: applied where AppArmor is on and NAME is loaded;
//     refused otherwise.
//
// SELinux: netshim does not label, so SELinux options are refused.
func withLSMs(spec *specs.Spec, sc *runtimeapi.LinuxContainerSecurityContext, host HostFacts) error {
	const field = "config.linux.security_context.apparmor"
	p := sc.GetApparmor()
	profileType, name := p.GetProfileType(), p.GetLocalhostRef()
	//lint:ignore SA1019 kubelets before 1.30 send only the string form; it must not go unapplied
	deprecated := sc.GetApparmorProfile()
	if p == nil && deprecated != "" {
		switch v := deprecated; {
		case v == "unconfined":
			profileType = runtimeapi.SecurityProfile_Unconfined
		case v == "runtime/default":
			profileType = runtimeapi.SecurityProfile_RuntimeDefault
		default:
			profileType, name = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(v, "localhost/")
		}
	}
	if p == nil && deprecated == "" {
		profileType = runtimeapi.SecurityProfile_Unconfined
	}
	switch profileType {
	case runtimeapi.SecurityProfile_Unconfined:
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if host.AppArmorEnabled() {
			if !appArmorLoaded(DefaultAppArmorProfile) {
				return fmt.Errorf("%s: RuntimeDefault: AppArmor is enabled on this node but netshim's default profile %s is not loaded (netshim loads it at start with apparmor_parser; see its log): %w", field, DefaultAppArmorProfile, errdefs.ErrFailedPrecondition)
			}
			spec.Process.ApparmorProfile = DefaultAppArmorProfile
		}
	case runtimeapi.SecurityProfile_Localhost:
		if !host.AppArmorEnabled() {
			return invalid(field, "Localhost %q: AppArmor is not enabled on this node, so no profile can be applied", name)
		}
		if !appArmorLoaded(name) {
			return invalid(field, "Localhost %q: no AppArmor profile of that name is loaded on this node", name)
		}
		spec.Process.ApparmorProfile = name
	}
	if o := sc.GetSelinuxOptions(); o != nil && (o.GetUser() != "" || o.GetRole() != "" || o.GetType() != "" || o.GetLevel() != "") {
		return invalid("config.linux.security_context.selinux_options", "netshim does not apply SELinux labels (this node has no SELinux); leave them out")
	}
	return nil
}

// appArmorLoaded says whether the kernel has a profile named name loaded.
func appArmorLoaded(name string) bool {
	data, err := os.ReadFile("/sys/kernel/security/apparmor/profiles")
	if err != nil || name == "" {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		// "name (enforce)"
		if n, _, _ := strings.Cut(line, " ("); n == name {
			return true
		}
	}
	return false
}
