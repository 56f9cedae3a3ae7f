package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netshim/netshim/test/bench"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pull pulls ref through netshim and returns the image ID.
func (s *shim) pull(ref string) string {
	s.t.Helper()
	resp, err := s.img.PullImage(s.ctx(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		s.t.Fatalf("PullImage %s: %v", ref, err)
	}
	return resp.ImageRef
}

// ctrConfig is a container of the busybox image running sh -c script.
func ctrConfig(name, image, script string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Command:  []string{"/bin/sh", "-c", script},
		LogPath:  name + ".log",
		Labels:   map[string]string{"ctr": name},
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
}

func (s *shim) createContainer(pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	s.t.Helper()
	resp, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if err != nil {
		s.t.Fatalf("CreateContainer %s: %v", cfg.Metadata.Name, err)
	}
	return resp.ContainerId
}

func (s *shim) runContainer(pod string, podCfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	s.t.Helper()
	id := s.createContainer(pod, podCfg, cfg)
	if _, err := s.rt.StartContainer(s.ctx(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		s.t.Fatalf("StartContainer %s: %v", cfg.Metadata.Name, err)
	}
	return id
}

func (s *shim) containerStatus(id string) *runtimeapi.ContainerStatus {
	s.t.Helper()
	resp, err := s.rt.ContainerStatus(s.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		s.t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.Status
}

// waitLog waits until the container's CRI log holds want, and returns the log.
func waitLog(t *testing.T, path, want string) string {
	t.Helper()
	var log string
	eventually(t, 20*time.Second, "log "+path+" to hold "+want, func() bool {
		data, _ := os.ReadFile(path)
		log = string(data)
		return strings.Contains(log, want)
	})
	return log
}

func (s *shim) waitExited(id string) *runtimeapi.ContainerStatus {
	s.t.Helper()
	var st *runtimeapi.ContainerStatus
	eventually(s.t, 20*time.Second, "container "+id[:12]+" to exit", func() bool {
		st = s.containerStatus(id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	return st
}

// podWithLogs is a pod config whose log directory is a fresh temp dir.
func podWithLogs(t *testing.T, name string) *runtimeapi.PodSandboxConfig {
	cfg := podConfig(name)
	cfg.LogDirectory = t.TempDir()
	return cfg
}

// Two containers of one pod share its network (one reaches the other on
// localhost; both see the pod IP), its IPC and UTS namespaces (hostname is
// the pod's), and with PID POD its PID namespace (pause is PID 1). Their
// logs are in kubelet's format at exactly the paths kubelet gave.
func TestContainersShareThePod(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "pair")
	podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}
	pod := s.runPod(podCfg)
	_, info := s.status(pod)

	server := ctrConfig("server", image, "echo served-by-server > /tmp/index.html; echo shm > /dev/shm/mark; exec httpd -f -p 8080 -h /tmp")
	server.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}
	serverID := s.runContainer(pod, podCfg, server)

	client := ctrConfig("client", image, `for i in $(seq 50); do wget -q -O - http://localhost:8080/index.html && break; sleep 0.1; done
echo "hostname=$(hostname)"; echo "ip=$(ip -4 -o addr show eth0)"; echo "shm=$(cat /dev/shm/mark)"
echo "pid1=$(cat /proc/1/cmdline)"; ps -o comm | sort | tr '\n' ' '; echo; echo done`)
	client.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}
	clientID := s.runContainer(pod, podCfg, client)

	clientLog := filepath.Join(podCfg.LogDirectory, "client.log")
	log := waitLog(t, clientLog, " stdout F done")
	for _, want := range []string{
		" stdout F served-by-server",
		" stdout F hostname=pair",
		info.IPs[0] + "/",
		" stdout F shm=shm",
		" stdout F pid1=/pause",
		"httpd",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("client log lacks %q:\n%s", want, log)
		}
	}
	st := s.waitExited(clientID)
	if st.ExitCode != 0 || st.Reason != "Completed" || st.LogPath != clientLog {
		t.Errorf("client status: exit %d reason %q log path %q (want %q)", st.ExitCode, st.Reason, st.LogPath, clientLog)
	}
	if st.StartedAt == 0 || st.FinishedAt < st.StartedAt {
		t.Errorf("client times: started %d finished %d", st.StartedAt, st.FinishedAt)
	}
	if st := s.containerStatus(serverID[:13]); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("server by its 13-character prefix: %s", st.State)
	}

	list, err := s.rt.ListContainers(s.ctx(), &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		PodSandboxId: pod[:13], State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Containers) != 1 || list.Containers[0].Id != serverID {
		t.Errorf("running containers of the pod: %v", list.Containers)
	}

	// Stopping the pod stops its containers first; removing it removes them.
	s.stopPod(pod)
	if st := s.containerStatus(serverID); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("server after StopPodSandbox: %s", st.State)
	}
	s.removePod(pod)
	if _, err := s.rt.ContainerStatus(s.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: serverID}); err == nil {
		t.Error("container still known after RemovePodSandbox")
	}
	s.assertNoContainersLeft()
}

// assertNoContainersLeft checks what a removed container must not leave:
// an overlay mount, a conmon, a runc container, a bundle or writable layer.
func (s *shim) assertNoContainersLeft() {
	s.t.Helper()
	data, _ := os.ReadFile("/proc/mounts")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "overlay" && strings.HasPrefix(f[1], s.dir) {
			s.t.Errorf("overlay still mounted: %s", f[1])
		}
	}
	for _, d := range []string{"run/containers/bundles", "run/containers-runc", "root/containers/layers", "root/containers/checkpoints"} {
		entries, _ := os.ReadDir(filepath.Join(s.dir, d))
		if len(entries) > 0 {
			s.t.Errorf("%s still holds %d entries", d, len(entries))
		}
	}
	for _, pid := range bench.LivePIDsNamed("conmon") {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.Contains(string(cmdline), s.dir) {
			s.t.Errorf("conmon pid %d of this test still runs", pid)
		}
	}
}

// StopContainer sends SIGTERM and waits the grace period: a container that
// traps it exits on its own; one that ignores it is killed after the timeout.
func TestStopGracePeriod(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "grace")
	pod := s.runPod(podCfg)
	polite := s.runContainer(pod, podCfg, ctrConfig("polite", image, `trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done`))
	stubborn := s.runContainer(pod, podCfg, ctrConfig("stubborn", image, `trap '' TERM; echo ready; while true; do sleep 0.1; done`))
	waitLog(t, filepath.Join(podCfg.LogDirectory, "polite.log"), "F ready")
	waitLog(t, filepath.Join(podCfg.LogDirectory, "stubborn.log"), "F ready")

	start := time.Now()
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: polite, Timeout: 20}); err != nil {
		t.Fatal(err)
	}
	if st := s.containerStatus(polite); st.ExitCode != 3 || time.Since(start) > 10*time.Second {
		t.Errorf("polite: exit %d after %v, want 3 at once", st.ExitCode, time.Since(start))
	}
	waitLog(t, filepath.Join(podCfg.LogDirectory, "polite.log"), "F got-term")

	start = time.Now()
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: stubborn, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	st := s.containerStatus(stubborn)
	if st.ExitCode != 137 || st.Reason != "Error" {
		t.Errorf("stubborn: exit %d reason %q, want 137 Error", st.ExitCode, st.Reason)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("stubborn was killed after %v, before its 1 s grace period", d)
	}
	// Stopping again, and stopping an unknown ID, succeed.
	for _, id := range []string{stubborn, "0123456789abcdef"} {
		if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
			t.Errorf("StopContainer %s: %v", id, err)
		}
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// netshim's restart leaves containers running; one that exits while it is
// down reads exited, with its code, afterwards; logs go on.
func TestContainersSurviveRestart(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "survivor")
	pod := s.runPod(podCfg)
	long := s.runContainer(pod, podCfg, ctrConfig("long", image, `i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done`))
	short := s.runContainer(pod, podCfg, ctrConfig("short", image, `sleep 1; exit 4`))

	s.stop(9) // SIGKILL: no chance to clean up
	time.Sleep(1500 * time.Millisecond)
	s.start()

	if st := s.containerStatus(long); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("long after restart: %s", st.State)
	}
	st := s.waitExited(short)
	if st.ExitCode != 4 || st.Reason != "Error" {
		t.Errorf("short after restart: exit %d reason %q, want 4 Error", st.ExitCode, st.Reason)
	}
	data, _ := os.ReadFile(filepath.Join(podCfg.LogDirectory, "long.log"))
	n := strings.Count(string(data), "tick-")
	time.Sleep(600 * time.Millisecond)
	data, _ = os.ReadFile(filepath.Join(podCfg.LogDirectory, "long.log"))
	if strings.Count(string(data), "tick-") <= n {
		t.Error("long's log stopped growing across the restart")
	}

	// ReopenContainerLog: the rotated file keeps the old lines, a new one the new.
	logPath := filepath.Join(podCfg.LogDirectory, "long.log")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rt.ReopenContainerLog(s.ctx(), &runtimeapi.ReopenContainerLogRequest{ContainerId: long}); err != nil {
		t.Fatal(err)
	}
	// kubelet's log rotation counts on the new file being there at once.
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("ReopenContainerLog returned before the new log file existed: %v", err)
	}
	waitLog(t, logPath, "tick-")
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// Bad requests are clear errors that create nothing.
func TestCreateContainerBadInput(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "bad")
	pod := s.runPod(podCfg)
	cases := map[string]struct {
		pod string
		cfg *runtimeapi.ContainerConfig
		msg string
	}{
		"unknown pod":   {"feedface", ctrConfig("a", image, "true"), "not found"},
		"missing image": {pod, ctrConfig("a", reg.Addr+"/e2e/nothere:1", "true"), "pull it first"},
		"relative mount": {pod, func() *runtimeapi.ContainerConfig {
			c := ctrConfig("a", image, "true")
			c.Mounts = []*runtimeapi.Mount{{ContainerPath: "data", HostPath: "/tmp"}}
			return c
		}(), "mounts[0].container_path"},
		"bad memory": {pod, func() *runtimeapi.ContainerConfig {
			c := ctrConfig("a", image, "true")
			c.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}
			return c
		}(), "memory_limit_in_bytes"},
		"no command": {pod, func() *runtimeapi.ContainerConfig {
			c := ctrConfig("a", image, "true")
			c.Command = nil
			c.Image.Image = image
			return c
		}(), ""},
	}
	for name, c := range cases {
		_, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: c.pod, Config: c.cfg, SandboxConfig: podCfg})
		if name == "no command" {
			// The busybox image has a cmd (sh): this one is fine and is removed.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, c.msg)
		}
	}
	list, err := s.rt.ListContainers(s.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Containers) != 1 {
		t.Errorf("want only the one good container, have %d", len(list.Containers))
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// The verbose status carries the pid and the OCI spec, as containerd's does.
func TestContainerVerboseStatus(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "verbose")
	pod := s.runPod(podCfg)
	id := s.runContainer(pod, podCfg, ctrConfig("v", image, "sleep 60"))
	resp, err := s.rt.ContainerStatus(s.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		PID         int `json:"pid"`
		RuntimeSpec struct {
			Process struct{ Args []string } `json:"process"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatal(err)
	}
	if info.PID <= 0 || len(info.RuntimeSpec.Process.Args) != 3 {
		t.Errorf("verbose info: %+v", info)
	}
	stats, err := s.rt.ContainerStats(s.ctx(), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Stats.Memory.WorkingSetBytes.GetValue() == 0 {
		t.Errorf("no memory working set for a running container: %v", stats.Stats)
	}
	s.removePod(pod)
}

// memoryLimit reads a container's memory limit from its cgroup (v1 or v2),
// found by the cgroupsPath its verbose status gives.
func (s *shim) memoryLimit(id string) string {
	s.t.Helper()
	resp, err := s.rt.ContainerStatus(s.ctx(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		s.t.Fatal(err)
	}
	var info struct {
		CgroupsPath string `json:"cgroupsPath"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || info.CgroupsPath == "" {
		s.t.Fatalf("no cgroupsPath in the verbose status: %v", err)
	}
	file := filepath.Join("/sys/fs/cgroup", info.CgroupsPath, "memory.max")
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
		file = filepath.Join("/sys/fs/cgroup/memory", info.CgroupsPath, "memory.limit_in_bytes")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// UpdateContainerResources reaches the cgroup and the status; a container
// over its memory limit is reported OOMKilled with exit code 137.
func TestResourcesAndOOM(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "resources")
	pod := s.runPod(podCfg)

	cfg := ctrConfig("limited", image, "exec sleep 3600")
	// As kubelet sends them: a hugepage limit for each size the kernel has,
	// whether or not the node has a hugetlb cgroup controller.
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}}}
	id := s.runContainer(pod, podCfg, cfg)
	if got := s.memoryLimit(id); got != fmt.Sprint(64<<20) {
		t.Errorf("memory limit at start %s, want %d", got, 64<<20)
	}
	_, err := s.rt.UpdateContainerResources(s.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id[:12],
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuPeriod: 100000, CpuQuota: 50000}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.memoryLimit(id); got != fmt.Sprint(96<<20) {
		t.Errorf("memory limit after the update %s, want %d", got, 96<<20)
	}
	if r := s.containerStatus(id).Resources.GetLinux(); r.GetMemoryLimitInBytes() != 96<<20 || r.GetCpuQuota() != 50000 {
		t.Errorf("status resources after the update: %v", r)
	}
	_, err = s.rt.UpdateContainerResources(s.ctx(), &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id,
		Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a negative memory limit: %v, want InvalidArgument", err)
	}

	// 16 MiB of limit, 64 MB of shell variable: the kernel's OOM killer.
	hog := ctrConfig("hog", image, `x=$(head -c 64000000 /dev/zero | tr '\0' a); echo survived`)
	hog.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20, MemorySwapLimitInBytes: 16 << 20}
	hogID := s.runContainer(pod, podCfg, hog)
	st := s.waitExited(hogID)
	if st.Reason != "OOMKilled" || st.ExitCode != 137 {
		t.Errorf("the memory hog exited %d, reason %q; want 137, OOMKilled", st.ExitCode, st.Reason)
	}
	// conmon marks an OOM kill in its working directory too: that must be
	// the container's bundle, not wherever netshim was started (here).
	if _, err := os.Stat("oom"); err == nil {
		_ = os.Remove("oom")
		t.Error(`an "oom" file appeared in netshim's working directory`)
	}
	s.removePod(pod)
	s.assertNoContainersLeft()
}
