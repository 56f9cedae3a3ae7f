package e2e

import (
	"fmt"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/netshim/netshim/test/registry"
)

// An image of 45 layers, as kubelet pulls in practice, runs: it failed
// with "too many layers for one overlay mount". Every layer is seen.
func TestDeepImageRuns(t *testing.T) {
	reg := testRegistry(t)
	files, err := registry.BusyboxFiles()
	if err != nil {
		t.Fatal(err)
	}
	base, err := registry.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	layers := []v1.Layer{base}
	const n = 45
	for i := 1; i < n; i++ {
		l, err := registry.Layer([]registry.File{{Name: fmt.Sprintf("layers/%02d", i), Body: []byte(fmt.Sprintf("%d\n", i))}})
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := registry.Image(v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("e2e/deep", "1", img); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	ref := reg.Addr + "/e2e/deep:1"
	s.pull(ref)
	podCfg := podWithLogs(t, "deep")
	pod := s.runPod(podCfg)
	ctr := s.runContainer(pod, podCfg, ctrConfig("c", ref, "exec sleep 3600"))
	out := s.execSync(ctr, "sh", "-c", "ls /layers | wc -l; cat /layers/01 /layers/44")
	if got, want := strings.Fields(out), []string{fmt.Sprint(n - 1), "1", fmt.Sprint(n - 1)}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("in the %d-layer container: %q, want %v", n, out, want)
	}
	s.removePod(pod)
}
