package sandbox

import (
	"errors"
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

// reaper waits for the pause processes this netshim started. It reaps only
// PIDs it was told about (wait4 on each, WNOHANG, on every SIGCHLD), never
// wait(-1), which would steal the exit status of os/exec's children.
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan struct{}
	sigs    chan os.Signal
	done    chan struct{}
}

func newReaper() *reaper {
	r := &reaper{waiting: map[int]chan struct{}{}, sigs: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// track returns a channel closed when pid has exited and been reaped. A pid
// that is not our child (adopted after a restart) is watched by the caller.
func (r *reaper) track(pid int) <-chan struct{} {
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

func (r *reaper) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.sigs:
			r.scan()
		}
	}
}

func (r *reaper) scan() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if got == pid || errors.Is(err, unix.ECHILD) {
			close(ch)
			delete(r.waiting, pid)
		}
	}
}

func (r *reaper) stop() {
	signal.Stop(r.sigs)
	close(r.done)
}
