package cni

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBinDir holds empty executables with the given plugin names, which is all
// loading checks: that each named plugin binary exists.
func fakeBinDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeConf(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const bridgeList = `{"cniVersion":"1.0.0","name":"%s","plugins":[{"type":"bridge"}]}`

func list(name string) string { return strings.Replace(bridgeList, "%s", name, 1) }

func TestLoadPicksFirstValidFileInLexicalOrder(t *testing.T) {
	conf := t.TempDir()
	bin := fakeBinDir(t, "bridge")
	writeConf(t, conf, "20-second.conflist", list("second"))
	writeConf(t, conf, "10-first.conflist", list("first"))
	writeConf(t, conf, "30-third.conflist", list("third"))
	n, err := LoadDefaultNetwork(conf, []string{bin})
	if err != nil {
		t.Fatal(err)
	}
	if n.List.Name != "first" || filepath.Base(n.File) != "10-first.conflist" {
		t.Fatalf("loaded %q from %s, want first from 10-first.conflist", n.List.Name, n.File)
	}
}

func TestLoadSkipsInvalidFiles(t *testing.T) {
	conf := t.TempDir()
	bin := fakeBinDir(t, "bridge")
	writeConf(t, conf, "00-garbage.conflist", "{not json")
	writeConf(t, conf, "01-empty.conflist", `{"cniVersion":"1.0.0","name":"empty","plugins":[]}`)
	writeConf(t, conf, "02-missing-binary.conflist", `{"cniVersion":"1.0.0","name":"nobin","plugins":[{"type":"no-such-plugin"}]}`)
	writeConf(t, conf, "03-no-type.conf", `{"cniVersion":"1.0.0","name":"notype"}`)
	writeConf(t, conf, "04-ignored.txt", list("txt"))
	writeConf(t, conf, "05-good.conflist", list("good"))
	n, err := LoadDefaultNetwork(conf, []string{bin})
	if err != nil {
		t.Fatal(err)
	}
	if n.List.Name != "good" {
		t.Fatalf("loaded %q, want good: invalid files and other extensions must be skipped", n.List.Name)
	}
}

func TestLoadWrapsSingleConfAndReadsJSON(t *testing.T) {
	bin := fakeBinDir(t, "bridge")
	for _, tc := range []struct{ file, content, want string }{
		{"10-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`, "single"},
		{"10-single.json", `{"cniVersion":"1.0.0","name":"singlejson","type":"bridge"}`, "singlejson"},
		{"10-list.json", list("listjson"), "listjson"},
	} {
		conf := t.TempDir()
		writeConf(t, conf, tc.file, tc.content)
		n, err := LoadDefaultNetwork(conf, []string{bin})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if n.List.Name != tc.want || len(n.List.Plugins) != 1 || n.List.Plugins[0].Network.Type != "bridge" {
			t.Fatalf("%s: loaded %q with %d plugins, want %q with the bridge plugin", tc.file, n.List.Name, len(n.List.Plugins), tc.want)
		}
	}
}

func TestLoadWithNothingValidNamesTheDir(t *testing.T) {
	conf := t.TempDir()
	writeConf(t, conf, "10-bad.conflist", "{")
	_, err := LoadDefaultNetwork(conf, []string{t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), conf) {
		t.Fatalf("error %v, want one naming %s", err, conf)
	}
}

// Whatever a conf file holds, loading either yields a network whose plugins
// all have a type, or skips the file: it never panics.
func FuzzLoadFile(f *testing.F) {
	f.Add("x.conflist", list("seed"))
	f.Add("x.conf", `{"cniVersion":"1.0.0","name":"single","type":"bridge"}`)
	f.Add("x.json", `{"plugins":[{}]}`)
	f.Add("x.conflist", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":""}]}`)
	f.Fuzz(func(t *testing.T, name, content string) {
		ext := filepath.Ext(name)
		if ext != ".conf" && ext != ".conflist" && ext != ".json" {
			ext = ".conflist"
		}
		path := filepath.Join(t.TempDir(), "f"+ext)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := LoadFile(path)
		if err != nil {
			return
		}
		if len(l.Plugins) == 0 {
			t.Fatal("loaded a network without plugins")
		}
	})
}

func TestSkipReasonsAreReported(t *testing.T) {
	conf := t.TempDir()
	writeConf(t, conf, "10-nobin.conflist", `{"cniVersion":"1.0.0","name":"nobin","plugins":[{"type":"no-such-plugin"}]}`)
	_, err := LoadDefaultNetwork(conf, []string{t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "10-nobin.conflist") || !strings.Contains(err.Error(), "no-such-plugin") {
		t.Fatalf("error %v, want it to name the skipped file and the missing plugin", err)
	}
}
