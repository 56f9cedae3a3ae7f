package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/netshim/netshim/pkg/errdefs"
	"golang.org/x/sys/unix"
)

// MountVolume mounts the root file system of the image ref names, read-only,
// at dir/rootfs for one of containerID's image volumes (KEP-4639), and
// returns that path. The image is added to the container's lease before
// the mount, so its layers stay, and the image cannot be removed, until
// Unmount drops the lease; dir must be under the container's dir that
// Unmount is given, which unmounts it. An image not in the store is
// NotFound: kubelet pulls it first.
func (s *Store) MountVolume(containerID, ref, dir string) (string, error) {
	s.mu.Lock()
	img, err := s.getLocked(ref)
	if err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("image volume: %w", err)
	}
	l := s.leases[containerID]
	l.Container = containerID
	l.Volumes = append(slices.Clone(l.Volumes), volumeLease{ImageID: img.ID, Chains: slices.Clone(img.Chains)})
	if err := s.leaseRecords.Save(&l); err != nil {
		s.mu.Unlock()
		return "", fmt.Errorf("lease image %s for a volume: %w", img.ID, err)
	}
	s.leases[containerID] = l
	s.mu.Unlock()

	rootfs := filepath.Join(dir, "rootfs")
	if mounted(rootfs) {
		return rootfs, nil
	}
	if len(img.Chains) == 0 {
		return "", fmt.Errorf("image %s has no layers: %w", img.ID, errdefs.ErrFailedPrecondition)
	}
	for _, d := range []string{"upper", "work", "rootfs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", fmt.Errorf("create image volume dir: %w", err)
		}
	}
	// An overlay needs two lower dirs when it has no upper dir; with an
	// (always empty) upper dir and a read-only superblock, one layer
	// mounts too, and nothing can be written through it.
	opts, err := s.overlayOptions(dir, img.Chains, false)
	if err != nil {
		return "", fmt.Errorf("image volume %s: %w", img.ID, err)
	}
	if err := mountIn(dir, rootfs, opts, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID); err != nil {
		return "", fmt.Errorf("mount image volume %s: %w", img.ID, err)
	}
	return rootfs, nil
}

// volumeUserLocked names a container that mounts imageID as a volume, or
// "" when none does; s.mu is held.
func (s *Store) volumeUserLocked(imageID string) string {
	var users []string
	for id, l := range s.leases {
		for _, v := range l.Volumes {
			if v.ImageID == imageID {
				users = append(users, id)
			}
		}
	}
	if len(users) == 0 {
		return ""
	}
	slices.Sort(users)
	return users[0]
}
