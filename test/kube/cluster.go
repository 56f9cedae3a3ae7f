// Package kube runs a Kubernetes cluster on one machine with netshim as the
// runtime of every node: etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler in a control-plane namespace, and on each node (a network
// and mount namespace of test/multinode's model) a kubelet, that node's
// netshim with kubelet's kubenet plugin, flanneld with the Kubernetes subnet
// manager, and kube-proxy; CoreDNS runs as pods. Images come from a registry
// in the control-plane namespace that every node's netshim reaches through
// its registry mirrors, filled with images built here (images.go).
//
// Addresses: the underlay 198.19.0.0/24 (node i at .i, the control plane at
// .100), pods 198.18.0.0/16 (a /24 per node, given by the controller-manager
// and carried by flannel), Services 198.19.16.0/20. The host's network
// namespace is never touched; the harness reaches the cluster with sockets
// made inside its namespaces, and kubectl reaches the API server through a
// loopback proxy (netshim-kube proxy).
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/netshim/netshim/pkg/atomicfile"
	"github.com/netshim/netshim/test/multinode/cluster"
)

// Addresses of the cluster (see the package comment).
const (
	ControlPlaneIP  = "198.19.0.100"
	controlPlaneOct = 100
	ServiceCIDR     = "198.19.16.0/20"
	APIServiceIP    = "198.19.16.1"
	DNSServiceIP    = "198.19.16.10"
	ClusterDomain   = "cluster.local"
	apiPort         = 6443
	registryPort    = 5000
)

// Backends flannel may carry the pods with.
var Backends = []string{"vxlan", "host-gw"}

// Spec says what cluster to run.
type Spec struct {
	Name    string `json:"name"`    // prefix of its namespaces and cgroups
	Nodes   int    `json:"nodes"`   // 3 for make kube-up
	Backend string `json:"backend"` // flannel's: vxlan or host-gw
	BinDir  string `json:"binDir"`  // every binary (make kube-build)
	Dir     string `json:"dir"`     // state, logs, kubeconfigs; empty or new
}

// binaries the cluster runs, besides the multinode ones.
var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
	"kube-proxy", "kubelet", "kubectl", "flanneld", "coredns", "agnhost", "nnp", "netshim-kube"}

func (s Spec) validate() error {
	for _, b := range binaries {
		if _, err := os.Stat(filepath.Join(s.BinDir, b)); err != nil {
			return fmt.Errorf("%s missing from %s: run `make kube-build`", b, s.BinDir)
		}
	}
	if s.Backend != "vxlan" && s.Backend != "host-gw" {
		return fmt.Errorf("backend %q: want vxlan or host-gw", s.Backend)
	}
	if !filepath.IsAbs(s.Dir) {
		return fmt.Errorf("dir %q: want an absolute path", s.Dir)
	}
	return nil
}

// Cluster is a running (or partly built) cluster.
type Cluster struct {
	Spec Spec `json:"spec"`
	// ProxyAddr is the loopback address where kubectl reaches the API server.
	ProxyAddr string `json:"proxyAddr,omitempty"`
	// ControlPlane is the control plane's namespace pin.
	ControlPlane string            `json:"controlPlane,omitempty"`
	Procs        []*Proc           `json:"procs,omitempty"`
	Sysctls      map[string]string `json:"sysctls,omitempty"` // host values before up
	Nodes        []string          `json:"nodes,omitempty"`

	nodes         *cluster.Cluster
	agnhostLayers []v1.Layer // built by the first image that needs them
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Spec.Dir}, elem...)...)
}

func stateFile(dir string) string { return filepath.Join(dir, "kube.json") }

// LogDir keeps every process's log; kube-down leaves it for a post-mortem.
func (c *Cluster) LogDir() string { return c.path("logs") }

// Kubeconfig is the admin's kubeconfig, through the loopback proxy.
func (c *Cluster) Kubeconfig() string { return c.path("admin.kubeconfig") }

// InClusterKubeconfig is the admin's kubeconfig for a process in the
// control plane's namespace (e2e.test), straight to the API server.
func (c *Cluster) InClusterKubeconfig() string { return c.path("admin-cp.kubeconfig") }

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(stateFile(c.Spec.Dir), data, 0o644)
}

func (c *Cluster) record(p *Proc) error {
	c.Procs = append(c.Procs, p)
	return c.save()
}

// Load reads the cluster Up recorded in dir.
func Load(dir string) (*Cluster, error) {
	data, err := os.ReadFile(stateFile(dir))
	if err != nil {
		return nil, fmt.Errorf("no cluster recorded in %s: %w", dir, err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", stateFile(dir), err)
	}
	if nodes, err := cluster.Load(c.path("nodes")); err == nil {
		c.nodes = nodes
	}
	return &c, nil
}

// globalSysctls are the host-wide (not per-netns) sysctls kubelet sets at
// start; Down puts back what they were.
var globalSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"}

// hostDirs are written by every kubelet whatever its flags: each node gets
// a tmpfs over them in its mount namespace, so the host's stay untouched.
var hostDirs = []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods"}

// Up builds the cluster and waits until every node is Ready and CoreDNS
// answers. On failure it takes down what it made, unless keep is set (to
// look at a broken cluster; kube-down removes it then).
func Up(ctx context.Context, spec Spec, logf func(string, ...any)) (*Cluster, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(stateFile(spec.Dir)); err == nil {
		return nil, fmt.Errorf("a cluster is already recorded in %s: run make kube-down first", spec.Dir)
	}
	c := &Cluster{Spec: spec, Sysctls: map[string]string{}}
	for _, d := range []string{spec.Dir, c.LogDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for _, s := range globalSysctls {
		if data, err := os.ReadFile("/proc/sys/" + s); err == nil {
			c.Sysctls[s] = strings.TrimSpace(string(data))
		}
	}
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.build(ctx, logf); err != nil {
		return c, err
	}
	return c, c.save()
}

func (c *Cluster) build(ctx context.Context, logf func(string, ...any)) error {
	logf("certificates, tokens and kubeconfigs")
	if err := c.writeCredentials(); err != nil {
		return err
	}
	if err := c.writeRegistryConfig(); err != nil {
		return err
	}
	logf("%d node namespaces, each with its netshim (kubenet)", c.Spec.Nodes)
	backend := cluster.VXLAN
	if c.Spec.Backend == "host-gw" {
		backend = cluster.HostGW
	}
	nodes, err := cluster.Up(ctx, cluster.Spec{
		Name: c.Spec.Name, Nodes: c.Spec.Nodes, Backend: backend, Plugin: "kubenet",
		BinDir: c.Spec.BinDir, StateDir: c.path("nodes"),
		Flannel: true, KubeletPodCIDR: true, PrivateDirs: hostDirs,
		NetshimArgs: []string{"--registry-config", c.path("registries.conf")},
	})
	if err != nil {
		return err
	}
	c.nodes = nodes
	for _, n := range nodes.Nodes {
		c.Nodes = append(c.Nodes, n.Name)
	}
	if err := c.save(); err != nil {
		return err
	}
	logf("control plane namespace at %s", ControlPlaneIP)
	cp, err := nodes.AddHost("cp", controlPlaneOct)
	if err != nil {
		return err
	}
	c.ControlPlane = cp.NetNS
	if err := c.save(); err != nil {
		return err
	}
	// The control plane is the nodes' gateway; it has no route beyond the
	// cluster, so nothing a pod sends leaves the machine.
	for _, n := range nodes.Nodes {
		if err := n.SetDefaultRoute(ControlPlaneIP); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	logf("registry at %s:%d, and the images built for it", ControlPlaneIP, registryPort)
	if err := c.startRegistry(ctx); err != nil {
		return err
	}
	if err := c.pushImages(ctx, logf); err != nil {
		return err
	}
	logf("etcd, kube-apiserver, kube-controller-manager, kube-scheduler")
	if err := c.startControlPlane(ctx); err != nil {
		return err
	}
	if err := c.applyAddons(ctx); err != nil {
		return err
	}
	for _, n := range nodes.Nodes {
		logf("%s: kubelet, flanneld, kube-proxy", n.Name)
		if err := c.startNode(ctx, n); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	logf("waiting for the nodes to be Ready and CoreDNS to answer")
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	return nil
}

// Down stops every process of the cluster by its PID, kubelets first (so
// none restarts a pod), then removes every pod through its node's netshim,
// the nodes, the control plane and its namespaces; puts back the host's
// sysctls, and removes the cluster's files but its logs. It goes on past
// errors and may be run again.
func (c *Cluster) Down(ctx context.Context) error {
	var errs []error
	// Node agents first, then the control plane; the proxy last.
	order := []string{"kubelet", "kube-proxy", "flanneld"}
	stopNamed := func(prefix string) {
		for _, p := range c.Procs {
			if strings.HasPrefix(p.Name, prefix) {
				if err := p.stop(20 * time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	for _, name := range order {
		stopNamed(name + "-")
	}
	if c.nodes != nil {
		if err := c.nodes.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	} else if nodes, err := cluster.Load(c.path("nodes")); err == nil {
		if err := nodes.Down(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range c.Procs {
		if err := p.stop(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for s, v := range c.Sysctls {
		cur, _ := os.ReadFile("/proc/sys/" + s)
		if strings.TrimSpace(string(cur)) != v {
			if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("put back sysctl %s=%s: %w", s, v, err))
			}
		}
	}
	entries, _ := os.ReadDir(c.Spec.Dir)
	for _, e := range entries {
		if e.Name() == "logs" || e.Name() == "kube.json" {
			continue
		}
		if err := os.RemoveAll(c.path(e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(stateFile(c.Spec.Dir)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Leftovers lists what of the cluster is still on the machine; after Down
// it must be empty.
func (c *Cluster) Leftovers() []string {
	var left []string
	for _, p := range c.Procs {
		if p.alive() {
			left = append(left, "process "+p.String())
		}
	}
	if nodes, err := cluster.Load(c.path("nodes")); err == nil {
		left = append(left, nodes.Leftovers()...)
	}
	for s, v := range c.Sysctls {
		cur, _ := os.ReadFile("/proc/sys/" + s)
		if strings.TrimSpace(string(cur)) != v {
			left = append(left, fmt.Sprintf("sysctl %s=%s (was %s)", s, strings.TrimSpace(string(cur)), v))
		}
	}
	return left
}

// waitFor polls check until it returns nil, or gives up after timeout with
// its last error.
func waitFor(ctx context.Context, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// freeLoopbackPort picks a free TCP port on the host's 127.0.0.1.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NodeList is the cluster's nodes, for tests: their namespaces, underlay
// addresses and CRI clients.
func (c *Cluster) NodeList() []*cluster.Node {
	if c.nodes == nil {
		return nil
	}
	return c.nodes.Nodes
}
