// Command cribench measures a CRI runtime's pod sandbox path: sequential
// run/stop/remove, concurrent rounds, list and status latency with many pods
// alive, the memory the runtime keeps per pod, and what it leaves behind;
// then the same steps made by one client process per call, as crictl makes
// them (cribench runs itself with --call for each). It speaks CRI to any
// endpoint, so it measures netshim and containerd alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/netshim/netshim/test/bench"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	endpoint := flag.String("endpoint", "unix:///run/netshim/netshim.sock", "CRI endpoint")
	o := bench.Options{}
	flag.IntVar(&o.Sequential, "n", 50, "sequential run/stop/remove cycles")
	flag.IntVar(&o.Warmup, "warmup", 5, "cycles run first and not counted")
	conc := flag.String("concurrency", "10,50,100", "comma-separated sizes of the concurrent rounds; empty for none")
	flag.IntVar(&o.Scale, "scale", 200, "pods kept alive for the list/status/memory phase; 0 skips it")
	flag.IntVar(&o.RuntimePID, "runtime-pid", 0, "PID of the runtime, for its memory")
	perPod := flag.String("per-pod-processes", "pause", "comma-separated command names of the processes the runtime keeps per pod")
	flag.StringVar(&o.Namespace, "namespace", "netshim-bench", "namespace of the benchmark's pods")
	ipamDir := flag.String("ipam-dir", "", "host-local data dir, to count IP reservations before and after")
	scope := bench.Scope{}
	flag.StringVar(&scope.Bridge, "bridge", "", "leftovers: count only the links on this bridge (other tests may run on the machine)")
	flag.StringVar(&scope.NetNSDir, "netns-dir", "", "leftovers: count only the netns pins below this dir")
	flag.StringVar(&scope.Marker, "process-marker", "", "leftovers: count only per-pod processes below the runtime's PID or below a process whose command line holds this")
	timeout := flag.Duration("timeout", 30*time.Minute, "bound on the whole run")
	jsonOut := flag.String("json", "", "also write the report as JSON to this file")
	compareNetshim := flag.String("compare-netshim", "", "compare mode: comma-separated JSON reports of netshim")
	compareAnchor := flag.String("compare-anchor", "", "compare mode: comma-separated JSON reports of the anchor")
	withRegistry := flag.Bool("registry", false, "also time containers and pulls, from a loopback registry this run starts")
	co := bench.ContainerOptions{}
	flag.IntVar(&co.N, "containers", 20, "with --registry: create+start samples")
	flag.IntVar(&co.Alive, "alive", 20, "with --registry: pods of one running container kept for the memory figure")
	flag.IntVar(&co.Pulls, "pulls", 3, "with --registry: timed pulls of the 48 MiB image")
	perCtr := flag.String("per-container-processes", "", "comma-separated command names of the processes the runtime keeps per container (conmon)")
	hostsDir := flag.String("containerd-hosts-dir", "", "with --registry against containerd: its CRI registry config_path, where the loopback registry is declared plain HTTP")
	perProcess := flag.Int("per-process", 20, "pods run, stopped and removed by one client process per call (as crictl); 0 skips")
	perProcessConc := flag.String("per-process-concurrency", "20,50", "comma-separated sizes of the rounds of runp processes started at once; empty for none")
	call := flag.String("call", "", "one-shot client: connect, Version, then this call (version, runp NAME, stopp ID, rmp ID), print the result, exit")
	floor := flag.Bool("floor", false, "time the raw steps alone instead (netns, veth, runc run, plugin execs, and the --cni-conf's ADD and DEL)")
	runc := flag.String("runc", "bin/runc", "floor: the runc binary")
	pause := flag.String("pause-binary", "bin/pause", "floor: the static pause program")
	cniBin := flag.String("cni-bin-dir", "bin", "floor: the CNI plugin dir")
	cniConf := flag.String("cni-conf", "", "floor: the network config list the runtime runs with, for the floor of a whole RunPodSandbox and StopPodSandbox")
	compareFloor := flag.String("compare-floor", "", "compare mode: comma-separated JSON reports of the floor (--floor --json), for netshim's time beyond it")
	node := flag.Bool("node", false, "a full node instead: --pods pods of --pod-containers running containers from a loopback registry, at rest and under kubelet's calls each second")
	no := bench.NodeOptions{}
	flag.IntVar(&no.Pods, "pods", 110, "node: pods (kubelet's default maximum)")
	flag.IntVar(&no.Containers, "pod-containers", 2, "node: running containers per pod")
	flag.DurationVar(&no.Quiet, "quiet", 30*time.Second, "node: the window at rest, no calls")
	flag.DurationVar(&no.Polled, "polled", 30*time.Second, "node: the window with kubelet's calls once a second")
	flag.IntVar(&no.Samples, "starts", 5, "node: pod starts timed at 1 pod and at --pods pods")
	monitors := flag.String("monitor-processes", "conmon", "node: comma-separated command names of the runtime's monitors or shims, counted with the daemon")
	compareNode := flag.String("compare-node", "", "compare mode: NETSHIM.json,ANCHOR.json node reports (--node --json)")
	flag.Parse()
	if *call != "" {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		out, err := bench.OneShot(ctx, *endpoint, o.Namespace, *call, flag.Arg(0))
		if err != nil {
			fail("%v", err)
		}
		if out != "" {
			fmt.Println(out)
		}
		return
	}
	if *floor {
		fo := bench.FloorOptions{N: max(o.Sequential, 1), Runc: *runc, PauseBinary: *pause,
			CNIBinDir: *cniBin, Plugins: []string{"loopback", "bridge", "host-local", "portmap"}}
		if *cniConf != "" {
			var err error
			if fo.ConfList, err = os.ReadFile(*cniConf); err != nil {
				fail("floor: %v", err)
			}
		}
		rep, err := bench.Floor(context.Background(), fo)
		if err != nil {
			fail("floor: %v", err)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		rep.Print(w)
		w.Flush()
		if *jsonOut != "" {
			if err := rep.Save(*jsonOut); err != nil {
				fail("write %s: %v", *jsonOut, err)
			}
		}
		return
	}
	if *compareNode != "" {
		files := strings.Split(*compareNode, ",")
		if len(files) != 2 {
			fail("--compare-node %q: want NETSHIM.json,ANCHOR.json", *compareNode)
		}
		n, err := bench.LoadNode(files[0])
		if err != nil {
			fail("%v", err)
		}
		a, err := bench.LoadNode(files[1])
		if err != nil {
			fail("%v", err)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		bench.CompareNode(w, n, a)
		w.Flush()
		return
	}
	if *compareNetshim != "" || *compareAnchor != "" {
		compare(*compareNetshim, *compareAnchor, *compareFloor)
		return
	}
	o.Concurrency = sizes("--concurrency", *conc)
	o.PerPodProcesses = strings.Split(*perPod, ",")

	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("connect to %s: %v", *endpoint, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if *node {
		no.RuntimePID, no.Monitors = o.RuntimePID, strings.Split(*monitors, ",")
		no.Scope = bench.Scope{RuntimePID: o.RuntimePID, Marker: scope.Marker}
		runNode(ctx, conn, o.Namespace, *hostsDir, no, *jsonOut)
		return
	}
	// One pod first: the network's bridge is made on first use and stays,
	// as on any node; it is not a leftover of the benchmark.
	if _, err := bench.Run(ctx, rt, bench.Options{Sequential: 1, Namespace: o.Namespace}); err != nil {
		fail("first pod: %v", err)
	}
	if scope.Bridge != "" || scope.NetNSDir != "" || scope.Marker != "" {
		scope.RuntimePID = o.RuntimePID
	}
	before := bench.TakeScopedSnapshot(o.PerPodProcesses, *ipamDir, scope)
	report, err := bench.Run(ctx, rt, o)
	if err != nil {
		fail("benchmark: %v", err)
	}
	if *withRegistry {
		reg, err := bench.StartRegistry()
		if err != nil {
			fail("registry: %v", err)
		}
		co.Image, co.PullImage = reg.Busybox, reg.BigImage
		if *hostsDir != "" {
			undo, err := bench.ContainerdHosts(*hostsDir, reg.Addr)
			if err != nil {
				reg.Stop()
				fail("%v", err)
			}
			defer undo()
		}
		if *perCtr != "" {
			co.PerContainerProcesses = strings.Split(*perCtr, ",")
		}
		report.Containers, err = bench.RunContainers(ctx, rt, runtimeapi.NewImageServiceClient(conn), o.Namespace, co, o.PerPodProcesses)
		if err == nil {
			_, err = runtimeapi.NewImageServiceClient(conn).RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: co.Image}})
		}
		reg.Stop()
		if err != nil {
			fail("containers: %v", err)
		}
	}
	if *perProcess > 0 {
		self, err := os.Executable()
		if err != nil {
			fail("find cribench's own binary: %v", err)
		}
		report.Processes, err = bench.RunProcesses(ctx, rt, o.Namespace, bench.ProcessOptions{
			Command:    []string{self, "--endpoint", *endpoint, "--namespace", o.Namespace, "--call"},
			Sequential: *perProcess, Warmup: min(o.Warmup, 2), Concurrency: sizes("--per-process-concurrency", *perProcessConc)})
		if err != nil {
			fail("per-process phases: %v", err)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	report.Print(w)
	if report.Containers != nil {
		report.Containers.Print(w)
	}
	if report.Processes != nil {
		report.Processes.Print(w)
	}
	w.Flush()
	if *jsonOut != "" {
		if err := report.Save(*jsonOut); err != nil {
			fail("write %s: %v", *jsonOut, err)
		}
	}
	// Give the runtime a moment to reap what it stopped before counting.
	time.Sleep(time.Second)
	if g := bench.Growth(before, bench.TakeScopedSnapshot(o.PerPodProcesses, *ipamDir, scope)); g != "" {
		fail("leftovers after the run: %s", g)
	}
	fmt.Println("leftovers: none")
}

// runNode runs the node phase with the busybox image of a loopback registry.
func runNode(ctx context.Context, conn *grpc.ClientConn, ns, hostsDir string, no bench.NodeOptions, jsonOut string) {
	reg, err := bench.StartRegistry()
	if err != nil {
		fail("registry: %v", err)
	}
	defer reg.Stop()
	no.Image = reg.Busybox
	if hostsDir != "" {
		undo, err := bench.ContainerdHosts(hostsDir, reg.Addr)
		if err != nil {
			reg.Stop()
			fail("%v", err)
		}
		defer undo()
	}
	img := runtimeapi.NewImageServiceClient(conn)
	report, err := bench.RunNode(ctx, runtimeapi.NewRuntimeServiceClient(conn), img, ns, no)
	_, _ = img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: no.Image}})
	if err != nil {
		reg.Stop()
		fail("node: %v", err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	report.Print(w)
	w.Flush()
	if jsonOut != "" {
		if err := report.Save(jsonOut); err != nil {
			reg.Stop()
			fail("write %s: %v", jsonOut, err)
		}
	}
}

// sizes parses a comma-separated list of positive numbers.
func sizes(name, list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				fail("%s %q: want positive numbers", name, list)
			}
			out = append(out, n)
		}
	}
	return out
}

func compare(netshimFiles, anchorFiles, floorFiles string) {
	load := func(files string) []*bench.Report {
		var rs []*bench.Report
		for _, f := range strings.Split(files, ",") {
			r, err := bench.Load(f)
			if err != nil {
				fail("%v", err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	netshim := load(netshimFiles)
	bench.Compare(w, netshim, load(anchorFiles))
	if floorFiles != "" {
		var floors []*bench.FloorReport
		for _, f := range strings.Split(floorFiles, ",") {
			floor, err := bench.LoadFloor(f)
			if err != nil {
				fail("%v", err)
			}
			floors = append(floors, floor)
		}
		fmt.Fprintln(w)
		bench.BeyondFloor(w, netshim, floors)
	}
	w.Flush()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cribench: "+format+"\n", args...)
	os.Exit(1)
}
