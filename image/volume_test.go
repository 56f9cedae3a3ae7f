package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// volumeImage commits an image of one layer holding tool/version, by the
// name tools/image:1.
func volumeImage(t *testing.T, s *Store, fill string) (id, chain string) {
	t.Helper()
	chain = chainID("", "sha256:"+strings.Repeat(fill, 32))
	diff := filepath.Join(s.layerDir(chain), "diff")
	if err := os.MkdirAll(filepath.Join(diff, "tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(diff, "tool", "version"), []byte("1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id = "sha256:" + strings.Repeat(fill, 32)
	r, err := parseReference("tools/image:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.commit(&Image{ID: id, Chains: []string{chain}}, r, "docker.io/tools/image@sha256:"+strings.Repeat("f7", 32), blob{id, []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	return id, chain
}

// An image volume shows the image's files and takes no write; while it is
// mounted the image cannot be removed (FailedPrecondition naming the
// container), also after a restart of the store; once the container's
// mounts are undone it can, and its layers go.
func TestImageVolumeMountsReadOnlyAndHoldsTheImage(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	s := newTestStore(t, Config{Root: root})
	id, chain := volumeImage(t, s, "a7")
	container := strings.Repeat("c2", 32)
	dir := filepath.Join(root, "containers", "layers", container)
	t.Cleanup(func() { _ = s.Unmount(container, dir) })

	if _, err := s.MountVolume(container, "tools/image:2", filepath.Join(dir, "volumes", "0")); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "tools/image:2") {
		t.Errorf("volume of an image not present: %v, want NotFound naming it", err)
	}
	vol, err := s.MountVolume(container, "tools/image:1", filepath.Join(dir, "volumes", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(vol, "tool", "version")); err != nil || string(data) != "1.0\n" {
		t.Errorf("the image's file through the volume: %q, %v", data, err)
	}
	if err := os.WriteFile(filepath.Join(vol, "new"), []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("a write into the volume: %v, want EROFS", err)
	}

	err = s.Remove(id)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), container) {
		t.Errorf("removal of a mounted image: %v, want FailedPrecondition naming the container", err)
	}
	s2 := newTestStore(t, Config{Root: root})
	if err := s2.Remove("tools/image:1"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("removal after a restart of the store: %v, want FailedPrecondition", err)
	}

	if err := s2.Unmount(container, dir); err != nil {
		t.Fatal(err)
	}
	if mounted(vol) {
		t.Error("volume still mounted after Unmount")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the container's dir is left: %v", err)
	}
	if err := s2.Remove(id); err != nil {
		t.Fatalf("removal once unmounted: %v", err)
	}
	if _, err := os.Stat(s2.layerDir(chain)); !os.IsNotExist(err) {
		t.Errorf("the removed image's layer is left: %v", err)
	}
}

// A volume mount no lease names (a crash between the mount and its
// record) is still unmounted by Unmount of the container's dir.
func TestUnmountTakesUnrecordedVolumes(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	s := newTestStore(t, Config{Root: root})
	volumeImage(t, s, "b8")
	container := strings.Repeat("c3", 32)
	dir := filepath.Join(root, "containers", "layers", container)
	vol, err := s.MountVolume(container, "tools/image:1", filepath.Join(dir, "volumes", "3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(vol, unix.MNT_DETACH) })
	if err := s.leaseRecords.Remove(container); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(container, dir); err != nil {
		t.Fatal(err)
	}
	if mounted(vol) {
		t.Error("an unrecorded volume is still mounted")
	}
}
