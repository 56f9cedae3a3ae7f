package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpecValidateNamesWhatIsWrong(t *testing.T) {
	bin := fakeBinDir(t)
	good := Spec{Name: "nsmn1", Nodes: 2, Backend: HostGW, Plugin: "cni", BinDir: bin, StateDir: "/run/x"}
	if err := good.validate(); err != nil {
		t.Fatalf("valid spec refused: %v", err)
	}
	for _, tc := range []struct {
		change func(*Spec)
		want   string
	}{
		{func(s *Spec) { s.Name = "Bad/Name" }, `cluster name "Bad/Name"`},
		{func(s *Spec) { s.Name = strings.Repeat("a", 25) }, "cluster name"},
		{func(s *Spec) { s.Nodes = 0 }, "0 nodes"},
		{func(s *Spec) { s.Nodes = MaxNodes + 1 }, "201 nodes"},
		{func(s *Spec) { s.Backend = "udp" }, `backend "udp"`},
		{func(s *Spec) { s.Plugin = "calico" }, `network plugin "calico"`},
		{func(s *Spec) { s.BinDir = t.TempDir() }, "netshim missing from"},
		{func(s *Spec) { s.StateDir = "run/x" }, `state dir "run/x"`},
	} {
		s := good
		tc.change(&s)
		err := s.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want an error containing %q", s, err, tc.want)
		}
	}
}

// Down removes the state dir, so Up must not take one holding anything else.
func TestUpRefusesAStateDirInUse(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := fakeBinDir(t)
	_, err := Up(t.Context(), Spec{Name: "nsmnx", Nodes: 1, Backend: HostGW, Plugin: "cni", BinDir: bin, StateDir: dir})
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("Up into a dir holding a file: %v, want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
		t.Errorf("the file in the state dir is gone: %v", err)
	}
}

// fakeBinDir holds empty files named as the binaries a Spec needs.
func fakeBinDir(t *testing.T) string {
	bin := t.TempDir()
	for _, b := range requiredBinaries {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}
