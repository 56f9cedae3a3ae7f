// Package proc reads the few facts about processes that netshim and its
// tests need from /proc: which PIDs exist, whether one is alive, and when it
// started (to tell a process from a later one that reuses its PID).
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// PIDs lists the processes that exist now, zombies included.
func PIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StartTime returns field 22 of /proc/PID/stat (start time in clock ticks)
// and whether the process is alive: present and not a zombie.
func StartTime(pid int) (start uint64, alive bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces and parentheses; fields start after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(data[i+1:])
	// fields[0] is field 3 (state); start time is field 22, fields[19].
	if len(fields) < 20 {
		return 0, false
	}
	start, err = strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0, false
	}
	state := fields[0][0]
	return start, state != 'Z' && state != 'X'
}

// Alive reports whether pid exists and has not exited. A zombie has: it
// waits only for its parent to reap it, and holds nothing else.
func Alive(pid int) bool {
	_, alive := StartTime(pid)
	return alive
}

// SameAlive reports whether pid is alive and still the process that
// started at start, not a later one that reuses its PID.
func SameAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, alive := StartTime(pid)
	return alive && s == start
}

// ParentPID returns field 4 of /proc/PID/stat: the parent's PID.
func ParentPID(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	fields := bytes.Fields(data[i+1:])
	if i < 0 || len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	return strconv.Atoi(string(fields[1]))
}
