package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpecValidateNamesWhatIsWrong(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"netshim", "pause", "runc", "bridge", "host-local", "loopback", "portmap", "bandwidth"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
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
