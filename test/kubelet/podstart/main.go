// Command podstart measures a pod start as kubelet sees it: a standalone
// kubelet (bin/kubelet) on a CRI runtime, one static pod of one container
// at a time, from the manifest written to the pod Running and Ready on
// kubelet's read-only /pods, with the sandbox's creation and the
// container's start read from CRI. It runs a fresh kubelet per session,
// netshim, anchor, anchor, netshim, so both runtimes see the machine alike.
//
// Give it runtimes nobody else uses: kubelet stops every pod it did not
// create. It starts its own loopback registry holding the busybox image.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/test/bench"
	"github.com/netshim/netshim/test/kubelet/standalone"
	"github.com/netshim/netshim/test/registry"
)

const manifest = `apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: sleeper
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
`

// Sample is one pod's times, each from the manifest written (or, for
// Stopped, removed).
type Sample struct {
	SandboxCreated, ContainerStarted, RunningReady, Stopped time.Duration
}

// Session is one kubelet on one runtime.
type Session struct {
	Runtime string
	Samples []Sample
}

func main() {
	kubeletBin := flag.String("kubelet", "bin/kubelet", "the kubelet binary")
	netshimEP := flag.String("netshim", "", "netshim's CRI endpoint (unix://...)")
	anchorEP := flag.String("anchor", "", "the anchor's CRI endpoint; empty runs netshim alone")
	anchorName := flag.String("anchor-name", "containerd", "the anchor's name in the report")
	hostsDir := flag.String("anchor-hosts-dir", "", "the anchor containerd's registry config_path, where the loopback registry is declared plain HTTP")
	n := flag.Int("n", 5, "pods timed per session, one at a time, after one warm-up pod")
	jsonOut := flag.String("json", "", "also write the sessions as JSON to this file")
	gates := flag.String("feature-gates", "", "kubelet feature gates for every session, NAME=true|false,... (e.g. EventedPLEG=true)")
	flag.Parse()
	featureGates, err := parseGates(*gates)
	if err != nil {
		fail("--feature-gates: %v", err)
	}
	if *netshimEP == "" {
		fail("--netshim is required")
	}
	if os.Geteuid() != 0 {
		fail("needs root (kubelet, netns, cgroups)")
	}
	order := []runtimeRef{{"netshim", *netshimEP}}
	if *anchorEP != "" {
		a := runtimeRef{*anchorName, *anchorEP}
		order = append(order, a, a, order[0])
	}
	sessions, err := run(*kubeletBin, order, *hostsDir, *n, featureGates)
	if err != nil {
		fail("%v", err)
	}
	report(sessions, *anchorName)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(sessions, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			fail("write %s: %v", *jsonOut, err)
		}
	}
}

type runtimeRef struct{ name, endpoint string }

// run starts the registry and runs the sessions in order; the registry and
// its hosts.toml for the anchor go when it returns.
func run(kubeletBin string, order []runtimeRef, hostsDir string, n int, gates map[string]bool) ([]Session, error) {
	regDir, err := os.MkdirTemp("", "netshim-podstart-registry-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(regDir)
	reg, err := registry.Start(regDir, registry.Options{})
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer reg.Stop()
	img, err := registry.Busybox()
	if err == nil {
		_, err = reg.Push("bench/busybox", "1", img)
	}
	if err != nil {
		return nil, fmt.Errorf("push busybox: %w", err)
	}
	image := reg.Addr + "/bench/busybox:1"
	if hostsDir != "" {
		undo, err := bench.ContainerdHosts(hostsDir, reg.Addr)
		if err != nil {
			return nil, err
		}
		defer undo()
	}
	var sessions []Session
	for i, rt := range order {
		fmt.Printf("== kubelet session %d on %s\n", i+1, rt.name)
		s, err := session(kubeletBin, rt.name, rt.endpoint, image, fmt.Sprintf("s%d", i+1), n, gates)
		if err != nil {
			return nil, fmt.Errorf("session %d on %s: %w", i+1, rt.name, err)
		}
		sessions = append(sessions, s)
	}
	return sessions, nil
}

// session runs a kubelet on endpoint, times n pods after a warm-up one,
// then stops kubelet and removes every pod it left on the runtime.
func session(kubeletBin, name, endpoint, image, tag string, n int, gates map[string]bool) (Session, error) {
	s := Session{Runtime: name}
	dir, err := os.MkdirTemp("", "netshim-podstart-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return s, fmt.Errorf("connect to %s: %w", endpoint, err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	if pods, err := rt.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{}); err != nil {
		return s, fmt.Errorf("list pods on %s: %w", endpoint, err)
	} else if len(pods.Items) > 0 {
		return s, fmt.Errorf("%s already has %d pods; kubelet would stop them: give it a runtime of its own", endpoint, len(pods.Items))
	}
	k, err := standalone.Start(standalone.Options{Binary: kubeletBin, Endpoint: endpoint, Dir: dir, NodeName: "netshim-podstart", FeatureGates: gates})
	defer removeAllPods(rt)
	if err != nil {
		return s, err
	}
	defer k.Stop()
	for i := range n + 1 {
		sample, err := onePod(k, rt, fmt.Sprintf("bench-%s-%d", tag, i), image)
		if err != nil {
			tail, _ := os.ReadFile(k.Log())
			lines := strings.Split(string(tail), "\n")
			return s, fmt.Errorf("%w\nlast lines of kubelet's log:\n%s", err, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
		if i > 0 { // the first pulls the image and warms kubelet's paths
			s.Samples = append(s.Samples, sample)
			fmt.Printf("pod %d: sandbox %s, container started %s, Running+Ready %s, stopped %s\n", i,
				msText(sample.SandboxCreated), msText(sample.ContainerStarted), msText(sample.RunningReady), msText(sample.Stopped))
		}
	}
	return s, nil
}

// onePod writes one manifest, waits for the pod to be Running and Ready,
// reads the runtime's times, removes the manifest and waits for the
// sandbox to stop and the pod to leave kubelet.
func onePod(k *standalone.Kubelet, rt runtimeapi.RuntimeServiceClient, name, image string) (Sample, error) {
	var s Sample
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Written beside the dir and renamed in, so kubelet never reads half a file.
	tmp := filepath.Join(filepath.Dir(k.Manifests()), name+".yaml")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf(manifest, name, image)), 0o644); err != nil {
		return s, err
	}
	path := filepath.Join(k.Manifests(), name+".yaml")
	// kubelet sees a started container at its next PLEG relist (every 1 s):
	// a random wait first spreads the writes over the relist's phase, so
	// neither runtime gets a lucky or unlucky phase for all its pods.
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	written := time.Now()
	if err := os.Rename(tmp, path); err != nil {
		return s, err
	}
	if err := poll(ctx, "pod "+name+" Running and Ready on kubelet's /pods", func() (bool, error) {
		p, err := k.Pod(name + "-")
		return p != nil && p.RunningAndReady(), err
	}); err != nil {
		return s, err
	}
	s.RunningReady = time.Since(written)

	sb, err := sandboxOf(ctx, rt, name)
	if err != nil {
		return s, err
	}
	s.SandboxCreated = time.Unix(0, sb.CreatedAt).Sub(written)
	ctrs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sb.Id}})
	if err != nil || len(ctrs.Containers) == 0 {
		return s, fmt.Errorf("containers of pod %s: %d found, %v", name, len(ctrs.GetContainers()), err)
	}
	st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctrs.Containers[0].Id})
	if err != nil {
		return s, fmt.Errorf("status of %s's container: %w", name, err)
	}
	s.ContainerStarted = time.Unix(0, st.Status.StartedAt).Sub(written)

	removed := time.Now()
	if err := os.Remove(path); err != nil {
		return s, err
	}
	if err := poll(ctx, "pod "+name+"'s sandbox to stop", func() (bool, error) {
		st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id})
		return err == nil && st.Status.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY, err
	}); err != nil {
		return s, err
	}
	s.Stopped = time.Since(removed)
	return s, poll(ctx, "pod "+name+" to leave kubelet's /pods", func() (bool, error) {
		p, err := k.Pod(name + "-")
		return p == nil && err == nil, nil
	})
}

func sandboxOf(ctx context.Context, rt runtimeapi.RuntimeServiceClient, name string) (*runtimeapi.PodSandbox, error) {
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Metadata.Name, name+"-") && p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no ready sandbox of pod %s on the runtime", name)
}

// poll checks cond every 10 ms: fine enough for figures of hundreds of ms,
// light enough not to slow kubelet on 2 cores.
func poll(ctx context.Context, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s (last error: %v)", what, last)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// removeAllPods stops and removes what kubelet left on the runtime; it runs
// after kubelet has stopped.
func removeAllPods(rt runtimeapi.RuntimeServiceClient) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "podstart: list pods to remove: %v\n", err)
		return
	}
	for _, p := range pods.Items {
		_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "podstart: remove pod %s: %v\n", p.Id, err)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func msText(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// report prints each figure's median over every pod of a runtime's
// sessions, side by side, and the ratio anchor/netshim.
func report(sessions []Session, anchor string) {
	pooled := map[string][]Sample{}
	for _, s := range sessions {
		pooled[s.Runtime] = append(pooled[s.Runtime], s.Samples...)
	}
	figure := func(rt string, f func(Sample) time.Duration) time.Duration {
		var ds []time.Duration
		for _, s := range pooled[rt] {
			ds = append(ds, f(s))
		}
		return median(ds)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "kubelet's view, median over %d pods per runtime\tnetshim\t%s\tnetshim better by (×)\n", len(pooled["netshim"]), anchor)
	for _, row := range []struct {
		name string
		f    func(Sample) time.Duration
	}{
		{"manifest written → sandbox created (CRI CreatedAt)", func(s Sample) time.Duration { return s.SandboxCreated }},
		{"manifest written → container started (CRI StartedAt)", func(s Sample) time.Duration { return s.ContainerStarted }},
		{"manifest written → pod Running and Ready (kubelet /pods)", func(s Sample) time.Duration { return s.RunningReady }},
		{"manifest removed → sandbox NOTREADY (CRI)", func(s Sample) time.Duration { return s.Stopped }},
	} {
		n := figure("netshim", row.f)
		if _, ok := pooled[anchor]; !ok {
			fmt.Fprintf(w, "%s\t%s\t\t\n", row.name, msText(n))
			continue
		}
		a := figure(anchor, row.f)
		fmt.Fprintf(w, "%s\t%s\t%s\t%.2f\n", row.name, msText(n), msText(a), float64(a)/float64(n))
	}
	w.Flush()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "podstart: "+format+"\n", args...)
	os.Exit(1)
}

// parseGates reads NAME=true|false,... into a map; "" is none.
func parseGates(list string) (map[string]bool, error) {
	gates := map[string]bool{}
	for _, g := range strings.Split(list, ",") {
		if g = strings.TrimSpace(g); g == "" {
			continue
		}
		name, value, ok := strings.Cut(g, "=")
		on, err := strconv.ParseBool(value)
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("%q: want NAME=true or NAME=false", g)
		}
		gates[name] = on
	}
	return gates, nil
}
