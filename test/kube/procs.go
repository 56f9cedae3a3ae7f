package kube

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/proc"
)

// Proc is one long-running process of the cluster, recorded so that
// kube-down, from another process, stops exactly it.
type Proc struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// Start is its start time in clock ticks since boot: a PID reused by
	// another process after a reboot or a wrap is not ours.
	Start uint64 `json:"start"`
	Log   string `json:"log"`
}

// launch starts cmd in a session of its own with its output in logPath,
// and returns its record. The caller records it before doing anything else.
func launch(name string, cmd *exec.Cmd, logPath string) (*Proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, Log: logPath}
	p.Start, _ = proc.StartTime(p.PID)
	// Reap it when it exits while this process still runs; after that,
	// init does.
	go func() { _ = cmd.Wait() }()
	return p, nil
}

// alive reports whether the recorded process still runs (a zombie does not).
func (p *Proc) alive() bool {
	if p == nil || p.PID == 0 {
		return false
	}
	start, alive := proc.StartTime(p.PID)
	return alive && start == p.Start
}

// stop sends SIGTERM, then SIGKILL after grace, to the recorded PID only.
func (p *Proc) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if !p.alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) did not exit", p.Name, p.PID)
}

// logTail is the end of the process's log, for an error message.
func (p *Proc) logTail(lines int) string {
	data, _ := os.ReadFile(p.Log)
	all := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (p *Proc) String() string { return p.Name + " (pid " + strconv.Itoa(p.PID) + ")" }
