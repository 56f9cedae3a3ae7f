package container

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/cgroupdriver"
)

// Stats are a container's resource usage, read from its cgroup and its
// writable layer.
type Stats struct {
	Timestamp time.Time
	// CPUUsageNanos is cumulative CPU time.
	CPUUsageNanos uint64
	// MemoryWorkingSet is usage less inactive file pages, as kubelet counts it.
	MemoryWorkingSet uint64
	MemoryUsage      uint64
	// WritableLayerBytes and WritableLayerInodes are what the container wrote.
	WritableLayerBytes  uint64
	WritableLayerInodes uint64
	// LayerMountpoint is the writable layer's dir.
	LayerMountpoint string
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// Stats reads the usage of c. A container that no longer runs has no cgroup:
// its CPU and memory read as zero.
func (m *Manager) Stats(c *Container) (*Stats, error) {
	st := &Stats{Timestamp: time.Now(), LayerMountpoint: filepath.Join(m.layerDir(c.ID), "upper")}
	if c.State == StateRunning && c.CgroupsPath != "" {
		if err := ReadCgroup(c.CgroupsPath, st); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read cgroup of container %s: %w", c.ID, err)
		}
	}
	st.WritableLayerBytes, st.WritableLayerInodes = m.layerUsage(c.ID, st.LayerMountpoint)
	return st, nil
}

// ReadCgroup fills st's CPU and memory usage from the cgroup at path (a
// cgroupsPath, as in an OCI spec, or a pod's cgroup parent), on cgroup v1 or v2. Both count the
// cgroups under path too, so a pod's cgroup parent reads as the sum of its
// pause and containers. A cgroup that is gone is an fs.ErrNotExist.
func ReadCgroup(path string, st *Stats) error {
	path = cgroupdriver.FSPath(path) // a systemd slice or slice:prefix:name
	if isCgroup2() {
		return readCgroup2(filepath.Join(cgroupRoot, path), st)
	}
	return readCgroup1(path, st)
}

func isCgroup2() bool {
	var sfs syscall.Statfs_t
	return syscall.Statfs(cgroupRoot, &sfs) == nil && sfs.Type == 0x63677270 // CGROUP2_SUPER_MAGIC
}

// hugetlbController is true when the cgroup tree can limit huge pages.
func hugetlbController() bool {
	if isCgroup2() {
		data, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
		return err == nil && slices.Contains(strings.Fields(string(data)), "hugetlb")
	}
	_, err := os.Stat(filepath.Join(cgroupRoot, "hugetlb"))
	return err == nil
}

func readCgroup1(path string, st *Stats) error {
	usage, err := readUint(filepath.Join(cgroupRoot, "cpuacct", path, "cpuacct.usage"))
	if err != nil {
		return err
	}
	st.CPUUsageNanos = usage
	mem, err := readUint(filepath.Join(cgroupRoot, "memory", path, "memory.usage_in_bytes"))
	if err != nil {
		return err
	}
	stat, err := readKeyed(filepath.Join(cgroupRoot, "memory", path, "memory.stat"))
	if err != nil {
		return err
	}
	st.MemoryUsage = mem
	st.MemoryWorkingSet = subFloor(mem, stat["total_inactive_file"])
	return nil
}

func readCgroup2(dir string, st *Stats) error {
	cpu, err := readKeyed(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	st.CPUUsageNanos = cpu["usage_usec"] * 1000
	mem, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return err
	}
	stat, err := readKeyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return err
	}
	st.MemoryUsage = mem
	st.MemoryWorkingSet = subFloor(mem, stat["inactive_file"])
	return nil
}

func subFloor(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(bytes.TrimSpace(data)), 10, 64)
}

// readKeyed reads a cgroup file of "key value" lines.
func readKeyed(path string) (map[string]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// diskUsage sums the bytes (allocated blocks) and inodes under dir.
func diskUsage(dir string) (bytesUsed, inodes uint64) {
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			if seen[sys.Ino] {
				return nil // a hard link counts once
			}
			seen[sys.Ino] = true
			bytesUsed += uint64(sys.Blocks) * 512
		}
		inodes++
		return nil
	})
	return bytesUsed, inodes
}

// Measuring a writable layer walks all of it (0.7–0.9 s with 200k files),
// too slow for every stats call: kubelet asks every few seconds for every
// container. As containerd's snapshot stats collector does, the usage is
// kept and measured again in the background once it is older than
// layerUsageMaxAge (containerd collects every 10 s). A container's first
// call measures at once, so a new container reports what it holds.
var (
	measureLayer     = diskUsage // a var for the tests to count walks
	layerUsageMaxAge = 10 * time.Second
)

// usage is one container's last measure of its writable layer.
type usage struct {
	bytes, inodes uint64
	at            time.Time
	measuring     bool // a background measure is under way
}

// layerUsage is the container's writable-layer usage, at most
// layerUsageMaxAge (plus one walk) old.
func (m *Manager) layerUsage(id, dir string) (bytesUsed, inodes uint64) {
	m.usageMu.Lock()
	u, ok := m.usage[id]
	if ok {
		if time.Since(u.at) >= layerUsageMaxAge && !u.measuring {
			u.measuring = true
			m.background.Add(1)
			go func() {
				defer m.background.Done()
				b, i := measureLayer(dir)
				m.usageMu.Lock()
				defer m.usageMu.Unlock()
				u.bytes, u.inodes, u.at, u.measuring = b, i, time.Now(), false
			}()
		}
		bytesUsed, inodes = u.bytes, u.inodes
		m.usageMu.Unlock()
		return bytesUsed, inodes
	}
	m.usageMu.Unlock()
	bytesUsed, inodes = measureLayer(dir)
	m.usageMu.Lock()
	if _, known := m.records.Get(id); known { // not removed meanwhile
		m.usage[id] = &usage{bytes: bytesUsed, inodes: inodes, at: time.Now()}
	}
	m.usageMu.Unlock()
	return bytesUsed, inodes
}

// forgetUsage drops a removed container's measure.
func (m *Manager) forgetUsage(id string) {
	m.usageMu.Lock()
	defer m.usageMu.Unlock()
	delete(m.usage, id)
}
