package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// CreatePinnedNetNS makes a new network namespace and bind-mounts it at path,
// the way `ip netns add` does, so it outlives every process in it.
func CreatePinnedNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns pin %s: %w", path, err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// The thread's netns is changed for good, so it is never unlocked:
		// the Go runtime then ends the thread when this goroutine returns
		// instead of handing it to other goroutines.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mount netns to %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// UnpinNetNS unmounts and removes a pin; a pin already gone is no error.
func UnpinNetNS(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns pin %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove netns pin %s: %w", path, err)
	}
	return nil
}

// isNetNSPin reports whether path is a mounted network namespace.
func isNetNSPin(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// NetNS makes and removes pinned network namespaces. It is an interface so
// that the manager's tests run without root.
type NetNS interface {
	// Pin creates a network namespace and pins it at path.
	Pin(path string) error
	// Unpin removes the pin at path; a pin already gone is no error.
	Unpin(path string) error
}

// kernelNetNS pins real network namespaces.
type kernelNetNS struct{}

func (kernelNetNS) Pin(path string) error   { return CreatePinnedNetNS(path) }
func (kernelNetNS) Unpin(path string) error { return UnpinNetNS(path) }

// netnsPinPath names the pin after the sandbox, so `ip netns list` shows
// which pod it belongs to; the ID prefix keeps it unique.
func (m *Manager) netnsPinPath(sb *Sandbox) string {
	name := sb.Spec.Name
	if max := 200; len(name) > max { // stay well inside NAME_MAX with the rest
		name = name[:max]
	}
	return filepath.Join(m.cfg.NetNSDir, fmt.Sprintf("%s_%s_%s", name, sb.Spec.Namespace, sb.ID[:12]))
}

// pinMarkerDir, under the state dir, holds an empty file named after each
// netns pin this netshim made and has not yet removed: its own record of
// which pins in a shared netns dir are its to sweep.
const pinMarkerDir = "netns-pins"

func (m *Manager) pinMarker(path string) string {
	return filepath.Join(m.cfg.StateDir, pinMarkerDir, filepath.Base(path))
}

// pin marks path as this netshim's, then creates and pins a netns there.
func (m *Manager) pin(path string) error {
	if err := os.WriteFile(m.pinMarker(path), nil, 0o600); err != nil {
		return fmt.Errorf("record netns pin %s: %w", path, err)
	}
	if err := m.cfg.NetNS.Pin(path); err != nil {
		_ = os.Remove(m.pinMarker(path))
		return err
	}
	return nil
}

// unpin removes the pin at path, then its marker.
func (m *Manager) unpin(path string) error {
	if path == "" {
		return nil
	}
	if err := m.cfg.NetNS.Unpin(path); err != nil {
		return err
	}
	if err := os.Remove(m.pinMarker(path)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove record of netns pin %s: %w", path, err)
	}
	return nil
}
