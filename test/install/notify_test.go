package install

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netshim/netshim/test/bench"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// notifyNode is a netshim of the test's own, started as systemd starts a
// Type=notify service: with NOTIFY_SOCKET naming a datagram socket the test
// listens on.
type notifyNode struct {
	t      *testing.T
	dir    string
	socket string
	notify *net.UnixConn
	cmd    *exec.Cmd
	log    string
	// config is the --config file; "" reads none (not the host's
	// /etc/netshim/netshim.toml).
	config string
}

func newNotifyNode(t *testing.T) *notifyNode {
	t.Helper()
	needRoot(t)
	needBinary(t, "netshim")
	needBinary(t, "runc")
	needBinary(t, "pause")
	if _, err := exec.LookPath("conmon"); err != nil {
		t.Fatalf("conmon is missing (make deps installs it): %v", err)
	}
	n := &notifyNode{t: t, dir: t.TempDir()}
	n.socket = filepath.Join(n.dir, "netshim.sock")
	n.log = filepath.Join(n.dir, "netshim.log")
	addr := &net.UnixAddr{Name: filepath.Join(n.dir, "notify.sock"), Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	n.notify = conn
	// Runs before t.TempDir's removal: pods, pins and mounts go first.
	t.Cleanup(n.cleanup)
	return n
}

func (n *notifyNode) start() {
	n.t.Helper()
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logFile.Close()
	n.cmd = exec.Command(filepath.Join(binDir, "netshim"),
		"--container-runtime-endpoint", "unix://"+n.socket,
		"--root-dir", filepath.Join(n.dir, "root"),
		"--state-dir", filepath.Join(n.dir, "run"),
		"--netns-dir", filepath.Join(n.dir, "netns"),
		"--network-plugin", "none",
		"--cni-conf-dir", filepath.Join(n.dir, "net.d"),
		"--cni-cache-dir", filepath.Join(n.dir, "cni-cache"),
		"--config="+n.config,
		"-v", "2")
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	n.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.notify.LocalAddr().String())
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
}

// awaitReady reads the next notification; it must be READY=1, and the CRI
// socket must accept a connection at once, with no retry.
func (n *notifyNode) awaitReady() {
	n.t.Helper()
	buf := make([]byte, 4096)
	_ = n.notify.SetReadDeadline(time.Now().Add(60 * time.Second))
	k, err := n.notify.Read(buf)
	if err != nil {
		n.t.Fatalf("no notification from netshim in 60s: %v\nlog:\n%s", err, readFile(n.t, n.log))
	}
	if msg := string(buf[:k]); msg != "READY=1" {
		n.t.Fatalf("netshim notified %q, want READY=1", msg)
	}
	c, err := net.Dial("unix", n.socket)
	if err != nil {
		n.t.Fatalf("READY=1 came before the CRI socket accepts: %v", err)
	}
	c.Close()
}

func (n *notifyNode) client() runtimeapi.RuntimeServiceClient {
	n.t.Helper()
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// stop ends netshim by its PID, as systemd's KillMode=process does: SIGTERM
// to netshim alone.
func (n *notifyNode) stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		bench.StopProcess(n.cmd, 15*time.Second)
		n.cmd = nil
	}
}

func (n *notifyNode) cleanup() {
	if n.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rt := n.client()
		if list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range list.Items {
				if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					n.t.Errorf("cleanup: remove sandbox %s: %v", p.Id, err)
				}
			}
		}
		cancel()
	}
	n.stop()
	removed, err := bench.RemoveLeftoverSandboxes(filepath.Join(binDir, "runc"), filepath.Join(n.dir, "root"), filepath.Join(n.dir, "run"))
	for _, r := range removed {
		n.t.Errorf("cleanup: %s was left behind", r)
	}
	if err != nil {
		n.t.Errorf("cleanup: %v", err)
	}
	for _, m := range bench.UnmountAllUnder(n.dir) {
		n.t.Errorf("cleanup: %s was still mounted", m)
	}
	n.notify.Close()
	if n.t.Failed() {
		if b, err := os.ReadFile(n.log); err == nil {
			n.t.Logf("netshim log:\n%s", b)
		}
	}
}

// Under Type=notify systemd counts netshim started when READY=1 arrives;
// kubelet (ordered after it) then connects at once. So READY=1 must come
// only once the socket accepts, after recovery, and again after a restart;
// and NOTIFY_SOCKET must not reach netshim's children: runc, given one,
// would wait for the pause container's own READY=1 and never start a pod.
func TestNotifyReadyOnFakeNotifySocket(t *testing.T) {
	n := newNotifyNode(t)
	n.start()
	n.awaitReady()

	rt := n.client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.Version != "0.1.0" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version right after READY=1: %+v, %v", v, err)
	}

	// A pod starts: runc did not inherit NOTIFY_SOCKET.
	podCtx, podCancel := context.WithTimeout(ctx, 20*time.Second)
	defer podCancel()
	pod, err := rt.RunPodSandbox(podCtx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "notify", Namespace: "install-test", Uid: "install-test-notify"},
		Hostname:     "notify",
		LogDirectory: filepath.Join(n.dir, "logs"),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}})
	if err != nil {
		t.Fatalf("RunPodSandbox under NOTIFY_SOCKET: %v", err)
	}
	pausePID := sandboxPID(t, rt, pod.PodSandboxId)
	if env, err := os.ReadFile("/proc/" + pausePID + "/environ"); err == nil && strings.Contains(string(env), "NOTIFY_SOCKET") {
		t.Errorf("the pause process was started with NOTIFY_SOCKET")
	}

	// A restart, as `systemctl restart netshim` with KillMode=process: the
	// pod's pause outlives netshim, and the next netshim is READY again
	// with the pod recovered.
	n.stop()
	if !alive(pausePID) {
		t.Fatalf("pause %s died with netshim", pausePID)
	}
	n.start()
	n.awaitReady()
	rt = n.client()
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod.PodSandboxId})
	if err != nil || st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("after the restart the pod is %v, %v; want READY", st.GetStatus().GetState(), err)
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
}

// sandboxPID reads the pause PID from the sandbox's verbose status.
func sandboxPID(t *testing.T, rt runtimeapi.RuntimeServiceClient, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		PID json.Number `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.PID == "" || info.PID == "0" {
		t.Fatalf("no pause pid in the sandbox's info %q: %v", st.Info["info"], err)
	}
	return info.PID.String()
}

func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	// A zombie is not a running pause.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
