// Package oci drives an OCI runtime binary (runc, or crun with the same
// command line) for sandboxes and containers alike, and the per-container
// monitor (conmon) that outlives netshim.
package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"
)

// Runc drives an OCI runtime binary (runc or crun) with its own state root.
type Runc struct {
	Binary string // path of runc
	Root   string // --root: the runtime's state dir
	// Args are more global options, before the subcommand (runsc's
	// --platform, say), from the handler's configuration.
	Args []string
}

// globalArgs are the options every command of this runtime starts with.
func (r *Runc) globalArgs() []string {
	global := []string{"--root", r.Root}
	if cgroupdriver.Current() == cgroupdriver.Systemd {
		global = append(global, "--systemd-cgroup") // cgroupsPath is slice:prefix:name
	}
	return append(global, r.Args...)
}

func (r *Runc) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.Binary, append(r.globalArgs(), args...)...)
}

// Run runs `runc run -d`. The pause process inherits runc's stdio, so stdio is
// /dev/null and runc's own errors are read back from its --log file instead of
// a pipe that the pause process would hold open forever.
func (r *Runc) Run(ctx context.Context, id, bundle string) (int, error) {
	logPath := filepath.Join(bundle, "runtime.log")
	pidPath := filepath.Join(bundle, "pause.pid")
	cmd := r.command(ctx, "--log", logPath, "--log-format", "json",
		"run", "--detach", "--pid-file", pidPath, "--bundle", bundle, id)
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s run %s: %w: %s", filepath.Base(r.Binary), id, err, lastLogError(logPath))
	}
	data, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, fmt.Errorf("read pid file of %s: %w", id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("pid file of %s holds %q", id, data)
	}
	return pid, nil
}

// Delete runs `runc delete`. Callers stop the process first where they can,
// since runc's --force path polls with a fixed 100 ms sleep.
func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete", id}
	if force {
		args = []string{"delete", "--force", id}
	}
	out, err := r.command(ctx, args...).CombinedOutput()
	if err != nil {
		if notExist(out) {
			return nil
		}
		return fmt.Errorf("%s delete %s: %w: %s", filepath.Base(r.Binary), id, err, bytes.TrimSpace(out))
	}
	return nil
}

// Available checks that the runtime binary is still there and executable.
func (r *Runc) Available() error {
	if _, err := exec.LookPath(r.Binary); err != nil {
		return fmt.Errorf("OCI runtime %s is not available: %w", r.Binary, err)
	}
	return nil
}

func (r *Runc) List(ctx context.Context) ([]string, error) {
	if _, err := os.Stat(r.Root); errors.Is(err, os.ErrNotExist) {
		return nil, nil // runc has run nothing here yet
	}
	out, err := r.command(ctx, "list", "--quiet").Output()
	if err != nil {
		return nil, fmt.Errorf("%s list: %w", filepath.Base(r.Binary), err)
	}
	return strings.Fields(string(out)), nil
}

func (r *Runc) State(ctx context.Context, id string) (string, error) {
	out, err := r.command(ctx, "state", id).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && notExist(ee.Stderr) {
			return "", nil
		}
		return "", fmt.Errorf("%s state %s: %w", filepath.Base(r.Binary), id, err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("decode state of %s: %w", id, err)
	}
	return st.Status, nil
}

// bundle returns the bundle directory of container id.
func (r *Runc) bundle(ctx context.Context, id string) (string, error) {
	out, err := r.command(ctx, "state", id).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%s state %s: %w: %s", filepath.Base(r.Binary), id, err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s state %s: %w", filepath.Base(r.Binary), id, err)
	}
	var st struct {
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.Bundle == "" {
		return "", fmt.Errorf("decode state of %s: no bundle (%v)", id, err)
	}
	return st.Bundle, nil
}

func notExist(out []byte) bool {
	s := string(out)
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not found")
}

// lastLogError returns the message of the last error line of a JSON runtime log.
func lastLogError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "no runtime log"
	}
	defer f.Close()
	msg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && (line.Level == "error" || line.Level == "fatal") {
			msg = line.Msg
		}
	}
	if msg == "" {
		return "no error in runtime log"
	}
	return msg
}

// Start starts the created container id (`runc start`).
func (r *Runc) Start(ctx context.Context, id string) error {
	if out, err := outputViaFile(r.command(ctx, "start", id)); err != nil {
		return fmt.Errorf("%s start %s: %w: %s", filepath.Base(r.Binary), id, err, bytes.TrimSpace(out))
	}
	return nil
}

// Kill sends sig to the container's init, or with all to every process of it.
// A container that is gone or already stopped is no error.
func (r *Runc) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill", id, strconv.Itoa(int(sig))}
	if all {
		args = []string{"kill", "--all", id, strconv.Itoa(int(sig))}
	}
	out, err := r.command(ctx, args...).CombinedOutput()
	if err != nil {
		if notExist(out) || strings.Contains(string(out), "not running") || strings.Contains(string(out), "process already finished") {
			return nil
		}
		return fmt.Errorf("%s kill %s: %w: %s", filepath.Base(r.Binary), id, err, bytes.TrimSpace(out))
	}
	return nil
}

// Update applies new resource limits to a running container (`runc update`).
func (r *Runc) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode resources of %s: %w", id, err)
	}
	cmd := r.command(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s update %s: %w: %s", filepath.Base(r.Binary), id, err, bytes.TrimSpace(out))
	}
	return nil
}

// outputViaFile runs cmd with its stdout and stderr in an unlinked
// temporary file, not a pipe, and returns what it wrote. runsc's start
// leaves a gofer process behind that inherits them: a pipe would keep the
// call waiting for that process's end.
func outputViaFile(cmd *exec.Cmd) ([]byte, error) {
	f, err := os.CreateTemp("", "netshim-runtime-out-")
	if err != nil {
		return nil, fmt.Errorf("runtime output file: %w", err)
	}
	defer f.Close()
	_ = os.Remove(f.Name())
	cmd.Stdout, cmd.Stderr = f, f
	runErr := cmd.Run()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, errors.Join(runErr, err)
	}
	out, err := io.ReadAll(io.LimitReader(f, 64<<10))
	return out, errors.Join(runErr, err)
}

// OrphanRuntime is what SweepOrphans needs of a runtime; *Runc is one.
type OrphanRuntime interface {
	List(ctx context.Context) ([]string, error)
	Delete(ctx context.Context, id string, force bool) error
}

// SweepOrphans force-deletes rt's containers that orphan says no record
// holds. Errors are logged: a sweep at start goes on past one.
func SweepOrphans(ctx context.Context, rt OrphanRuntime, orphan func(id string) bool) {
	ids, err := rt.List(ctx)
	if err != nil {
		klog.ErrorS(err, "Could not list runtime containers to sweep orphans")
		return
	}
	for _, id := range ids {
		if !orphan(id) {
			continue
		}
		klog.InfoS("Removing orphan runtime container", "id", id)
		if err := rt.Delete(ctx, id, true); err != nil {
			klog.ErrorS(err, "Failed to remove orphan runtime container", "id", id)
		}
	}
}
