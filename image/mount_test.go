package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image of 45 layers mounts (kubelet pulls such images; absolute
// lowerdir paths filled the one page of mount options at about 35): every
// layer is seen, the top one wins, and the writable layer takes writes.
func TestManyLayersMount(t *testing.T) {
	needRoot(t)
	s := newTestStore(t, Config{})
	const n = 45
	var chains []string
	parent := ""
	for i := range n {
		chain := chainID(parent, fmt.Sprintf("sha256:%064x", i))
		parent = chain
		chains = append(chains, chain)
		diff := filepath.Join(s.layerDir(chain), "diff")
		if err := os.MkdirAll(diff, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{fmt.Sprintf("f%d", i): "x", "top": fmt.Sprint(i)} {
			if err := os.WriteFile(filepath.Join(diff, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	id := "sha256:" + strings.Repeat("e5", 32)
	r, err := parseReference("deep/image:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.commit(&Image{ID: id, Chains: chains}, r, "docker.io/deep/image@sha256:"+strings.Repeat("f6", 32), blob{id, []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	container := strings.Repeat("c1", 32)
	dir := filepath.Join(t.TempDir(), "containers", "layers", container)
	rootfs, err := s.Mount(container, id, dir, false)
	if err != nil {
		t.Fatalf("mount of a %d-layer image: %v", n, err)
	}
	t.Cleanup(func() { _ = s.Unmount(container, dir) })
	for i := range n {
		if _, err := os.Stat(filepath.Join(rootfs, fmt.Sprintf("f%d", i))); err != nil {
			t.Errorf("layer %d's file: %v", i, err)
		}
	}
	if top, err := os.ReadFile(filepath.Join(rootfs, "top")); err != nil || string(top) != fmt.Sprint(n-1) {
		t.Errorf("top = %q, %v; want the top layer's %d", top, err, n-1)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "new"), []byte("w"), 0o644); err != nil {
		t.Errorf("write into the rootfs: %v", err)
	}
	if err := s.Unmount(container, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the container's dir is left after Unmount: %v", err)
	}
}
