package cri

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// callLog is the order in which the fakes below were asked to do things.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf(format, args...))
}

func (l *callLog) index(call string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Index(l.calls, call)
}

// fakeSandboxes keeps records in memory, as the manager does, and logs calls.
// Only what Recover and the stop/remove path use is implemented.
type fakeSandboxes struct {
	Sandboxes
	log         *callLog
	byID        map[string]*sandbox.Sandbox
	interrupted []string
}

func (f *fakeSandboxes) Recover() ([]*sandbox.Sandbox, error) {
	f.log.add("recover sandboxes")
	var out []*sandbox.Sandbox
	for _, id := range f.interrupted {
		out = append(out, f.byID[id])
	}
	return out, nil
}

func (f *fakeSandboxes) List() []*sandbox.Sandbox {
	var out []*sandbox.Sandbox
	for _, sb := range f.byID {
		c := *sb
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *sandbox.Sandbox) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (f *fakeSandboxes) Get(id string) (*sandbox.Sandbox, error) {
	sb, ok := f.byID[id]
	if !ok {
		return nil, sandbox.ErrNotFound
	}
	c := *sb
	return &c, nil
}

func (f *fakeSandboxes) MarkNotReady(id string) error {
	f.byID[id].State = sandbox.StateNotReady
	return nil
}

func (f *fakeSandboxes) NetworkDetached(id string) error {
	f.byID[id].NetworkAttached = false
	return nil
}

func (f *fakeSandboxes) StopPause(_ context.Context, id string) error {
	f.log.add("stop pause %s", id)
	return nil
}

func (f *fakeSandboxes) Stop(_ context.Context, id string) error {
	f.log.add("stop %s", id)
	f.byID[id].State = sandbox.StateNotReady
	return nil
}

func (f *fakeSandboxes) Remove(_ context.Context, id string) error {
	f.log.add("remove %s", id)
	delete(f.byID, id)
	return nil
}

func (f *fakeSandboxes) SweepOrphans(context.Context) { f.log.add("sweep") }

// fakeNetwork fails the DEL of the sandboxes in failDel.
type fakeNetwork struct {
	Network
	log     *callLog
	failDel map[string]bool
	gcValid []string
}

func (f *fakeNetwork) PluginName() string { return "fake" }

func (f *fakeNetwork) StopOrphanedPlugins([]string) []int { return nil }

func (f *fakeNetwork) TearDownPod(_ context.Context, pod network.Pod) error {
	f.log.add("del %s", pod.SandboxID)
	if f.failDel[pod.SandboxID] {
		return errors.New(`failed to find plugin "portmap"`)
	}
	return nil
}

func (f *fakeNetwork) GC(_ context.Context, valid []string) error {
	f.log.add("gc")
	f.gcValid = valid
	return nil
}

type noContainers struct{ Containers }

func (noContainers) Recover(context.Context) error { return nil }
func (noContainers) List() []*container.Container  { return nil }

func interruptedSandbox(t *testing.T, id string) *sandbox.Sandbox {
	spec, err := specFromConfig(podCfg(id))
	if err != nil {
		t.Fatal(err)
	}
	return &sandbox.Sandbox{ID: id, Spec: spec, Status: sandbox.Status{State: sandbox.StateCreating, NetworkAttached: true}}
}

// One sandbox whose DEL fails at start must not stop netshim, nor keep the
// others from being undone: it is kept NOTREADY with its DEL still owed.
func TestRecoverKeepsGoingPastASandboxThatCannotBeUndone(t *testing.T) {
	log := &callLog{}
	sbs := &fakeSandboxes{log: log, byID: map[string]*sandbox.Sandbox{}}
	for _, id := range []string{"a", "b", "c"} {
		sbs.byID[id] = interruptedSandbox(t, id)
		sbs.interrupted = append(sbs.interrupted, id)
	}
	net := &fakeNetwork{log: log, failDel: map[string]bool{"b": true}}
	s := NewServer(Services{Sandboxes: sbs, Network: net, Containers: noContainers{}}, Dirs{})

	if err := s.Recover(context.Background()); err != nil {
		t.Fatalf("Recover = %v, want nil: one broken sandbox must not stop the node", err)
	}
	for _, id := range []string{"a", "c"} {
		if _, ok := sbs.byID[id]; ok {
			t.Errorf("sandbox %s was not undone", id)
		}
	}
	b, ok := sbs.byID["b"]
	if !ok {
		t.Fatal("sandbox b, whose DEL failed, was forgotten: its DEL would never be retried")
	}
	if b.State != sandbox.StateNotReady || !b.NetworkAttached {
		t.Errorf("sandbox b: state %s attached %v, want NOTREADY with its DEL owed", b.State, b.NetworkAttached)
	}
	if log.index("stop b") < 0 {
		t.Error("sandbox b's pause was not stopped")
	}
	if !slices.Contains(net.gcValid, "b") {
		t.Errorf("GC valid IDs %v lack b: GC must never stand in for an owed DEL", net.gcValid)
	}
}

// The GC's DELs run while the netns pins are still there: orphans are swept
// only after it.
func TestRecoverSweepsOrphansAfterGC(t *testing.T) {
	log := &callLog{}
	sbs := &fakeSandboxes{log: log, byID: map[string]*sandbox.Sandbox{}}
	net := &fakeNetwork{log: log}
	s := NewServer(Services{Sandboxes: sbs, Network: net, Containers: noContainers{}}, Dirs{})
	if err := s.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	gc, sweep := log.index("gc"), log.index("sweep")
	if gc < 0 || sweep < 0 || sweep < gc {
		t.Fatalf("calls %v: want gc, then sweep", log.calls)
	}
}

// Labels and annotations are stored once: a large annotation does not
// reach the checkpoint twice.
func TestSpecStoresLabelsAndAnnotationsOnce(t *testing.T) {
	cfg := podCfg("big")
	cfg.Annotations = map[string]string{"big": strings.Repeat("x", 150<<10)}
	spec, err := specFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Config) > 1<<10 {
		t.Fatalf("stored config is %d bytes: the annotation is in it as well as in the spec", len(spec.Config))
	}
	got, err := decodeConfig(&sandbox.Sandbox{ID: "big", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAnnotations()["big"] != cfg.Annotations["big"] || got.GetLabels()["app"] != cfg.Labels["app"] ||
		got.GetMetadata().GetName() != "big" {
		t.Fatal("decodeConfig did not give back the labels, annotations and metadata")
	}
}

func podCfg(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: "uid-" + name},
		Labels:   map[string]string{"app": name},
	}
}

// gatedNetwork's DEL waits until the pause is being stopped: it proves the
// two run side by side (it would wait forever if they ran in turn).
type gatedNetwork struct {
	fakeNetwork
	pauseStopping chan struct{}
}

func (g *gatedNetwork) TearDownPod(ctx context.Context, pod network.Pod) error {
	select {
	case <-g.pauseStopping:
	case <-ctx.Done():
		return errors.New("the DEL waited for the pause stop, which never started")
	}
	return g.fakeNetwork.TearDownPod(ctx, pod)
}

type signallingSandboxes struct {
	*fakeSandboxes
	pauseStopping chan struct{}
}

func (s signallingSandboxes) StopPause(ctx context.Context, id string) error {
	close(s.pauseStopping)
	return s.fakeSandboxes.StopPause(ctx, id)
}

// StopPodSandbox stops the pause while the DEL runs, then finishes the stop;
// a failed DEL still stops the pause and is returned, for a retry.
func TestStopOverlapsPauseStopAndDel(t *testing.T) {
	for _, failDel := range []bool{false, true} {
		log := &callLog{}
		sb := interruptedSandbox(t, "p")
		sb.State = sandbox.StateReady
		fs := &fakeSandboxes{log: log, byID: map[string]*sandbox.Sandbox{"p": sb}}
		gate := make(chan struct{})
		net := &gatedNetwork{fakeNetwork: fakeNetwork{log: log, failDel: map[string]bool{"p": failDel}}, pauseStopping: gate}
		s := NewServer(Services{Sandboxes: signallingSandboxes{fs, gate}, Network: net, Containers: noContainers{}}, Dirs{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.stopSandbox(ctx, "p")
		cancel()
		if failDel != (err != nil) {
			t.Fatalf("DEL fails %v: stopSandbox = %v", failDel, err)
		}
		if log.index("del p") < 0 || log.index("stop pause p") < 0 || log.index("stop p") < log.index("del p") {
			t.Fatalf("DEL fails %v: calls %v, want the DEL and the pause stop, then the stop", failDel, log.calls)
		}
		if got := fs.byID["p"].NetworkAttached; got != failDel {
			t.Fatalf("DEL fails %v: still attached = %v", failDel, got)
		}
	}
}
