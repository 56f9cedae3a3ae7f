package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const hairpinNote = "Hairpin mode promiscuous-bridge needs kubenet"

// A start tells the user about the hairpin mode only when the mode they
// chose is not the one used: by default (under cni or none) it is quiet,
// and a cni pod's bridge port still gets hairpin_mode (issue 26.8).
func TestHairpinDefaultIsQuiet(t *testing.T) {
	none := startShim(t, withoutConfig(), withArgs("--network-plugin", "none"))
	if strings.Contains(none.log(), hairpinNote) {
		t.Errorf("--network-plugin none logs the hairpin fallback the user never asked for")
	}

	s := startShim(t)
	pod := s.runPod(podConfig("hairpin-default"))
	ports := s.bridgePorts()
	if len(ports) != 1 {
		t.Fatalf("bridge ports %v, want the pod's one", ports)
	}
	if hp, _ := os.ReadFile(filepath.Join("/sys/class/net", ports[0], "brport/hairpin_mode")); strings.TrimSpace(string(hp)) != "1" {
		t.Errorf("hairpin_mode %q on the pod's port under cni by default, want 1 (hairpin-veth)", hp)
	}
	if strings.Contains(s.log(), hairpinNote) {
		t.Errorf("the default cni start logs the hairpin fallback the user never asked for")
	}
	s.removePod(pod)

	chose := startShim(t, withArgs("--hairpin-mode", "promiscuous-bridge"))
	eventually(t, 10*time.Second, "the fallback from a chosen promiscuous-bridge to be logged", func() bool {
		return strings.Contains(chose.log(), hairpinNote)
	})
}
