package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The calls a one-shot client process makes, named as crictl's commands.
const (
	CallVersion = "version"
	CallRunp    = "runp"
	CallStopp   = "stopp"
	CallRmp     = "rmp"
)

// OneShot is the child side of the per-process figures: what one crictl
// invocation does. It connects, asks Version (kubelet's and crictl's CRI
// client does so on connect, to pick the API version), makes one call and
// returns; the caller's process then exits. For runp, arg is the pod name
// (its UID is derived from it) and the result is the sandbox ID; for stopp and
// rmp, arg is the sandbox ID.
func OneShot(ctx context.Context, endpoint, namespace, call, arg string) (string, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		return "", fmt.Errorf("version: %w", err)
	}
	switch call {
	case CallVersion:
		return "", nil
	case CallRunp:
		b := &runner{rt: rt, ns: namespace}
		cfg := b.config(arg)
		cfg.Metadata.Uid = "bench-proc-" + arg
		resp, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			return "", fmt.Errorf("runp %s: %w", arg, err)
		}
		return resp.PodSandboxId, nil
	case CallStopp:
		_, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: arg})
		return "", err
	case CallRmp:
		_, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: arg})
		return "", err
	}
	return "", fmt.Errorf("unknown call %q: want %s, %s, %s or %s", call, CallVersion, CallRunp, CallStopp, CallRmp)
}

// ProcessOptions size the per-process phases.
type ProcessOptions struct {
	// Command starts one client process; the call and its argument are
	// appended (cribench passes itself with --call).
	Command []string
	// Sequential pods, each run, stopped and removed by three processes,
	// after Warmup more.
	Sequential, Warmup int
	// Concurrency: sizes of the rounds of pods started by that many processes at once.
	Concurrency []int
}

// ProcessReport is what the per-process phases measured: each figure is the
// wall time of whole client processes, start to exit, as a user timing
// crictl sees it.
type ProcessReport struct {
	Version, Runp, Stopp, Rmp Stats
	Rounds                    []Round
}

// oneProcess runs one client process for call and returns its output's
// first line and its wall time.
func (o ProcessOptions) oneProcess(ctx context.Context, call, arg string) (string, time.Duration, error) {
	args := append(append([]string(nil), o.Command[1:]...), call, arg)
	cmd := exec.CommandContext(ctx, o.Command[0], args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	d, err := timed(cmd.Run)
	if err != nil {
		return "", d, fmt.Errorf("client process %s %s: %w: %s", call, arg, err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), d, nil
}

// RunProcesses times pod starts, stops and removals made by one client
// process per call, sequential and in concurrent rounds, against rt (used
// in-process only to check each pod is READY with an IP, untimed, and to
// clean up). Every pod it makes it also removes.
func RunProcesses(ctx context.Context, rt runtimeapi.RuntimeServiceClient, ns string, o ProcessOptions) (*ProcessReport, error) {
	b := &runner{rt: rt, ns: ns}
	r := &ProcessReport{}
	var versions, runs, stops, removes []time.Duration
	for i := range o.Warmup + o.Sequential {
		_, v, err := o.oneProcess(ctx, CallVersion, "-")
		if err != nil {
			return nil, err
		}
		run, stop, remove, err := o.cycle(ctx, b, fmt.Sprintf("proc-%d", i))
		if err != nil {
			return nil, err
		}
		if i >= o.Warmup {
			versions = append(versions, v)
			runs, stops, removes = append(runs, run), append(stops, stop), append(removes, remove)
		}
	}
	r.Version, r.Runp, r.Stopp, r.Rmp = summarise(versions), summarise(runs), summarise(stops), summarise(removes)
	for _, n := range o.Concurrency {
		round, err := o.round(ctx, b, n)
		if err != nil {
			return nil, err
		}
		r.Rounds = append(r.Rounds, round)
	}
	return r, nil
}

// checkReady confirms, untimed and in-process, that a pod a client process
// started is READY with an IP.
func (b *runner) checkReady(ctx context.Context, name, id string) error {
	st, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return fmt.Errorf("status of %s: %w", name, err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.GetNetwork().GetIp() == "" {
		return fmt.Errorf("pod %s is %v with IP %q, want READY with an IP", name, st.Status.State, st.Status.GetNetwork().GetIp())
	}
	return nil
}

func (o ProcessOptions) cycle(ctx context.Context, b *runner, name string) (run, stop, remove time.Duration, err error) {
	id, run, err := o.oneProcess(ctx, CallRunp, name)
	if id != "" {
		defer b.cleanup([]string{id})
	}
	if err != nil {
		return
	}
	if err = b.checkReady(ctx, name, id); err != nil {
		return
	}
	if _, stop, err = o.oneProcess(ctx, CallStopp, id); err != nil {
		return
	}
	_, remove, err = o.oneProcess(ctx, CallRmp, id)
	return
}

func (o ProcessOptions) round(ctx context.Context, b *runner, n int) (Round, error) {
	ids := make([]string, n)
	defer b.cleanup(ids)
	r := Round{N: n}
	var err error
	r.Run, err = all(n, func(i int) error {
		var e error
		ids[i], _, e = o.oneProcess(ctx, CallRunp, fmt.Sprintf("proc-conc%d-%d", n, i))
		return e
	})
	if err != nil {
		return r, err
	}
	for i, id := range ids {
		if err := b.checkReady(ctx, fmt.Sprint("proc-conc", n, "-", i), id); err != nil {
			return r, err
		}
	}
	if r.Stop, err = all(n, func(i int) error { _, _, e := o.oneProcess(ctx, CallStopp, ids[i]); return e }); err != nil {
		return r, err
	}
	if r.Remove, err = all(n, func(i int) error { _, _, e := o.oneProcess(ctx, CallRmp, ids[i]); return e }); err != nil {
		return r, err
	}
	r.PodsPerSecond = float64(n) / r.Run.Seconds()
	return r, nil
}

// Print writes the per-process figures as table rows.
func (r *ProcessReport) Print(w io.Writer) {
	fmt.Fprintf(w, "one client process per call (as crictl)\tN\tmedian ms\tp90 ms\tp99 ms\tmax ms\n")
	for _, row := range []struct {
		name string
		s    Stats
	}{{"client start + Version only", r.Version}, {"runp", r.Runp}, {"stopp", r.Stopp}, {"rmp", r.Rmp}} {
		if row.s.N > 0 {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", row.name, row.s.N, ms(row.s.Median), ms(row.s.P90), ms(row.s.P99), ms(row.s.Max))
		}
	}
	for _, c := range r.Rounds {
		fmt.Fprintf(w, "%d runp processes at once: all READY %s ms (%.1f pods/s), %d stopp all done %s ms, %d rmp all done %s ms\n",
			c.N, ms(c.Run), c.PodsPerSecond, c.N, ms(c.Stop), c.N, ms(c.Remove))
	}
}
