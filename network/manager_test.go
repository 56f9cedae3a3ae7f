package network

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// overlapPlugin records how many operations run at once, per pod and overall,
// and can hold every operation until released so overlap is observable.
type overlapPlugin struct {
	NoopPlugin
	mu        sync.Mutex
	perPod    map[string]int
	maxPerPod int
	total     int
	maxTotal  int
	hold      chan struct{}
	entered   chan string
}

func newOverlapPlugin() *overlapPlugin {
	return &overlapPlugin{perPod: map[string]int{}, hold: make(chan struct{}), entered: make(chan string, 16)}
}

func (p *overlapPlugin) op(pod Pod) {
	p.mu.Lock()
	p.perPod[pod.Key()]++
	p.total++
	p.maxPerPod = max(p.maxPerPod, p.perPod[pod.Key()])
	p.maxTotal = max(p.maxTotal, p.total)
	p.mu.Unlock()
	p.entered <- pod.Key()
	<-p.hold
	p.mu.Lock()
	p.perPod[pod.Key()]--
	p.total--
	p.mu.Unlock()
}

func (p *overlapPlugin) SetUpPod(_ context.Context, pod Pod) (*PodNetworkStatus, error) {
	p.op(pod)
	return &PodNetworkStatus{}, nil
}

func (p *overlapPlugin) TearDownPod(_ context.Context, pod Pod) error {
	p.op(pod)
	return nil
}

func TestSamePodOperationsNeverOverlap(t *testing.T) {
	plugin := newOverlapPlugin()
	pm := NewPluginManager(plugin, nil)
	pod := Pod{Namespace: "ns", Name: "web", SandboxID: "a"}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = pm.SetUpPod(context.Background(), pod) }()
	go func() { defer wg.Done(); _ = pm.TearDownPod(context.Background(), pod) }()
	<-plugin.entered
	// Give the second operation every chance to enter while the first is held.
	select {
	case <-plugin.entered:
		t.Fatal("set-up and teardown of one pod ran at the same time")
	case <-time.After(100 * time.Millisecond):
	}
	plugin.hold <- struct{}{}
	<-plugin.entered
	plugin.hold <- struct{}{}
	wg.Wait()
	if plugin.maxPerPod != 1 {
		t.Fatalf("max concurrent operations on one pod = %d, want 1", plugin.maxPerPod)
	}
}

func TestDifferentPodsRunInParallel(t *testing.T) {
	plugin := newOverlapPlugin()
	pm := NewPluginManager(plugin, nil)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = pm.SetUpPod(context.Background(), Pod{Namespace: "ns", Name: name, SandboxID: name})
		}()
	}
	// Both must be inside the plugin at once; serialised, the second never enters.
	for i := 0; i < 2; i++ {
		select {
		case <-plugin.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("set-up of a second pod waited for the first: pods are serialised")
		}
	}
	close(plugin.hold)
	wg.Wait()
	if plugin.maxTotal != 2 {
		t.Fatalf("max concurrent operations = %d, want 2", plugin.maxTotal)
	}
}

type failingPlugin struct{ NoopPlugin }

func (failingPlugin) SetUpPod(context.Context, Pod) (*PodNetworkStatus, error) {
	return nil, context.DeadlineExceeded
}

func TestManagerRecordsLatencyAndErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	pm := NewPluginManager(&failingPlugin{}, reg)
	if _, err := pm.SetUpPod(context.Background(), Pod{Name: "p", Namespace: "n"}); err == nil {
		t.Fatal("want the plugin's error")
	}
	_ = pm.TearDownPod(context.Background(), Pod{Name: "p", Namespace: "n"})
	if got := testutil.ToFloat64(pm.errors.WithLabelValues(opSetUp)); got != 1 {
		t.Fatalf("set_up_pod errors = %v, want 1", got)
	}
	if got := testutil.ToFloat64(pm.errors.WithLabelValues(opTearDown)); got != 0 {
		t.Fatalf("tear_down_pod errors = %v, want 0", got)
	}
	if n := testutil.CollectAndCount(pm.latency); n != 2 {
		t.Fatalf("latency series = %d, want one per operation run (2)", n)
	}
}

func TestParseHairpinMode(t *testing.T) {
	for _, ok := range []string{"promiscuous-bridge", "hairpin-veth", "none"} {
		if _, err := ParseHairpinMode(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ParseHairpinMode("hairpin"); err == nil {
		t.Error("hairpin accepted, want an error naming the flag")
	}
}

type gcPlugin struct {
	*overlapPlugin
	gcRan chan struct{}
}

func (p *gcPlugin) GC(context.Context, []string) error {
	close(p.gcRan)
	return nil
}

func TestGCExcludesPodOperations(t *testing.T) {
	plugin := &gcPlugin{overlapPlugin: newOverlapPlugin(), gcRan: make(chan struct{})}
	pm := NewPluginManager(plugin, nil)
	setUpDone := make(chan struct{})
	go func() {
		_, _ = pm.SetUpPod(context.Background(), Pod{Namespace: "ns", Name: "a"})
		close(setUpDone)
	}()
	<-plugin.entered // an ADD is in flight
	gcDone := make(chan error)
	go func() { gcDone <- pm.GC(context.Background(), nil) }()
	select {
	case <-plugin.gcRan:
		t.Fatal("GC ran while an ADD was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	plugin.hold <- struct{}{}
	<-setUpDone
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
}

func TestEffectiveHairpinMode(t *testing.T) {
	for _, tc := range []struct {
		mode   HairpinMode
		plugin string
		want   HairpinMode
	}{
		{HairpinPromiscuousBridge, "cni", HairpinVeth},
		{HairpinPromiscuousBridge, "kubenet", HairpinPromiscuousBridge},
		{HairpinVeth, "cni", HairpinVeth},
		{HairpinNone, "cni", HairpinNone},
	} {
		if got := EffectiveHairpinMode(tc.mode, tc.plugin); got != tc.want {
			t.Errorf("%s under %s = %s, want %s", tc.mode, tc.plugin, got, tc.want)
		}
	}
}
