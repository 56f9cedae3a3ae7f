package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/test/netcheck"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// netshim is killed (SIGKILL, no clean-up) at each step of the pod path while
// 20 RunPodSandbox calls are in flight. After a restart every sandbox it lists
// is READY with a working network or NOTREADY, and once all are stopped and
// removed nothing is left: no links, pins, pause processes, runtime
// containers, checkpoints or IP reservations.
func TestKillAtEveryStepLeavesNothingBehind(t *testing.T) {
	for _, point := range []string{
		crashpoint.BeforeNetNSPin, crashpoint.AfterNetNSPin, crashpoint.AfterPauseStart,
		crashpoint.AfterCNILoopback, crashpoint.AfterCNIDefault, crashpoint.DuringStop,
	} {
		t.Run(point, func(t *testing.T) {
			pausesBefore := countPause(t, nil)
			s := startShim(t)
			if point == crashpoint.DuringStop {
				ids := runConcurrently(s, 20)
				s.restartWithEnv(crashpoint.EnvVar + "=" + point)
				stopConcurrently(s, ids[:len(ids)/2]) // the other half must come back READY and reachable
			} else {
				s.restartWithEnv(crashpoint.EnvVar + "=" + point)
				runConcurrently(s, 20)
			}
			s.waitKilled()
			s.env = nil
			s.start()

			resp, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				t.Fatal(err)
			}
			ready := 0
			for _, p := range resp.Items {
				if p.State != runtimeapi.PodSandboxState_SANDBOX_READY {
					continue
				}
				ready++
				st, _ := s.status(p.Id)
				if err := netcheck.Ping("", net.ParseIP(st.Network.Ip)); err != nil {
					t.Errorf("READY sandbox %s (%s) has no working network after the restart: %v", p.Id[:12], st.Network.Ip, err)
				}
			}
			undone := strings.Count(s.log(), "Undoing sandbox whose set-up was interrupted")
			t.Logf("killed at %s: %d set-ups caught mid-flight and undone; %d sandboxes listed after the restart, %d READY",
				point, undone, len(resp.Items), ready)
			for _, p := range resp.Items {
				s.stopPod(p.Id)
				s.removePod(p.Id)
			}
			if p := s.bridgePorts(); len(p) != 0 {
				t.Errorf("links left on the bridge: %v", p)
			}
			if r := s.ipReservations(); len(r) != 0 {
				t.Errorf("IP reservations left: %v", r)
			}
			for _, d := range []string{s.netnsDir, filepath.Join(s.dir, "run", "runtime"), filepath.Join(s.dir, "root", "sandboxes")} {
				if e, _ := os.ReadDir(d); len(e) != 0 {
					t.Errorf("%s holds %d entries (first %s), want 0", d, len(e), e[0].Name())
				}
			}
			eventually(t, orphanReapWait, "the pause processes to be gone", func() bool { return countPause(t, s) <= pausesBefore })
		})
	}
}

func runConcurrently(s *shim, n int) []string {
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig(fmt.Sprintf("fault-%d", i))})
			if err == nil {
				mu.Lock()
				ids = append(ids, resp.PodSandboxId)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ids
}

func stopConcurrently(s *shim, ids []string) {
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.rt.StopPodSandbox(s.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
		}()
	}
	wg.Wait()
}

// restartWithEnv restarts netshim with extra environment (a crash point).
func (s *shim) restartWithEnv(env ...string) {
	s.t.Helper()
	s.stop(15)
	s.env = env
	s.start()
}

// waitKilled waits for netshim to have died at its crash point.
func (s *shim) waitKilled() {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
		s.cmd = nil
		if s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
	case <-time.After(30 * time.Second):
		s.t.Fatal("netshim was not killed at its crash point")
	}
}

// netshim is killed (SIGKILL) in the middle of each container step while
// 20 pods of two containers each go through it at once. After a restart
// every container is listed in a real state, and once the pods are removed
// nothing is left: no overlay mounts, conmon or container processes,
// bundles, writable layers, records or runc state.
func TestKillDuringContainerStepsLeavesNothingBehind(t *testing.T) {
	image := busyboxImage(t)
	for _, point := range []string{
		crashpoint.DuringContainerCreate, crashpoint.DuringContainerStart,
		crashpoint.DuringContainerStop, crashpoint.DuringContainerRemove,
	} {
		t.Run(point, func(t *testing.T) {
			s := startShim(t)
			s.pull(image)
			type pod struct {
				id  string
				cfg *runtimeapi.PodSandboxConfig
			}
			pods := make([]pod, 20)
			for i := range pods {
				cfg := podWithLogs(t, fmt.Sprintf("cfault-%d", i))
				pods[i] = pod{s.runPod(cfg), cfg}
			}
			// Each pod's two containers, concurrently across pods; errors
			// are expected once netshim dies.
			eachPod := func(step func(p pod, name string)) {
				var wg sync.WaitGroup
				for _, p := range pods {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for _, name := range []string{"a", "b"} {
							step(p, name)
						}
					}()
				}
				wg.Wait()
			}
			ids := sync.Map{} // pod id + name → container id
			create := func(p pod, name string) {
				resp, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{
					PodSandboxId: p.id, Config: ctrConfig(name, image, "exec sleep 3600"), SandboxConfig: p.cfg})
				if err != nil {
					return
				}
				ids.Store(p.id+name, resp.ContainerId)
				_, _ = s.rt.StartContainer(s.ctx(), &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId})
			}
			call := func(f func(id string)) func(p pod, name string) {
				return func(p pod, name string) {
					if id, ok := ids.Load(p.id + name); ok {
						f(id.(string))
					}
				}
			}
			stop := call(func(id string) {
				_, _ = s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1})
			})
			remove := call(func(id string) {
				_, _ = s.rt.RemoveContainer(s.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id})
			})
			env := crashpoint.EnvVar + "=" + point
			switch point {
			case crashpoint.DuringContainerCreate, crashpoint.DuringContainerStart:
				s.restartWithEnv(env)
				eachPod(create)
			case crashpoint.DuringContainerStop:
				eachPod(create)
				s.restartWithEnv(env)
				eachPod(stop)
			case crashpoint.DuringContainerRemove:
				eachPod(create)
				eachPod(stop)
				s.restartWithEnv(env)
				eachPod(remove)
			}
			s.waitKilled()
			s.env = nil
			s.start()

			resp, err := s.rt.ListContainers(s.ctx(), &runtimeapi.ListContainersRequest{})
			if err != nil {
				t.Fatal(err)
			}
			states := map[runtimeapi.ContainerState]int{}
			for _, c := range resp.Containers {
				states[c.State]++
				st := s.containerStatus(c.Id)
				if st.State == runtimeapi.ContainerState_CONTAINER_RUNNING && st.StartedAt == 0 {
					t.Errorf("container %s is RUNNING without a start time", c.Id[:12])
				}
			}
			t.Logf("killed during %s: %d containers listed after the restart, by state %v", point, len(resp.Containers), states)
			for _, p := range pods {
				s.stopPod(p.id)
				s.removePod(p.id)
			}
			s.assertNoContainersLeft()
			if e, _ := os.ReadDir(filepath.Join(s.dir, "run", "runtime")); len(e) != 0 {
				t.Errorf("%d pause containers left in runc's state", len(e))
			}
		})
	}
}
