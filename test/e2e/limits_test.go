package e2e

import (
	"fmt"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubelet sends requests up to its 16 MiB gRPC limit, and containerd takes
// them: a CreateContainer with 5 MiB of annotations must not be refused
// by gRPC's 4 MiB default (issue 23.15).
func TestLargeRequestsUpToKubeletsLimitAreTaken(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "big-annotations")
	pod := s.runPod(podCfg)
	cfg := ctrConfig("big", image, "exec sleep 3600")
	cfg.Annotations = map[string]string{}
	for i := range 5 {
		cfg.Annotations[fmt.Sprintf("example.com/big-%d", i)] = strings.Repeat("a", 1<<20)
	}
	resp, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		t.Fatalf("CreateContainer with 5 MiB of annotations: %v", err)
	}
	st := s.containerStatus(resp.ContainerId)
	if got := len(st.Annotations["example.com/big-4"]); got != 1<<20 {
		t.Errorf("an annotation of 1 MiB came back with %d bytes", got)
	}
	s.removePod(pod)
}

// An ExecSync whose command fills both stdout and stderr past their caps
// still answers within kubelet's 16 MiB message limit, framing included
// (issue 23.12: it was 10 bytes over, and kubelet refused the answer).
func TestExecSyncAnswerFitsKubeletsLimit(t *testing.T) {
	s := startShim(t)
	pod, ctr := streamPod(t, s)
	// The harness's client receives at most 16 MiB, as kubelet does.
	resp, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr,
		Cmd: []string{"sh", "-c", "head -c 20000000 /dev/zero; head -c 20000000 /dev/zero >&2"}})
	if err != nil {
		t.Fatalf("ExecSync with 20 MB on each stream: %v", err)
	}
	for name, out := range map[string][]byte{"stdout": resp.Stdout, "stderr": resp.Stderr} {
		if len(out) < 8<<20-1024 || !strings.HasSuffix(string(out), "[output truncated: over 8 MiB]\n") {
			t.Errorf("%s: %d bytes ending %q, want about 8 MiB ending with the truncation note", name, len(out), out[max(0, len(out)-40):])
		}
	}
	s.removePod(pod)
}
