package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// systemdAnalyze finds systemd-analyze (Debian's systemd package; make deps
// installs it); without it the test fails under CI=true, else skips.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing (apt-get install systemd; make deps does)")
		}
		t.Skip("systemd-analyze is missing")
	}
	return p
}

// verifyUnit runs `systemd-analyze verify` on a unit file. It needs no
// running systemd: it loads the unit into a manager of its own, with the
// system's unit search path for the units it names, checks every directive
// parses, that each ExecStart= program exists and is executable, and that a
// start job for it can be built (Wants=, After=, Before= and WantedBy=
// resolve). --man=no skips looking up Documentation= man pages and
// --generators=no keeps it from running the system's unit generators.
// Any diagnostic counts as a failure: systemd-analyze exits 0 on unknown
// keys and bad values, which it only reports.
func verifyUnit(t *testing.T, unit string) string {
	t.Helper()
	out, err := exec.Command(systemdAnalyze(t), "verify", "--man=no", "--generators=no", unit).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil && msg == "" {
		msg = err.Error()
	}
	return msg
}

// installedUnitForVerify installs into a temp DESTDIR and returns a copy of
// the installed unit whose PREFIX paths point into DESTDIR: what `make
// install PREFIX=$DESTDIR/usr/local` would write, so systemd-analyze finds
// the installed programs without anything under the real /usr/local.
func installedUnitForVerify(t *testing.T, prefix string) (dest, unitText, verifyCopy string) {
	t.Helper()
	dest = t.TempDir()
	makeTarget(t, "install", "DESTDIR="+dest, "PREFIX="+prefix)
	unitText = readFile(t, filepath.Join(dest, prefix, "lib/systemd/system/netshim.service"))
	verifyCopy = filepath.Join(t.TempDir(), "netshim.service")
	writeFile(t, verifyCopy, strings.ReplaceAll(unitText, prefix+"/", filepath.Join(dest, prefix)+"/"), 0o644)
	return dest, unitText, verifyCopy
}

func TestUnitVerifies(t *testing.T) {
	dest, unit, copyPath := installedUnitForVerify(t, "/usr/local")

	// What the operator relies on, directive by directive.
	for _, want := range []string{
		"Type=notify",                        // ready means the socket accepts
		"KillMode=process",                   // pods survive a restart
		"Delegate=yes",                       // netshim and runc own their cgroups
		"Restart=always",                     // a clean exit still leaves the node without a runtime
		"ExecReload=/bin/kill -HUP $MAINPID", // systemctl reload: SIGHUP reloads, netshim stays up
		"Before=kubelet.service",             // kubelet finds the socket served
		"OOMScoreAdjust=-999",                // the OOM killer takes pods before the runtime
		"WantedBy=multi-user.target",         // enable starts it at boot
		// Settings are the config file's: a flag here would override it.
		"ExecStart=/usr/local/bin/netshim --config=/etc/netshim/netshim.toml\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	// The installed config names the installed runc and pause, and the
	// installed netshim takes it.
	conf := filepath.Join(dest, "/etc/netshim/netshim.toml")
	out, err := exec.Command(filepath.Join(dest, "/usr/local/bin/netshim"), "config", "--config", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("netshim config --config %s: %v\n%s", conf, err, out)
	}
	for _, want := range []string{`oci_runtime = "/usr/local/libexec/netshim/runc"`, `pause_binary = "/usr/local/libexec/netshim/pause"`,
		`container_runtime_endpoint = "unix:///run/netshim/netshim.sock"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the installed config's netshim config lacks %s:\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+|infinity)$`).FindString(unit); m == "" {
		t.Error("the unit does not raise LimitNOFILE")
	}
	// Every installed path the unit names is there and executable.
	for _, p := range regexp.MustCompile(`/usr/local/[^\s=]+`).FindAllString(unit, -1) {
		st, err := os.Stat(filepath.Join(dest, p))
		if err != nil || st.Mode().Perm()&0o111 == 0 {
			t.Errorf("the unit names %s, which make install did not install as a program: %v", p, err)
		}
	}

	if msg := verifyUnit(t, copyPath); msg != "" {
		t.Fatalf("systemd-analyze verify:\n%s\nunit:\n%s", msg, readFile(t, copyPath))
	}

	// The check can fail: a misspelt key and a program that is not there.
	broken := filepath.Join(t.TempDir(), "netshim.service")
	writeFile(t, broken, strings.Replace(readFile(t, copyPath), "KillMode=", "KilMode=", 1), 0o644)
	if msg := verifyUnit(t, broken); !strings.Contains(msg, "KilMode") {
		t.Errorf("systemd-analyze verify passed a unit with KilMode=: %q", msg)
	}
	writeFile(t, broken, strings.ReplaceAll(readFile(t, copyPath), dest, dest+"/nowhere"), 0o644)
	if msg := verifyUnit(t, broken); !strings.Contains(msg, "is not executable") {
		t.Errorf("systemd-analyze verify passed a unit whose netshim is missing: %q", msg)
	}
}

// Another PREFIX moves every path the unit names with it.
func TestUnitFollowsPrefix(t *testing.T) {
	dest, unit, copyPath := installedUnitForVerify(t, "/opt/netshim")
	if strings.Contains(unit, "/usr/local") {
		t.Errorf("with PREFIX=/opt/netshim the unit still names /usr/local:\n%s", unit)
	}
	if want := "ExecStart=/opt/netshim/bin/netshim --config=/etc/netshim/netshim.toml\n"; !strings.Contains(unit, want) {
		t.Errorf("the unit lacks %q", want)
	}
	conf := readFile(t, filepath.Join(dest, "/etc/netshim/netshim.toml"))
	for _, want := range []string{`oci_runtime = "/opt/netshim/libexec/netshim/runc"`, `pause_binary = "/opt/netshim/libexec/netshim/pause"`} {
		if !strings.Contains(conf, want) {
			t.Errorf("the installed config lacks %q", want)
		}
	}
	if msg := verifyUnit(t, copyPath); msg != "" {
		t.Fatalf("systemd-analyze verify:\n%s", msg)
	}
}
