package main

import (
	"bytes"
	goflag "flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// load parses args as netshim does and applies the config; it fails the
// test on an error.
func load(t *testing.T, args ...string) options {
	t.Helper()
	o, err := tryLoad(args...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func tryLoad(args ...string) (options, error) {
	var o options
	fs := newFlagSet("netshim", &o)
	var out bytes.Buffer
	setUsage(fs, &out)
	if code := parseFlags(fs, args); code >= 0 {
		return o, &exitError{code, out.String()}
	}
	return o, loadConfig(fs, &o)
}

type exitError struct {
	code int
	out  string
}

func (e *exitError) Error() string { return e.out }

// resetVerbosity puts klog's -v back after a test that set it.
func resetVerbosity(t *testing.T) {
	t.Cleanup(func() { _ = goflag.CommandLine.Set("v", "0") })
}

// The file, then its drop-ins in lexical order, then the command line:
// each one's key over the one before, and a key one leaves out keeps the
// earlier value.
func TestConfigPrecedence(t *testing.T) {
	resetVerbosity(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "netshim.toml")
	writeTestFile(t, cfg, `
root_dir = "/srv/file"
state_dir = "/run/file"
cni_conf_dir = "/etc/file"
network_plugin_mtu = 1400
cni_loopback_plugin = true
image_pull_progress_timeout = "90s"
cdi_spec_dirs = ["/a", "/b"]
v = 2
`)
	writeTestFile(t, filepath.Join(dir, "netshim.toml.d", "20-late.toml"), `state_dir = "/run/late"
cdi_spec_dirs = ["/c"]
`)
	writeTestFile(t, filepath.Join(dir, "netshim.toml.d", "10-early.toml"), `state_dir = "/run/early"
cni_conf_dir = "/etc/early"
`)
	// Not a drop-in: only *.toml is read.
	writeTestFile(t, filepath.Join(dir, "netshim.toml.d", "30-off.toml.disabled"), `state_dir = "/run/disabled"`)

	o := load(t, "--config", cfg, "--cni-conf-dir=/etc/flag", "--network-plugin-mtu", "1280")
	if o.rootDir != "/srv/file" {
		t.Errorf("root dir %q: want the file's /srv/file", o.rootDir)
	}
	if o.stateDir != "/run/late" {
		t.Errorf("state dir %q: want the last drop-in's /run/late", o.stateDir)
	}
	if o.cniConfDir != "/etc/flag" || o.mtu != 1280 {
		t.Errorf("cni conf dir %q, mtu %d: want the flags' /etc/flag and 1280", o.cniConfDir, o.mtu)
	}
	if !o.cniLoopbackPlugin || o.pullProgress != 90*time.Second {
		t.Errorf("loopback %v, pull progress %v: want the file's true and 1m30s", o.cniLoopbackPlugin, o.pullProgress)
	}
	if !reflect.DeepEqual(o.cdiSpecDirs, []string{"/c"}) {
		t.Errorf("cdi spec dirs %q: want the drop-in's [/c], replacing the file's", o.cdiSpecDirs)
	}
	if v := goflag.CommandLine.Lookup("v").Value.String(); v != "2" {
		t.Errorf("klog -v %s: want the file's 2", v)
	}
	if o.endpoint != "unix:///run/netshim/netshim.sock" {
		t.Errorf("endpoint %q: a key no file sets keeps its default", o.endpoint)
	}
}

// A missing default file (and drop-in dir) is nothing to read; a missing
// file named by --config is an error naming it; so is a directory.
func TestConfigMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "netshim.toml")
	if files, err := configFiles(missing, false); err != nil || len(files) != 0 {
		t.Errorf("missing default: %v, %v; want nothing to read", files, err)
	}
	_, err := tryLoad("--config", missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing --config file: %v; want an error naming %s", err, missing)
	}
	dir := t.TempDir()
	if _, err := tryLoad("--config", dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("--config of a directory: %v; want an error saying so", err)
	}
	// Drop-ins without the file are read: the file is optional.
	writeTestFile(t, filepath.Join(configDropInDir(missing), "a.toml"), `root_dir = "/srv/dropin"`)
	if files, err := configFiles(missing, false); err != nil || len(files) != 1 {
		t.Errorf("drop-in without its file: %v, %v; want the drop-in read", files, err)
	}
	// --config "" reads nothing, not even the default.
	if o := load(t, "--config="); o.rootDir != "/var/lib/netshim" {
		t.Errorf(`--config "": root dir %q`, o.rootDir)
	}
}

func TestConfigBadKeys(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", `rootdir = "/x"`, `unknown key "rootdir"`},
		{"a flag's name, not its key", `cni-conf-dir = "/x"`, `unknown key "cni-conf-dir" (keys are flag names with _ for -: cni_conf_dir)`},
		{"no key for --config", `config = "/x"`, `unknown key "config"`},
		{"no key for --version", `version = true`, `unknown key "version"`},
		{"string for an integer", `network_plugin_mtu = "1400"`, "network_plugin_mtu: want an integer, got a string"},
		{"integer for a boolean", `cni_loopback_plugin = 1`, "cni_loopback_plugin: want a boolean, got an integer"},
		{"string for a list", `cdi_spec_dirs = "/etc/cdi"`, "cdi_spec_dirs: want an array of strings, got a string"},
		{"bad duration", `image_pull_progress_timeout = "soon"`, "image_pull_progress_timeout: "},
		{"unknown handler key", "[runtime_handlers.runsc]\npath = \"/usr/bin/runsc\"\nplatform = \"ptrace\"", `unknown key "runtime_handlers.runsc.platform"`},
		{"handler args not a list", "[runtime_handlers.runsc]\npath = \"/usr/bin/runsc\"\nargs = \"--debug\"", "runtime_handlers"},
		{"not TOML", `root_dir = `, "config "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "bad.toml")
			writeTestFile(t, cfg, tc.text)
			_, err := tryLoad("--config", cfg)
			if err == nil || !strings.Contains(err.Error(), cfg) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error naming %s and saying %q", err, cfg, tc.want)
			}
		})
	}
}

// A value no flag would take either is refused as the flag would be.
func TestConfigBadCgroupDriver(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "netshim.toml")
	writeTestFile(t, cfg, `cgroup_driver = "systemd-ish"`)
	for _, args := range [][]string{{"--config", cfg}, {"--config=", "--cgroup-driver=systemd-ish"}} {
		if _, err := tryLoad(args...); err == nil || !strings.Contains(err.Error(), `cgroup_driver): unknown cgroup driver "systemd-ish"`) {
			t.Errorf("%q: %v; want the unknown driver named", args, err)
		}
	}
}

func TestRuntimeHandlers(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "netshim.toml")
	writeTestFile(t, cfg, `
state_dir = "/run/x"
[runtime_handlers.runsc]
path = "/usr/bin/runsc"
args = ["--platform=ptrace"]
[runtime_handlers.crun]
path = "/usr/bin/crun"
root = "/run/crun-root"
`)
	writeTestFile(t, filepath.Join(dir, "netshim.toml.d", "gvisor.toml"), `
[runtime_handlers.runsc]
root = "/run/gvisor"
`)
	o := load(t, "--config", cfg, "--runtime-handler", "crun=/opt/crun", "--runtime-handler=kata=/opt/kata/runtime")
	want := []handlerConfig{
		{Name: "crun", Path: "/opt/crun", Root: "/run/crun-root"},
		{Name: "kata", Path: "/opt/kata/runtime", Root: "/run/x/runtimes/kata"},
		{Name: "runsc", Path: "/usr/bin/runsc", Root: "/run/gvisor", Args: []string{"--platform=ptrace"}},
	}
	if !reflect.DeepEqual(o.runtimeHandlers, want) {
		t.Errorf("handlers\n got %+v\nwant %+v", o.runtimeHandlers, want)
	}

	for _, tc := range []struct {
		name string
		args []string
		text string
		want string
	}{
		{"runc redefined", []string{"--runtime-handler", "runc=/usr/sbin/runc"}, "", "runc is the default handler"},
		{"upper case", []string{"--runtime-handler", "gVisor=/usr/bin/runsc"}, "", "DNS-1123 label"},
		{"no path", nil, "[runtime_handlers.crun]\nargs = []", `runtime handler "crun": no path`},
		{"no =", []string{"--runtime-handler", "/usr/bin/runsc"}, "", "want NAME=PATH"},
		{"relative root", nil, "[runtime_handlers.crun]\npath = \"crun\"\nroot = \"state\"", "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "netshim.toml")
			writeTestFile(t, cfg, tc.text)
			_, err := tryLoad(append([]string{"--config", cfg}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// What `netshim config` prints, netshim takes back as --config, to the
// same options and the same output.
func TestConfigRoundTrip(t *testing.T) {
	resetVerbosity(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "netshim.toml")
	writeTestFile(t, cfg, `
root_dir = "/srv/netshim"
cni_loopback_plugin = true
network_plugin_mtu = 1450
image_pull_progress_timeout = "45s"
registry_config = "/etc/containers/registries.conf"
v = 3
[runtime_handlers.runsc]
path = "/usr/bin/runsc"
args = ["--platform=ptrace", "--network=sandbox"]
`)
	first := load(t, "--config", cfg, "--runtime-handler=crun=/usr/bin/crun", "--cdi-spec-dirs=/etc/cdi", "--hairpin-mode=none")
	var out1 bytes.Buffer
	var o1 options
	fs1 := newFlagSet("netshim", &o1)
	if code := parseOptions(fs1, &o1, []string{"--config", cfg, "--runtime-handler=crun=/usr/bin/crun", "--cdi-spec-dirs=/etc/cdi", "--hairpin-mode=none"}); code >= 0 {
		t.Fatalf("parse: exit %d", code)
	}
	if err := writeConfig(&out1, fs1, &o1); err != nil {
		t.Fatal(err)
	}
	dumped := filepath.Join(t.TempDir(), "dumped.toml")
	writeTestFile(t, dumped, out1.String())
	_ = goflag.CommandLine.Set("v", "0") // so that the file must set it again

	var o2 options
	fs2 := newFlagSet("netshim", &o2)
	if code := parseOptions(fs2, &o2, []string{"--config", dumped}); code >= 0 {
		t.Fatalf("the dumped config is refused (exit %d):\n%s", code, out1.String())
	}
	var out2 bytes.Buffer
	if err := writeConfig(&out2, fs2, &o2); err != nil {
		t.Fatal(err)
	}
	if out1.String() != out2.String() {
		t.Errorf("dump of the dump differs:\n%s\n---\n%s", out1.String(), out2.String())
	}
	o2.configFile = first.configFile
	o2.handlerFlags, o2.configFilesRead = first.handlerFlags, first.configFilesRead
	if !reflect.DeepEqual(first, o2) {
		t.Errorf("options differ after the round trip:\n %+v\n %+v", first, o2)
	}
	for _, want := range []string{`root_dir = "/srv/netshim"`, "v = 3", "[runtime_handlers.crun]", `path = "/usr/bin/runsc"`,
		`args = ["--platform=ptrace", "--network=sandbox"]`, `cdi_spec_dirs = ["/etc/cdi"]`, `hairpin_mode = "none"`} {
		if !strings.Contains(out1.String(), want) {
			t.Errorf("netshim config prints no %q:\n%s", want, out1.String())
		}
	}
}

// Every flag of --help but --config, --version and --runtime-handler has a
// key in `netshim config`.
func TestEveryFlagHasAKey(t *testing.T) {
	var o options
	fs := newFlagSet("netshim", &o)
	var out bytes.Buffer
	if err := writeConfig(&out, fs, &o); err != nil {
		t.Fatal(err)
	}
	var help bytes.Buffer
	setUsage(fs, &help)
	fs.Usage()
	n := 0
	for _, line := range strings.Split(help.String(), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "--") && !strings.HasPrefix(line, "-v, --") {
			continue
		}
		name := strings.TrimPrefix(strings.Fields(strings.TrimPrefix(line, "-v, "))[0], "--")
		if name == "config" || name == "version" || name == "runtime-handler" || strings.HasPrefix(name, "test.") { // go test's own
			continue
		}
		n++
		if !strings.Contains(out.String(), "\n"+configKey(name)+" = ") {
			t.Errorf("flag --%s has no key %s in netshim config", name, configKey(name))
		}
	}
	if n < 20 {
		t.Fatalf("found only %d flags in --help:\n%s", n, help.String())
	}
}

// examples/netshim.toml (make run's, and what make install ships) sets
// every key, each to its default, and registers runsc and crun.
func TestExampleConfigHasEveryKeyAtItsDefault(t *testing.T) {
	resetVerbosity(t)
	example := filepath.Join("..", "..", "examples", "netshim.toml")
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var o options
	fs := newFlagSet("netshim", &o)
	if code := parseOptions(fs, &o, []string{"--config", example, "--state-dir=/run/x"}); code >= 0 {
		t.Fatalf("examples/netshim.toml refused (exit %d)", code)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if !inConfig(f) || strings.HasPrefix(f.Name, "test.") {
			return
		}
		if !strings.Contains(string(data), "\n"+configKey(f.Name)+" = ") {
			t.Errorf("examples/netshim.toml has no key %s", configKey(f.Name))
		}
		if f.Name != "state-dir" && f.Value.String() != f.DefValue {
			t.Errorf("examples/netshim.toml sets %s to %s; its default is %s", configKey(f.Name), f.Value, f.DefValue)
		}
	})
	// runsc with gVisor's host network: Debian 12's runsc cannot start its
	// own on kernels 6.x (the handlers e2e test runs it so).
	want := []handlerConfig{{Name: "crun", Path: "/usr/bin/crun", Root: "/run/x/runtimes/crun"},
		{Name: "runsc", Path: "/usr/bin/runsc", Root: "/run/x/runtimes/runsc", Args: []string{"--network=host"}}}
	if !reflect.DeepEqual(o.runtimeHandlers, want) {
		t.Errorf("handlers %+v; want %+v", o.runtimeHandlers, want)
	}
}

// The README's Flags table lists every flag of netshim's own (klog's are
// summed up under -v).
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var o options
	fs := newFlagSet("netshim", &o)
	fs.VisitAll(func(f *pflag.Flag) {
		if goflag.CommandLine.Lookup(strings.ReplaceAll(f.Name, "-", "_")) != nil || goflag.CommandLine.Lookup(f.Name) != nil {
			return // klog's, or go test's
		}
		if !strings.Contains(string(readme), "\n| `--"+f.Name+"` |") {
			t.Errorf("README's Flags table has no row for --%s", f.Name)
		}
	})
}
