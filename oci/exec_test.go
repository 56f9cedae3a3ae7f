package oci

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/reaper"
)

// runningBusybox starts a busybox container (sleep) with plain runc and
// returns the runtime; it is deleted when the test ends.
func runningBusybox(t *testing.T) (*Runc, string) {
	t.Helper()
	runcBin, _ := needRoot(t)
	dir := t.TempDir()
	r := &Runc{Binary: runcBin, Root: filepath.Join(dir, "runc")}
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	busyboxBundle(t, bundle, "exec /bin/busybox sleep 600")
	id := fmt.Sprintf("exectest%d", time.Now().UnixNano())
	// The detached container keeps runc's stdio: a file, not a pipe that
	// would never reach EOF.
	logPath := filepath.Join(dir, "runc-run.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(runcBin, "--root", r.Root, "run", "--detach", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("runc run: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = r.Delete(context.Background(), id, true) })
	return r, id
}

// Exec passes stdin, splits stdout and stderr, returns the exit code, and
// returns once the process exits even when the client's stdin stays open.
func TestExec(t *testing.T) {
	r, id := runningBusybox(t)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	go func() { _, _ = stdinW.Write([]byte("hello")) }()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code, err := r.Exec(context.Background(), id, ExecOptions{
		Cmd: []string{"/bin/busybox", "sh", "-c", "/bin/busybox head -c 5; echo; echo oops >&2; exit 7"}, Stdin: stdinR, Stdout: &stdout, Stderr: &stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 7 || stdout.String() != "hello\n" || stderr.String() != "oops\n" {
		t.Errorf("exit %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec took %v: it waited for the client's stdin", d)
	}
}

// A cancelled exec kills the process itself, not only runc.
func TestExecCancel(t *testing.T) {
	r, id := runningBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := r.Exec(ctx, id, ExecOptions{Cmd: []string{"/bin/busybox", "sleep", "41"}}); err == nil {
		t.Fatal("a cancelled exec returned no error")
	}
	var out bytes.Buffer
	if _, err := r.Exec(context.Background(), id, ExecOptions{Cmd: []string{"/bin/busybox", "ps", "-o", "args"}, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "sleep 41") {
		t.Errorf("the cancelled process still runs:\n%s", out.String())
	}
}

// A TTY exec gets a terminal of the size the client set.
func TestExecTTY(t *testing.T) {
	r, id := runningBusybox(t)
	// As netshim is: the detached TTY process becomes our child.
	if err := reaper.BecomeSubreaper(); err != nil {
		t.Fatal(err)
	}
	resize := make(chan TerminalSize, 1)
	resize <- TerminalSize{Width: 77, Height: 33}
	var out bytes.Buffer
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	code, err := r.Exec(context.Background(), id, ExecOptions{
		Cmd: []string{"/bin/busybox", "sh", "-c", "stty size; exit 3"}, Tty: true, Resize: resize, Stdin: stdinR, Stdout: &out, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The size is there at once: runc made the terminal with it.
	if code != 3 || out.String() != "33 77\r\n" {
		t.Errorf("exit %d, output %q; want 3 and the size 33 77", code, out.String())
	}
}
