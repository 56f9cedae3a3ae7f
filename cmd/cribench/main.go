// Command cribench measures a CRI runtime's pod sandbox path: sequential
// run/stop/remove, concurrent rounds, list and status latency with many pods
// alive, the memory the runtime keeps per pod, and what it leaves behind.
// It speaks CRI to any endpoint, so it measures netshim and containerd alike.
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
	floor := flag.Bool("floor", false, "time the raw steps alone instead (netns, veth, runc run, plugin execs)")
	runc := flag.String("runc", "bin/runc", "floor: the runc binary")
	pause := flag.String("pause-binary", "bin/pause", "floor: the static pause program")
	cniBin := flag.String("cni-bin-dir", "bin", "floor: the CNI plugin dir")
	flag.Parse()
	if *floor {
		steps, err := bench.Floor(context.Background(), bench.FloorOptions{N: max(o.Sequential, 1), Runc: *runc, PauseBinary: *pause,
			CNIBinDir: *cniBin, Plugins: []string{"loopback", "bridge", "host-local", "portmap"}})
		if err != nil {
			fail("floor: %v", err)
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		bench.PrintFloor(w, steps)
		w.Flush()
		return
	}
	if *compareNetshim != "" || *compareAnchor != "" {
		compare(*compareNetshim, *compareAnchor)
		return
	}
	for _, f := range strings.Split(*conc, ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				fail("--concurrency %q: want positive numbers", *conc)
			}
			o.Concurrency = append(o.Concurrency, n)
		}
	}
	o.PerPodProcesses = strings.Split(*perPod, ",")

	conn, err := grpc.NewClient(*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("connect to %s: %v", *endpoint, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	rt := runtimeapi.NewRuntimeServiceClient(conn)
	// One pod first: the network's bridge is made on first use and stays,
	// as on any node; it is not a leftover of the benchmark.
	if _, err := bench.Run(ctx, rt, bench.Options{Sequential: 1, Namespace: o.Namespace}); err != nil {
		fail("first pod: %v", err)
	}
	before := bench.TakeSnapshot(o.PerPodProcesses, *ipamDir)
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
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	report.Print(w)
	if report.Containers != nil {
		report.Containers.Print(w)
	}
	w.Flush()
	if *jsonOut != "" {
		if err := report.Save(*jsonOut); err != nil {
			fail("write %s: %v", *jsonOut, err)
		}
	}
	// Give the runtime a moment to reap what it stopped before counting.
	time.Sleep(time.Second)
	if g := bench.Growth(before, bench.TakeSnapshot(o.PerPodProcesses, *ipamDir)); g != "" {
		fail("leftovers after the run: %s", g)
	}
	fmt.Println("leftovers: none")
}

func compare(netshimFiles, anchorFiles string) {
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
	bench.Compare(w, load(netshimFiles), load(anchorFiles))
	w.Flush()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "cribench: "+format+"\n", args...)
	os.Exit(1)
}
