package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// NodeOptions size the full-node phase: a node of Pods pods with
// Containers running containers each, at rest and under what kubelet asks
// each second.
type NodeOptions struct {
	Pods, Containers int
	Image            string        // the containers' image (pulled first)
	Quiet            time.Duration // at rest: no calls at all
	Polled           time.Duration // kubelet's calls once a second
	Samples          int           // pod starts timed at 1 pod and at Pods pods
	// RuntimePID is the daemon; Monitors are the command names of its
	// per-container (conmon) or per-pod (containerd-shim) processes, counted
	// when Scope owns them.
	RuntimePID int
	Monitors   []string
	Scope      Scope
}

// The calls kubelet makes of a runtime every second, as the node phase makes them.
const (
	CallListPodSandbox      = "ListPodSandbox"
	CallListContainers      = "ListContainers"
	CallPodSandboxStatus    = "PodSandboxStatus"
	CallContainerStatus     = "ContainerStatus"
	CallListContainerStats  = "ListContainerStats"
	CallListPodSandboxStats = "ListPodSandboxStats"
)

var nodeCalls = []string{CallListPodSandbox, CallListContainers, CallPodSandboxStatus, CallContainerStatus, CallListContainerStats, CallListPodSandboxStats}

// Usage is the runtime's CPU over a window and its memory at the window's end.
type Usage struct {
	Window time.Duration
	// CPU in % of one core: the daemon's (with the children it reaped, such
	// as runc), and the daemon's plus its monitors'.
	DaemonCPU, TotalCPU float64
	Monitors            int
	// Memory in KiB from smaps_rollup: the daemon's, and with its monitors.
	DaemonRSS, DaemonPSS, TotalRSS, TotalPSS int64
}

// NodeReport is what the node phase measured.
type NodeReport struct {
	Pods, Containers int
	Calls            map[string]Stats // each call's latency while polled
	Relist           Stats            // one whole second's calls
	Quiet, Polled    Usage
	// A pod start: RunPodSandbox, then each container's create and start,
	// as kubelet sequences them; with no other pod, and with Pods alive.
	StartAt1, StartAtN Stats
}

// RunNode builds the node, measures it and removes every pod it made.
func RunNode(ctx context.Context, rt runtimeapi.RuntimeServiceClient, img runtimeapi.ImageServiceClient, ns string, o NodeOptions) (*NodeReport, error) {
	b := &runner{rt: rt, ns: ns}
	if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: o.Image}}); err != nil {
		return nil, fmt.Errorf("pull %s: %w", o.Image, err)
	}
	r := &NodeReport{Pods: o.Pods, Containers: o.Pods * o.Containers, Calls: map[string]Stats{}}
	var err error
	if r.StartAt1, err = b.timedPodStarts(ctx, "start1", o); err != nil {
		return nil, err
	}
	ids := make([]string, o.Pods)
	defer removeCgroupTree(nodeCgroupRoot)
	defer b.cleanup(ids)
	// A few at a time, as kubelet's pod workers would at a node's start.
	for start := 0; start < o.Pods; start += 10 {
		end := min(o.Pods, start+10)
		if _, err := all(end-start, func(i int) error {
			var e error
			ids[start+i], e = b.podWithContainers(ctx, fmt.Sprintf("node-%d", start+i), o)
			return e
		}); err != nil {
			return nil, err
		}
	}
	time.Sleep(2 * time.Second) // let start-up work settle before "at rest"
	r.Quiet = o.usage(o.Quiet, func(stop <-chan struct{}) error { <-stop; return nil })
	calls := map[string][]time.Duration{}
	var rounds []time.Duration
	var pollErr error
	r.Polled = o.usage(o.Polled, func(stop <-chan struct{}) error {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			d, err := timed(func() error { return b.relist(ctx, calls) })
			if err != nil {
				pollErr = err
				return err
			}
			rounds = append(rounds, d)
			select {
			case <-stop:
				return nil
			case <-tick.C:
			}
		}
	})
	if pollErr != nil {
		return nil, fmt.Errorf("kubelet's calls: %w", pollErr)
	}
	for name, ds := range calls {
		r.Calls[name] = summarise(ds)
	}
	r.Relist = summarise(rounds)
	if r.StartAtN, err = b.timedPodStarts(ctx, "startN", o); err != nil {
		return nil, err
	}
	return r, nil
}

// nodeCgroupRoot holds the node's pod cgroups, as kubepods holds kubelet's.
const nodeCgroupRoot = "/netshim-bench-node"

// podWithContainers runs a pod, then creates and starts each container in turn.
func (b *runner) podWithContainers(ctx context.Context, name string, o NodeOptions) (string, error) {
	cfg := b.config(name)
	// kubelet gives every pod a cgroup parent (cgroupfs driver here);
	// containerd's pod stats need one.
	cfg.Linux.CgroupParent = nodeCgroupRoot + "/pod" + cfg.Metadata.Uid
	resp, err := b.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	for i := range o.Containers {
		cc := b.containerConfig(o.Image)
		cc.Metadata.Name = fmt.Sprintf("sleeper-%d", i)
		c, err := b.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, Config: cc, SandboxConfig: cfg})
		if err != nil {
			return resp.PodSandboxId, fmt.Errorf("create container %d of %s: %w", i, name, err)
		}
		if _, err := b.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			return resp.PodSandboxId, fmt.Errorf("start container %d of %s: %w", i, name, err)
		}
	}
	return resp.PodSandboxId, nil
}

// timedPodStarts times o.Samples pod starts, one at a time, each pod
// removed before the next.
func (b *runner) timedPodStarts(ctx context.Context, prefix string, o NodeOptions) (Stats, error) {
	var ds []time.Duration
	for i := range o.Samples + 1 { // one warm-up
		var id string
		d, err := timed(func() error {
			var e error
			id, e = b.podWithContainers(ctx, fmt.Sprintf("%s-%d", prefix, i), o)
			return e
		})
		b.cleanup([]string{id})
		if err != nil {
			return Stats{}, err
		}
		if i > 0 {
			ds = append(ds, d)
		}
	}
	return summarise(ds), nil
}

// relist makes one second's calls of kubelet: the lists, each pod's and
// each container's status, and the stats.
func (b *runner) relist(ctx context.Context, calls map[string][]time.Duration) error {
	call := func(name string, f func() error) error {
		d, err := timed(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		calls[name] = append(calls[name], d)
		return nil
	}
	var pods []*runtimeapi.PodSandbox
	var ctrs []*runtimeapi.Container
	if err := call(CallListPodSandbox, func() error {
		resp, err := b.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		pods = resp.GetItems()
		return err
	}); err != nil {
		return err
	}
	if err := call(CallListContainers, func() error {
		resp, err := b.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		ctrs = resp.GetContainers()
		return err
	}); err != nil {
		return err
	}
	for _, p := range pods {
		if err := call(CallPodSandboxStatus, func() error {
			_, err := b.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.Id})
			return err
		}); err != nil {
			return err
		}
	}
	for _, c := range ctrs {
		if err := call(CallContainerStatus, func() error {
			_, err := b.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
			return err
		}); err != nil {
			return err
		}
	}
	if err := call(CallListContainerStats, func() error {
		_, err := b.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
		return err
	}); err != nil {
		return err
	}
	return call(CallListPodSandboxStats, func() error {
		_, err := b.rt.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
		return err
	})
}

// removeCgroupTree removes the empty cgroup dirs below root in every
// hierarchy, deepest first: the pod cgroups the runtimes made for the pods'
// containers stay once their containers are gone.
func removeCgroupTree(root string) {
	tops, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(root, "/")))
	for _, top := range tops {
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// usage runs load for window (load returns when stop closes) and measures
// the runtime's CPU over it and its memory at its end.
func (o NodeOptions) usage(window time.Duration, load func(stop <-chan struct{}) error) Usage {
	monitors := func() []int {
		var pids []int
		for _, pid := range LivePIDsNamed(o.Monitors...) {
			if o.Scope.owns(pid) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	before := monitors()
	daemon0, total0 := cpuTicks(o.RuntimePID), int64(0)
	for _, pid := range before {
		total0 += cpuTicks(pid)
	}
	start := time.Now()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- load(stop) }()
	select {
	case <-time.After(window):
		close(stop)
		<-done
	case <-done: // the load failed; its caller reports why
	}
	elapsed := time.Since(start)
	u := Usage{Window: elapsed, Monitors: len(before)}
	daemon1, total1 := cpuTicks(o.RuntimePID), int64(0)
	for _, pid := range before { // the same processes as at the start
		total1 += cpuTicks(pid)
	}
	percent := func(ticks int64) float64 { return float64(ticks) / clockTicks / elapsed.Seconds() * 100 }
	u.DaemonCPU = percent(daemon1 - daemon0)
	u.TotalCPU = u.DaemonCPU + percent(total1-total0)
	u.DaemonRSS, u.DaemonPSS = memory(o.RuntimePID)
	u.TotalRSS, u.TotalPSS = u.DaemonRSS, u.DaemonPSS
	for _, pid := range before {
		rss, pss := memory(pid)
		u.TotalRSS += rss
		u.TotalPSS += pss
	}
	return u
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on Linux.
const clockTicks = 100

// cpuTicks is the CPU time a process used, in clock ticks: its own (user +
// system) and that of the children it waited for.
func cpuTicks(pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	return parseCPUTicks(string(data))
}

// parseCPUTicks sums utime, stime, cutime and cstime (fields 14 to 17) of a
// /proc/PID/stat line; the command name in parentheses may hold spaces.
func parseCPUTicks(stat string) int64 {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 15 {
		return 0
	}
	var sum int64
	for _, s := range f[11:15] {
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
	}
	return sum
}

// memory is a process's RSS and PSS in KiB, from smaps_rollup.
func memory(pid int) (rss, pss int64) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, 0
	}
	return parseRollup(string(data))
}

func parseRollup(data string) (rss, pss int64) {
	for _, line := range strings.Split(data, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}

// Save writes the node report as JSON, for CompareNode.
func (r *NodeReport) Save(path string) error { return saveJSON(path, r) }

// LoadNode reads a node report written by NodeReport.Save.
func LoadNode(path string) (*NodeReport, error) {
	var r NodeReport
	if err := loadJSON(path, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Print writes the node report as a table.
func (r *NodeReport) Print(w io.Writer) {
	CompareNode(w, r, nil)
}

// CompareNode prints the node figures of netshim and, when anchor is not
// nil, of the anchor beside them with the ratio (anchor over netshim: how
// many times less netshim takes).
func CompareNode(w io.Writer, n, a *NodeReport) {
	fmt.Fprintf(w, "node: %d pods, %d containers\tnetshim", n.Pods, n.Containers)
	if a != nil {
		fmt.Fprintf(w, "\tanchor\tnetshim better by (×)")
	}
	fmt.Fprintln(w)
	row := func(name string, f func(*NodeReport) float64, format string) {
		fmt.Fprintf(w, "%s\t"+format, name, f(n))
		if a != nil {
			ratio := "-"
			if f(n) > 0 {
				ratio = fmt.Sprintf("%.2f", f(a)/f(n))
			}
			fmt.Fprintf(w, "\t"+format+"\t%s", f(a), ratio)
		}
		fmt.Fprintln(w)
	}
	for _, c := range nodeCalls {
		row(c+" median ms", func(r *NodeReport) float64 { return msOf(r.Calls[c].Median) }, "%.2f")
		row(c+" p99 ms", func(r *NodeReport) float64 { return msOf(r.Calls[c].P99) }, "%.2f")
	}
	row("one second's calls, all (median ms)", func(r *NodeReport) float64 { return msOf(r.Relist.Median) }, "%.1f")
	for _, u := range []struct {
		name string
		of   func(*NodeReport) Usage
	}{{"at rest", func(r *NodeReport) Usage { return r.Quiet }}, {"kubelet's calls each second", func(r *NodeReport) Usage { return r.Polled }}} {
		row("CPU % of a core, daemon, "+u.name, func(r *NodeReport) float64 { return u.of(r).DaemonCPU }, "%.2f")
		row("CPU % of a core, daemon + monitors/shims, "+u.name, func(r *NodeReport) float64 { return u.of(r).TotalCPU }, "%.2f")
	}
	row("monitor/shim processes", func(r *NodeReport) float64 { return float64(r.Quiet.Monitors) }, "%.0f")
	row("RSS MiB, daemon", func(r *NodeReport) float64 { return float64(r.Quiet.DaemonRSS) / 1024 }, "%.1f")
	row("PSS MiB, daemon", func(r *NodeReport) float64 { return float64(r.Quiet.DaemonPSS) / 1024 }, "%.1f")
	row("RSS MiB, daemon + monitors/shims", func(r *NodeReport) float64 { return float64(r.Quiet.TotalRSS) / 1024 }, "%.1f")
	row("PSS MiB, daemon + monitors/shims", func(r *NodeReport) float64 { return float64(r.Quiet.TotalPSS) / 1024 }, "%.1f")
	row("pod start (pod + containers running) at 1 pod, median ms", func(r *NodeReport) float64 { return msOf(r.StartAt1.Median) }, "%.1f")
	row(fmt.Sprintf("pod start at %d pods, median ms", n.Pods), func(r *NodeReport) float64 { return msOf(r.StartAtN.Median) }, "%.1f")
}
