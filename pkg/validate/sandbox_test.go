package validate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func validConfig() *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "PodSandbox-for-test-1", Namespace: "ns", Uid: "c0ffee"},
		Hostname: "web-0.example",
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: 8080, HostIp: "127.0.0.1"},
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53},
		},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"198.18.0.10"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux:     &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}},
	}
}

var testProtected = []string{"/var/lib/netshim", "/run/netshim"}

func TestValidConfigPasses(t *testing.T) {
	cfg := validConfig()
	cfg.LogDirectory = "/var/log/pods/ns_web_c0ffee"
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100", "net/ipv4/conf/pod0/forwarding": "1"}
	if err := Sandbox(cfg, testProtected); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidConfigsNameTheField(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*runtimeapi.PodSandboxConfig)
	}{
		{"config.metadata", func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }},
		{"config.metadata.uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "" }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../../etc" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = ".." }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a\x00b" }},
		{"config.metadata.namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = strings.Repeat("n", 64) }},
		{"config.metadata.name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = strings.Repeat("n", 254) }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "-bad-" }},
		{"config.hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "under_score" }},
		{"config.port_mappings[0].container_port", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].ContainerPort = 0 }},
		{"config.port_mappings[0].host_port", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostPort = 70000 }},
		{"config.port_mappings[1].protocol", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[1].Protocol = 7 }},
		{"config.port_mappings[0].host_ip", func(c *runtimeapi.PodSandboxConfig) { c.PortMappings[0].HostIp = "localhost" }},
		{"config.dns_config.servers[0]", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Servers[0] = "dns.example" }},
		{"config.dns_config", func(c *runtimeapi.PodSandboxConfig) { c.DnsConfig.Options = []string{"ndots:5 x"} }},
		{"config.linux.sysctls[../x]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"../x": "1"} }},
		{"config.linux.sysctls[vm.swappiness]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"vm.swappiness": "1"} }},
		{"config.linux.sysctls[kernel.panic]", func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} }},
		{"config.linux.sysctls[net.ipv4.ip_forward]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
		}},
		{"config.linux.sysctls[kernel.shm_rmid_forced]", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"kernel.shm_rmid_forced": "1"}
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}
		}},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "relative/logs" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/../lib/x" }},
		{"config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/lib/netshim/sandboxes" }},
	}
	for _, tc := range cases {
		cfg := validConfig()
		tc.mutate(cfg)
		err := Sandbox(cfg, testProtected)
		if err == nil {
			t.Errorf("%s: invalid config accepted", tc.field)
			continue
		}
		if !isFieldError(err) {
			t.Errorf("%s: error %T, want a FieldError (InvalidArgument)", tc.field, err)
		}
		if !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("error %q does not start with the field %s", err, tc.field)
		}
	}
}

func FuzzValidateSandboxConfig(f *testing.F) {
	f.Add("web", "default", "uid-1", "web")
	f.Add("../x", "..", "", "-")
	f.Add("PodSandbox-for-test", "ns", "u", "a.b.c")
	f.Fuzz(func(t *testing.T, name, namespace, uid, hostname string) {
		cfg := validConfig()
		cfg.Metadata = &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid}
		cfg.Hostname = hostname
		if Sandbox(cfg, testProtected) != nil {
			return
		}
		// Whatever passes must be safe as one path element.
		for _, v := range []string{name, namespace, uid} {
			if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
				t.Fatalf("accepted path-unsafe value %q", v)
			}
		}
	})
}

// refusal is one bad config and the field its error must start with.
type refusal struct {
	name, field string
	mutate      func(*runtimeapi.PodSandboxConfig)
}

// assertRefusals runs each row through the validation: the client must see
// InvalidArgument (cri maps the kind) with a message naming the field.
// mustQuote rows also name the offending value.
func assertRefusals(t *testing.T, rows []refusal, mustQuote func(*runtimeapi.PodSandboxConfig) string) {
	t.Helper()
	for _, tc := range rows {
		cfg := validConfig()
		tc.mutate(cfg)
		err := Sandbox(cfg, testProtected)
		if !isFieldError(err) {
			t.Errorf("%s: %v, want an InvalidArgument FieldError", tc.name, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tc.field) {
			t.Errorf("%s: %q does not start with the field %s", tc.name, msg, tc.field)
		}
		if mustQuote != nil {
			if v := mustQuote(cfg); len(v) < 200 && !strings.Contains(msg, fmt.Sprintf("%q", v)) {
				t.Errorf("%s: %q does not name the value %q", tc.name, msg, v)
			}
		}
	}
}

func assertAccepted(t *testing.T, name string, mutate func(*runtimeapi.PodSandboxConfig)) {
	t.Helper()
	cfg := validConfig()
	mutate(cfg)
	if err := Sandbox(cfg, testProtected); err != nil {
		t.Errorf("%s: refused: %v", name, err)
	}
}

// Issue 14 item 6: the cgroupfs driver places a pod under its parent with
// filepath.Join, so only a clean absolute path keeps it there.
func TestCgroupParentMustBeACleanAbsolutePath(t *testing.T) {
	parent := func(p string) func(*runtimeapi.PodSandboxConfig) {
		return func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = p }
	}
	const field = "config.linux.cgroup_parent"
	rows := []refusal{
		{"relative, climbing", field, parent("../../x")},
		{"absolute, climbing", field, parent("/netshim/../../x")},
		{"relative", field, parent("kubepods/besteffort")},
		{"trailing slash", field, parent("/kubepods/")},
		{"double slash", field, parent("/kubepods//pod1")},
		{"dot element", field, parent("/kubepods/./pod1")},
		{"the root", field, parent("/")},
		{"systemd slice, runc's syntax", field, parent("probe.slice:x:y")},
		{"systemd slice, kubelet's name", field, parent("kubepods-besteffort-pod1.slice")},
		{"colon in a path", field, parent("/kubepods:x")},
		{"NUL", field, parent("/kubepods/a\x00b")},
		{"newline", field, parent("/kubepods/a\nb")},
		{"a control file's name", field, parent("/kubepods/cpu.shares")},
		{"cgroup v2 control file", field, parent("/cgroup.procs")},
		{"v1 tasks file", field, parent("/kubepods/tasks")},
	}
	assertRefusals(t, rows, func(c *runtimeapi.PodSandboxConfig) string { return c.Linux.CgroupParent })
	assertRefusals(t, []refusal{
		{"too long", field, parent("/" + strings.Repeat("a/", maxCgroupParentLen/2) + "a")},
		{"an element over NAME_MAX", field, parent("/kubepods/" + strings.Repeat("p", 256))},
	}, nil)

	cfg := validConfig()
	cfg.Linux.CgroupParent = "probe.slice:x:y"
	if err := Sandbox(cfg, testProtected); err == nil || !strings.Contains(err.Error(), "cgroupfs") {
		t.Errorf("a systemd slice's error must say netshim uses the cgroupfs driver: %v", err)
	}

	// What kubelet (cgroupDriver: cgroupfs) and critest send.
	for _, p := range []string{"", "/kubepods", "/kubepods/besteffort/pod6c3a0e4e-1b2c-4d5e-8f90-123456789abc",
		"/kubepods/burstable/pod_123-456", "/netshim-e2e.1/pods", "/kubepods/" + strings.Repeat("p", 255)} {
		assertAccepted(t, "cgroup parent "+p, parent(p))
	}
}

// Issue 26 item 11: under --cgroup-driver=systemd the parent is the slice
// kubelet's systemd driver names, and a cgroupfs path is refused, saying so.
func TestCgroupParentUnderTheSystemdDriver(t *testing.T) {
	cgroupdriver.Set(cgroupdriver.Systemd)
	defer cgroupdriver.Set(cgroupdriver.Cgroupfs)
	parent := func(p string) func(*runtimeapi.PodSandboxConfig) {
		return func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = p }
	}
	for _, p := range []string{"", "kubepods.slice", "kubepods-besteffort-pod6c3a0e4e_1b2c_4d5e_8f90_123456789abc.slice",
		"kubepods-burstable-pod1.slice", "system.slice"} {
		assertAccepted(t, "systemd cgroup parent "+p, parent(p))
	}
	const field = "config.linux.cgroup_parent"
	assertRefusals(t, []refusal{
		{"a cgroupfs path", field, parent("/kubepods/besteffort/pod1")},
		{"runc's syntax", field, parent("kubepods.slice:netshim:x")},
		{"a path of slices", field, parent("/kubepods.slice/kubepods-besteffort.slice")},
		{"the root slice", field, parent("-.slice")},
		{"an empty level", field, parent("kubepods--pod1.slice")},
		{"NUL", field, parent("kubepods\x00.slice")},
	}, func(c *runtimeapi.PodSandboxConfig) string { return c.Linux.CgroupParent })
	cfg := validConfig()
	cfg.Linux.CgroupParent = "/kubepods/besteffort/pod1"
	if err := Sandbox(cfg, testProtected); err == nil || !strings.Contains(err.Error(), "systemd cgroup driver") {
		t.Errorf("a cgroupfs path's error must say netshim uses the systemd driver: %v", err)
	}
}

// Issue 14 item 7: isolation a pod asks for is given or refused, never
// quietly weakened.
func TestRequestedIsolationIsGivenOrRefused(t *testing.T) {
	sc := func(c *runtimeapi.PodSandboxConfig) *runtimeapi.LinuxSandboxSecurityContext {
		c.Linux.Sysctls = nil // net.* sysctls need the pod's own network
		if c.Linux.SecurityContext == nil {
			c.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{}}
		}
		return c.Linux.SecurityContext
	}
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 100000, Length: 65536}}
	const nsField = "config.linux.security_context.namespace_options"
	rows := []refusal{
		{"user namespace without mappings", nsField + ".userns_options.uids", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Gids: ids}
		}},
		{"user namespace with two mappings", nsField + ".userns_options.gids", func(c *runtimeapi.PodSandboxConfig) {
			two := append(slices.Clone(ids), &runtimeapi.IDMapping{ContainerId: 0, HostId: 200000, Length: 65536})
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: two}
		}},
		{"user namespace without container ID 0", nsField + ".userns_options.uids[0].container_id", func(c *runtimeapi.PodSandboxConfig) {
			one := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 100000, Length: 65536}}
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: one, Gids: ids}
		}},
		{"user namespace past the last ID", nsField + ".userns_options.uids[0]", func(c *runtimeapi.PodSandboxConfig) {
			far := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1<<32 - 100, Length: 65536}}
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: far, Gids: ids}
		}},
		{"mappings without a user namespace", nsField + ".userns_options", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE, Uids: ids, Gids: ids}
		}},
		{"user namespace per container", nsField + ".userns_options.mode", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}
		}},
		{"user namespace mode the API lacks", nsField + ".userns_options.mode", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: 9}
		}},
		{"network mode the API lacks", nsField + ".network", func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Network = 7 }},
		{"pid mode the API lacks", nsField + ".pid", func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Pid = -1 }},
		{"ipc mode the API lacks", nsField + ".ipc", func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Ipc = 4 }},
		{"pid TARGET on a sandbox", nsField + ".pid", func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Pid = runtimeapi.NamespaceMode_TARGET }},
		{"network TARGET", nsField, func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Network = runtimeapi.NamespaceMode_TARGET }},
		{"negative uid", "config.linux.security_context.run_as_user", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).RunAsUser = &runtimeapi.Int64Value{Value: -5}
		}},
		{"negative gid", "config.linux.security_context.run_as_group", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).RunAsGroup = &runtimeapi.Int64Value{Value: -1}
		}},
		{"negative supplemental group", "config.linux.security_context.supplemental_groups[1]", func(c *runtimeapi.PodSandboxConfig) {
			sc(c).SupplementalGroups = []int64{10, -3}
		}},
	}
	assertRefusals(t, rows, nil)

	cfg := validConfig()
	rows[2].mutate(cfg)
	if err := Sandbox(cfg, testProtected); err == nil || !strings.Contains(err.Error(), "container ID 0 must be mapped") {
		t.Errorf("an unmapped container ID 0 must be said in words: %v", err)
	}

	for name, mutate := range map[string]func(*runtimeapi.PodSandboxConfig){
		"userns NODE": func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
		},
		"no userns options": func(c *runtimeapi.PodSandboxConfig) { sc(c) },
		"userns POD": func(c *runtimeapi.PodSandboxConfig) {
			sc(c).NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}
		},
		"root":              func(c *runtimeapi.PodSandboxConfig) { sc(c).RunAsUser = &runtimeapi.Int64Value{Value: 0} },
		"pid per container": func(c *runtimeapi.PodSandboxConfig) { sc(c).NamespaceOptions.Pid = runtimeapi.NamespaceMode_CONTAINER },
		"node namespaces": func(c *runtimeapi.PodSandboxConfig) {
			o := sc(c).NamespaceOptions
			o.Network, o.Pid, o.Ipc = runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_NODE
		},
	} {
		assertAccepted(t, name, mutate)
	}
}

// Issue 14 item 8: nothing a request says reaches resolv.conf, /proc/sys,
// a path or the port map unchecked.
func TestWhatARequestWritesIsChecked(t *testing.T) {
	dns := func(f func(*runtimeapi.DNSConfig)) func(*runtimeapi.PodSandboxConfig) {
		return func(c *runtimeapi.PodSandboxConfig) { f(c.DnsConfig) }
	}
	sysctl := func(name, value string) func(*runtimeapi.PodSandboxConfig) {
		return func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{name: value} }
	}
	domains := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strings.Repeat("d", size)
		}
		return out
	}
	// 8 domains of 253 and one of 16, with their 8 spaces: 2048 characters.
	line2048 := append(domains(8, 253), strings.Repeat("e", 16))
	rows := []refusal{
		{"carriage return in a search", "config.dns_config.searches[0]", dns(func(d *runtimeapi.DNSConfig) { d.Searches = []string{"a.example\rb"} })},
		{"tab in a search", "config.dns_config.searches[0]", dns(func(d *runtimeapi.DNSConfig) { d.Searches = []string{"a\tb"} })},
		{"DEL in a search", "config.dns_config.searches[0]", dns(func(d *runtimeapi.DNSConfig) { d.Searches = []string{"a\x7fb"} })},
		{"newline in a server", "config.dns_config.servers[0]", dns(func(d *runtimeapi.DNSConfig) { d.Servers = []string{"198.18.0.10\nsearch evil"} })},
		{"NUL in a server's zone", "config.dns_config.servers[0]", dns(func(d *runtimeapi.DNSConfig) { d.Servers = []string{"fe80::1%eth0\x00"} })},
		{"NUL in an option", "config.dns_config.options[0]", dns(func(d *runtimeapi.DNSConfig) { d.Options = []string{"ndots:5\x00"} })},
		{"4 servers", "config.dns_config.servers", dns(func(d *runtimeapi.DNSConfig) {
			d.Servers = []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"}
		})},
		{"33 search domains", "config.dns_config.searches", dns(func(d *runtimeapi.DNSConfig) { d.Searches = domains(33, 3) })},
		{"a 2049-character search line", "config.dns_config.searches", dns(func(d *runtimeapi.DNSConfig) {
			d.Searches = append(domains(8, 253), strings.Repeat("e", 17))
		})},
		{"a 254-character domain", "config.dns_config.searches[1]", dns(func(d *runtimeapi.DNSConfig) {
			d.Searches = []string{"svc.cluster.local", strings.Repeat("d", 254)}
		})},
		{"newline in a sysctl value", "config.linux.sysctls[net.ipv4.ip_forward]", sysctl("net.ipv4.ip_forward", "1\n0")},
		{"NUL in a sysctl value", "config.linux.sysctls[net.ipv4.ip_forward]", sysctl("net.ipv4.ip_forward", "1\x00")},
		{"empty sysctl name part", "config.linux.sysctls[net..ipv4.ip_forward]", sysctl("net..ipv4.ip_forward", "1")},
		{"sysctl name ending in a dot", "config.linux.sysctls[net.ipv4.]", sysctl("net.ipv4.", "1")},
		{"sysctl name starting with a slash", "config.linux.sysctls[/net/ipv4/ip_forward]", sysctl("/net/ipv4/ip_forward", "1")},
		{"climbing sysctl name", "config.linux.sysctls[net/../../etc]", sysctl("net/../../etc", "1")},
		{"space in a sysctl name", "config.linux.sysctls[net.ipv4.ip forward]", sysctl("net.ipv4.ip forward", "1")},
		{"upper case sysctl name", "config.linux.sysctls[NET.ipv4.ip_forward]", sysctl("NET.ipv4.ip_forward", "1")},
		{"device with a dot", "config.linux.sysctls[net/ipv4/conf/eth0.100/forwarding]", sysctl("net/ipv4/conf/eth0.100/forwarding", "1")},
		{"a directory of sysctls", "config.linux.sysctls[net.ipv4]", sysctl("net.ipv4", "1")},
		{"a device's directory", "config.linux.sysctls[net.ipv4.conf.pod0]", sysctl("net.ipv4.conf.pod0", "1")},
		{"a device sysctl the kernel lacks", "config.linux.sysctls[net.ipv4.conf.pod0.no_such]", sysctl("net.ipv4.conf.pod0.no_such", "1")},
		{"an IPC sysctl runc refuses", "config.linux.sysctls[kernel.shm_next_id]", sysctl("kernel.shm_next_id", "1")},
		{"NUL in the log directory", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/\x00" }},
		{"newline in the log directory", "config.log_directory", func(c *runtimeapi.PodSandboxConfig) { c.LogDirectory = "/var/log/pods/a\nb" }},
		{"same host port and protocol", "config.port_mappings[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 81, HostPort: 8080}}
		}},
		{"same host port on the same host IP", "config.port_mappings[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{
				{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "198.18.0.1"},
				{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 54, HostPort: 5353, HostIp: "198.18.0.1"},
			}
		}},
		{"same host port on :: and a v6 address", "config.port_mappings[1]", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{
				{ContainerPort: 80, HostPort: 8443, HostIp: "::"},
				{ContainerPort: 81, HostPort: 8443, HostIp: "::1"},
			}
		}},
	}
	assertRefusals(t, rows, nil)

	for name, mutate := range map[string]func(*runtimeapi.PodSandboxConfig){
		"3 servers, one link-local with its zone": dns(func(d *runtimeapi.DNSConfig) { d.Servers = []string{"198.18.0.1", "fd00::53", "fe80::1%eth0"} }),
		"32 search domains":                       dns(func(d *runtimeapi.DNSConfig) { d.Searches = domains(32, 3) }),
		"a 2048-character search line":            dns(func(d *runtimeapi.DNSConfig) { d.Searches = line2048 }),
		"kubelet's search for no resolv.conf":     dns(func(d *runtimeapi.DNSConfig) { d.Searches = []string{"."} }),
		"a tab-separated sysctl value":            sysctl("net.ipv4.tcp_rmem", "4096\t87380\t6291456"),
		"a device only the pod has":               sysctl("net.ipv4.conf.pod0.forwarding", "1"),
		"a device only the pod has, '/' form":     sysctl("net/ipv4/conf/pod0/forwarding", "1"),
		"a neighbour table sysctl":                sysctl("net.ipv6.neigh.pod0.retrans_time_ms", "1000"),
		"an IPC sysctl runc allows":               sysctl("kernel.msgmax", "8192"),
		"the same host port, TCP and UDP": func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{
				{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 53, HostPort: 53},
				{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 53},
			}
		},
		"container ports only, twice": func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80}, {ContainerPort: 80}}
		},
	} {
		assertAccepted(t, name, mutate)
	}
}

// Issue 14 item 8: a host IP the pod network cannot serve. The server
// passes the default network's families (cri/sandbox.go, IPFamilies).
func TestHostIPFamilyMustBeThePodNetworks(t *testing.T) {
	pm := func(ip string) []*runtimeapi.PortMapping {
		return []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 8080}, {ContainerPort: 80, HostPort: 8081, HostIp: ip}}
	}
	cases := []struct {
		ip     string
		v4, v6 bool
		ok     bool
	}{
		{"::1", true, false, false},
		{"::", true, false, false},
		{"198.18.0.1", false, true, false},
		{"0.0.0.0", false, true, false},
		{"::ffff:198.18.0.1", false, true, false}, // an IPv4 address, written as IPv6
		{"198.18.0.1", true, false, true},
		{"fd00::1", false, true, true},
		{"fd00::1", true, true, true},
		{"", false, true, true},
	}
	for _, c := range cases {
		err := HostIPFamilies(pm(c.ip), c.v4, c.v6)
		switch {
		case c.ok && err != nil:
			t.Errorf("host IP %q with v4=%v v6=%v: %v", c.ip, c.v4, c.v6, err)
		case !c.ok && (!isFieldError(err) || !strings.HasPrefix(err.Error(), "config.port_mappings[1].host_ip")):
			t.Errorf("host IP %q with v4=%v v6=%v: %v, want InvalidArgument naming config.port_mappings[1].host_ip", c.ip, c.v4, c.v6, err)
		}
	}
}

// isFieldError: the one error type of a refused request, which cri maps to
// InvalidArgument.
func isFieldError(err error) bool {
	var fe *errdefs.FieldError
	return errors.As(err, &fe) && errors.Is(err, errdefs.ErrInvalidArgument)
}
