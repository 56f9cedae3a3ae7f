package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeHost is a node as the spec options see it, set per test row.
type fakeHost struct {
	mounts        map[string]string // mount point -> optional fields
	swap, hugetlb bool
	cgroup2       bool
	ownOOM        int
	oomErr        error
	apparmor      bool
	known, held   []string
	mountOfCalls  int
}

func (f *fakeHost) MountOf(p string) (string, string, error) {
	f.mountOfCalls++
	best := ""
	for mp := range f.mounts {
		if (p == mp || mp == "/" || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", "", fmt.Errorf("no mount holds %s", p)
	}
	return best, f.mounts[best], nil
}
func (f *fakeHost) SwapAccounting() bool      { return f.swap }
func (f *fakeHost) HugetlbController() bool   { return f.hugetlb }
func (f *fakeHost) Cgroup2() bool             { return f.cgroup2 }
func (f *fakeHost) OOMScoreAdj() (int, error) { return f.ownOOM, f.oomErr }
func (f *fakeHost) AppArmorEnabled() bool     { return f.apparmor }
func (f *fakeHost) Capabilities() ([]string, []string) {
	return f.known, f.held
}

func newFakeHost() *fakeHost {
	return &fakeHost{mounts: map[string]string{"/": "shared:1"}, known: capNames, held: capNames}
}

// optSpec runs one option on an empty spec, as BuildSpec would.
func optSpec(t *testing.T, opt SpecOpt, in SpecInput, host HostFacts) (*specs.Spec, error) {
	t.Helper()
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	return spec, opt(spec, in, host)
}

func TestMountsOptionFollowsHostPropagation(t *testing.T) {
	hostDir := t.TempDir()
	cases := []struct {
		name       string
		optional   string // of the mount holding hostDir
		prop       runtimeapi.MountPropagation
		privileged bool
		wantOpt    string // the propagation option on the mount; "" for a refusal
		wantRoot   string
	}{
		{"private on a private mount", "", runtimeapi.MountPropagation_PROPAGATION_PRIVATE, false, "rprivate", ""},
		{"host-to-container on a shared mount", "shared:7", runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, false, "rslave", "rslave"},
		{"host-to-container on a slave mount", "master:3", runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, false, "rslave", "rslave"},
		{"host-to-container on a private mount", "", runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, false, "", ""},
		{"bidirectional on a shared mount", "shared:7", runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, true, "rshared", "rshared"},
		{"bidirectional on a slave mount", "master:3", runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, true, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := newFakeHost()
			host.mounts = map[string]string{"/": "shared:1", hostDir: c.optional}
			in := specInput(t)
			in.Config.Linux.SecurityContext.Privileged = c.privileged
			in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: hostDir, Propagation: c.prop}}
			s, err := optSpec(t, withMounts, in, host)
			if c.wantOpt == "" {
				if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), hostDir) {
					t.Fatalf("got %v, want FailedPrecondition naming %s", err, hostDir)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := mountAt(s, "/data")
			if m == nil || !slices.Contains(m.Options, c.wantOpt) || m.Source != hostDir {
				t.Errorf("mount %+v, want %s from %s", m, c.wantOpt, hostDir)
			}
			if s.Linux.RootfsPropagation != c.wantRoot {
				t.Errorf("rootfs propagation %q, want %q", s.Linux.RootfsPropagation, c.wantRoot)
			}
			if c.prop == runtimeapi.MountPropagation_PROPAGATION_PRIVATE && host.mountOfCalls != 0 {
				t.Errorf("a private mount looked up mountinfo %d times", host.mountOfCalls)
			}
		})
	}
}

// A missing host path is made as a directory, as containerd does.
func TestMountsOptionMakesAMissingHostDir(t *testing.T) {
	in := specInput(t)
	missing := filepath.Join(t.TempDir(), "a", "b")
	in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: missing, Readonly: true}}
	s, err := optSpec(t, withMounts, in, newFakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("host path not made as a directory: %v", err)
	}
	if m := mountAt(s, "/data"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("read-only mount %+v", m)
	}
}

func TestResourcesOptionFollowsTheCgroupTree(t *testing.T) {
	limit := int64(64 << 20)
	cases := []struct {
		name                   string
		swap, hugetlb, cgroup2 bool
		wantSwap, wantHuge     bool
		wantUnified            bool
	}{
		{"v2, everything", true, true, true, true, true, true},
		{"v2, no swap accounting", false, true, true, false, true, true},
		{"v1, no hugetlb", true, false, false, true, false, false},
		{"v1, nothing", false, false, false, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := newFakeHost()
			host.swap, host.hugetlb, host.cgroup2 = c.swap, c.hugetlb, c.cgroup2
			in := specInput(t)
			in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{
				MemoryLimitInBytes: limit, CpuShares: 256,
				HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
				Unified:        map[string]string{"memory.high": "max"},
			}
			s, err := optSpec(t, withResources, in, host)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Linux.Resources
			if r.Memory == nil || *r.Memory.Limit != limit || *r.CPU.Shares != 256 {
				t.Fatalf("limits %+v %+v", r.Memory, r.CPU)
			}
			if got := r.Memory.Swap != nil; got != c.wantSwap {
				t.Errorf("swap limit set %v, want %v", got, c.wantSwap)
			} else if got && *r.Memory.Swap != limit {
				t.Errorf("swap limit %d, want the memory limit %d", *r.Memory.Swap, limit)
			}
			if got := len(r.HugepageLimits) == 1; got != c.wantHuge {
				t.Errorf("hugepage limits %v, want them %v", r.HugepageLimits, c.wantHuge)
			}
			if got := r.Unified != nil; got != c.wantUnified {
				t.Errorf("unified %v, want it %v", r.Unified, c.wantUnified)
			}
		})
	}
}

// oom_score_adj is clamped to netshim's own: the kernel refuses less to a
// process without CAP_SYS_RESOURCE, as on this kind of machine.
func TestResourcesOptionClampsOOMScoreAdj(t *testing.T) {
	cases := []struct {
		name      string
		own       int
		ownErr    error
		ask, want int64
	}{
		{"above netshim's", -500, nil, 500, 500},
		{"below netshim's", -500, nil, -999, -500},
		{"equal", 0, nil, 0, 0},
		{"netshim's unreadable", 0, errors.New("no proc"), -999, -999},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := newFakeHost()
			host.ownOOM, host.oomErr = c.own, c.ownErr
			in := specInput(t)
			in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: c.ask}
			s, err := optSpec(t, withResources, in, host)
			if err != nil {
				t.Fatal(err)
			}
			var got int64
			if s.Process.OOMScoreAdj != nil {
				got = int64(*s.Process.OOMScoreAdj)
			}
			if got != c.want {
				t.Errorf("oom_score_adj %d, want %d", got, c.want)
			}
		})
	}
}

func TestSecurityOptionGrantsWhatNetshimHolds(t *testing.T) {
	held := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_ADMIN", "CAP_NET_RAW"}
	cases := []struct {
		name       string
		privileged bool
		add, drop  []string
		want       []string
		badField   string
	}{
		{"privileged gets what is held", true, nil, nil, held, ""},
		{"ALL adds what is held", false, []string{"ALL"}, nil, sortedUnion(defaultCapabilities, held), ""},
		{"drop ALL keeps what was added", false, []string{"net_admin"}, []string{"ALL"}, []string{"CAP_NET_ADMIN"}, ""},
		{"a capability the kernel lacks", false, []string{"CAP_FLY"}, nil, nil, "config.linux.security_context.capabilities.add_capabilities"},
		{"a drop the kernel lacks", false, nil, []string{"CAP_FLY"}, nil, "config.linux.security_context.capabilities.drop_capabilities"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host := newFakeHost()
			host.held = held
			in := specInput(t)
			sc := in.Config.Linux.SecurityContext
			sc.Privileged = c.privileged
			sc.Capabilities = &runtimeapi.Capability{AddCapabilities: c.add, DropCapabilities: c.drop}
			s, err := optSpec(t, withSecurity, in, host)
			if c.badField != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), c.badField) {
					t.Fatalf("got %v, want InvalidArgument naming %s", err, c.badField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Process.Capabilities.Bounding; !slices.Equal(got, c.want) {
				t.Errorf("capabilities %v, want %v", got, c.want)
			}
			if masked := s.Linux.MaskedPaths != nil; masked == c.privileged {
				t.Errorf("privileged %v, masked paths %v", c.privileged, s.Linux.MaskedPaths)
			}
		})
	}
}

// A pod never runs less confined than it asked: an AppArmor profile this
// node cannot apply, or SELinux options, are refused naming the field;
// RuntimeDefault where AppArmor is off is nothing, as kubelet has it.
func TestSecurityOptionRefusesWhatItCannotApply(t *testing.T) {
	rows := []struct {
		name     string
		apparmor bool
		mutate   func(*runtimeapi.LinuxContainerSecurityContext)
		field    string // "" when accepted
	}{
		{"RuntimeDefault without AppArmor", false, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		}, ""},
		{"Unconfined with AppArmor", true, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
		}, ""},
		{"Localhost without AppArmor", false, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "my-profile"}
		}, "config.linux.security_context.apparmor"},
		{"deprecated localhost/ without AppArmor", false, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			//lint:ignore SA1019 the deprecated form is still sent by older kubelets
			sc.ApparmorProfile = "localhost/my-profile"
		}, "config.linux.security_context.apparmor"},
		{"Localhost not loaded", true, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "netshim-test-no-such-profile"}
		}, "config.linux.security_context.apparmor"},
		{"RuntimeDefault with AppArmor", true, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		}, "config.linux.security_context.apparmor"},
		{"SELinux type", false, func(sc *runtimeapi.LinuxContainerSecurityContext) {
			sc.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "container_t"}
		}, "config.linux.security_context.selinux_options"},
	}
	for _, r := range rows {
		host := newFakeHost()
		host.apparmor = r.apparmor
		in := specInput(t)
		r.mutate(in.Config.Linux.SecurityContext)
		s, err := optSpec(t, withSecurity, in, host)
		switch {
		case r.field == "" && err != nil:
			t.Errorf("%s: %v", r.name, err)
		case r.field == "" && s.Process.ApparmorProfile != "":
			t.Errorf("%s: profile %q applied", r.name, s.Process.ApparmorProfile)
		case r.field != "" && (err == nil || !strings.HasPrefix(err.Error(), r.field)):
			t.Errorf("%s: %v, want an error naming %s", r.name, err, r.field)
		}
	}
}

func TestNamespacesOption(t *testing.T) {
	pid := func(m runtimeapi.NamespaceMode) func(*SpecInput) {
		return func(in *SpecInput) {
			in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: m}
		}
	}
	cases := []struct {
		name   string
		mutate func(*SpecInput)
		want   map[specs.LinuxNamespaceType]string
		err    error
	}{
		{"pod's own namespaces", pid(runtimeapi.NamespaceMode_POD), map[specs.LinuxNamespaceType]string{
			specs.MountNamespace: "", specs.NetworkNamespace: "/run/netns/pod", specs.UTSNamespace: "/proc/42/ns/uts",
			specs.IPCNamespace: "/proc/42/ns/ipc", specs.PIDNamespace: "/proc/42/ns/pid"}, nil},
		{"pid of its own", pid(runtimeapi.NamespaceMode_CONTAINER), map[specs.LinuxNamespaceType]string{
			specs.MountNamespace: "", specs.NetworkNamespace: "/run/netns/pod", specs.UTSNamespace: "/proc/42/ns/uts",
			specs.IPCNamespace: "/proc/42/ns/ipc", specs.PIDNamespace: ""}, nil},
		{"node's namespaces", func(in *SpecInput) {
			pid(runtimeapi.NamespaceMode_NODE)(in)
			in.Pod.NetNSPath = ""
			in.Pod.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}
		}, map[specs.LinuxNamespaceType]string{specs.MountNamespace: ""}, nil},
		{"no pause process", func(in *SpecInput) { in.Pod.PausePID = 0 }, nil, errdefs.ErrFailedPrecondition},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := specInput(t)
			c.mutate(&in)
			s, err := optSpec(t, withNamespaces, in, newFakeHost())
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := nsOf(s)
			if len(got) != len(c.want) {
				t.Errorf("namespaces %v, want %v", got, c.want)
			}
			for typ, p := range c.want {
				if gp, ok := got[typ]; !ok || gp != p {
					t.Errorf("%s namespace %q (present %v), want %q", typ, gp, ok, p)
				}
			}
		})
	}
}

func TestDevicesOption(t *testing.T) {
	regular := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		privileged bool
		devices    []*runtimeapi.Device
		wantDev    int
		wantAllow  bool // the device cgroup's first rule
		badField   string
	}{
		{"none", false, nil, 0, false, ""},
		{"/dev/null, read-only", false, []*runtimeapi.Device{{ContainerPath: "/dev/xnull", HostPath: "/dev/null", Permissions: "r"}}, 1, false, ""},
		{"privileged allows every device", true, nil, 0, true, ""},
		{"a regular file", false, []*runtimeapi.Device{{ContainerPath: "/dev/x", HostPath: regular}}, 0, false, "config.devices[0].host_path"},
		{"a missing file", false, []*runtimeapi.Device{{ContainerPath: "/dev/x", HostPath: regular + ".gone"}}, 0, false, "config.devices[0].host_path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := specInput(t)
			in.Config.Linux.SecurityContext.Privileged = c.privileged
			in.Config.Devices = c.devices
			s, err := optSpec(t, withDevices, in, newFakeHost())
			if c.badField != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), c.badField) {
					t.Fatalf("got %v, want InvalidArgument naming %s", err, c.badField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Linux.Devices) != c.wantDev {
				t.Errorf("devices %v, want %d", s.Linux.Devices, c.wantDev)
			}
			rules := s.Linux.Resources.Devices
			if len(rules) == 0 || rules[0].Allow != c.wantAllow {
				t.Fatalf("device cgroup %+v, first rule allow=%v wanted", rules, c.wantAllow)
			}
			if c.wantDev == 1 {
				d := s.Linux.Devices[0]
				if d.Path != "/dev/xnull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
					t.Errorf("device %+v, want /dev/null's c 1:3 at /dev/xnull", d)
				}
				if last := rules[len(rules)-1]; !last.Allow || last.Access != "r" || *last.Major != 1 || *last.Minor != 3 {
					t.Errorf("device rule %+v, want allow r on 1:3", last)
				}
			}
		})
	}
}

// Options run in order over one spec: the device cgroup that withDevices
// makes survives withResources, and BuildSpec reads the node it is given.
func TestBuildSpecUsesTheGivenHost(t *testing.T) {
	host := newFakeHost()
	host.swap = false
	in := specInput(t)
	in.Host = host
	in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 32 << 20, OomScoreAdj: -900}
	host.ownOOM = -100
	s, err := BuildSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Resources.Memory.Swap != nil {
		t.Errorf("swap limit set on a node without swap accounting")
	}
	if *s.Process.OOMScoreAdj != -100 {
		t.Errorf("oom_score_adj %d, want the fake node's -100", *s.Process.OOMScoreAdj)
	}
	if len(s.Linux.Resources.Devices) == 0 || s.Linux.Resources.Devices[0].Allow {
		t.Errorf("device cgroup lost: %+v", s.Linux.Resources.Devices)
	}
}

func sortedUnion(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}
