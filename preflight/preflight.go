// Package preflight checks a node for what netshim needs before it can run
// pods, as kubeadm's preflight does for a cluster: kernel modules and
// sysctls, the CNI network and its plugins, runc, conmon and iptables,
// overlayfs, cgroups, the CRI socket's path and free space. Each finding
// comes with a one-line fix. It only reads: it changes nothing on the node.
//
// Every path it reads is a field of Config, so tests run it against temp dirs.
package preflight

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Severity says whether a finding stops pods from running.
type Severity int

const (
	// OK: nothing to do.
	OK Severity = iota
	// Warning: pods run, but something an operator relies on may not work.
	Warning
	// Failure: pods will not run (or not be reachable) until it is fixed.
	Failure
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "WARN"
	default:
		return "FAIL"
	}
}

// Result is one finding: what was checked, what was found and, unless it is
// OK, one line telling the operator how to fix it.
type Result struct {
	Check    string
	Severity Severity
	Message  string
	Fix      string
}

// Config holds the paths and settings to check: the daemon's flags, and the
// host paths, which tests point at temp dirs.
type Config struct {
	// ProcDir is where proc is mounted (/proc): sys/ and filesystems are read.
	ProcDir string
	// SysDir is where sysfs is mounted (/sys): fs/cgroup is read.
	SysDir string
	// ModulesDir holds this kernel's modules (/lib/modules/RELEASE): it tells
	// a module not loaded yet from one the kernel does not have.
	ModulesDir string

	// NetworkPlugin is --network-plugin: cni, kubenet, none or "".
	NetworkPlugin string
	CNIConfDir    string
	CNIBinDirs    []string

	// OCIRuntime, Conmon and Iptables are paths or names looked up on PATH.
	OCIRuntime  string
	Conmon      string
	Iptables    string
	PauseBinary string

	// Endpoint is --container-runtime-endpoint (unix:///path).
	Endpoint    string
	SocketGroup string
	RootDir     string
	StateDir    string

	// CgroupDriver is --cgroup-driver: cgroupfs ("" too) or systemd, which
	// needs systemd as PID 1 (RunDir is where /run/systemd/system is
	// looked for; "" is /run).
	CgroupDriver string
	RunDir       string

	// Euid is the user netshim would run as.
	Euid int
	// Statfs reports the bytes available to root and the total size of the
	// filesystem holding path; nil uses statfs(2).
	Statfs func(path string) (avail, total uint64, err error)
	// CommandTimeout bounds each `--version` run; 0 means 5 s.
	CommandTimeout time.Duration
}

// Run performs every check, in the order an operator fixes them, and
// returns one Result per finding.
func Run(ctx context.Context, c Config) []Result {
	if c.Statfs == nil {
		c.Statfs = statfs
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 5 * time.Second
	}
	var rs []Result
	rs = append(rs, checkRoot(c))
	rs = append(rs, checkRuntime(ctx, c), checkConmon(ctx, c), checkPause(c), checkIptables(ctx, c))
	rs = append(rs, checkBridgeNetfilter(c)...)
	rs = append(rs, checkIPForward(c))
	rs = append(rs, checkOverlay(c), checkCgroups(c))
	rs = append(rs, checkNetwork(c)...)
	rs = append(rs, checkSocket(c)...)
	rs = append(rs, checkFreeSpace(c, "--root-dir", c.RootDir), checkFreeSpace(c, "--state-dir", c.StateDir))
	return rs
}

// Blocking reports whether any finding stops pods from running.
func Blocking(rs []Result) bool {
	for _, r := range rs {
		if r.Severity == Failure {
			return true
		}
	}
	return false
}

// Write prints one line per finding, and under each that is not OK its fix,
// then a summary line.
func Write(w io.Writer, rs []Result) {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Check))
	}
	var failed, warned int
	for _, r := range rs {
		fmt.Fprintf(w, "%-4s  %-*s  %s\n", r.Severity, width, r.Check, r.Message)
		if r.Severity != OK && r.Fix != "" {
			fmt.Fprintf(w, "%-4s  %-*s  fix: %s\n", "", width, "", r.Fix)
		}
		switch r.Severity {
		case Failure:
			failed++
		case Warning:
			warned++
		}
	}
	switch {
	case failed > 0:
		fmt.Fprintf(w, "%d failed, %d warnings: pods will not run (or not be reachable) until the failures are fixed\n", failed, warned)
	case warned > 0:
		fmt.Fprintf(w, "no failures, %d warnings: pods can run\n", warned)
	default:
		fmt.Fprintln(w, "all checks passed: pods can run")
	}
}

// networked reports whether pods get a network from a plugin, which is what
// the bridge, forwarding and iptables checks matter for.
func (c Config) networked() bool {
	return c.NetworkPlugin != "" && c.NetworkPlugin != "none"
}

// networkSeverity is Failure where pods get a network, else Warning: with
// --network-plugin=none pods have only loopback.
func (c Config) networkSeverity() Severity {
	if c.networked() {
		return Failure
	}
	return Warning
}

func checkRoot(c Config) Result {
	r := Result{Check: "user"}
	if c.Euid != 0 {
		r.Severity = Failure
		r.Message = fmt.Sprintf("running as uid %d: netshim makes namespaces, mounts and cgroups, which needs root", c.Euid)
		r.Fix = "run netshim (and this check) as root, e.g. under systemd with the shipped unit"
		return r
	}
	r.Message = "root"
	return r
}

func statfs(path string) (avail, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// readTrimmed returns a small proc or sys file's content without the newline.
func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
