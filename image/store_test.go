package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The GC that a removal runs never takes a layer an in-flight pull has
// unpacked but not yet recorded; once the pull is done with it, an unused
// layer goes. A restart drops layers a killed pull committed.
func TestGCSparesLayersOfInFlightPulls(t *testing.T) {
	root := t.TempDir()
	s, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	chain := "sha256:" + strings.Repeat("ab", 32)
	layer := s.layerDir(chain)
	if err := os.MkdirAll(filepath.Join(layer, "diff"), 0o755); err != nil {
		t.Fatal(err)
	}
	release := s.holdChains([]string{chain})
	s.mu.Lock()
	s.gcLocked()
	s.mu.Unlock()
	if _, err := os.Stat(layer); err != nil {
		t.Fatalf("GC took the layer of an in-flight pull: %v", err)
	}
	release()

	if _, err := NewStore(Config{Root: root}); err != nil { // a restart
		t.Fatal(err)
	}
	if _, err := os.Stat(layer); !os.IsNotExist(err) {
		t.Errorf("a layer no image uses survived a restart: %v", err)
	}
}
