package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An empty cgroup left in every hierarchy is removed; a missing one is no
// error.
func TestRemoveCgroup(t *testing.T) {
	needRoot(t)
	path := fmt.Sprintf("/netshim-oci-cgtest-%d", time.Now().UnixNano())
	var made []string
	var sfs unix.Statfs_t
	if unix.Statfs(cgroupRoot, &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC {
		if err := os.Mkdir(filepath.Join(cgroupRoot, path), 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, filepath.Join(cgroupRoot, path))
	} else {
		entries, _ := os.ReadDir(cgroupRoot)
		for _, e := range entries {
			if e.IsDir() && os.Mkdir(filepath.Join(cgroupRoot, e.Name(), path), 0o755) == nil {
				made = append(made, filepath.Join(cgroupRoot, e.Name(), path))
			}
		}
	}
	if len(made) == 0 {
		t.Fatal("could not make a test cgroup")
	}
	if err := RemoveCgroup(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	for _, d := range made {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", d, err)
			_ = os.Remove(d)
		}
	}
	if err := RemoveCgroup(context.Background(), path); err != nil {
		t.Errorf("removing it again: %v", err)
	}
}
