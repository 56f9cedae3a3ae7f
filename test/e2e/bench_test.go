package e2e

import (
	"strings"
	"testing"

	"github.com/netshim/netshim/test/bench"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A small run of the load generator (N=3), so `make bench` does not rot: every
// phase runs against the real netshim and leaves nothing behind.
func TestBenchSmoke(t *testing.T) {
	s := startShim(t)
	rt := runtimeapi.NewRuntimeServiceClient(s.conn)
	o := bench.Options{Sequential: 3, Warmup: 1, Concurrency: []int{3}, Scale: 3,
		RuntimePID: s.cmd.Process.Pid, PerPodProcesses: []string{"pause"}, Namespace: "e2e-bench"}
	s.runPod(podConfig("first")) // the bridge is made on first use and stays
	before := bench.TakeSnapshot(o.PerPodProcesses, s.ipamDir)
	r, err := bench.Run(s.ctx(), rt, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.N != 3 || r.Stop.N != 3 || r.Remove.N != 3 || len(r.Rounds) != 1 || r.List.N != 100 || r.RuntimeKiB == 0 || r.PodsKiB <= 0 {
		t.Fatalf("report misses phases: %+v", r)
	}
	var out strings.Builder
	r.Print(&out)
	t.Logf("\n%s", out.String())
	eventually(t, reapWait, "no growth after the benchmark", func() bool {
		return bench.Growth(before, bench.TakeSnapshot(o.PerPodProcesses, s.ipamDir)) == ""
	})
}
