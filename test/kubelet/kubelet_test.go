// Package kubelet runs a real kubelet (v1.34, built by `make bin/kubelet`
// from the Go module proxy) in standalone mode against a netshim of its own
// and checks what a pod's owner relies on, through kubelet's read-only API,
// CRI and the host.
//
// kubelet owns its runtime: it stops every pod it did not create, and it
// changes node sysctls and makes a few host dirs. So it gets a netshim on
// temp dirs and a temp socket, runs from an empty working dir, and the test
// puts back the sysctls and removes the dirs it made.
package kubelet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/test/bench"
	"github.com/netshim/netshim/test/kubelet/standalone"
	"github.com/netshim/netshim/test/registry"
)

var binDir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "bin")
}()

type node struct {
	t                  *testing.T
	dir, sock, bridge  string
	gateway            string
	conn               *grpc.ClientConn
	rt                 runtimeapi.RuntimeServiceClient
	kubelet            *standalone.Kubelet
	manifests, podLogs string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs netshim and kubelet; everything goes at the test's end.
func start(t *testing.T) *node {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	for _, b := range []string{"kubelet", "netshim", "runc", "bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			t.Fatalf("%s missing from %s: run make bin/kubelet build tools (or make test)", b, binDir)
		}
	}
	dir, err := os.MkdirTemp("", "netshim-kubelet-")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	n := &node{t: t, dir: dir, sock: filepath.Join(dir, "netshim.sock"), bridge: "nskl" + hex.EncodeToString(b)}
	subnet := fmt.Sprintf("198.19.%d.0/24", 200+int(b[0])%40)
	n.gateway = strings.TrimSuffix(subnet, "0/24") + "1"
	t.Cleanup(func() {
		if link, err := netlink.LinkByName(n.bridge); err == nil {
			_ = netlink.LinkDel(link)
		}
		bench.UnmountAllUnder(dir)
		_ = os.RemoveAll(dir)
	})

	for _, d := range []string{filepath.Join(dir, "net.d"), filepath.Join(dir, "work"), filepath.Join(dir, "node")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"kubelet-e2e","plugins":[
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}},
{"type":"portmap","capabilities":{"portMappings":true}}]}`, n.bridge, subnet, filepath.Join(dir, "ipam"))
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-kubelet-e2e.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.run("netshim", filepath.Join(binDir, "netshim"), "--config=", "--container-runtime-endpoint", "unix://"+n.sock,
		"--root-dir", filepath.Join(dir, "root"), "--state-dir", filepath.Join(dir, "run"),
		"--netns-dir", filepath.Join(dir, "netns"), "--cni-conf-dir", filepath.Join(dir, "net.d"),
		"--cni-bin-dir", binDir, "--cni-cache-dir", filepath.Join(dir, "cni-cache"), "-v", "2")
	waitFor(t, 10*time.Second, "netshim's socket", func() bool { _, err := os.Stat(n.sock); return err == nil })
	conn, err := grpc.NewClient("unix://"+n.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.conn, n.rt = conn, runtimeapi.NewRuntimeServiceClient(conn)

	// kubelet changes node sysctls and makes host dirs; Stop puts them back.
	// Registered after netshim's clean-up, so kubelet stops first.
	k, err := standalone.Start(standalone.Options{Binary: filepath.Join(binDir, "kubelet"), Endpoint: "unix://" + n.sock,
		Dir: filepath.Join(dir, "node"), NodeName: "netshim-kubelet-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			data, _ := os.ReadFile(k.Log())
			lines := strings.Split(string(data), "\n")
			t.Logf("last lines of kubelet's log:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		k.Stop()
	})
	n.kubelet, n.manifests, n.podLogs = k, k.Manifests(), k.PodLogs()
	return n
}

// run starts a process whose output goes to dir/name.log; it is stopped by
// PID at the test's end, before the dirs go.
func (n *node) run(name, bin string, args ...string) *exec.Cmd {
	n.t.Helper()
	log, err := os.Create(filepath.Join(n.dir, name+".log"))
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = filepath.Join(n.dir, "work")
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		if name == "netshim" && n.conn != nil {
			n.removeAllPods()
			n.conn.Close()
		}
		bench.StopProcess(cmd, 15*time.Second)
		log.Close()
		if n.t.Failed() {
			data, _ := os.ReadFile(log.Name())
			lines := strings.Split(string(data), "\n")
			n.t.Logf("last lines of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
	return cmd
}

// removeAllPods removes what kubelet left (it is stopped after netshim's
// clean-up is registered, so it is already gone here).
func (n *node) removeAllPods() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pods, err := n.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		_, _ = n.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
		_, _ = n.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id})
	}
}

// pod is kubelet's view of the static pod whose name starts with name, or nil.
func (n *node) pod(name string) *standalone.Pod {
	p, _ := n.kubelet.Pod(name)
	return p
}

// container says whether a container of p is ready and how often it restarted;
// -1 restarts when p or the container is not there.
func container(p *standalone.Pod, name string) (ready bool, restarts int) {
	if p == nil {
		return false, -1
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == name {
			return c.Ready, c.RestartCount
		}
	}
	return false, -1
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const manifest = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: server
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
    ports: [{containerPort: 8080, hostPort: %[2]d}]
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
    livenessProbe:
      exec: {command: ["sh", "-c", "test ! -e /tmp/unhealthy"]}
      periodSeconds: 1
      failureThreshold: 1
  - name: sidecar
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while true; do wget -q -O- http://localhost:8080/index.html; sleep 1; done"]
  - name: crasher
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo crashing; exit 3"]
`

// A static pod of three containers goes Running and Ready through an HTTP
// readiness probe; its sidecar reaches the server on localhost; its
// hostPort answers; a failing exec liveness probe restarts its container; a
// container that exits is restarted; logs are where kubelet put them; and
// deleting the manifest removes everything.
func TestStaticPod(t *testing.T) {
	reg, err := registry.Start(t.TempDir(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()
	img, err := registry.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("kubelet/busybox", "1", img); err != nil {
		t.Fatal(err)
	}
	n := start(t)
	hostPort := freePort(t)
	started := time.Now()
	if err := os.WriteFile(filepath.Join(n.manifests, "web.yaml"), []byte(fmt.Sprintf(manifest, reg.Addr+"/kubelet/busybox:1", hostPort)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the pod to be Running with its server Ready", func() bool {
		p := n.pod("web")
		if p == nil || p.Status.Phase != "Running" {
			return false
		}
		ready, _ := container(p, "server")
		return ready
	})
	t.Logf("manifest written → server Ready in %s", time.Since(started).Round(time.Millisecond))

	// The sidecar's log, where kubelet put it, shows the page it fetched.
	waitFor(t, 30*time.Second, "the sidecar's log to show the page", func() bool {
		logs, _ := filepath.Glob(filepath.Join(n.podLogs, "default_web-*", "sidecar", "*.log"))
		for _, l := range logs {
			if data, _ := os.ReadFile(l); strings.Contains(string(data), "hello-from-web") {
				return true
			}
		}
		return false
	})

	// The hostPort answers on the node.
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/index.html", n.gateway, hostPort))
	if err != nil {
		t.Errorf("hostPort %d: %v", hostPort, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "hello-from-web") {
			t.Errorf("hostPort %d answered %q", hostPort, body)
		}
	}

	// The crashing container is restarted.
	waitFor(t, time.Minute, "the crashing container to be restarted", func() bool {
		p := n.pod("web")
		_, restarts := container(p, "crasher")
		return restarts >= 1
	})

	// A failing liveness probe restarts the server: a new attempt.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := n.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil {
		t.Fatal(err)
	}
	var server string
	for _, c := range list.Containers {
		if c.Metadata.Name == "server" {
			server = c.Id
		}
	}
	if server == "" {
		t.Fatal("no running server container in CRI")
	}
	if _, err := n.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: server, Cmd: []string{"touch", "/tmp/unhealthy"}, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the liveness probe to restart the server", func() bool {
		_, restarts := container(n.pod("web"), "server")
		return restarts >= 1
	})

	// Deleting the manifest stops and removes the pod and all it had.
	if err := os.Remove(filepath.Join(n.manifests, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	waitFor(t, 2*time.Minute, "the pod's sandbox to be removed", func() bool {
		pods, err := n.rt.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
		return err == nil && len(pods.Items) == 0
	})
	t.Logf("manifest deleted → sandbox removed in %s", time.Since(deleted).Round(time.Millisecond))
	if e, _ := os.ReadDir(filepath.Join(n.dir, "netns")); len(e) != 0 {
		t.Errorf("netns pins left: %d", len(e))
	}
	if e, _ := os.ReadDir(filepath.Join(n.dir, "run", "containers", "bundles")); len(e) != 0 {
		t.Errorf("container bundles left: %d", len(e))
	}
	if ports, _ := filepath.Glob(fmt.Sprintf("/sys/class/net/%s/brif/*", n.bridge)); len(ports) != 0 {
		t.Errorf("links left on the bridge: %v", ports)
	}
	if res, _ := filepath.Glob(filepath.Join(n.dir, "ipam", "kubelet-e2e", "1*")); len(res) != 0 {
		t.Errorf("IP reservations left: %v", res)
	}
}
