package bench

import (
	"strings"
	"testing"
	"time"
)

// The comparison a reader acts on: ratios are anchor over netshim for
// times, each the mean of a runtime's runs, and a goal says met or missed.
func TestCompareRatiosAndGoals(t *testing.T) {
	n := &Report{Run: Stats{N: 1, Median: 100 * time.Millisecond}, Stop: Stats{N: 1, Median: 50 * time.Millisecond}}
	n2 := &Report{Run: Stats{N: 1, Median: 300 * time.Millisecond}, Stop: Stats{N: 1, Median: 50 * time.Millisecond}}
	a := &Report{Run: Stats{N: 1, Median: 500 * time.Millisecond}, Stop: Stats{N: 1, Median: 100 * time.Millisecond}}
	var out strings.Builder
	Compare(&out, []*Report{n, n2}, []*Report{a})
	for _, want := range []string{
		"RunPodSandbox median ms (in-process client)\t200.0\t500.0\t2.50\t≥ 2.5× — met",
		"StopPodSandbox median ms (in-process client)\t50.0\t100.0\t2.00\t≥ 2.5× — missed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, out.String())
		}
	}
}

// netshim's time beyond its floor is its median less the floors' mean.
func TestBeyondFloor(t *testing.T) {
	n := &Report{Run: Stats{N: 1, Median: 40 * time.Millisecond}, Stop: Stats{N: 1, Median: 30 * time.Millisecond}}
	floors := []*FloorReport{
		{Run: Stats{N: 1, Median: 36 * time.Millisecond}, Stop: Stats{N: 1, Median: 20 * time.Millisecond}},
		{Run: Stats{N: 1, Median: 38 * time.Millisecond}, Stop: Stats{N: 1, Median: 22 * time.Millisecond}},
	}
	var out strings.Builder
	BeyondFloor(&out, []*Report{n}, floors)
	for _, want := range []string{"RunPodSandbox\t40.0\t37.0\t3.0\t≤ 3 ms — met", "StopPodSandbox\t30.0\t21.0\t9.0\t≤ 3 ms — missed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("floor comparison lacks %q:\n%s", want, out.String())
		}
	}
}

// A container's create + start is set against runc create + start alone,
// with issue 25's 5 ms goal.
func TestBeyondFloorContainerStart(t *testing.T) {
	n := &Report{Containers: &ContainerReport{CreateStart: Stats{N: 1, Median: 44 * time.Millisecond}}}
	floors := []*FloorReport{{ContainerStart: Stats{N: 1, Median: 38 * time.Millisecond}}}
	var out strings.Builder
	BeyondFloor(&out, []*Report{n}, floors)
	if want := "CreateContainer+StartContainer\t44.0\t38.0\t6.0\t≤ 5 ms — missed"; !strings.Contains(out.String(), want) {
		t.Errorf("floor comparison lacks %q:\n%s", want, out.String())
	}
}
