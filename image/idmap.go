package image

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// idmap is how a container in a user namespace sees its image: each layer
// is an idmapped mount of it made with the namespace's mappings, so that
// the layers' files owned by the host's root are the namespace's root's,
// and overlay is mounted over those (kernel 5.19 and later take idmapped
// layers; an overlay itself cannot be idmapped).
type idmap struct {
	userns           *os.File // the user namespace, e.g. /proc/PID/ns/user
	rootUID, rootGID int      // the host IDs of the namespace's root
}

// MountInUserNS is Mount for a container in the user namespace at
// usernsPath, whose root is rootUID and rootGID on the host.
func (s *Store) MountInUserNS(containerID, imageID, dir, usernsPath string, rootUID, rootGID int) (string, error) {
	f, err := os.Open(usernsPath)
	if err != nil {
		return "", fmt.Errorf("open the pod's user namespace: %w", err)
	}
	defer f.Close()
	return s.mount(containerID, imageID, dir, false, &idmap{userns: f, rootUID: rootUID, rootGID: rootGID})
}

// mount makes target an idmapped mount of src.
func (m *idmap) mount(src, target string) error {
	if err := os.Mkdir(target, 0o755); err != nil {
		return err
	}
	tree, err := unix.OpenTree(-1, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("clone a mount of %s: %w", src, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(m.userns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("idmap a mount of %s: %w", src, err)
	}
	if err := unix.MoveMount(tree, "", -1, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount idmapped %s: %w", src, err)
	}
	return nil
}
