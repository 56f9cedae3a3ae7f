package container

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// HostFacts are what the spec options read of the node rather than of the
// request. They sit behind this interface so that every option can be
// table-tested with a fake node, without root; BuildSpec uses the real one
// (node) unless SpecInput.Host names another.
type HostFacts interface {
	// MountOf returns the mount point holding path and the optional
	// fields of its mountinfo line ("shared:N", "master:N").
	MountOf(path string) (mountpoint, optional string, err error)
	// SwapAccounting is true when the memory cgroup can limit swap.
	SwapAccounting() bool
	// HugetlbController is true when the cgroup tree can limit huge pages.
	HugetlbController() bool
	// Cgroup2 is true on a unified (v2) cgroup hierarchy.
	Cgroup2() bool
	// OOMScoreAdj is netshim's own oom_score_adj: the kernel refuses a
	// lower one to a process without CAP_SYS_RESOURCE.
	OOMScoreAdj() (int, error)
	// AppArmorEnabled is true when the kernel enforces AppArmor.
	AppArmorEnabled() bool
	// Capabilities are the capabilities the kernel knows and those of
	// them netshim holds (its effective set), by name.
	Capabilities() (known, held []string)
}

// node is the real host.
type node struct{}

func (node) MountOf(p string) (string, string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	return mountOf(f, p)
}

// mountOf finds the longest mount point holding p in a mountinfo listing.
func mountOf(r io.Reader, p string) (string, string, error) {
	var mountpoint, optional string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := fields[4]
		if !(p == mp || mp == "/" || strings.HasPrefix(p, mp+"/")) || len(mp) < len(mountpoint) {
			continue
		}
		var opt []string
		for _, f := range fields[6:] {
			if f == "-" {
				break
			}
			opt = append(opt, f)
		}
		mountpoint, optional = mp, strings.Join(opt, " ")
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	if mountpoint == "" {
		return "", "", fmt.Errorf("no mount holds %s", p)
	}
	return mountpoint, optional, nil
}

func (node) SwapAccounting() bool {
	if isCgroup2() {
		_, err := os.Stat(filepath.Join(cgroupRoot, "memory.swap.max"))
		return err == nil
	}
	_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"))
	return err == nil
}

func (node) HugetlbController() bool { return hugetlbController() }

func (node) Cgroup2() bool { return isCgroup2() }

func (node) OOMScoreAdj() (int, error) {
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func (node) AppArmorEnabled() bool {
	data, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(data), "Y")
}

func (node) Capabilities() (known, held []string) {
	last := 40 // CAP_CHECKPOINT_RESTORE
	if data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			last = n
		}
	}
	for i, name := range capNames {
		if i <= last {
			known = append(known, name)
		}
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return known, known
	}
	for _, line := range strings.Split(string(data), "\n") {
		hexMask, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(hexMask), 16, 64)
		if err != nil {
			return known, known
		}
		for i, name := range known {
			if mask&(1<<uint(i)) != 0 {
				held = append(held, name)
			}
		}
		return known, held
	}
	return known, known
}

// capNames are the capabilities by number.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}
