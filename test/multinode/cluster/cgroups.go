package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/proc"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupDirs are the cluster's top cgroups: one per v1 hierarchy, or the
// one of the unified v2 hierarchy. Every pod's cgroup parent is below them.
func cgroupDirs(cluster string) []string {
	candidates, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", cluster))
	candidates = append(candidates, filepath.Join(cgroupRoot, cluster))
	var dirs []string
	for _, d := range candidates {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// removeCgroups kills, by PID, whatever still runs in the cluster's cgroups
// (only pods of the cluster's nodes are put there), then removes them,
// deepest first.
func removeCgroups(cluster string) error {
	var errs []error
	for _, top := range cgroupDirs(cluster) {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := emptyAndRemove(dirs[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func emptyAndRemove(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := cgroupPIDs(dir)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return nil
			} else if time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s still holds pids %v", dir, pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func cgroupPIDs(dir string) []int {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsMentioning lists live processes whose command line contains s.
func pidsMentioning(s string) []int {
	var pids []int
	for _, pid := range proc.PIDs() {
		if pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) && proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
