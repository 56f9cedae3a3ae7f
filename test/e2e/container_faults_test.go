package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/crashpoint"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerPIDs are the container's init and its conmon, from the verbose status.
func (s *shim) containerPIDs(id string) (pid, monitorPID int) {
	s.t.Helper()
	resp, err := s.rt.ContainerStatus(s.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		s.t.Fatal(err)
	}
	var info struct {
		PID        int `json:"pid"`
		MonitorPID int `json:"monitorPid"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || info.PID <= 0 || info.MonitorPID <= 0 {
		s.t.Fatalf("no pids in the verbose status: %v (%s)", err, resp.Info["info"])
	}
	return info.PID, info.MonitorPID
}

// While StopContainer waits out a long grace period for a container that
// traps SIGTERM, ListContainers, ContainerStatus and the stats answer
// (issue 23, fault 5): kubelet's relist must not stall for the grace
// period. Nothing is timed: each must answer while the stop still waits,
// which it does until the test kills the container.
func TestListingAnswersDuringAStop(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "patient")
	pod := s.runPod(podCfg)
	id := s.runContainer(pod, podCfg, ctrConfig("stubborn", image, `trap 'echo got-term' TERM; echo ready; while true; do sleep 0.1; done`))
	logPath := filepath.Join(podCfg.LogDirectory, "stubborn.log")
	waitLog(t, logPath, "F ready")
	pid, _ := s.containerPIDs(id)

	const grace = 120 // seconds; the test ends the stop long before
	stopCtx, cancel := context.WithTimeout(context.Background(), (grace+30)*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() {
		_, err := s.rt.StopContainer(stopCtx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: grace})
		stopped <- err
	}()
	waitLog(t, logPath, "F got-term") // the stop has begun and holds the container

	calls := map[string]func() error{
		"ListContainers": func() error {
			_, err := s.rt.ListContainers(stopCtx, &runtimeapi.ListContainersRequest{})
			return err
		},
		"ContainerStatus": func() error {
			_, err := s.rt.ContainerStatus(stopCtx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			return err
		},
		"ContainerStats": func() error {
			_, err := s.rt.ContainerStats(stopCtx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
			return err
		},
		"ListContainerStats": func() error {
			_, err := s.rt.ListContainerStats(stopCtx, &runtimeapi.ListContainerStatsRequest{})
			return err
		},
	}
	type answer struct {
		call string
		err  error
	}
	answers := make(chan answer, len(calls))
	for name, call := range calls {
		go func() { answers <- answer{name, call()} }()
	}
	for range calls {
		select {
		case a := <-answers:
			if a.err != nil {
				t.Errorf("%s during the stop: %v", a.call, a.err)
			}
		case err := <-stopped:
			t.Fatalf("the stop ended (%v) before every listing call answered: they waited on it", err)
		}
	}
	// End the stop: kill the container's init (this test's own process).
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
	case <-stopCtx.Done():
		t.Fatal("StopContainer did not return after its container was killed")
	}
	if st := s.containerStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("after the stop: %s exit %d, want exited 137", st.State, st.ExitCode)
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// isZombie says whether pid is a zombie no one has reaped.
func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// A container whose conmon was killed (kill -9) can still be stopped, and
// its init is reaped rather than left a zombie until netshim restarts
// (issue 23, fault 18): netshim, the subreaper, inherits it from conmon.
func TestKilledMonitorLeavesNoZombie(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "orphaned")
	pod := s.runPod(podCfg)
	id := s.runContainer(pod, podCfg, ctrConfig("orphan", image, `echo ready; exec sleep 600`))
	waitLog(t, filepath.Join(podCfg.LogDirectory, "orphan.log"), "F ready")
	pid, monitor := s.containerPIDs(id)
	if err := syscall.Kill(monitor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the killed conmon to be gone", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", monitor))
		return os.IsNotExist(err)
	})
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Errorf("StopContainer without its conmon: %v", err)
	}
	eventually(t, 20*time.Second, "the container's init to be reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err)
	})
	if isZombie(pid) {
		t.Errorf("init %d is a zombie", pid)
	}
	if st := s.containerStatus(id); st.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container still running after its stop: %+v", st)
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// A start cut short after `runc start` (netshim killed before it recorded
// RUNNING) leaves a container that runs; after the restart it reads
// RUNNING, not CREATED for good, and a stop sends it SIGTERM before
// SIGKILL (issue 23, fault 6).
func TestStartCutShortReadsRunningAfterRestart(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "cutshort")
	pod := s.runPod(podCfg)
	id := s.createContainer(pod, podCfg, ctrConfig("cut", image, `trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done`))

	s.restartWithEnv(crashpoint.EnvVar + "=" + crashpoint.DuringContainerStart)
	_, _ = s.rt.StartContainer(s.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}) // netshim dies in it
	s.waitKilled()
	s.env = nil
	s.start()

	logPath := filepath.Join(podCfg.LogDirectory, "cut.log")
	waitLog(t, logPath, "F ready") // runc did start it
	if st := s.containerStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 {
		t.Fatalf("after the restart: %s started %d, want RUNNING with a start time", st.State, st.StartedAt)
	}
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logPath, "F got-term")
	if st := s.containerStatus(id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 3 {
		t.Errorf("after the stop: %s exit %d, want exited 3 (its SIGTERM trap)", st.State, st.ExitCode)
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}
