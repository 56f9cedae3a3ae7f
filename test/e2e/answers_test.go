package e2e

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopContainer and StopPodSandbox of an unknown ID succeed, as the CRI
// says, containerd answers and critest's Idempotence tests check; but the
// unknown ID is logged, so that a typo in `crictl stop` does not pass
// unseen (issue 26.8: it was silent).
func TestUnknownIDsInStopsAreLogged(t *testing.T) {
	s := startShim(t)
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: "zzz"}); err != nil {
		t.Errorf("StopContainer of an unknown ID: %v, want success", err)
	}
	if _, err := s.rt.StopPodSandbox(s.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: "yyy"}); err != nil {
		t.Errorf("StopPodSandbox of an unknown ID: %v, want success", err)
	}
	eventually(t, 10*time.Second, "the unknown IDs to be logged", func() bool {
		log := s.log()
		return strings.Contains(log, `unknown container: nothing to stop" container="zzz"`) &&
			strings.Contains(log, `unknown sandbox: nothing to stop" sandbox="yyy"`)
	})
}

// An error says each thing once, in words: no empty context (": pull"),
// no Go map from the registry client, no runtime error repeated (26.8).
func TestErrorsSayEachThingOnce(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	missing := strings.TrimSuffix(image, ":1") + ":no-such-tag"
	_, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: missing}})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.NotFound || strings.HasPrefix(msg, ":") || strings.Contains(msg, "map[") || !strings.Contains(msg, missing) {
		t.Errorf("pull of a missing tag: %v; want NotFound naming the image, without a stray colon or a Go map", err)
	}

	s.pull(image)
	podCfg := podWithLogs(t, "no-command")
	pod := s.runPod(podCfg)
	cfg := ctrConfig("nocmd", image, "")
	cfg.Command = []string{"/no/such/command"}
	resp, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err == nil { // runc may refuse it at start rather than at create
		_, err = s.rt.StartContainer(s.ctx(), &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId})
	}
	msg = status.Convert(err).Message()
	if err == nil || !strings.Contains(msg, "/no/such/command") || strings.Count(msg, "no such file or directory") > 1 ||
		strings.Count(msg, "runc create failed") > 1 {
		t.Errorf("a container whose command does not exist: %v; want one error naming the command, said once", err)
	}
	s.removePod(pod)
}
