// Package bench is a CRI load generator: it drives any CRI endpoint through
// the pod sandbox phases netshim is measured by, so the same code measures
// netshim and the runtime it is compared with.
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options size the phases.
type Options struct {
	Sequential  int   // run→stop→remove cycles, after Warmup more
	Warmup      int   //
	Concurrency []int // pods started at once, per round
	Scale       int   // pods kept alive for the list/status/memory phase
	// RuntimePID is the runtime's main process, for its memory; 0 skips memory.
	RuntimePID int
	// PerPodProcesses are the command names of processes a runtime keeps per
	// pod (pause, shims); their memory is counted as the pods'.
	PerPodProcesses []string
	// Namespace of the pods the benchmark makes, so they are its own.
	Namespace string
}

// Stats summarise a set of durations.
type Stats struct {
	N                     int
	Median, P90, P99, Max time.Duration
}

func summarise(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Stats{N: len(s), Median: at(0.5), P90: at(0.9), P99: at(0.99), Max: s[len(s)-1]}
}

// Round is one concurrent round: how long until all N pods were READY, then
// all stopped, then all removed.
type Round struct {
	N                 int
	Run, Stop, Remove time.Duration
	PodsPerSecond     float64
}

// Report is what one benchmark run measured.
type Report struct {
	Run, Stop, Remove   Stats
	Rounds              []Round
	List, Status        Stats
	ScalePods           int
	RuntimeKiB, PodsKiB int64            // PSS of the runtime, and of its per-pod processes with Scale pods alive
	Containers          *ContainerReport `json:",omitempty"`
	// Processes are the same pod steps made by one client process per
	// call, as crictl makes them.
	Processes *ProcessReport `json:",omitempty"`
}

// Run executes the phases against rt. Every pod it makes it also removes.
func Run(ctx context.Context, rt runtimeapi.RuntimeServiceClient, o Options) (*Report, error) {
	b := &runner{rt: rt, ns: o.Namespace}
	r := &Report{}
	var runs, stops, removes []time.Duration
	for i := range o.Warmup + o.Sequential {
		run, stop, remove, err := b.cycle(ctx, fmt.Sprintf("seq-%d", i))
		if err != nil {
			return nil, err
		}
		if i >= o.Warmup {
			runs, stops, removes = append(runs, run), append(stops, stop), append(removes, remove)
		}
	}
	r.Run, r.Stop, r.Remove = summarise(runs), summarise(stops), summarise(removes)

	for _, n := range o.Concurrency {
		round, err := b.round(ctx, n)
		if err != nil {
			return nil, err
		}
		r.Rounds = append(r.Rounds, round)
	}

	if o.Scale > 0 {
		if err := b.scale(ctx, o, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type runner struct {
	rt runtimeapi.RuntimeServiceClient
	ns string
	mu sync.Mutex
	n  int
}

func (b *runner) config(name string) *runtimeapi.PodSandboxConfig {
	b.mu.Lock()
	b.n++
	uid := fmt.Sprintf("bench-%d-%d", os.Getpid(), b.n)
	b.mu.Unlock()
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: b.ns, Uid: uid},
		Hostname: name,
		Labels:   map[string]string{"netshim-bench": "true"},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func (b *runner) runPod(ctx context.Context, name string) (string, error) {
	resp, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: b.config(name)})
	if err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	st, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.PodSandboxId})
	if err != nil {
		return resp.PodSandboxId, err
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.GetNetwork().GetIp() == "" {
		return resp.PodSandboxId, fmt.Errorf("pod %s is %v with IP %q, want READY with an IP", name, st.Status.State, st.Status.GetNetwork().GetIp())
	}
	return resp.PodSandboxId, nil
}

func (b *runner) stopPod(ctx context.Context, id string) error {
	_, err := b.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	return err
}

func (b *runner) removePod(ctx context.Context, id string) error {
	_, err := b.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	return err
}

// cycle times one run (until READY with an IP), stop and remove.
func (b *runner) cycle(ctx context.Context, name string) (run, stop, remove time.Duration, err error) {
	var id string
	if run, err = timed(func() error { id, err = b.runPod(ctx, name); return err }); err != nil {
		if id != "" {
			_ = b.removePod(ctx, id)
		}
		return
	}
	if stop, err = timed(func() error { return b.stopPod(ctx, id) }); err != nil {
		return
	}
	remove, err = timed(func() error { return b.removePod(ctx, id) })
	return
}

// all runs f for every i in parallel and returns the wall time and the first error.
func all(n int, f func(i int) error) (time.Duration, error) {
	errs := make([]error, n)
	d, _ := timed(func() error {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f(i) }()
		}
		wg.Wait()
		return nil
	})
	for _, e := range errs {
		if e != nil {
			return d, e
		}
	}
	return d, nil
}

func (b *runner) round(ctx context.Context, n int) (Round, error) {
	ids := make([]string, n)
	r := Round{N: n}
	var err error
	r.Run, err = all(n, func(i int) error {
		var e error
		ids[i], e = b.runPod(ctx, fmt.Sprintf("conc%d-%d", n, i))
		return e
	})
	defer b.cleanup(ids)
	if err != nil {
		return r, err
	}
	if r.Stop, err = all(n, func(i int) error { return b.stopPod(ctx, ids[i]) }); err != nil {
		return r, err
	}
	if r.Remove, err = all(n, func(i int) error { return b.removePod(ctx, ids[i]) }); err != nil {
		return r, err
	}
	r.PodsPerSecond = float64(n) / r.Run.Seconds()
	return r, nil
}

// cleanup removes pods a failed phase may have left (removing twice is harmless).
func (b *runner) cleanup(ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, id := range ids {
		if id != "" {
			_ = b.removePod(ctx, id)
		}
	}
}

func (b *runner) scale(ctx context.Context, o Options, r *Report) error {
	ids := make([]string, o.Scale)
	defer b.cleanup(ids)
	podsBefore := pssOf(o.PerPodProcesses)
	// Started a few at a time: this phase measures a node at rest, not a burst.
	for start := 0; start < o.Scale; start += 10 {
		end := min(o.Scale, start+10)
		if _, err := all(end-start, func(i int) error {
			var e error
			ids[start+i], e = b.runPod(ctx, fmt.Sprintf("scale-%d", start+i))
			return e
		}); err != nil {
			return err
		}
	}
	r.ScalePods = o.Scale
	var lists, statuses []time.Duration
	for i := range 100 {
		d, err := timed(func() error {
			_, err := b.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			return err
		})
		if err != nil {
			return err
		}
		lists = append(lists, d)
		id := ids[i%len(ids)]
		d, err = timed(func() error {
			_, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
			return err
		})
		if err != nil {
			return err
		}
		statuses = append(statuses, d)
	}
	r.List, r.Status = summarise(lists), summarise(statuses)
	if o.RuntimePID > 0 {
		r.RuntimeKiB = pss(o.RuntimePID)
	}
	r.PodsKiB = pssOf(o.PerPodProcesses) - podsBefore
	for i, id := range ids {
		if err := b.stopPod(ctx, id); err != nil {
			return err
		}
		if err := b.removePod(ctx, id); err != nil {
			return err
		}
		ids[i] = ""
	}
	return nil
}

// pss is a process's proportional set size in KiB: shared pages (the one
// static pause binary) are split among the processes that share them.
func pss(pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// pssOf sums the PSS of every live process whose command name is one of names.
func pssOf(names []string) int64 {
	var total int64
	for _, pid := range LivePIDsNamed(names...) {
		total += pss(pid)
	}
	return total
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "phase\tN\tmedian ms\tp90 ms\tp99 ms\tmax ms\n")
	for _, row := range []struct {
		name string
		s    Stats
	}{{"RunPodSandbox", r.Run}, {"StopPodSandbox", r.Stop}, {"RemovePodSandbox", r.Remove}, {"ListPodSandbox", r.List}, {"PodSandboxStatus", r.Status}} {
		if row.s.N > 0 {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", row.name, row.s.N, ms(row.s.Median), ms(row.s.P90), ms(row.s.P99), ms(row.s.Max))
		}
	}
	for _, c := range r.Rounds {
		fmt.Fprintf(w, "concurrent %d: all READY %s ms (%.1f pods/s), all stopped %s ms, all removed %s ms\n",
			c.N, ms(c.Run), c.PodsPerSecond, ms(c.Stop), ms(c.Remove))
	}
	if r.ScalePods > 0 {
		fmt.Fprintf(w, "memory with %d pods alive: runtime %d KiB PSS, per-pod processes %d KiB PSS (%.1f KiB per pod)\n",
			r.ScalePods, r.RuntimeKiB, r.PodsKiB, float64(r.PodsKiB)/float64(r.ScalePods))
	}
}
