// Package multinode checks the Kubernetes network model across nodes with
// real netshim processes: every pod reaches every other pod, on any node,
// without NAT; nodes reach all pods; the IP a pod sees for itself is the IP
// others see. Each node is a network and mount namespace of its own, joined
// to the others by flannel-style host-gw routes or VXLAN (see cluster).
// It needs root; under CI=true it fails rather than skips when it cannot run.
package multinode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netshim/netshim/pkg/proc"
	"github.com/netshim/netshim/test/multinode/cluster"
	"github.com/netshim/netshim/test/netcheck"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var binDir string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	binDir = filepath.Join(filepath.Dir(file), "..", "..", "bin")
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root (network and mount namespaces, runc, bridges)"
	} else if _, err := os.Stat(filepath.Join(binDir, "netshim-cluster")); err != nil {
		reason = "bin/netshim-cluster missing: run `make build tools` (or `make test`)"
	}
	if reason != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "multinode: cannot run under CI: %s\n", reason)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "multinode: skipped: %s\n", reason)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// uniqueName prefixes everything a cluster makes, so runs never collide.
func uniqueName() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "nsmn" + hex.EncodeToString(b)
}

// hostState is what the host had before a cluster came: it must have no more
// after the cluster is gone.
type hostState struct {
	links map[string]bool
	pins  map[string]bool
}

// hostLinkNames lists the host's links, retrying a dump that concurrent
// link changes (the e2e suite's, under `go test ./...`) interrupted.
func hostLinkNames(t *testing.T) []string {
	t.Helper()
	for try := 0; ; try++ {
		links, err := netlink.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 10 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return names
	}
}

func takeHostState(t *testing.T) hostState {
	t.Helper()
	s := hostState{links: map[string]bool{}, pins: map[string]bool{}}
	for _, name := range hostLinkNames(t) {
		s.links[name] = true
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		s.pins[e.Name()] = true
	}
	return s
}

// clusterLinkName matches the links a cluster makes, all inside its own
// namespaces: were one in the host's (a netshim started outside its node,
// say), it would show here. Pod veths have random names and come and go with
// any other suite running alongside, so a stray one shows as the cni0 or
// cbr0 it hangs on.
var clusterLinkName = regexp.MustCompile(`^(underlay0|node[0-9]+|flannel\.1|cni0|cbr0)$`)

// addedSince lists the cluster-made links and the netns pins that the host
// has now and did not have at before.
func addedSince(t *testing.T, before hostState) []string {
	t.Helper()
	var added []string
	for _, name := range hostLinkNames(t) {
		if !before.links[name] && clusterLinkName.MatchString(name) {
			added = append(added, "link "+name)
		}
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if !before.pins[e.Name()] {
			added = append(added, "netns pin "+e.Name())
		}
	}
	return added
}

// startCluster brings a cluster up and, when the test ends, takes it down
// and checks that nothing of it is left and the host looks as before.
func startCluster(t *testing.T, nodes int, plugin string, backend cluster.Backend) *cluster.Cluster {
	t.Helper()
	before := takeHostState(t)
	name := uniqueName()
	spec := cluster.Spec{Name: name, Nodes: nodes, Backend: backend, Plugin: plugin,
		BinDir: binDir, StateDir: filepath.Join(os.TempDir(), name)}
	c, err := cluster.Up(ctx(t), spec)
	if err != nil {
		t.Fatalf("cluster up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				log, _ := os.ReadFile(n.Log())
				t.Logf("%s netshim log:\n%s", n.Name, log)
			}
		}
		if err := c.Down(context.Background()); err != nil {
			t.Errorf("cluster down: %v", err)
		}
		for _, l := range c.Leftovers() {
			t.Errorf("left after cluster down: %s", l)
		}
		for _, a := range addedSince(t, before) {
			t.Errorf("the host has a %s it did not have before the cluster", a)
		}
	})
	return c
}

func runPod(t *testing.T, n *cluster.Node, name string) *cluster.Pod {
	t.Helper()
	p, err := n.RunPod(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podInterface is the address and MTU the pod itself sees on its eth0.
func podInterface(t *testing.T, p *cluster.Pod) ([]net.IP, int) {
	t.Helper()
	h, err := netns.GetFromPath(p.NetNS())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	eth0, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatalf("pod %s has no eth0: %v", p.Name, err)
	}
	addrs, err := nl.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, eth0.Attrs().MTU
}

func expectPing(t *testing.T, fromNS, from string, to *cluster.Pod) {
	t.Helper()
	if err := netcheck.Ping(fromNS, to.IP); err != nil {
		t.Errorf("ping %s (%s on %s) from %s: %v", to.IP, to.Name, to.Node.Name, from, err)
	}
}

// expectTCP connects from fromNS to a server in pod `to`; the server must
// see the client's own address as the source (no NAT), and when wantSource
// is set, that address must be it.
func expectTCP(t *testing.T, fromNS, from string, wantSource net.IP, to *cluster.Pod) {
	t.Helper()
	srv, err := netcheck.Listen(to.NetNS(), to.IP)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ex, err := netcheck.Dial(fromNS, srv.Addr())
	if err != nil {
		t.Errorf("TCP from %s to %s on %s: %v", from, to.Name, to.Node.Name, err)
		return
	}
	if !ex.SeenAs.Equal(ex.ClientIP) {
		t.Errorf("TCP from %s to %s on %s: client is %s but the server saw %s: translated", from, to.Name, to.Node.Name, ex.ClientIP, ex.SeenAs)
	}
	if wantSource != nil && !ex.ClientIP.Equal(wantSource) {
		t.Errorf("TCP from %s to %s on %s: client used %s, want its own pod IP %s", from, to.Name, to.Node.Name, ex.ClientIP, wantSource)
	}
}

// The network model on three nodes, for each way of joining them: cni with
// flannel-style host-gw or VXLAN, and kubenet (PodCIDRs handed over
// UpdateRuntimeConfig) on both.
func TestNetworkModelAcrossNodes(t *testing.T) {
	for _, tc := range []struct {
		plugin  string
		backend cluster.Backend
	}{
		{"cni", cluster.HostGW},
		{"cni", cluster.VXLAN},
		{"kubenet", cluster.HostGW},
		{"kubenet", cluster.VXLAN},
	} {
		t.Run(tc.plugin+"/"+string(tc.backend), func(t *testing.T) {
			checkNetworkModel(t, startCluster(t, 3, tc.plugin, tc.backend))
		})
	}
}

func checkNetworkModel(t *testing.T, c *cluster.Cluster) {
	node1, node2, node3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	a, a2 := runPod(t, node1, "a"), runPod(t, node1, "a2")
	b, d := runPod(t, node2, "b"), runPod(t, node3, "d")
	pods := []*cluster.Pod{a, a2, b, d}
	wantMTU := 1500
	if c.Spec.Backend == cluster.VXLAN {
		wantMTU = 1450
	}

	t.Run("each pod holds the IP the runtime reports, from its node's subnet", func(t *testing.T) {
		for _, p := range pods {
			_, subnet, _ := net.ParseCIDR(p.Node.PodCIDR)
			if !subnet.Contains(p.IP) {
				t.Errorf("pod %s on %s got %v, outside the node's %s", p.Name, p.Node.Name, p.IP, subnet)
			}
			ips, mtu := podInterface(t, p)
			if !slices.ContainsFunc(ips, p.IP.Equal) {
				t.Errorf("pod %s: CRI reports %v, but its eth0 holds %v", p.Name, p.IP, ips)
			}
			if mtu != wantMTU {
				t.Errorf("pod %s: eth0 MTU %d, want %d for %s", p.Name, mtu, wantMTU, c.Spec.Backend)
			}
			if _, err := os.Lstat(p.NetNSPin); err == nil {
				t.Errorf("pod %s: its netns pin %s shows on the host; it belongs to %s's mount namespace", p.Name, p.NetNSPin, p.Node.Name)
			}
		}
	})
	t.Run("pod to pod on one node", func(t *testing.T) {
		expectPing(t, a.NetNS(), "pod a", a2)
		expectTCP(t, a.NetNS(), "pod a", a.IP, a2)
	})
	t.Run("pod to pod across nodes", func(t *testing.T) {
		expectPing(t, a.NetNS(), "pod a", b)
		expectPing(t, b.NetNS(), "pod b", d)
		expectPing(t, d.NetNS(), "pod d", a2)
		expectTCP(t, a.NetNS(), "pod a", a.IP, b)
		expectTCP(t, b.NetNS(), "pod b", b.IP, d)
		expectTCP(t, d.NetNS(), "pod d", d.IP, a)
	})
	t.Run("node to its own pods and to pods on other nodes", func(t *testing.T) {
		expectPing(t, node1.NetNS, node1.Name, a)
		expectTCP(t, node1.NetNS, node1.Name, nil, a2)
		expectPing(t, node1.NetNS, node1.Name, b)
		expectPing(t, node3.NetNS, node3.Name, a)
		expectTCP(t, node1.NetNS, node1.Name, nil, b)
		expectTCP(t, node2.NetNS, node2.Name, nil, d)
	})
	t.Run("removing every pod releases every IP", func(t *testing.T) {
		for _, p := range pods {
			if err := p.Node.RemovePod(ctx(t), p.ID); err != nil {
				t.Error(err)
			}
		}
		for _, n := range c.Nodes {
			if ips := n.IPReservations(c.Spec.Plugin); len(ips) > 0 {
				t.Errorf("%s still reserves %v after its pods were removed", n.Name, ips)
			}
		}
	})
}

// What `make cluster-up` / `make cluster-down` run: the cluster is brought up
// by one process and taken down by another, from its recorded state alone.
func TestClusterCommandUpAndDown(t *testing.T) {
	name := uniqueName()
	stateDir := filepath.Join(os.TempDir(), name)
	tool := filepath.Join(binDir, "netshim-cluster")
	before := takeHostState(t)
	t.Cleanup(func() { // only does anything if the test failed before `down`
		if c, err := cluster.Load(stateDir); err == nil {
			_ = c.Down(context.Background())
		}
	})

	out, err := exec.Command(tool, "up", "--nodes", "2", "--backend", "vxlan", "--network-plugin", "kubenet",
		"--name", name, "--state-dir", stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("netshim-cluster up: %v\n%s", err, out)
	}
	c, err := cluster.Load(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(string(out), "unix://"+n.Socket) {
			t.Errorf("up did not say how to reach %s's socket %s:\n%s", n.Name, n.Socket, out)
		}
	}
	a, b := runPod(t, c.Nodes[0], "a"), runPod(t, c.Nodes[1], "b")
	expectPing(t, a.NetNS(), "pod a", b)
	expectTCP(t, b.NetNS(), "pod b", b.IP, a)
	c.Close()

	out, err = exec.Command(tool, "down", "--state-dir", stateDir).CombinedOutput()
	if err != nil {
		t.Fatalf("netshim-cluster down: %v\n%s", err, out)
	}
	for _, l := range c.Leftovers() {
		t.Errorf("left after netshim-cluster down: %s", l)
	}
	for _, a := range addedSince(t, before) {
		t.Errorf("the host has a %s it did not have before the cluster", a)
	}
	if out, err := exec.Command(tool, "down", "--state-dir", stateDir).CombinedOutput(); err == nil {
		t.Errorf("a second down succeeded; want it to say no cluster is recorded:\n%s", out)
	}
}

// A cluster that cannot be built is taken apart again, and says why.
func TestFailedUpLeavesNothing(t *testing.T) {
	name := uniqueName()
	// A file where node2's netns pin must go: node1 and the underlay are
	// made before Up reaches it.
	blocker := filepath.Join("/run/netns", name+"-node2")
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(blocker)
	spec := cluster.Spec{Name: name, Nodes: 2, Backend: cluster.HostGW, Plugin: "cni",
		BinDir: binDir, StateDir: filepath.Join(os.TempDir(), name)}
	c, err := cluster.Up(ctx(t), spec)
	if err == nil {
		_ = c.Down(context.Background())
		t.Fatal("Up succeeded with node2's netns pin taken")
	}
	if !strings.Contains(err.Error(), "node2") || !strings.Contains(err.Error(), blocker) {
		t.Errorf("error %q does not name the node and the path in the way", err)
	}
	probe := &cluster.Cluster{Spec: spec, Underlay: filepath.Join("/run/netns", name+"-underlay"),
		Nodes: []*cluster.Node{{NetNS: filepath.Join("/run/netns", name+"-node1")}}}
	for _, l := range probe.Leftovers() {
		t.Errorf("left after a failed up: %s", l)
	}
}

// A node whose netshim was killed cannot drain its pods; taking the cluster
// down must still leave none of them behind: no pause process, no cgroup,
// also for a pod that asked for no cgroup parent of the cluster's.
func TestDownAfterANodeCrashed(t *testing.T) {
	var ids []string
	t.Cleanup(func() { // registered first, so it runs after the cluster is down
		for _, id := range ids {
			if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "netshim", id)); len(dirs) > 0 {
				t.Errorf("sandbox %s still has cgroups %v", id[:12], dirs)
			}
		}
	})
	c := startCluster(t, 2, "cni", cluster.HostGW)
	node1 := c.Nodes[0]
	a := runPod(t, node1, "a")
	rt, err := node1.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "default-cgroup", Namespace: "multinode", Uid: uniqueName()},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{}, // netshim's default cgroup parent, /netshim
	}
	run, err := rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, a.ID, run.PodSandboxId)
	if err := syscall.Kill(node1.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); proc.Alive(node1.PID); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node1's netshim outlived SIGKILL")
		}
	}
}
