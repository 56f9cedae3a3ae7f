package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	"golang.org/x/sys/unix"
)

// An empty cgroup left in every hierarchy is removed; a missing one is no
// error.
func TestRemoveCgroup(t *testing.T) {
	needRoot(t)
	path := fmt.Sprintf("/netshim-oci-cgtest-%d", time.Now().UnixNano())
	testRemoveCgroup(t, path, path)
}

// A systemd driver's cgroupsPath (slice:prefix:name) is removed where
// systemd would have made it: the scope's directory in the expanded slice.
func TestRemoveCgroupSystemdPath(t *testing.T) {
	needRoot(t)
	slice := fmt.Sprintf("netshimocicgtest%d.slice", time.Now().UnixNano())
	t.Cleanup(func() { _ = RemoveCgroup(context.Background(), "/"+slice) })
	testRemoveCgroup(t, "/"+slice+"/netshim-abc.scope", slice+":netshim:abc")
}

// testRemoveCgroup makes dir (and its parents) in every hierarchy, then
// has RemoveCgroup remove cgroupsPath, which names it.
func testRemoveCgroup(t *testing.T, dir, cgroupsPath string) {
	path := dir
	var made []string
	var sfs unix.Statfs_t
	if unix.Statfs(cgroupRoot, &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC {
		if err := os.MkdirAll(filepath.Join(cgroupRoot, path), 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, filepath.Join(cgroupRoot, path))
	} else {
		entries, _ := os.ReadDir(cgroupRoot)
		for _, e := range entries {
			if e.IsDir() && os.MkdirAll(filepath.Join(cgroupRoot, e.Name(), path), 0o755) == nil {
				made = append(made, filepath.Join(cgroupRoot, e.Name(), path))
			}
		}
	}
	if len(made) == 0 {
		t.Fatal("could not make a test cgroup")
	}
	if err := RemoveCgroup(context.Background(), cgroupsPath); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", d, err)
			_ = os.Remove(d)
		}
	}
	if err := RemoveCgroup(context.Background(), cgroupsPath); err != nil {
		t.Errorf("removing it again: %v", err)
	}
}

// Under the systemd driver runc gets --systemd-cgroup on every call, so it
// reads cgroupsPath as slice:prefix:name and has systemd make the scope.
func TestRuncSystemdCgroupFlag(t *testing.T) {
	defer cgroupdriver.Set(cgroupdriver.Cgroupfs)
	r := &Runc{Binary: "/usr/bin/runc", Root: "/run/x"}
	if args := r.command(context.Background(), "state", "id").Args; slices.Contains(args, "--systemd-cgroup") {
		t.Errorf("cgroupfs driver: %q", args)
	}
	cgroupdriver.Set(cgroupdriver.Systemd)
	args := r.command(context.Background(), "state", "id").Args
	if want := []string{"/usr/bin/runc", "--root", "/run/x", "--systemd-cgroup", "state", "id"}; !slices.Equal(args, want) {
		t.Errorf("systemd driver: %q, want %q", args, want)
	}
}
