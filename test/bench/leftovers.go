package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/netshim/netshim/pkg/proc"
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

// PausePIDsOf maps the live pause processes of the sandboxes a netshim has
// records of, under its --root-dir and --state-dir, to their sandbox IDs: a
// sandbox's cgroup path ends in its ID, whatever the pod's cgroup parent.
// It finds pause processes that outlived the netshim that would stop them.
func PausePIDsOf(rootDir, stateDir string) map[int]string {
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
