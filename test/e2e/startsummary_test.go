package e2e

import (
	"strings"
	"testing"
)

// At the default log level a pod start logs one line naming the pod and
// its sandbox, and a restart logs one line of what it took over: the pods
// and containers of the last run (issue 26.5).
func TestDefaultLogSaysPodStartsAndWhatARestartRecovered(t *testing.T) {
	s := startShim(t, withArgs("-v", "0")) // the last -v wins: the default level
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "summary")
	pod := s.runPod(podCfg)
	s.runContainer(pod, podCfg, ctrConfig("summary", image, "sleep 600"))
	var started string
	for _, l := range strings.Split(s.log(), "\n") {
		if strings.Contains(l, "Pod sandbox ready") {
			started = l
		}
	}
	if !strings.Contains(started, `pod="e2e/summary"`) || !strings.Contains(started, `sandbox="`+pod+`"`) {
		t.Errorf("no default-level line for the pod start naming pod e2e/summary and sandbox %s; log:\n%s", pod, s.log())
	}

	before := len(s.log())
	s.restart()
	restartLog := s.log()[before:]
	var summary string
	for _, l := range strings.Split(restartLog, "\n") {
		if strings.Contains(l, "Recovered pods and containers") {
			summary = l
		}
	}
	for _, want := range []string{"pods=1", "readyPods=1", "containers=1", "runningContainers=1", "networkDELsOwed=0"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the restart's summary line %q lacks %s; log of the restart:\n%s", summary, want, restartLog)
		}
	}
	s.removePod(pod)
}
