package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"golang.org/x/sys/unix"
)

// cacheLockFile, in the CNI cache dir, is held (flock) by the netshim that
// uses the dir. Two instances on one cache dir would reclaim each other's
// pods: the network GC at start sends a DEL for every cached attachment
// that none of *its* sandboxes holds.
const cacheLockFile = "netshim.lock"

// lockCacheDir takes the cache dir for this process, or says which
// process has it. The lock goes with the process, however it ends.
func lockCacheDir(dir string) (*os.File, error) {
	if dir == "" {
		dir = libcni.CacheDir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create CNI cache dir: %w", err)
	}
	path := filepath.Join(dir, cacheLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another netshim (pid %s) uses CNI cache dir %s: give each instance its own --cni-cache-dir", string(holder), dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprint(os.Getpid())), 0)
	return f, nil
}
