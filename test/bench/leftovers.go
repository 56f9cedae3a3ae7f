package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/proc"
	"golang.org/x/sys/unix"
)

// Snapshot counts what a pod sandbox leaves on a node if it leaks.
type Snapshot struct {
	Links          int // network interfaces in the node's netns
	NetNSMounts    int // nsfs mounts (netns pins)
	PodProcesses   int // processes named as Options.PerPodProcesses
	IPReservations int // host-local lease files in the IPAM dir, if given
}

// TakeSnapshot counts the node's state; ipamDir may be "".
func TakeSnapshot(perPod []string, ipamDir string) Snapshot {
	var s Snapshot
	if e, err := os.ReadDir("/sys/class/net"); err == nil {
		s.Links = len(e)
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, " - nsfs ") {
				s.NetNSMounts++
			}
		}
	}
	s.PodProcesses = len(LivePIDsNamed(perPod...))
	if ipamDir != "" {
		nets, _ := os.ReadDir(ipamDir)
		for _, n := range nets {
			leases, _ := os.ReadDir(ipamDir + "/" + n.Name())
			for _, l := range leases {
				if strings.Count(l.Name(), ".") == 3 || strings.Contains(l.Name(), ":") {
					s.IPReservations++
				}
			}
		}
	}
	return s
}

// LivePIDsNamed lists the processes, zombies left out, whose command name
// (/proc/PID/comm) is one of names.
func LivePIDsNamed(names ...string) []int {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var pids []int
	for _, pid := range proc.PIDs() {
		comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if err == nil && want[strings.TrimSpace(string(comm))] && proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Growth describes what after holds more of than before, or "" for nothing.
func Growth(before, after Snapshot) string {
	var out []string
	for _, c := range []struct {
		what string
		b, a int
	}{{"links", before.Links, after.Links}, {"netns mounts", before.NetNSMounts, after.NetNSMounts},
		{"per-pod processes", before.PodProcesses, after.PodProcesses}, {"IP reservations", before.IPReservations, after.IPReservations}} {
		if c.a > c.b {
			out = append(out, fmt.Sprintf("%s %d → %d", c.what, c.b, c.a))
		}
	}
	return strings.Join(out, ", ")
}

// RemoveLeftoverSandboxes removes what a netshim with these --root-dir and
// --state-dir left running when it could not stop its pods itself (killed,
// or its test aborted): the conmon of each container (by the PID in its
// bundle), every runtime container in its two runc roots, with runc's forced
// delete (which also removes the cgroups), then, by PID, any pause process of
// its sandboxes that runc no longer knew. It waits for those to exit, and
// returns a line for each thing it removed.
func RemoveLeftoverSandboxes(runc, rootDir, stateDir string) (removed []string, err error) {
	var errs []error
	// Containers first: their monitors, then the runtime's records of them
	// and of the pause processes.
	bundles := filepath.Join(stateDir, "containers", "bundles")
	monitors, _ := os.ReadDir(bundles)
	for _, b := range monitors {
		data, err := os.ReadFile(filepath.Join(bundles, b.Name(), "conmon.pid"))
		pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || perr != nil || !proc.Alive(pid) || !isNamed(pid, "conmon") {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		removed = append(removed, fmt.Sprintf("conmon pid %d of container %.12s", pid, b.Name()))
	}
	for _, runcRoot := range []string{filepath.Join(stateDir, "containers-runc"), filepath.Join(stateDir, "runtime")} {
		containers, _ := os.ReadDir(runcRoot)
		for _, c := range containers {
			if out, err := exec.Command(runc, "--root", runcRoot, "delete", "--force", c.Name()).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s: %v: %s", c.Name(), err, out))
			}
			removed = append(removed, "runtime container "+c.Name())
		}
	}
	pids := pausePIDsOf(rootDir, stateDir)
	for pid, id := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		removed = append(removed, fmt.Sprintf("pause pid %d of sandbox %s", pid, id[:12]))
	}
	deadline := time.Now().Add(10 * time.Second)
	for pid, id := range pids {
		for proc.Alive(pid) {
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("pause pid %d of sandbox %s did not die", pid, id[:12]))
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return removed, errors.Join(errs...)
}

// pausePIDsOf maps the live pause processes of the sandboxes a netshim has
// records of, under its --root-dir and --state-dir, to their sandbox IDs: a
// sandbox's cgroup path ends in its ID, whatever the pod's cgroup parent.
// It finds pause processes that outlived the netshim that would stop them.
func pausePIDsOf(rootDir, stateDir string) map[int]string {
	ids := map[string]bool{}
	for _, d := range []string{filepath.Join(rootDir, "sandboxes"), filepath.Join(stateDir, "sandboxes")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if name := strings.TrimPrefix(e.Name(), "."); len(name) >= 64 {
				ids[name[:64]] = true // ID, ID.json, .ID.json.tmp-N, ID.json.corrupt
			}
		}
	}
	found := map[int]string{}
	if len(ids) == 0 {
		return found
	}
	for _, pid := range LivePIDsNamed("pause") {
		cg, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
		for id := range ids {
			if strings.Contains(string(cg), id) {
				found[pid] = id
			}
		}
	}
	return found
}

// isNamed is true when pid's command name is name, so a reused PID is left alone.
func isNamed(pid int, name string) bool {
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	return err == nil && strings.TrimSpace(string(comm)) == name
}

// UnmountAllUnder lazily unmounts everything mounted below dir, deepest
// first, and returns what it unmounted: a clean-up's last resort, whose
// findings a test reports as leaks.
func UnmountAllUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], strings.TrimSuffix(dir, "/")+"/") {
			mounts = append(mounts, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
	return mounts
}

// StopProcess stops a process it started, by PID: SIGTERM, then SIGKILL
// after grace, and waits for it.
func StopProcess(cmd *exec.Cmd, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Scope narrows a Snapshot to one runtime's things, so other tests on a
// shared machine are not counted as its leftovers. Empty fields count the
// whole node, as TakeSnapshot does.
type Scope struct {
	Bridge   string // count the links attached to this bridge
	NetNSDir string // count the netns pins below this dir
	// RuntimePID and Marker select the per-pod processes: those descending
	// from RuntimePID, or from (or being) a process whose command line holds
	// Marker (containerd's shims name their daemon's socket).
	RuntimePID int
	Marker     string
}

// TakeScopedSnapshot is TakeSnapshot within scope.
func TakeScopedSnapshot(perPod []string, ipamDir string, scope Scope) Snapshot {
	s := TakeSnapshot(perPod, ipamDir)
	if scope.Bridge != "" {
		ports, _ := os.ReadDir(filepath.Join("/sys/class/net", scope.Bridge, "brif"))
		s.Links = len(ports)
	}
	if scope.NetNSDir != "" {
		s.NetNSMounts = 0
		data, _ := os.ReadFile("/proc/self/mountinfo")
		prefix := strings.TrimSuffix(scope.NetNSDir, "/") + "/"
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.Contains(line, " - nsfs ") && strings.HasPrefix(f[4], prefix) {
				s.NetNSMounts++
			}
		}
	}
	if scope.RuntimePID != 0 || scope.Marker != "" {
		s.PodProcesses = 0
		for _, pid := range LivePIDsNamed(perPod...) {
			if scope.owns(pid) {
				s.PodProcesses++
			}
		}
	}
	return s
}

// owns walks pid's ancestry up to PID 1.
func (sc Scope) owns(pid int) bool {
	for p := pid; p > 1; {
		if p == sc.RuntimePID {
			return true
		}
		if sc.Marker != "" {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
			if strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), sc.Marker) {
				return true
			}
		}
		p = parentOf(p)
	}
	return false
}

// parentOf reads a process's PPid, or 0 when it is gone.
func parentOf(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			ppid, _ := strconv.Atoi(strings.TrimSpace(v))
			return ppid
		}
	}
	return 0
}
