package container

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The containers' file system is the layers dir, and holds what their
// writable layers hold: every container's, each counted once.
func TestFsInfoSumsWritableLayers(t *testing.T) {
	m, _, cfg := newTestManager(t)
	ctx := context.Background()
	if got := m.FsInfo(); got.Mountpoint != filepath.Join(cfg.RootDir, "layers") || got.UsedBytes != 0 || got.Inodes != 0 {
		t.Fatalf("no containers: %+v", got)
	}
	for _, name := range []string{"a", "b"} {
		c, err := m.Create(ctx, request(name))
		if err != nil {
			t.Fatal(err)
		}
		upper := filepath.Join(m.layerDir(c.ID), "upper")
		if err := os.MkdirAll(upper, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(upper, "data"), make([]byte, 64<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := m.FsInfo()
	// Two layers of 64 KiB each (blocks allocated: at least that), two
	// inodes each (the upper dir and its file).
	if got.UsedBytes < 128<<10 || got.Inodes != 4 {
		t.Errorf("two containers of 64 KiB: %+v", got)
	}
}
