package sandbox

import (
	"bytes"
	"os"
	"strconv"
)

// procStartTime returns field 22 of /proc/PID/stat (start time in clock
// ticks) and whether the process is alive, i.e. present and not a zombie.
func procStartTime(pid int) (start uint64, alive bool) {
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

// sameProcessAlive is true when pid is alive and still the process that
// started at start (not a reuse of its PID).
func sameProcessAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	s, alive := procStartTime(pid)
	return alive && s == start
}
