package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/test/registry"
)

// podStartManifest is one pod of one container: the static pause program as
// its command, so the figure is kubelet's and the runtime's, not an app's.
const podStartManifest = `apiVersion: v1
kind: Pod
metadata: {name: %[1]s, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[2]s
    imagePullPolicy: Never
`

// BenchmarkPodStart is kubelet's view of a pod start: from a static pod's
// manifest written to kubelet reporting the pod Ready on its read-only API,
// with the image already on the node. It runs on a netshim of its own and,
// when ANCHOR_ENDPOINT names one (make bench-kubelet starts Debian's
// containerd 1.6 as hack/anchor-containerd.sh does), on that too, in the
// order netshim, anchor, anchor, netshim, PODSTART_PODS pods each (default
// 5) after one warm-up pod. Run with -benchtime 1x.
func BenchmarkPodStart(b *testing.B) {
	pods := 5
	if v := os.Getenv("PODSTART_PODS"); v != "" {
		fmt.Sscan(v, &pods)
	}
	anchor := os.Getenv("ANCHOR_ENDPOINT")
	order := []string{""}
	if anchor != "" {
		order = []string{"", anchor, anchor, ""}
	}
	ready, runtimePart := map[string][]time.Duration{}, map[string][]time.Duration{}
	for round, endpoint := range order {
		name := "netshim"
		if endpoint != "" {
			name = "containerd"
		}
		r, p := podStartRound(b, round, endpoint, pods)
		ready[name] = append(ready[name], r...)
		runtimePart[name] = append(runtimePart[name], p...)
	}
	report(b, fmt.Sprintf("kubelet view: static pod manifest written -> pod Ready (image present), %d pods per round", pods), "ready", ready)
	report(b, "the runtime's part of it: sandbox created -> container started (CRI timestamps)", "sandbox-to-started", runtimePart)
}

func report(b *testing.B, title, metric string, samples map[string][]time.Duration) {
	fmt.Println(title)
	fmt.Printf("%-12s %4s %10s %10s %10s\n", "runtime", "N", "median ms", "p90 ms", "max ms")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	medians := map[string]time.Duration{}
	for _, name := range []string{"netshim", "containerd"} {
		ds := samples[name]
		if len(ds) == 0 {
			continue
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		medians[name] = ds[len(ds)/2]
		fmt.Printf("%-12s %4d %10.1f %10.1f %10.1f\n", name, len(ds), ms(ds[len(ds)/2]), ms(ds[len(ds)*9/10]), ms(ds[len(ds)-1]))
		b.ReportMetric(ms(ds[len(ds)/2]), name+"-"+metric+"-median-ms")
	}
	if n, a := medians["netshim"], medians["containerd"]; n > 0 && a > 0 {
		fmt.Printf("containerd/netshim median: %.2fx\n", float64(a)/float64(n))
	}
}

// podStartRound starts kubelet on endpoint (a netshim of its own when ""),
// times pods sequential pod starts after a warm-up, and stops it all.
func podStartRound(b *testing.B, round int, endpoint string, pods int) (ready, runtimePart []time.Duration) {
	b.Run(fmt.Sprintf("round%d", round), func(b *testing.B) {
		n := startOn(b, endpoint)
		image := anchorImage
		if endpoint == "" {
			image = n.pullPauseImage(b)
		}
		for i := -1; i < pods; i++ {
			name := fmt.Sprintf("start-%d-%d", round, i+1)
			d := n.timePodStart(b, name, image)
			if i >= 0 { // the first is the warm-up
				ready = append(ready, d)
				runtimePart = append(runtimePart, n.sandboxToStarted(b, name))
			}
		}
	})
	return ready, runtimePart
}

// sandboxToStarted is, from the runtime's own timestamps, the time from the
// pod's sandbox being created to its container having started: the part of
// kubelet's figure the runtime spends, with kubelet's calls in between.
func (n *node) sandboxToStarted(b testing.TB, pod string) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sbs, err := n.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		b.Fatal(err)
	}
	for _, sb := range sbs.Items {
		if !strings.HasPrefix(sb.Metadata.Name, pod) {
			continue
		}
		cs, err := n.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: sb.Id}})
		if err != nil || len(cs.Containers) == 0 {
			b.Fatalf("containers of %s: %v", pod, err)
		}
		st, err := n.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cs.Containers[0].Id})
		if err != nil {
			b.Fatal(err)
		}
		return time.Duration(st.Status.StartedAt - sb.CreatedAt)
	}
	b.Fatalf("no sandbox of %s", pod)
	return 0
}

// anchorImage is the pause image hack/anchor-containerd.sh imports.
const anchorImage = "localhost/netshim-bench/pause:1.0"

// pullPauseImage serves the static pause program as an image from a
// loopback registry and has netshim pull it, so both runtimes start pods
// of the same image already on the node.
func (n *node) pullPauseImage(b testing.TB) string {
	pause, err := os.ReadFile(filepath.Join(binDir, "pause"))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := registry.Start(b.TempDir(), registry.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(reg.Stop)
	layer, err := registry.Layer([]registry.File{{Name: "pause", Body: pause, Mode: 0o755}})
	if err != nil {
		b.Fatal(err)
	}
	img, err := registry.Image(v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535"}, layer)
	if err != nil {
		b.Fatal(err)
	}
	_, err = reg.Push("netshim-bench/pause", "1.0", img)
	ref := reg.Addr + "/netshim-bench/pause:1.0"
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runtimeapi.NewImageServiceClient(n.conn).PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		b.Fatalf("pull %s: %v", ref, err)
	}
	return ref
}

// timePodStart writes a static pod's manifest and waits for kubelet to
// report it Ready.
func (n *node) timePodStart(b testing.TB, name, image string) time.Duration {
	start := time.Now()
	if err := os.WriteFile(filepath.Join(n.manifests, name+".yaml"), []byte(fmt.Sprintf(podStartManifest, name, image)), 0o644); err != nil {
		b.Fatal(err)
	}
	deadline := start.Add(2 * time.Minute)
	for {
		if p := n.pod(name); p != nil {
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" {
					return time.Since(start)
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("pod %s not Ready in 2 min", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

