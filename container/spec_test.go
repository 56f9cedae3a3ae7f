package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// specInput is a container in a pod with its own namespaces, over a rootfs
// whose /etc/passwd and /etc/group know root, app (1000) and nobody.
func specInput(t *testing.T) SpecInput {
	t.Helper()
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nwheel:x:10:app\nvideo:x:44:app,root\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return SpecInput{
		ID: "c1",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
		},
		Pod: PodContext{
			SandboxID: "sb", PausePID: 42, NetNSPath: "/run/netns/pod",
			Config:         &runtimeapi.PodSandboxConfig{Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{}}},
			CgroupParent:   "/kubepods/pod1",
			ResolvConfPath: "/run/sb/resolv.conf", HostnamePath: "/run/sb/hostname", HostsPath: "/run/sb/hosts", ShmPath: "/run/sb/shm",
		},
		Image:  ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "A=image"}},
		Rootfs: rootfs,
	}
}

func build(t *testing.T, in SpecInput) *specs.Spec {
	t.Helper()
	s, err := BuildSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestArgsMerge(t *testing.T) {
	cases := []struct {
		command, args, want []string
	}{
		{nil, nil, []string{"/entry", "serve"}},
		{nil, []string{"x"}, []string{"/entry", "x"}},
		{[]string{"/bin/sh"}, nil, []string{"/bin/sh"}},
		{[]string{"/bin/sh"}, []string{"-c", "true"}, []string{"/bin/sh", "-c", "true"}},
	}
	for _, c := range cases {
		in := specInput(t)
		in.Config.Command, in.Config.Args = c.command, c.args
		if got := build(t, in).Process.Args; !reflect.DeepEqual(got, c.want) {
			t.Errorf("command %v args %v: %v, want %v", c.command, c.args, got, c.want)
		}
	}
	in := specInput(t)
	in.Image = ImageConfig{}
	if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("no command anywhere: %v, want InvalidArgument", err)
	}
}

func TestEnvAndCwd(t *testing.T) {
	in := specInput(t)
	in.Config.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("config")}, {Key: "B", Value: []byte("b")}}
	s := build(t, in)
	if want := []string{"PATH=/bin", "A=config", "B=b"}; !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env %v, want %v", s.Process.Env, want)
	}
	if s.Process.Cwd != "/" {
		t.Errorf("cwd %q", s.Process.Cwd)
	}
	in.Image.Env = nil
	in.Config.WorkingDir = "/srv"
	s = build(t, in)
	if s.Process.Env[0] != defaultPath || s.Process.Cwd != "/srv" {
		t.Errorf("default PATH or working dir missing: %v %q", s.Process.Env, s.Process.Cwd)
	}
}

func TestUser(t *testing.T) {
	id := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	cases := []struct {
		name      string
		imageUser string
		sc        *runtimeapi.LinuxContainerSecurityContext
		want      specs.User
		bad       bool
	}{
		{"default root", "", &runtimeapi.LinuxContainerSecurityContext{}, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{44}}, false},
		{"image user by name", "app", &runtimeapi.LinuxContainerSecurityContext{}, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 44}}, false},
		{"run_as_user", "app", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(65534)}, specs.User{UID: 65534, GID: 65534}, false},
		{"run_as_user unknown uid", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(4242)}, specs.User{UID: 4242, GID: 0}, false},
		{"run_as_group", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), RunAsGroup: id(7)}, specs.User{UID: 1000, GID: 7, AdditionalGids: []uint32{10, 44}}, false},
		{"run_as_username", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody"}, specs.User{UID: 65534, GID: 65534}, false},
		{"supplemental", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroups: []int64{5000}}, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 44, 5000}}, false},
		{"strict policy", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUser: id(1000), SupplementalGroups: []int64{5000}, SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict}, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5000}}, false},
		{"unknown name", "", &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"}, specs.User{}, true},
		{"group without user", "", &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: id(7)}, specs.User{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := specInput(t)
			in.Image.User = c.imageUser
			in.Config.Linux.SecurityContext = c.sc
			s, err := BuildSpec(in)
			if c.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("got %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Process.User, c.want) {
				t.Errorf("user %+v, want %+v", s.Process.User, c.want)
			}
		})
	}
}

func nsOf(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		out[n.Type] = n.Path
	}
	return out
}

func TestNamespaces(t *testing.T) {
	in := specInput(t)
	in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}
	got := nsOf(build(t, in))
	want := map[specs.LinuxNamespaceType]string{
		specs.MountNamespace: "", specs.NetworkNamespace: "/run/netns/pod",
		specs.UTSNamespace: "/proc/42/ns/uts", specs.IPCNamespace: "/proc/42/ns/ipc", specs.PIDNamespace: "/proc/42/ns/pid",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pod PID: %v, want %v", got, want)
	}

	in.Config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_CONTAINER
	if p, ok := nsOf(build(t, in))[specs.PIDNamespace]; !ok || p != "" {
		t.Errorf("container PID: want a new namespace, got %q, %v", p, ok)
	}
	in.Config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_NODE
	in.Pod.NetNSPath = ""
	in.Pod.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}
	got = nsOf(build(t, in))
	if len(got) != 1 {
		t.Errorf("host network, IPC and PID: only a mount namespace expected, got %v", got)
	}
	in.Config.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET
	if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("TARGET: %v, want InvalidArgument", err)
	}
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestMounts(t *testing.T) {
	in := specInput(t)
	host := t.TempDir()
	missing := filepath.Join(t.TempDir(), "made", "by", "us")
	in.Config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: host, Readonly: true},
		{ContainerPath: "/etc/hosts", HostPath: host},
		{ContainerPath: "/new", HostPath: missing},
	}
	s := build(t, in)
	if m := mountAt(s, "/data"); m == nil || m.Source != host || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "rprivate") {
		t.Errorf("/data: %+v", m)
	}
	if m := mountAt(s, "/etc/hosts"); m == nil || m.Source != host {
		t.Errorf("a config mount must replace the pod's /etc/hosts: %+v", m)
	}
	if m := mountAt(s, "/dev/shm"); m == nil || m.Source != "/run/sb/shm" {
		t.Errorf("/dev/shm: %+v", m)
	}
	if m := mountAt(s, "/etc/resolv.conf"); m == nil || m.Source != "/run/sb/resolv.conf" {
		t.Errorf("/etc/resolv.conf: %+v", m)
	}
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("a missing host path is made as a directory: %v", err)
	}
	for i, m := range s.Mounts {
		for _, earlier := range s.Mounts[:i] {
			if filepath.Dir(earlier.Destination) == m.Destination {
				t.Errorf("%s comes after its child %s", m.Destination, earlier.Destination)
			}
		}
	}
	for _, bad := range []*runtimeapi.Mount{
		{ContainerPath: "relative", HostPath: host},
		{ContainerPath: "/a/../etc", HostPath: host},
		{ContainerPath: "/a", HostPath: "relative"},
		{ContainerPath: "/a", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		{ContainerPath: "/a", HostPath: host, RecursiveReadOnly: true},
	} {
		in := specInput(t)
		in.Config.Mounts = []*runtimeapi.Mount{bad}
		if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("mount %v: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	cases := []struct {
		add, drop  []string
		has, lacks string
		count      int
	}{
		{nil, nil, "CAP_CHOWN", "CAP_SYS_ADMIN", len(defaultCapabilities)},
		{[]string{"SYS_ADMIN"}, []string{"CAP_CHOWN"}, "CAP_SYS_ADMIN", "CAP_CHOWN", len(defaultCapabilities)},
		{[]string{"ALL"}, nil, "CAP_SYS_ADMIN", "", len(capNames)},
		{nil, []string{"ALL"}, "", "CAP_CHOWN", 0},
		{[]string{"NET_ADMIN"}, []string{"ALL"}, "CAP_NET_ADMIN", "CAP_CHOWN", 1},
	}
	for _, c := range cases {
		in := specInput(t)
		in.Host = newFakeHost() // holds every capability, whoever runs the test
		in.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: c.add, DropCapabilities: c.drop}
		caps := build(t, in).Process.Capabilities
		if len(caps.Bounding) != c.count || (c.has != "" && !slices.Contains(caps.Effective, c.has)) || (c.lacks != "" && slices.Contains(caps.Bounding, c.lacks)) {
			t.Errorf("add %v drop %v: %v", c.add, c.drop, caps.Bounding)
		}
	}
	in := specInput(t)
	in.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{"CAP_FLY"}}
	if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestPrivileged(t *testing.T) {
	in := specInput(t)
	in.Config.Linux.SecurityContext.Privileged = true
	if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("privileged container in an unprivileged pod: %v", err)
	}
	in.Pod.Config.Linux.SecurityContext.Privileged = true
	in.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	s := build(t, in)
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
		t.Errorf("privileged keeps masks or seccomp: %v %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp != nil)
	}
	if len(s.Process.Capabilities.Bounding) != len(heldCapabilities()) {
		t.Errorf("privileged has %d capabilities", len(s.Process.Capabilities.Bounding))
	}
	if m := mountAt(s, "/sys"); m == nil || slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys should be writable: %+v", m)
	}
}

func TestSeccomp(t *testing.T) {
	profile := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		profile *runtimeapi.SecurityProfile
		old     string // the deprecated seccomp_profile_path, which critest still sends
		want    string // default action, "" for no filter
		bad     bool
	}{
		{nil, "", "", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, "", "", false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, "", string(specs.ActErrno), false},
		{nil, "runtime/default", string(specs.ActErrno), false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}, "", string(specs.ActAllow), false},
		{nil, "localhost/" + profile, string(specs.ActAllow), false},
		{&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/no/such/profile"}, "", "", true},
		{nil, "bogus", "", true},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			in := specInput(t)
			in.Config.Linux.SecurityContext.Seccomp = c.profile
			//lint:ignore SA1019 critest still sends the deprecated field; netshim honours it
			in.Config.Linux.SecurityContext.SeccompProfilePath = c.old
			s, err := BuildSpec(in)
			if c.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("got %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if s.Linux.Seccomp != nil {
				got = string(s.Linux.Seccomp.DefaultAction)
			}
			if got != c.want {
				t.Errorf("seccomp default action %q, want %q", got, c.want)
			}
		})
	}
}

func TestResources(t *testing.T) {
	in := specInput(t)
	in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20, CpusetCpus: "0", OomScoreAdj: 500}
	s := build(t, in)
	r := s.Linux.Resources
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || *r.Memory.Limit != 64<<20 || r.CPU.Cpus != "0" {
		t.Errorf("resources %+v %+v", r.CPU, r.Memory)
	}
	if len(r.Devices) == 0 || r.Devices[0].Allow {
		t.Errorf("the device cgroup must deny by default: %+v", r.Devices)
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj < 500 {
		t.Errorf("oom_score_adj %v", s.Process.OOMScoreAdj)
	}
	if s.Linux.CgroupsPath != "/kubepods/pod1/c1" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -1}
	if _, err := BuildSpec(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("negative memory limit: %v", err)
	}
}

// ALL and privileged give what netshim holds, never more: runc fails a
// container asking for a capability its caller lacks.
func TestGrantableCapabilitiesAreHeld(t *testing.T) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err) // Linux always has it
	}
	var eff uint64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	for _, c := range heldCapabilities() {
		if i := slices.Index(capNames, c); i < 0 || eff&(1<<uint(i)) == 0 {
			t.Errorf("%s is granted but not held (CapEff %x)", c, eff)
		}
	}
}

// The root is made shared for a BIDIRECTIONAL mount and slave for a
// HOST_TO_CONTAINER one, or their propagation could not work.
func TestRootfsPropagation(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want string
	}{
		{[]string{"rbind", "rprivate"}, ""},
		{[]string{"rbind", "rslave"}, "rslave"},
		{[]string{"rbind", "rshared"}, "rshared"},
	} {
		list := []specs.Mount{{Destination: "/x", Options: []string{"rbind", "rslave"}}, {Destination: "/y", Options: c.opts}}
		if c.want == "" {
			list = list[1:]
		}
		if got := rootfsPropagation(list); got != c.want {
			t.Errorf("mount options %v: root %q, want %q", c.opts, got, c.want)
		}
	}
}

// kubelet sends hugepage limits for every page size; where the node has no
// hugetlb controller they are dropped rather than failing the container.
func TestHugepageLimitsFollowTheController(t *testing.T) {
	res, err := LinuxResources(&runtimeapi.LinuxContainerResources{
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.HugepageLimits), map[bool]int{true: 1, false: 0}[hugetlbController()]; got != want {
		t.Errorf("hugepage limits %v with hugetlb controller %v", res.HugepageLimits, hugetlbController())
	}
}

// Issue 14 items 7 and 8 for containers: what a container asks for is
// given or refused as InvalidArgument naming the field, never weakened.
func TestContainerIsolationIsGivenOrRefused(t *testing.T) {
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	const nsField = "config.linux.security_context.namespace_options"
	cases := []struct {
		name, field string
		mutate      func(*runtimeapi.LinuxContainerSecurityContext, *runtimeapi.ContainerConfig)
	}{
		{"network of its own", nsField + ".network", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.Network = runtimeapi.NamespaceMode_CONTAINER
		}},
		{"IPC of its own", nsField + ".ipc", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.Ipc = runtimeapi.NamespaceMode_CONTAINER
		}},
		{"network TARGET", nsField + ".network", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.Network = runtimeapi.NamespaceMode_TARGET
		}},
		{"pid mode the API lacks", nsField + ".pid", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.Pid = 12
		}},
		{"user namespace", nsField + ".userns_options.mode", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}
		}},
		{"mappings without a user namespace", nsField + ".userns_options", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: ids}
		}},
		{"negative uid", "config.linux.security_context.run_as_user", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: -1}
		}},
		{"negative supplemental group", "config.linux.security_context.supplemental_groups[0]", func(sc *runtimeapi.LinuxContainerSecurityContext, _ *runtimeapi.ContainerConfig) {
			sc.SupplementalGroups = []int64{-10}
		}},
		{"newline in the log path", "config.log_path", func(_ *runtimeapi.LinuxContainerSecurityContext, c *runtimeapi.ContainerConfig) {
			c.LogPath = "web/0.log\n"
		}},
	}
	for _, tc := range cases {
		in := specInput(t)
		in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
		tc.mutate(in.Config.Linux.SecurityContext, in.Config)
		for step, err := range map[string]error{"validate.Container": validate.ContainerInPod(in.Config, in.Pod.Config), "BuildSpec": func() error { _, err := BuildSpec(in); return err }()} {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.field) {
				t.Errorf("%s: %s: %v, want InvalidArgument starting with %s", tc.name, step, err, tc.field)
			}
		}
	}

	// What kubelet sends: the pod's namespaces, a PID namespace per
	// container, and the node's user namespace.
	for name, mutate := range map[string]func(*runtimeapi.NamespaceOption){
		"pod namespaces":    func(o *runtimeapi.NamespaceOption) {},
		"pid per container": func(o *runtimeapi.NamespaceOption) { o.Pid = runtimeapi.NamespaceMode_CONTAINER },
		"node namespaces": func(o *runtimeapi.NamespaceOption) {
			o.Network, o.Ipc, o.Pid = runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE
		},
		"userns NODE": func(o *runtimeapi.NamespaceOption) {
			o.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
		},
	} {
		in := specInput(t)
		in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{}
		mutate(in.Config.Linux.SecurityContext.NamespaceOptions)
		if _, err := BuildSpec(in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Issue 14 item 6 for containers: a container's cgroup is its pod's parent
// plus its ID. A parent RunPodSandbox would refuse today, but that an older
// netshim recorded, is a failed precondition, not a cgroup outside it.
func TestContainerCgroupStaysUnderItsPodsParent(t *testing.T) {
	for _, parent := range []string{"../../x", "/netshim/../../x", "probe.slice:x:y", "kubepods/pod1", "/kubepods/\x00"} {
		in := specInput(t)
		in.Pod.CgroupParent = parent
		_, err := BuildSpec(in)
		if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "linux.cgroup_parent") {
			t.Errorf("pod cgroup parent %q: %v, want FailedPrecondition naming linux.cgroup_parent", parent, err)
		}
	}
	for parent, want := range map[string]string{"/kubepods/pod1": "/kubepods/pod1/c1", "": "/netshim/c1"} {
		in := specInput(t)
		in.Pod.CgroupParent = parent
		if got := build(t, in).Linux.CgroupsPath; got != want {
			t.Errorf("pod cgroup parent %q: cgroups path %q, want %q", parent, got, want)
		}
	}
}

// heldCapabilities are this node's grantable capabilities: what netshim holds.
func heldCapabilities() []string {
	_, held := node{}.Capabilities()
	return held
}
