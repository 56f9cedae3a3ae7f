package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// installedFiles is what `make install` writes into an empty DESTDIR with
// the default PREFIX: the list the README's "Install on a node" documents.
var installedFiles = []string{
	"/etc/cni/net.d/10-netshim.conflist",
	"/etc/crictl.yaml",
	"/etc/netshim/netshim.toml",
	"/opt/cni/bin/bandwidth",
	"/opt/cni/bin/bridge",
	"/opt/cni/bin/host-local",
	"/opt/cni/bin/loopback",
	"/opt/cni/bin/portmap",
	"/usr/local/bin/netshim",
	"/usr/local/lib/systemd/system/netshim.service",
	"/usr/local/libexec/netshim/pause",
	"/usr/local/libexec/netshim/runc",
	"/usr/local/share/netshim/install-manifest",
}

func TestInstallWritesTheDocumentedFiles(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "node") // a DESTDIR that does not exist yet
	makeTarget(t, "install", "DESTDIR="+dest)
	got := files(snapshot(t, dest))
	if !slices.Equal(got, installedFiles) {
		t.Fatalf("make install wrote\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(installedFiles, "\n  "))
	}
	readme := readFile(t, filepath.Join(repoRoot, "README.md"))
	at := strings.Index(readme, "\n## Install on a node")
	if at < 0 {
		t.Fatal(`README.md has no "## Install on a node" section`)
	}
	section, _, _ := strings.Cut(readme[at+1:], "\n## ")
	for _, f := range installedFiles {
		if !strings.Contains(section, f) && !strings.Contains(section, filepath.Base(f)) {
			t.Errorf("README's Install on a node does not name %s", f)
		}
	}

	for path, mode := range map[string]os.FileMode{
		"/usr/local/bin/netshim":                        0o755,
		"/usr/local/libexec/netshim/runc":               0o755,
		"/usr/local/libexec/netshim/pause":              0o755,
		"/opt/cni/bin/bridge":                           0o755,
		"/usr/local/lib/systemd/system/netshim.service": 0o644,
		"/etc/crictl.yaml":                              0o644,
		"/etc/cni/net.d/10-netshim.conflist":            0o644,
		"/etc/netshim/netshim.toml":                     0o644,
	} {
		st, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %04o, want %04o", path, st.Mode().Perm(), mode)
		}
	}
	if got, want := readFile(t, filepath.Join(dest, "/etc/cni/net.d/10-netshim.conflist")),
		readFile(t, filepath.Join(repoRoot, "examples/cni/10-netshim.conflist")); got != want {
		t.Errorf("installed conflist differs from examples/cni/10-netshim.conflist")
	}
	if crictl := readFile(t, filepath.Join(dest, "/etc/crictl.yaml")); !strings.Contains(crictl, "runtime-endpoint: unix:///run/netshim/netshim.sock") ||
		!strings.Contains(crictl, "image-endpoint: unix:///run/netshim/netshim.sock") {
		t.Errorf("crictl.yaml does not point at netshim:\n%s", crictl)
	}
	for _, bin := range []string{"/opt/cni/bin/bridge", "/usr/local/libexec/netshim/runc", "/usr/local/libexec/netshim/pause"} {
		if fileHash(t, filepath.Join(dest, bin)) != fileHash(t, filepath.Join(binDir, filepath.Base(bin))) {
			t.Errorf("%s is not bin/%s", bin, filepath.Base(bin))
		}
	}

	// The installed netshim says which it is and, by its defaults, finds the
	// installed runc and pause: `netshim check` run by hand checks those.
	out, err := exec.Command(filepath.Join(dest, "/usr/local/bin/netshim"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "netshim ") || strings.HasPrefix(string(out), "netshim dev") {
		t.Errorf("netshim --version: %v: %q; want the Makefile's git describe", err, out)
	}
	out, _ = exec.Command(filepath.Join(dest, "/usr/local/bin/netshim"), "check", "--network-plugin=none").CombinedOutput()
	for _, want := range []string{"(" + filepath.Join(dest, "/usr/local/libexec/netshim/runc") + ")", " " + filepath.Join(dest, "/usr/local/libexec/netshim/pause") + "\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("netshim check from the install does not find %q:\n%s", want, out)
		}
	}
}

// Uninstall leaves the tree exactly as it was before install: a file that
// was there (even in a dir install writes to) stays, every dir install made
// goes.
func TestUninstallRemovesExactlyWhatInstallAdded(t *testing.T) {
	dest := t.TempDir()
	writeFile(t, filepath.Join(dest, "/usr/local/bin/someone-elses-tool"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(dest, "/etc/hostname"), "node1\n", 0o644)
	if err := os.MkdirAll(filepath.Join(dest, "/opt/cni/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dest)
	makeTarget(t, "install", "DESTDIR="+dest)
	out := makeTarget(t, "uninstall", "DESTDIR="+dest)
	if d := diff(before, snapshot(t, dest)); d != "" {
		t.Fatalf("after install and uninstall the tree differs:\n%s\nuninstall said:\n%s", d, out)
	}
	// A second uninstall finds nothing to do.
	makeTarget(t, "uninstall", "DESTDIR="+dest)
	if d := diff(before, snapshot(t, dest)); d != "" {
		t.Fatalf("a second uninstall changed the tree:\n%s", d)
	}
}

// What is there already wins: a CNI plugin newer than netshim's, a network
// config, a crictl.yaml. An older plugin is replaced and comes back at
// uninstall.
func TestInstallKeepsWhatIsThere(t *testing.T) {
	dest := t.TempDir()
	newerBridge := filepath.Join(dest, "/opt/cni/bin/bridge")
	writeFile(t, newerBridge, "a newer bridge plugin\n", 0o755)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(newerBridge, future, future); err != nil {
		t.Fatal(err)
	}
	olderPortmap := filepath.Join(dest, "/opt/cni/bin/portmap")
	writeFile(t, olderPortmap, "an old portmap plugin\n", 0o755)
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(olderPortmap, past, past); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dest, "/etc/cni/net.d/50-cluster.conflist"), `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`, 0o644)
	writeFile(t, filepath.Join(dest, "/etc/crictl.yaml"), "runtime-endpoint: unix:///run/containerd/containerd.sock\n", 0o600)
	writeFile(t, filepath.Join(dest, "/etc/netshim/netshim.toml"), "root_dir = \"/srv/netshim\"\n", 0o600)
	before := snapshot(t, dest)

	makeTarget(t, "install", "DESTDIR="+dest)
	after := snapshot(t, dest)
	for _, kept := range []string{"/opt/cni/bin/bridge", "/etc/cni/net.d/50-cluster.conflist", "/etc/crictl.yaml", "/etc/netshim/netshim.toml"} {
		if after[kept] != before[kept] {
			t.Errorf("install changed %s", kept)
		}
	}
	if _, ok := after["/etc/cni/net.d/10-netshim.conflist"]; ok {
		t.Error("install added 10-netshim.conflist to a conf dir that had a network")
	}
	if fileHash(t, olderPortmap) != fileHash(t, filepath.Join(binDir, "portmap")) {
		t.Error("install kept a portmap older than netshim's")
	}
	manifest := readFile(t, filepath.Join(dest, "/usr/local/share/netshim/install-manifest"))
	for _, notOurs := range []string{" /opt/cni/bin/bridge\n", " /etc/crictl.yaml\n", "50-cluster", " /etc/netshim/netshim.toml\n"} {
		if strings.Contains(manifest, notOurs) {
			t.Errorf("the manifest claims%s", notOurs)
		}
	}

	makeTarget(t, "uninstall", "DESTDIR="+dest)
	if d := diff(before, snapshot(t, dest)); d != "" {
		t.Fatalf("after install and uninstall the tree differs:\n%s", d)
	}
}

// Installing again (an upgrade) keeps one record per file, keeps a config the
// operator edited and a plugin someone upgraded, and uninstall keeps those
// two and otherwise restores the tree.
func TestReinstallThenUninstall(t *testing.T) {
	dest := t.TempDir()
	before := snapshot(t, dest)
	makeTarget(t, "install", "DESTDIR="+dest)
	manifestPath := filepath.Join(dest, "/usr/local/share/netshim/install-manifest")
	first := readFile(t, manifestPath)
	crictl := filepath.Join(dest, "/etc/crictl.yaml")
	edited := "runtime-endpoint: unix:///run/netshim/netshim.sock\ntimeout: 10\n"
	writeFile(t, crictl, edited, 0o644)
	conf := filepath.Join(dest, "/etc/netshim/netshim.toml")
	editedConf := readFile(t, conf) + "\n[runtime_handlers.kata]\npath = \"/opt/kata/bin/kata-runtime\"\n"
	writeFile(t, conf, editedConf, 0o644)

	makeTarget(t, "install", "DESTDIR="+dest)
	if got := readFile(t, crictl); got != edited {
		t.Errorf("reinstall overwrote the edited crictl.yaml:\n%s", got)
	}
	if got := readFile(t, conf); got != editedConf {
		t.Errorf("reinstall overwrote the edited netshim.toml:\n%s", got)
	}
	second := readFile(t, manifestPath)
	firstLines, secondLines := strings.Split(first, "\n"), strings.Split(second, "\n")
	slices.Sort(firstLines)
	slices.Sort(secondLines)
	if !slices.Equal(firstLines, secondLines) {
		t.Errorf("reinstall changed the manifest:\n%s\nthen\n%s", first, second)
	}

	// Someone upgrades a plugin netshim installed: it is theirs now; the
	// next install and the uninstall keep it.
	upgraded := filepath.Join(dest, "/opt/cni/bin/host-local")
	writeFile(t, upgraded, "host-local from a newer plugins release\n", 0o755)
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(upgraded, future, future); err != nil {
		t.Fatal(err)
	}
	makeTarget(t, "install", "DESTDIR="+dest)
	if got := readFile(t, upgraded); got != "host-local from a newer plugins release\n" {
		t.Errorf("reinstall overwrote a host-local upgraded since")
	}
	if strings.Contains(readFile(t, manifestPath), " /opt/cni/bin/host-local\n") {
		t.Errorf("the manifest still claims the upgraded host-local")
	}

	out := makeTarget(t, "uninstall", "DESTDIR="+dest)
	if !strings.Contains(out, "kept /etc/crictl.yaml") {
		t.Errorf("uninstall did not say it kept the edited crictl.yaml:\n%s", out)
	}
	if got := readFile(t, crictl); got != edited {
		t.Errorf("uninstall removed or changed the edited crictl.yaml")
	}
	if got := readFile(t, conf); got != editedConf {
		t.Errorf("uninstall removed or changed the edited netshim.toml")
	}
	if got := readFile(t, upgraded); got != "host-local from a newer plugins release\n" {
		t.Errorf("uninstall removed or changed the upgraded host-local")
	}
	for _, kept := range []string{conf, filepath.Dir(conf), crictl, filepath.Dir(crictl), upgraded, filepath.Dir(upgraded), filepath.Dir(filepath.Dir(upgraded)), filepath.Join(dest, "opt")} {
		if err := os.Remove(kept); err != nil {
			t.Fatal(err)
		}
	}
	if d := diff(before, snapshot(t, dest)); d != "" {
		t.Fatalf("the tree differs beyond the kept crictl.yaml, netshim.toml and host-local:\n%s", d)
	}
}

// A node gets what netshim runs with and what building it needs, never the
// test packages (docker-registry, busybox-static, ...); the tests get all.
func TestDepsGroupsByTarget(t *testing.T) {
	for target, want := range map[string]string{
		"install": "hack/install-deps.sh node build\n",
		"run":     "hack/install-deps.sh node build\n",
		"tools":   "hack/install-deps.sh node build test\n",
		"test":    "hack/install-deps.sh node build test\n",
	} {
		out := makeTarget(t, target, "-n")
		if !strings.Contains(out, want) {
			t.Errorf("make -n %s does not run %q:\n%s", target, strings.TrimSpace(want), out)
		}
	}
	// The groups' packages: runsc and crun on a node, no test package.
	script := readFile(t, filepath.Join(repoRoot, "hack/install-deps.sh"))
	node, _, _ := strings.Cut(script[strings.Index(script, "\n\tnode)"):], ";;")
	for _, pkg := range []string{"iptables", "iproute2", "conmon", "runsc", "crun"} {
		if !strings.Contains(node, "need+=("+pkg+")") {
			t.Errorf("the node group lacks %s", pkg)
		}
	}
	for _, pkg := range []string{"docker-registry", "busybox-static", "systemd", "gcc"} {
		if strings.Contains(node, "need+=("+pkg+")") {
			t.Errorf("the node group installs %s", pkg)
		}
	}
}
