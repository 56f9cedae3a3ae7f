package image

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/netshim/netshim/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// Mount leases imageID's layers for containerID (recorded before the mount,
// so a crash never leaves a mount without a lease), makes dir/upper and
// dir/work, and mounts the overlay at dir/rootfs. It is idempotent.
func (s *Store) Mount(containerID, imageID, dir string, readOnly bool) (string, error) {
	s.mu.Lock()
	img, err := s.getLocked(imageID)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	l := lease{Container: containerID, ImageID: img.ID, Chains: append([]string(nil), img.Chains...)}
	if err := s.leaseRecords.Save(&l); err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("lease image %s: %w", img.ID, err)
	}
	s.leases[containerID] = l
	s.mu.Unlock()

	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("create writable layer: %w", err)
		}
	}
	if mounted(rootfs) {
		return rootfs, nil
	}
	if len(l.Chains) == 0 {
		return "", fmt.Errorf("image %s has no layers: %w", img.ID, errdefs.ErrFailedPrecondition)
	}
	lowers := make([]string, 0, len(l.Chains))
	for i := len(l.Chains) - 1; i >= 0; i-- { // overlay lists the top layer first
		lowers = append(lowers, filepath.Join(s.layerDir(l.Chains[i]), "diff"))
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if !readOnly {
		opts += ",upperdir=" + filepath.Join(dir, "upper") + ",workdir=" + filepath.Join(dir, "work")
	}
	if len(opts) >= os.Getpagesize() {
		return "", fmt.Errorf("image %s has too many layers (%d) for one overlay mount: %w", img.ID, len(l.Chains), errdefs.ErrFailedPrecondition)
	}
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay rootfs: %w", err)
	}
	return rootfs, nil
}

// Unmount unmounts dir/rootfs, removes dir and drops the lease, then the
// layers nothing uses any more. It is idempotent.
func (s *Store) Unmount(containerID, dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	if mounted(rootfs) {
		if err := unix.Unmount(rootfs, 0); err != nil {
			if !errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("unmount rootfs: %w", err)
			}
			// A process outside the container holds it open: detach it now.
			if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount rootfs: %w", err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove writable layer: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.leaseRecords.Remove(containerID); err != nil {
		return fmt.Errorf("drop image lease: %w", err)
	}
	if _, ok := s.leases[containerID]; ok {
		delete(s.leases, containerID)
		s.gcLocked()
	}
	return nil
}

// Leases lists the containers that hold a lease.
func (s *Store) Leases() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.leases))
	for id := range s.leases {
		out = append(out, id)
	}
	return out
}

// mounted is true when path is a mount point.
func mounted(path string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Lstat(filepath.Dir(path), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// decompress sniffs a layer's compression: gzip, zstd, or none.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return br, nil
}
