package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// gVisor's containers are not host processes: `runsc create` of a pod's
// container writes the PID of the pod's sandbox, which is no child of
// conmon, so conmon would see it "exit" at once. conmon therefore runs
// runsc through netshim itself (GVisorRuntimeCommand): every command goes
// to runsc unchanged, except that after a create a waiter process takes
// the PID file's place. The waiter runs `runsc wait` and exits with the
// container's code; conmon, its subreaper, reaps it, writes the exit file
// and the container's log as for runc. runsc gives a pod's container the
// stdio of its `runsc start`; the waiter holds the pipes conmon gave the
// create, and GVisorRunc.Start passes them on, so logs work as for runc.

// GVisorProcessName is the command name of runsc's sandbox and gofer
// processes, which runsc starts by re-executing itself (/proc/self/exe).
const GVisorProcessName = "exe"

// GVisorRuntimeCommand is the subcommand of netshim that conmon runs as
// the OCI runtime of gVisor handlers: netshim gvisor-runtime RUNSC ARGS...
const GVisorRuntimeCommand = "gvisor-runtime"

// gvisorWaitCommand is the waiter: netshim gvisor-wait RUNSC ARGS... ID.
const gvisorWaitCommand = "gvisor-wait"

// IsGVisorCommand says whether netshim's first argument is one of the
// subcommands RunGVisorRuntime serves.
func IsGVisorCommand(arg string) bool {
	return arg == GVisorRuntimeCommand || arg == gvisorWaitCommand
}

// RunGVisorRuntime is netshim's gvisor-runtime and gvisor-wait
// subcommands; args are what follows the subcommand. It returns the exit
// status.
func RunGVisorRuntime(cmd string, args []string) int {
	if len(args) < 1 {
		fmt.Fprintf(os.Stderr, "netshim %s: want the runsc binary and its arguments\n", cmd)
		return 2
	}
	runsc, rest := args[0], args[1:]
	if cmd == gvisorWaitCommand {
		return gvisorWait(runsc, rest)
	}
	sub := subcommandIndex(rest)
	if sub < 0 || rest[sub] != "create" {
		return passThrough(runsc, rest)
	}
	if code := passThrough(runsc, rest); code != 0 {
		return code
	}
	pidFile, id := flagValue(rest[sub+1:], "--pid-file"), rest[len(rest)-1]
	if pidFile == "" {
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netshim %s: %v\n", cmd, err)
		return 1
	}
	// The waiter keeps the stdio conmon gave the create, for the start to
	// give them on to the container (GVisorRunc.Start).
	waiter := exec.Command(self, append(append([]string{gvisorWaitCommand, runsc}, rest[:sub]...), id)...)
	waiter.Stdin, waiter.Stdout, waiter.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := waiter.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "netshim %s: start the waiter of %s: %v\n", cmd, id, err)
		return 1
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(waiter.Process.Pid)), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "netshim %s: %v\n", cmd, err)
		return 1
	}
	// Not waited for: it is left to conmon, which reaps it as subreaper.
	return 0
}

// GVisorRunc runs the containers of a gVisor handler: runsc with runc's
// command line, except for the start. (runsc's run and start leave a
// sandbox and gofer processes that outlive them and so become netshim's
// children, netshim being a subreaper: its reaper reaps them by name, see
// reaper.ReapOrphansNamed; otherwise their zombies would stay, and runsc's
// delete would wait for them to be gone.)
type GVisorRunc struct{ *Runc }

// Start starts a created container. runsc gives a pod's container the
// stdio of its `runsc start`, not of its create: those of the waiter,
// which holds the pipes conmon gave the create.
func (g GVisorRunc) Start(ctx context.Context, id string) error {
	bundle, err := g.bundle(ctx, id)
	if err != nil {
		return err
	}
	pid, err := readPIDFile(filepath.Join(bundle, ContainerPIDFile))
	if err != nil {
		return fmt.Errorf("start container %s: its waiter: %w", id, err)
	}
	var stdio [3]*os.File
	for i := range stdio {
		f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", pid, i), []int{os.O_RDONLY, os.O_WRONLY, os.O_WRONLY}[i], 0)
		if err != nil {
			return fmt.Errorf("start container %s: stdio of its waiter: %w", id, err)
		}
		defer f.Close()
		stdio[i] = f
	}
	cmd := g.command(ctx, "start", id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	logPath := filepath.Join(bundle, "start.log")
	cmd.Args = slices.Insert(cmd.Args, 1, "--log", logPath, "--log-format", "json")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s start %s: %w: %s", filepath.Base(g.Binary), id, err, lastLogError(logPath))
	}
	return nil
}

// passThrough runs runsc with args on this process's stdio and returns
// its exit status.
func passThrough(runsc string, args []string) int {
	c := exec.Command(runsc, args...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := c.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "netshim: run %s: %v\n", runsc, err)
		return 1
	}
}

// gvisorWait runs `runsc [global args] wait ID` and exits as the container
// did: its code, or 128+signal as runc's monitor reports a signal.
func gvisorWait(runsc string, args []string) int {
	if len(args) < 1 {
		return 2
	}
	id, global := args[len(args)-1], args[:len(args)-1]
	// runsc waits only for a started container: until the start, ask.
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		r := &Runc{Binary: runsc, Root: flagValue(global, "--root"), Args: withoutRoot(global)}
		st, err := r.State(context.Background(), id)
		if err != nil || st != "created" {
			break // running or gone: wait says which
		}
		time.Sleep(delay)
	}
	out, err := exec.Command(runsc, append(slices.Clone(global), "wait", id)...).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "netshim %s: runsc wait %s: %v\n", gvisorWaitCommand, id, err)
		return 255
	}
	var res struct {
		ExitStatus int `json:"exitStatus"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		fmt.Fprintf(os.Stderr, "netshim %s: runsc wait %s said %q\n", gvisorWaitCommand, id, out)
		return 255
	}
	// runsc says 128+signal for a killed container, which is what conmon
	// reports for runc's.
	return res.ExitStatus & 0xff
}

// subcommandIndex is the index of the first argument that is not a global
// option of runsc (all of which netshim and conmon give as --name or
// --name=value, or --name value for the few below).
func subcommandIndex(args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--root" || a == "--log" || a == "--log-format":
			i++ // takes a value
		case len(a) > 2 && a[:2] == "--":
		default:
			return i
		}
	}
	return -1
}

// flagValue finds --name value or --name=value in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if len(a) > len(name) && a[:len(name)+1] == name+"=" {
			return a[len(name)+1:]
		}
	}
	return ""
}

// withoutRoot drops --root and its value from global args.
func withoutRoot(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--root" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
