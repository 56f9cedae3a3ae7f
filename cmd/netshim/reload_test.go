package main

import (
	goflag "flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The verbosity file sets -v; a missing one leaves it; one that does not
// hold a number is an error naming the file and changes nothing.
func TestVerbosityFile(t *testing.T) {
	v := goflag.CommandLine.Lookup("v")
	defer func() { _ = v.Value.Set("0") }()
	_ = v.Value.Set("1")
	path := filepath.Join(t.TempDir(), "verbosity")
	if err := applyVerbosityFile(path); err != nil || v.Value.String() != "1" {
		t.Errorf("missing file: %v, -v %s; want no error and -v 1", err, v.Value)
	}
	if err := os.WriteFile(path, []byte("5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyVerbosityFile(path); err != nil || v.Value.String() != "5" {
		t.Errorf("file with 5: %v, -v %s; want -v 5", err, v.Value)
	}
	if err := os.WriteFile(path, []byte("loud"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyVerbosityFile(path); err == nil || !strings.Contains(err.Error(), path) || v.Value.String() != "5" {
		t.Errorf("file with loud: %v, -v %s; want an error naming the file and -v still 5", err, v.Value)
	}
}

// On SIGHUP the config file is read again: the registry config path and
// -v change at once; a key that takes a restart changes nothing and is
// reported each time until then; a broken file changes nothing; the
// command line still wins.
func TestRereadConfig(t *testing.T) {
	resetVerbosity(t)
	cfg := filepath.Join(t.TempDir(), "netshim.toml")
	writeTestFile(t, cfg, "registry_config = \"/etc/a.conf\"\nroot_dir = \"/srv/a\"\nv = 1\n")
	args := []string{"--config", cfg, "--streaming-address=127.0.0.1:1234"}
	var o options
	fs := newFlagSet("netshim", &o)
	if code := parseOptions(fs, &o, args); code >= 0 {
		t.Fatalf("exit %d", code)
	}
	r := reloader{args: args, applied: effectiveConfig(fs, &o), o: o}
	if applied, restart, err := r.rereadConfig(); err != nil || len(applied)+len(restart) != 0 {
		t.Fatalf("unchanged file: applied %v, restart %v, %v; want nothing", applied, restart, err)
	}

	writeTestFile(t, cfg, "registry_config = \"/etc/b.conf\"\nroot_dir = \"/srv/b\"\nv = 4\nstreaming_address = \"0.0.0.0:1\"\nlog_file = \"/tmp/x.log\"\n")
	applied, restart, err := r.rereadConfig()
	if err != nil {
		t.Fatal(err)
	}
	wantApplied := []configChange{{"registry_config", "/etc/a.conf", "/etc/b.conf"}, {"v", "1", "4"}}
	wantRestart := []configChange{{"log_file", "", "/tmp/x.log"}, {"root_dir", "/srv/a", "/srv/b"}}
	if !reflect.DeepEqual(applied, wantApplied) || !reflect.DeepEqual(restart, wantRestart) {
		t.Errorf("applied %v, restart %v;\nwant applied %v, restart %v", applied, restart, wantApplied, wantRestart)
	}
	if r.o.registryConfig != "/etc/b.conf" || r.o.rootDir != "/srv/a" {
		t.Errorf("registry config %q, root dir %q: want the new registry config and the old root dir", r.o.registryConfig, r.o.rootDir)
	}
	if v := goflag.CommandLine.Lookup("v").Value.String(); v != "4" {
		t.Errorf("-v %s after reload: want 4", v)
	}
	if lf := goflag.CommandLine.Lookup("log_file").Value.String(); lf != "" {
		t.Errorf("log_file %q after reload: a key that takes a restart must not change", lf)
	}
	if _, restart, _ := r.rereadConfig(); len(restart) != 2 {
		t.Errorf("second SIGHUP: restart %v; want the same two keys reported again", restart)
	}

	writeTestFile(t, cfg, "registry_config = \"/etc/c.conf\"\nv = 6\nbogus = 1\n")
	if _, _, err := r.rereadConfig(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("broken file: %v; want an error naming the key", err)
	}
	if v := goflag.CommandLine.Lookup("v").Value.String(); v != "4" || r.o.registryConfig != "/etc/b.conf" {
		t.Errorf("after a broken file: -v %s, registry config %q; want 4 and /etc/b.conf kept", v, r.o.registryConfig)
	}
}
