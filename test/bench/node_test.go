package bench

import (
	"strings"
	"testing"
	"time"
)

// CPU is read from /proc/PID/stat: utime, stime and the reaped children's
// cutime and cstime, after a command name that may hold spaces and parentheses.
func TestParseCPUTicks(t *testing.T) {
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 5 3 2 20 0 9 0 1000 10000 100"
	if got := parseCPUTicks(stat); got != 17 {
		t.Errorf("parseCPUTicks = %d, want 7+5+3+2 = 17", got)
	}
	if got := parseCPUTicks("garbage"); got != 0 {
		t.Errorf("parseCPUTicks(garbage) = %d, want 0", got)
	}
}

func TestParseRollup(t *testing.T) {
	rollup := "00400000-7ffd [rollup]\nRss:               12345 kB\nPss:                6789 kB\nPss_Anon:           100 kB\n"
	rss, pss := parseRollup(rollup)
	if rss != 12345 || pss != 6789 {
		t.Errorf("parseRollup = %d, %d; want 12345, 6789", rss, pss)
	}
}

// Side by side, each figure's ratio is the anchor's over netshim's.
func TestCompareNode(t *testing.T) {
	n := &NodeReport{Pods: 110, Containers: 220, Calls: map[string]Stats{CallListContainers: {N: 1, Median: time.Millisecond}},
		Quiet: Usage{DaemonCPU: 0.5, TotalCPU: 1, TotalPSS: 10 * 1024}, StartAt1: Stats{N: 1, Median: 100 * time.Millisecond}}
	a := &NodeReport{Pods: 110, Containers: 220, Calls: map[string]Stats{CallListContainers: {N: 1, Median: 3 * time.Millisecond}},
		Quiet: Usage{DaemonCPU: 2, TotalCPU: 5, TotalPSS: 60 * 1024}, StartAt1: Stats{N: 1, Median: 250 * time.Millisecond}}
	var out strings.Builder
	CompareNode(&out, n, a)
	for _, want := range []string{
		"ListContainers median ms\t1.00\t3.00\t3.00",
		"CPU % of a core, daemon + monitors/shims, at rest\t1.00\t5.00\t5.00",
		"PSS MiB, daemon + monitors/shims\t10.0\t60.0\t6.00",
		"pod start (pod + containers running) at 1 pod, median ms\t100.0\t250.0\t2.50",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("node comparison lacks %q:\n%s", want, out.String())
		}
	}
}
