package cni

import (
	"os"

	"github.com/containernetworking/cni/libcni"
	"github.com/netshim/netshim/pkg/dirlock"
)

// lockCacheDir takes the CNI cache dir for this process, or says which
// process has it. Two instances on one cache dir would reclaim each other's
// pods: the network GC at start sends a DEL for every cached attachment
// that none of *its* sandboxes holds.
func lockCacheDir(dir string) (*os.File, error) {
	if dir == "" {
		dir = libcni.CacheDir
	}
	return dirlock.Lock(dir, "CNI cache dir", "--cni-cache-dir")
}
