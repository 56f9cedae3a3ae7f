package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// RemoveCgroup removes a container's cgroup (its cgroupsPath: relative to
// each hierarchy's root, or the systemd driver's slice:prefix:name) once it
// is empty, in every hierarchy. runc deletes it
// itself, except when a process of the container is still a zombie at that
// moment (an adopted pause whose new parent reaps slowly): then the empty
// directory would stay behind forever. A cgroup already gone is no error;
// one that stays busy past ctx or a few seconds is.
func RemoveCgroup(ctx context.Context, path string) error {
	path = cgroupdriver.FSPath(path)
	if path == "" || filepath.Clean(path) == "/" {
		return nil
	}
	dirs := []string{filepath.Join(cgroupRoot, path)}
	var sfs unix.Statfs_t
	if unix.Statfs(cgroupRoot, &sfs) == nil && sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		// cgroup v1 (or hybrid): one directory per hierarchy.
		entries, err := os.ReadDir(cgroupRoot)
		if err != nil {
			return fmt.Errorf("list cgroup hierarchies: %w", err)
		}
		dirs = dirs[:0]
		for _, e := range entries {
			if e.IsDir() { // not the cpu -> cpu,cpuacct links
				dirs = append(dirs, filepath.Join(cgroupRoot, e.Name(), path))
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, dir := range dirs {
		for {
			err := unix.Rmdir(dir)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
