package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Conmon starts containers under Debian's conmon, CRI-O's per-container
// monitor: it runs `runc create`, holds the container's stdio, writes the
// CRI log file and the exit code, and serves the attach socket. It is a
// daemon of its own, so containers and their logs outlive netshim.
type Conmon struct {
	Binary  string // path of conmon
	Runtime *Runc
	// Wrapper, when set, is the command conmon runs in place of the
	// runtime binary, which it is given first (gVisor: see gvisor.go).
	Wrapper []string
}

// runtimePath and runtimeArgs are what conmon runs as the runtime.
func (c *Conmon) runtimePath() string {
	if len(c.Wrapper) > 0 {
		return c.Wrapper[0]
	}
	return c.Runtime.Binary
}

func (c *Conmon) runtimeArgs() []string {
	if len(c.Wrapper) > 0 {
		return append(append(slices.Clone(c.Wrapper[1:]), c.Runtime.Binary), c.Runtime.globalArgs()...)
	}
	return c.Runtime.globalArgs()
}

// MonitorOptions describe one container for its monitor.
type MonitorOptions struct {
	ID     string
	Name   string // for conmon's own logs
	Bundle string // holds config.json; the monitor's files go here too
	// LogPath is the CRI log file (kubelet's format); "" for none.
	LogPath string
	// ExitDir receives a file named ID holding the exit code when the container exits.
	ExitDir   string
	Tty       bool
	Stdin     bool
	StdinOnce bool
}

// Monitor files in the bundle.
const (
	ConmonPIDFile    = "conmon.pid"
	ContainerPIDFile = "pidfile"
	OOMFile          = "oom"
	runtimeLogFile   = "runtime.log"
	conmonLogFile    = "conmon.log"
)

// createTimeout bounds the monitor's `runc create` when ctx has no deadline.
const createTimeout = 2 * time.Minute

// Create starts the monitor, which creates (not starts) the container. It
// returns the PIDs of the container's init and of the monitor. On error
// nothing of the container is left running in the runtime.
func (c *Conmon) Create(ctx context.Context, o MonitorOptions) (pid, monitorPID int, err error) {
	args := []string{
		"--api-version", "1",
		"--cid", o.ID, "--cuuid", o.ID, "--name", o.Name,
		"--runtime", c.runtimePath(),
		"--bundle", o.Bundle,
		"--container-pidfile", filepath.Join(o.Bundle, ContainerPIDFile),
		"--conmon-pidfile", filepath.Join(o.Bundle, ConmonPIDFile),
		"--persist-dir", o.Bundle,
		"--exit-dir", o.ExitDir,
		"--socket-dir-path", o.Bundle, "--full-attach",
		"--log-level", "error",
	}
	for _, a := range c.runtimeArgs() {
		args = append(args, "--runtime-arg", a)
	}
	args = append(args, "--runtime-arg", "--log", "--runtime-arg", filepath.Join(o.Bundle, runtimeLogFile),
		"--runtime-arg", "--log-format", "--runtime-arg", "json")
	if o.LogPath != "" {
		args = append(args, "--log-path", "k8s-file:"+o.LogPath)
	} else {
		args = append(args, "--log-path", "none:")
	}
	if o.Tty {
		args = append(args, "--terminal")
	}
	if o.Stdin {
		args = append(args, "--stdin")
		if !o.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, 0, fmt.Errorf("sync pipe for conmon of %s: %w", o.ID, err)
	}
	defer syncR.Close()
	logFile, err := os.OpenFile(filepath.Join(o.Bundle, conmonLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		syncW.Close()
		return 0, 0, fmt.Errorf("conmon log of %s: %w", o.ID, err)
	}
	defer logFile.Close()

	// Not CommandContext: the monitor must outlive the request.
	cmd := exec.Command(c.Binary, args...)
	// conmon writes its "oom" marker into its working directory, as CRI-O
	// runs it: the bundle, never wherever netshim was started.
	cmd.Dir = o.Bundle
	cmd.ExtraFiles = []*os.File{syncW} // fd 3
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3")
	// A file, not a pipe: the daemonized monitor keeps its stderr, and a
	// pipe would keep Wait from returning.
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return 0, 0, fmt.Errorf("start conmon for %s: %w", o.ID, err)
	}
	syncW.Close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, createTimeout)
		defer cancel()
	}
	// conmon forks its daemon and exits; the daemon reports on the pipe.
	// Both waits are bounded: a conmon stuck before it forks (its log path
	// a FIFO nobody reads) is killed at the deadline, never waited on for
	// good while the caller holds the pod's lock.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		_ = cmd.Process.Kill() // our child, not yet reaped: its PID is still ours
		<-exited
		waitErr = fmt.Errorf("conmon did not fork its monitor: %w", ctx.Err())
	}

	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		pid, err := readSyncPID(syncR)
		done <- result{pid, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = fmt.Errorf("waiting for the container to be created: %w", ctx.Err())
	}
	monitorPID, _ = readPIDFile(filepath.Join(o.Bundle, ConmonPIDFile))
	if res.err == nil && waitErr != nil {
		res.err = fmt.Errorf("conmon exited: %w", waitErr)
	}
	if res.err != nil {
		c.cleanupFailedCreate(o, monitorPID)
		return 0, 0, fmt.Errorf("create container %s: %w%s", o.ID, res.err, runtimeLogTail(o.Bundle))
	}
	return res.pid, monitorPID, nil
}

// cleanupFailedCreate kills what a failed create may have left: the
// runtime's container and the monitor.
func (c *Conmon) cleanupFailedCreate(o MonitorOptions, monitorPID int) {
	_ = c.Runtime.Delete(context.Background(), o.ID, true)
	if monitorPID > 0 {
		if p, err := os.FindProcess(monitorPID); err == nil {
			_ = p.Kill()
		}
	}
}

// readSyncPID reads conmon's report of the create: {"pid": N} or
// {"pid": -1, "message": "…"}.
func readSyncPID(r io.Reader) (int, error) {
	dec := json.NewDecoder(r)
	var msg struct {
		PID     *int   `json:"pid"`
		Data    *int   `json:"data"`
		Message string `json:"message"`
	}
	if err := dec.Decode(&msg); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errors.New("conmon exited without reporting the container's PID")
		}
		return 0, fmt.Errorf("read conmon's report: %w", err)
	}
	pid := msg.PID
	if pid == nil {
		pid = msg.Data
	}
	if pid == nil || *pid <= 0 {
		if msg.Message == "" {
			msg.Message = "no message"
		}
		return 0, fmt.Errorf("runtime failed: %s", strings.TrimSpace(msg.Message))
	}
	return *pid, nil
}

func readPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// runtimeLogTail is ": <last runtime error>" when the runtime logged one.
func runtimeLogTail(bundle string) string {
	msg := lastLogError(filepath.Join(bundle, runtimeLogFile))
	if strings.HasPrefix(msg, "no ") {
		return ""
	}
	return ": " + msg
}

// ExitCode reads the exit file conmon wrote for id in exitDir; ok is false
// while there is none (the container has not exited).
func ExitCode(exitDir, id string) (code int32, at time.Time, ok bool, err error) {
	path := filepath.Join(exitDir, id)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, time.Time{}, false, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, time.Time{}, false, fmt.Errorf("exit file %s holds %q", path, data)
	}
	return int32(n), st.ModTime(), true, nil
}

// ReopenLog asks the monitor to reopen the container's log file (kubelet
// rotated it), through its control fifo.
func ReopenLog(ctlPath string) error {
	return writeCtl(ctlPath, "2 0 0\n")
}

// writeCtl writes one message to a monitor's control fifo without blocking
// when the monitor is gone.
func writeCtl(ctlPath, msg string) error {
	f, err := os.OpenFile(ctlPath, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open the monitor's control fifo: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(msg); err != nil {
		return fmt.Errorf("write the monitor's control fifo: %w", err)
	}
	return nil
}
