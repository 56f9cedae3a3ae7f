package sandbox

import "github.com/netshim/netshim/pkg/proc"

// sameProcessAlive is true when pid is alive and still the process that
// started at start (not a reuse of its PID).
func sameProcessAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, alive := proc.StartTime(pid)
	return alive && s == start
}
