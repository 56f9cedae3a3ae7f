package main

import (
	"bytes"
	goflag "flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	klog.InitFlags(nil)
	os.Exit(m.Run())
}

// The tests, hack scripts and kubelet-style units pass flags both ways.
func TestFlagsParseBothForms(t *testing.T) {
	var o options
	fs := newFlagSet("netshim", &o)
	var out bytes.Buffer
	setUsage(fs, &out)
	code := parseFlags(fs, []string{
		"--container-runtime-endpoint", "unix:///tmp/x.sock",
		"--root-dir=/tmp/root",
		"--network-plugin", "",
		"--network-plugin-mtu=1400",
		"-v", "4",
		"--log_file_max_size=7",
	})
	if code != -1 {
		t.Fatalf("parse: exit %d: %s", code, out.String())
	}
	if o.endpoint != "unix:///tmp/x.sock" || o.rootDir != "/tmp/root" || o.networkPlugin != "" || o.mtu != 1400 {
		t.Errorf("parsed %+v", o)
	}
	if o.stateDir != "/run/netshim" || o.cniBinDir != "/opt/cni/bin" {
		t.Errorf("defaults changed: state %q, cni bin %q", o.stateDir, o.cniBinDir)
	}
	// klog's flags are the same flags klog reads.
	if v := goflag.CommandLine.Lookup("v").Value.String(); v != "4" {
		t.Errorf("klog -v = %s, want 4", v)
	}
	if v := goflag.CommandLine.Lookup("log_file_max_size").Value.String(); v != "7" {
		t.Errorf("klog --log-file-max-size = %s, want 7 (underscores normalized)", v)
	}
	if err := goflag.CommandLine.Set("v", "0"); err != nil {
		t.Fatal(err)
	}
}

func TestHelpPrintsDoubleDashFlags(t *testing.T) {
	var o options
	fs := newFlagSet("netshim", &o)
	var out bytes.Buffer
	setUsage(fs, &out)
	if code := parseFlags(fs, []string{"--help"}); code != 0 {
		t.Fatalf("--help exits %d", code)
	}
	help := out.String()
	for _, want := range []string{"netshim check [flags]", "      --container-runtime-endpoint string", "      --cni-bin-dir string", "  -v, --v Level", "      --version", "      --log-file string"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "\n  -root-dir") {
		t.Errorf("help shows Go's single-dash flags:\n%s", help)
	}
}

func TestBadFlagsExit2WithMessage(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"-root-dir", "/x"}, {"serve"}} {
		var o options
		fs := newFlagSet("netshim", &o)
		var out bytes.Buffer
		setUsage(fs, &out)
		if code := parseFlags(fs, args); code != 2 || !strings.Contains(out.String(), "netshim: ") {
			t.Errorf("%v: exit %d, output %q; want 2 and a message", args, code, out.String())
		}
	}
}

func TestCheckHidesItsTestFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runCheck([]string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("check --help exits %d", code)
	}
	if strings.Contains(stderr.String(), "proc-dir") || !strings.Contains(stderr.String(), "--cni-conf-dir") {
		t.Errorf("check --help:\n%s", stderr.String())
	}
}

func TestVersionString(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v0.3.0-4-gabcdef"
	if got := versionString(); !strings.HasPrefix(got, "netshim v0.3.0-4-gabcdef (go") {
		t.Errorf("versionString() = %q", got)
	}
	version = ""
	if got := versionString(); !strings.HasPrefix(got, "netshim ") || strings.Contains(got, "netshim  ") {
		t.Errorf("versionString() without a version = %q", got)
	}
}

func TestRuntimeVersionIsSemantic(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	for in, want := range map[string]string{
		"v0.3.0-4-gabcdef": "v0.3.0-4-gabcdef", // a tagged build's git describe
		"1.2.3":            "1.2.3",
		"3b40410":          "0.0.0-git-3b40410", // git describe --always without a tag
		"3b40410-dirty":    "0.0.0-git-3b40410-dirty",
		"0123456":          "0.0.0-git-0123456", // all digits with a leading 0: not a valid identifier alone
		"weird/rev_1":      "0.0.0-git-weird-rev-1",
	} {
		version = in
		got := runtimeVersion()
		if got != want || !semantic.MatchString(got) {
			t.Errorf("runtimeVersion() with version %q = %q, want %q (semantic)", in, got, want)
		}
	}
}

// An installed netshim finds pause and runc in PREFIX/libexec/netshim; a
// build tree's finds them beside itself, which wins.
func TestFindHelperBesideThenLibexec(t *testing.T) {
	prefix := t.TempDir()
	bin := filepath.Join(prefix, "bin")
	libexec := filepath.Join(prefix, "libexec", "netshim")
	for _, d := range []string{bin, libexec} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(libexec, "pause"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findHelperFrom(bin, "pause"); got != filepath.Join(libexec, "pause") {
		t.Errorf("findHelperFrom(bin, pause) = %q, want the libexec one", got)
	}
	if err := os.WriteFile(filepath.Join(bin, "pause"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findHelperFrom(bin, "pause"); got != filepath.Join(bin, "pause") {
		t.Errorf("findHelperFrom(bin, pause) = %q, want the one beside netshim", got)
	}
	if got := findHelperFrom(bin, "netshim-no-such-helper"); got != "netshim-no-such-helper" {
		t.Errorf("a missing helper = %q, want its bare name", got)
	}
}

// Children must not see NOTIFY_SOCKET: runc would wait for a pause's READY.
func TestTakeNotifySocketClearsEnvironment(t *testing.T) {
	t.Setenv(notifySocketEnv, "/run/systemd/notify")
	if got := takeNotifySocket(); got != "/run/systemd/notify" {
		t.Errorf("takeNotifySocket() = %q", got)
	}
	if v, ok := os.LookupEnv(notifySocketEnv); ok {
		t.Errorf("NOTIFY_SOCKET still set: %q", v)
	}
}

// --help says what --cni-loopback-plugin costs: one plugin process more
// per pod start and stop, not less (issue 26.8); and that --hairpin-mode's
// default depends on the plugin.
func TestHelpSaysWhatFlagsDo(t *testing.T) {
	var o options
	fs := newFlagSet("netshim", &o)
	var out bytes.Buffer
	setUsage(fs, &out)
	parseFlags(fs, []string{"--help"})
	help := out.String()
	line := func(flag string) string {
		i := strings.Index(help, flag+" ")
		if i < 0 {
			t.Fatalf("--help lacks %s:\n%s", flag, help)
		}
		end := strings.Index(help[i:], "\n  -")
		if end < 0 {
			end = len(help) - i
		}
		return help[i : i+end]
	}
	if l := line("--cni-loopback-plugin"); !strings.Contains(l, "one plugin process more") {
		t.Errorf("--cni-loopback-plugin: %q, want it to say it costs one plugin process more", l)
	}
	if l := line("--hairpin-mode"); !strings.Contains(l, "default: promiscuous-bridge under kubenet, hairpin-veth otherwise") {
		t.Errorf("--hairpin-mode: %q, want its default by plugin", l)
	}
}
