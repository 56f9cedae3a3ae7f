// The cluster smoke test: a real Kubernetes cluster of three nodes on
// netshim (kube-up), the network model checked through the API as a user
// would, then kube-down, which must leave the machine as it found it.
//
// It needs root; under CI=true it fails rather than skips when it cannot run.
package kube_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/test/kube"
	"github.com/netshim/netshim/test/netcheck"
)

var binDir string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	binDir = filepath.Join(filepath.Dir(file), "..", "..", "bin")
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root (namespaces, cgroups, runc, kubelet)"
	} else if _, err := os.Stat(filepath.Join(binDir, "kube-apiserver")); err != nil {
		reason = "bin/kube-apiserver missing: run `make kube-build` (or `make test`)"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "kube: cannot run under CI: %s\n", reason)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "kube: skipped: %s\n", reason)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The workload: two agnhost web servers on node1 and node2 behind a
// ClusterIP and a NodePort Service (web-1 also on hostPort 30080), and a
// client on node3.
const workload = `
apiVersion: v1
kind: Namespace
metadata: {name: smoke}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: smoke, labels: {app: web}}
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [netexec, --http-port=8080]
    ports: [{containerPort: 8080, hostPort: 30080}]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: smoke, labels: {app: web}}
spec:
  nodeName: node2
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [netexec, --http-port=8080]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: smoke}
spec:
  nodeName: node3
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: registry.k8s.io/e2e-test-images/agnhost:2.56
    args: [pause]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: smoke}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: smoke}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`

// TestClusterServesTheNetworkModel runs the cluster with each of flannel's
// backends.
func TestClusterServesTheNetworkModel(t *testing.T) {
	for _, backend := range kube.Backends {
		t.Run(backend, func(t *testing.T) { testNetworkModel(t, backend) })
	}
}

func testNetworkModel(t *testing.T, backend string) {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	// Short: kubelet's unix sockets live below it, and a socket path has
	// at most 107 bytes (t.TempDir's names the subtest).
	dir, err := os.MkdirTemp("", "nsk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	logf := func(format string, a ...any) {
		t.Logf("kube-up %5.1fs: %s", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	c, err := kube.Up(ctx, kube.Spec{Name: "nsk" + hex.EncodeToString(b), Nodes: 3, Backend: backend, BinDir: binDir, Dir: dir}, logf)
	if c != nil {
		defer func() {
			if err := c.Down(context.Background()); err != nil {
				t.Errorf("kube-down: %v", err)
			}
			if left := c.Leftovers(); len(left) > 0 {
				t.Errorf("kube-down left on the machine: %v", left)
			}
		}()
	}
	if err != nil {
		dumpLogs(t, dir)
		t.Fatalf("kube-up: %v", err)
	}
	t.Logf("cluster up in %v", time.Since(start).Round(time.Second))
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := c.Kubectl(ctx, "", args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	// kubelet shows a runtime version it cannot parse as "Unknown".
	if v := kubectl("get", "nodes", "-o", "jsonpath={.items[*].status.nodeInfo.containerRuntimeVersion}"); !strings.HasPrefix(v, "netshim://") || strings.Contains(v, "Unknown") {
		t.Errorf("the nodes' containerRuntimeVersion is %q, want netshim://VERSION", v)
	}
	if _, err := c.Kubectl(ctx, workload, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Kubectl(ctx, "", "-n", "smoke", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=240s"); err != nil {
		out, _ := c.Kubectl(ctx, "", "-n", "smoke", "describe", "pods")
		t.Fatalf("pods not Ready: %v\n%s", err, out)
	}
	ip := func(pod string) string {
		return kubectl("-n", "smoke", "get", "pod", pod, "-o", "jsonpath={.status.podIP}")
	}
	web1, client := ip("web-1"), ip("client")
	// exec in the client, retrying while kube-proxy catches up with the endpoints.
	curl := func(url string) (string, error) {
		var out string
		var err error
		for i := 0; i < 20; i++ {
			out, err = c.Kubectl(ctx, "", "-n", "smoke", "exec", "client", "--", "curl", "-sS", "--max-time", "3", url)
			if err == nil {
				return strings.TrimSpace(out), nil
			}
			time.Sleep(time.Second)
		}
		return out, err
	}

	t.Run("a Service by its DNS name", func(t *testing.T) {
		got, err := curl("http://web.smoke.svc.cluster.local/hostname")
		if err != nil {
			t.Fatal(err)
		}
		if got != "web-1" && got != "web-2" {
			t.Fatalf("the Service answered %q, want web-1 or web-2", got)
		}
	})

	t.Run("pod to pod across nodes without NAT", func(t *testing.T) {
		got, err := curl("http://" + web1 + ":8080/clientip")
		if err != nil {
			t.Fatal(err)
		}
		host, _, err := net.SplitHostPort(got)
		if err != nil {
			t.Fatalf("clientip answered %q: %v", got, err)
		}
		if host != client {
			t.Fatalf("web-1 on node1 saw the client on node3 as %s, want its own pod IP %s (NAT in between)", host, client)
		}
	})

	nodes := c.NodeList()
	fromNode := func(node int, url string) (string, error) {
		client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: netcheck.DialerIn(nodes[node].NetNS)}}
		var last error
		for i := 0; i < 20; i++ {
			resp, err := client.Get(url)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return strings.TrimSpace(string(body)), nil
			}
			last = err
			time.Sleep(time.Second)
		}
		return "", last
	}

	t.Run("a hostPort from another node", func(t *testing.T) {
		got, err := fromNode(1, fmt.Sprintf("http://%s:30080/hostname", nodes[0].IP))
		if err != nil {
			t.Fatal(err)
		}
		if got != "web-1" {
			t.Fatalf("node1's hostPort 30080 answered %q to node2, want web-1", got)
		}
	})

	t.Run("a NodePort from another node", func(t *testing.T) {
		port := kubectl("-n", "smoke", "get", "service", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
		got, err := fromNode(2, fmt.Sprintf("http://%s:%s/hostname", nodes[0].IP, port))
		if err != nil {
			t.Fatal(err)
		}
		if got != "web-1" && got != "web-2" {
			t.Fatalf("node1's NodePort %s answered %q to node3, want web-1 or web-2", port, got)
		}
	})

	t.Run("deleting the pods leaves nothing on any node", func(t *testing.T) {
		if _, err := c.Kubectl(ctx, "", "delete", "namespace", "smoke", "--wait=true", "--timeout=180s"); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			rt, err := n.Runtime()
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for {
				pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var smoke, ready []string
				for _, p := range pods.Items {
					if p.GetMetadata().GetNamespace() == "smoke" {
						smoke = append(smoke, p.GetMetadata().GetName())
					} else if p.State == runtimeapi.PodSandboxState_SANDBOX_READY {
						ready = append(ready, p.GetMetadata().GetName())
					}
				}
				ips := n.IPReservations("kubenet")
				// kubelet removes a deleted pod's sandbox a little after the
				// pod object is gone; every IP left must be a live pod's.
				if len(smoke) == 0 && len(ips) == len(ready) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still has sandboxes %v of the deleted pods, and %d IPs reserved for %d ready pods %v",
						n.Name, smoke, len(ips), len(ready), ready)
				}
				time.Sleep(time.Second)
			}
		}
	})
}

// dumpLogs prints the end of every log of a cluster that failed to come up.
func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	nodeLogs, _ := filepath.Glob(filepath.Join(dir, "nodes", "*", "netshim.log"))
	for _, l := range append(logs, nodeLogs...) {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		t.Logf("--- %s:\n%s", l, strings.Join(lines, "\n"))
	}
}
