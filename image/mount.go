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
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/moby/sys/mountinfo"
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
	l := lease{Container: containerID, ImageID: img.ID, Chains: append([]string(nil), img.Chains...),
		Volumes: s.leases[containerID].Volumes}
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
	opts, err := s.overlayOptions(dir, l.Chains, readOnly)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", img.ID, err)
	}
	if err := mountIn(dir, rootfs, opts, 0); err != nil {
		return "", fmt.Errorf("mount overlay rootfs: %w", err)
	}
	return rootfs, nil
}

// lowerLinks is the dir, in a container's dir, of short links to its
// image's layers.
const lowerLinks = "l"

// maxLowerLayers is overlayfs's limit (OVL_MAX_STACK).
const maxLowerLayers = 500

// overlayOptions are the overlay's mount options, with paths relative to
// dir, where the mount is made: lowerdir names dir/l/N, a short link to
// layer N's diff. The options must fit in one page, and absolute layer
// paths (over 100 bytes each) filled it at about 35 layers; as short
// links, containerd's and podman's way, up to overlay's own limit of 500.
func (s *Store) overlayOptions(dir string, chains []string, readOnly bool) (string, error) {
	if len(chains) > maxLowerLayers {
		return "", fmt.Errorf("%d layers, over overlay's limit of %d: %w", len(chains), maxLowerLayers, errdefs.ErrFailedPrecondition)
	}
	links := filepath.Join(dir, lowerLinks)
	if err := os.RemoveAll(links); err != nil {
		return "", fmt.Errorf("layer links: %w", err)
	}
	if err := os.Mkdir(links, 0o700); err != nil {
		return "", fmt.Errorf("layer links: %w", err)
	}
	lowers := make([]string, 0, len(chains))
	for i := len(chains) - 1; i >= 0; i-- { // overlay lists the top layer first
		name := strconv.Itoa(i)
		if err := os.Symlink(filepath.Join(s.layerDir(chains[i]), "diff"), filepath.Join(links, name)); err != nil {
			return "", fmt.Errorf("layer links: %w", err)
		}
		lowers = append(lowers, lowerLinks+"/"+name)
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if !readOnly {
		opts += ",upperdir=upper,workdir=work"
	}
	if len(opts) >= os.Getpagesize() {
		return "", fmt.Errorf("too many layers (%d) for one overlay mount: %w", len(chains), errdefs.ErrFailedPrecondition)
	}
	return opts, nil
}

// mountIn mounts an overlay at target with flags and opts, whose relative
// paths are resolved in dir: on a thread of its own whose working dir is dir, not
// shared with the rest of netshim (unshare CLONE_FS). That thread is never
// given back to the Go scheduler, so it ends with its goroutine.
func mountIn(dir, target, opts string, flags uintptr) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare fs: %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- unix.Mount("overlay", target, "overlay", flags, opts)
	}()
	return <-errc
}

// Unmount unmounts dir/rootfs and every image volume under dir, removes
// dir and drops the lease, then the layers nothing uses any more. It is
// idempotent.
func (s *Store) Unmount(containerID, dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
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

// unmountUnder unmounts every mount at or below dir, the deepest first: the
// rootfs and the image volumes, whether or not a record names them (a
// crash may have come between a mount and its record).
func unmountUnder(dir string) error {
	if resolved, err := filepath.EvalSymlinks(dir); err == nil {
		dir = resolved
	} else if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	list, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i].Mountpoint) > len(list[j].Mountpoint) })
	for _, m := range list {
		if err := unix.Unmount(m.Mountpoint, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			if !errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
			}
			// A process outside the container holds it open: detach it now.
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
			}
		}
	}
	return nil
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
