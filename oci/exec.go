package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/proc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// ExecOptions are a process to run in a running container.
type ExecOptions struct {
	Cmd            []string
	Stdin          io.Reader // nil for none
	Stdout, Stderr io.Writer // nil for none; Stderr is unused with Tty
	Tty            bool
	Resize         <-chan TerminalSize
	// TempDir holds the exec's dir (exec-*: its pid file, console socket and
	// process spec). netshim keeps it under its state dir, where
	// SweepExecs finds what a killed netshim left.
	TempDir string
}

// userHZ is the kernel's clock tick for /proc's start times (USER_HZ, 100
// on every architecture Linux runs containers on).
const userHZ = 100

// SweepExecs removes what the execs of an earlier netshim, killed during
// them, left in dir: each exec-* dir goes (a TTY exec's holds the
// container's process spec, environment included), and the process its pid
// file names is SIGKILLed, its ExecSync timeout having died with that
// netshim. A process is killed only if it is at least as old as its pid
// file: a later one that reuses the PID is left alone. It returns the PIDs
// it killed.
func SweepExecs(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep execs: %w", err)
	}
	var killed []int
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "exec-") {
			continue // not ours
		}
		path := filepath.Join(dir, e.Name())
		if pid, ok := lostExecPID(filepath.Join(path, "pid")); ok && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	return killed, errors.Join(errs...)
}

// lostExecPID is the PID in pidFile when that process is alive and started
// no later than runc wrote the file (2 s of slack for the clock's ticks).
func lostExecPID(pidFile string) (int, bool) {
	pid, err := readPIDFile(pidFile)
	if err != nil || pid <= 1 {
		return 0, false
	}
	st, err := os.Stat(pidFile)
	if err != nil {
		return 0, false
	}
	start, alive := proc.StartTime(pid)
	if !alive {
		return 0, false
	}
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, false
	}
	var uptime float64
	if _, err := fmt.Sscan(string(data), &uptime); err != nil {
		return 0, false
	}
	procAge := time.Duration((uptime - float64(start)/userHZ) * float64(time.Second))
	return pid, procAge >= time.Since(st.ModTime())-2*time.Second
}

// Exec runs a process in container id with `runc exec`, which takes the
// container's own process spec (user, env, capabilities, cwd) as its base.
// It returns the process's exit code. When ctx ends first the process
// itself is SIGKILLed (not only runc), so nothing is left behind.
func (r *Runc) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	dir, err := os.MkdirTemp(o.TempDir, "exec-")
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.RemoveAll(dir)
	if o.Tty {
		return r.execTTY(ctx, id, o, dir)
	}
	return r.execPipes(ctx, id, o, dir)
}

// execPipes runs the process with runc attached: the process inherits
// runc's stdio and runc exits with its status.
func (r *Runc) execPipes(ctx context.Context, id string, o ExecOptions, dir string) (int, error) {
	pidFile := filepath.Join(dir, "pid")
	args := append(append(r.globalArgs(), "exec", "--pid-file", pidFile, id), o.Cmd...)
	cmd := exec.Command(r.Binary, args...)
	// A process may leave a child holding its stdout: once it exited, the
	// pipes are closed after this long rather than waited for.
	cmd.WaitDelay = 2 * time.Second
	var runcErr limitedBuffer
	// runc's own errors share stderr with the process's.
	cmd.Stdout = o.Stdout
	cmd.Stderr = io.MultiWriter(&runcErr, orDiscard(o.Stderr))
	var stdinW *os.File
	if o.Stdin != nil {
		// Our own pipe rather than os/exec's: its copier would hold Wait
		// until the client's stdin ends, which may be never.
		stdinR, w, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
		stdinW = w
		defer stdinW.Close()
		defer stdinR.Close()
		cmd.Stdin = stdinR
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if stdinW != nil {
		_ = cmd.Stdin.(*os.File).Close() // the child has its copy
		// Not waited for: it ends at the client's EOF or at its first write
		// after Exec returned and closed stdinW.
		go func() {
			_, _ = io.Copy(stdinW, o.Stdin)
			_ = stdinW.Close() // EOF for the process
		}()
	}
	runcExited := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			stopExec(cmd, pidFile, runcExited)
		case <-runcExited:
		}
	}()
	err := cmd.Wait()
	close(runcExited)
	<-stopped
	if ctx.Err() != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			if code == 255 && notRunning(runcErr.String()) {
				return -1, fmt.Errorf("exec in %s: %s", id, runcErr.String())
			}
			return code, nil
		}
	}
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w: %s", id, err, runcErr.String())
	}
	return 0, nil
}

// execTTY runs the process on a terminal. runc hands a terminal's master
// only to a detached exec, so runc exits once the process started and the
// process, orphaned, becomes the child of netshim (its subreaper), which
// waits for it here.
func (r *Runc) execTTY(ctx context.Context, id string, o ExecOptions, dir string) (int, error) {
	pidFile := filepath.Join(dir, "pid")
	console, err := newConsoleSocket(filepath.Join(dir, "console.sock"))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer console.Close()
	type received struct {
		master *os.File
		err    error
	}
	got := make(chan received, 1)
	go func() {
		m, err := console.receive(ctx)
		got <- received{m, err}
	}()
	// Clients send the terminal's size as soon as they connect. Waiting a
	// moment for it lets runc make the terminal with that size, before the
	// command can read it: set afterwards, a command that asks at once
	// (stty size, a shell's first prompt) may see 0x0.
	var firstSize *TerminalSize
	if o.Resize != nil {
		select {
		case size, ok := <-o.Resize:
			if ok {
				firstSize = &size
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	processFile, err := r.writeTTYProcess(ctx, id, o.Cmd, firstSize, dir)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	args := append(r.globalArgs(), "exec", "--process", processFile, "--detach", "--console-socket", console.path, "--pid-file", pidFile, id)
	out, runErr := exec.Command(r.Binary, args...).CombinedOutput()
	pid, pidErr := readPIDFile(pidFile)
	if runErr != nil || pidErr != nil {
		_ = console.Close() // ends the receive
		if rv := <-got; rv.master != nil {
			_ = rv.master.Close()
		}
		if pidErr == nil { // started, then runc failed: leave nothing behind
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_, _ = waitChild(pid)
		}
		if runErr != nil && notRunning(string(out)) {
			return -1, fmt.Errorf("exec in %s: %s", id, out)
		}
		return -1, fmt.Errorf("exec in %s: %w: %s", id, errors.Join(runErr, pidErr), out)
	}
	exited := make(chan exitResult, 1)
	go func() {
		code, err := waitChild(pid)
		exited <- exitResult{code, err}
	}()
	rv := <-got
	if rv.err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		return -1, fmt.Errorf("exec in %s: terminal: %w", id, rv.err)
	}
	master := rv.master
	defer master.Close()
	if firstSize != nil {
		setSize(master, *firstSize)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case size, ok := <-o.Resize:
				if !ok {
					return
				}
				setSize(master, size)
			case <-done:
				return
			}
		}
	}()
	if o.Stdin != nil {
		// Not waited for: it ends at the client's EOF or at its first
		// write after the master is closed.
		go func() { _, _ = io.Copy(master, o.Stdin) }()
	}
	output := make(chan struct{})
	go func() {
		defer close(output)
		// Ends with EIO once nothing holds the terminal any more.
		_, _ = io.Copy(orDiscard(o.Stdout), master)
	}()
	var res exitResult
	select {
	case res = <-exited:
	case <-ctx.Done():
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		return -1, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
	select {
	case <-output:
	case <-time.After(2 * time.Second): // a child of it still holds the terminal
	}
	if res.err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, res.err)
	}
	return res.code, nil
}

// writeTTYProcess writes the process runc execs on a terminal: the
// container's own process spec (user, env, cwd, capabilities) with cmd as
// its args and, when the client sent one, its terminal size.
func (r *Runc) writeTTYProcess(ctx context.Context, id string, cmd []string, size *TerminalSize, dir string) (string, error) {
	bundle, err := r.bundle(ctx, id)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read spec of %s: %w", id, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil || spec.Process == nil {
		return "", fmt.Errorf("spec of %s has no process: %v", id, err)
	}
	p := *spec.Process
	p.Args, p.Terminal = cmd, true
	if size != nil {
		p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
	}
	out, err := json.Marshal(&p)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "process.json")
	return path, os.WriteFile(path, out, 0o600)
}

func setSize(master *os.File, size TerminalSize) {
	_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Height, Col: size.Width})
}

type exitResult struct {
	code int
	err  error
}

// waitChild waits for pid, a child of this process, and returns its exit
// code; a signal's death is 128+signal, as shells and kubelet report it.
func waitChild(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.ECHILD) {
			return -1, fmt.Errorf("pid %d is not a child of netshim: is netshim its subreaper? %w", pid, err)
		}
		if err != nil {
			return -1, fmt.Errorf("wait for pid %d: %w", pid, err)
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

func notRunning(msg string) bool {
	for _, sub := range []string{"cannot exec in a stopped container", "container does not exist", "not running"} {
		if strings.Contains(msg, sub) {
			return true
		}
	}
	return false
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// stopExec ends a cancelled exec: the process itself is killed and runc,
// its parent, reaps it and exits. Killing runc first would orphan the
// process onto netshim, the subreaper, as a zombie nobody waits for, and a
// zombie in the pod's PID namespace keeps the pause process from ever
// exiting. runc is killed only if it has not gone after a grace period
// (its pid file may not exist yet while it starts the process).
func stopExec(cmd *exec.Cmd, pidFile string, runcExited <-chan struct{}) {
	grace := time.After(5 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	killed := false
	for {
		if !killed {
			killed = killExec(pidFile) // once: its PID may be reused after
		}
		select {
		case <-runcExited:
			return
		case <-grace:
			_ = cmd.Process.Kill()
			return
		case <-tick.C:
		}
	}
}

// killExec SIGKILLs the exec'd process named in pidFile, if runc wrote it,
// and says whether it did.
func killExec(pidFile string) bool {
	pid, err := readPIDFile(pidFile)
	if err != nil || pid <= 0 {
		return false
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return true
}

// consoleSocket receives the pty master that runc sends for a --tty process.
type consoleSocket struct {
	path string
	l    *net.UnixListener
}

func newConsoleSocket(path string) (*consoleSocket, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{path: path, l: l}, nil
}

func (c *consoleSocket) Close() error { return c.l.Close() }

// receive waits for runc's connection and returns the pty master it sends.
func (c *consoleSocket) receive(ctx context.Context) (*os.File, error) {
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.l.SetDeadline(deadline)
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no pty received: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("no pty received: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// limitedBuffer keeps the first 64 KiB written: enough for runc's errors.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
