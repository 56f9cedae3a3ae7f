// Package reaper makes netshim the child subreaper of what it starts (pause
// processes, container monitors) and reaps exactly the PIDs it is told about.
package reaper

import (
	"bytes"
	"strconv"

	"errors"
	"github.com/netshim/netshim/pkg/proc"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes this process the reaper of its orphaned descendants:
// `runc run -d` exits after the start, and its pause process then becomes
// netshim's child instead of PID 1's, so netshim sees it exit and reaps it.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Reaper waits for the processes this netshim started. It reaps only
// PIDs it was told about (wait4 on each, WNOHANG, on every SIGCHLD), never
// wait(-1), which would steal the exit status of os/exec's children.
type Reaper struct {
	mu      sync.Mutex
	waiting map[int]chan struct{}
	orphans string // see ReapOrphansNamed
	sigs    chan os.Signal
	done    chan struct{}
}

// New starts a reaper; Stop ends it.
func New() *Reaper {
	r := &Reaper{waiting: map[int]chan struct{}{}, sigs: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// Track returns a channel closed when pid has exited and been reaped. A pid
// that is not our child (adopted after a restart) is watched by the caller.
func (r *Reaper) Track(pid int) <-chan struct{} {
	r.mu.Lock()
	ch, ok := r.waiting[pid]
	if !ok {
		ch = make(chan struct{})
		r.waiting[pid] = ch
	}
	r.mu.Unlock()
	r.scan() // it may have exited before it was tracked
	return ch
}

func (r *Reaper) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
			r.scan()
		}
	}
}

// ReapOrphansNamed makes every scan also reap this process's zombie
// children whose command name is comm: orphans it did not start, so that
// no os/exec Wait is robbed. gVisor's sandbox and gofer processes, which
// runsc re-executes as "exe", become netshim's children that way when the
// runsc that started them exits.
func (r *Reaper) ReapOrphansNamed(comm string) {
	r.mu.Lock()
	r.orphans = comm
	r.mu.Unlock()
	r.scan()
}

func (r *Reaper) scan() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.orphans != "" {
		r.reapOrphans()
	}
	for pid, ch := range r.waiting {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || errors.Is(err, unix.ECHILD) {
			close(ch)
			delete(r.waiting, pid)
		}
	}
}

// Stop ends the reaper; tracked processes are no longer reaped.
func (r *Reaper) Stop() {
	signal.Stop(r.sigs)
	close(r.done)
}

// reapOrphans reaps the zombie children named r.orphans.
func (r *Reaper) reapOrphans() {
	self := os.Getpid()
	for _, pid := range proc.PIDs() {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// "PID (comm) STATE PPID ..."; comm may hold spaces and ')'.
		open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || end < open || string(data[open+1:end]) != r.orphans {
			continue
		}
		fields := bytes.Fields(data[end+1:])
		if len(fields) < 2 || fields[0][0] != 'Z' || string(fields[1]) != strconv.Itoa(self) {
			continue
		}
		if _, tracked := r.waiting[pid]; !tracked {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	}
}
