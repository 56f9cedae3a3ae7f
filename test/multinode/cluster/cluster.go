// Package cluster builds a small Kubernetes-style cluster on one machine, for
// netshim's multi-node suite and for people to poke at.
//
// Each node is its own network namespace, with its own mount namespace in
// which /run/netns is private, running its own netshim (own socket, root,
// state, conf and cache dirs). The nodes are joined by an underlay bridge
// that lives in a namespace of its own, so the host's network is never
// touched. Pod subnets are joined the way flannel's daemon would join them:
// host-gw routes, or a VXLAN device per node with static neighbour and FDB
// entries. Everything is named after the cluster, so Down can remove it all,
// also from another process (the state is kept in StateDir/cluster.json).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/netshim/netshim/pkg/atomicfile"
)

// Backend is how the nodes reach each other's pod subnets.
type Backend string

const (
	// HostGW routes each remote pod subnet via that node's underlay address.
	HostGW Backend = "host-gw"
	// VXLAN encapsulates pod traffic between per-node VTEPs, as flannel.1 does.
	VXLAN Backend = "vxlan"
)

// Addressing. Tests keep to 198.18.0.0/15: the underlay is 198.19.0.0/24 and
// node i (from 1) has the pod subnet 198.18.i.0/24 of the cluster's 198.18.0.0/16.
const (
	ClusterCIDR  = "198.18.0.0/16"
	UnderlayCIDR = "198.19.0.0/24"
	// MaxNodes keeps node numbers inside one octet of both ranges.
	MaxNodes = 200

	// netnsDir is where `ip netns` looks, so a person can enter the nodes by name.
	netnsDir = "/run/netns"
	// The flannel defaults: VNI 1 on UDP 8472, 50 bytes of VXLAN overhead.
	vxlanDevice   = "flannel.1"
	vxlanVNI      = 1
	vxlanPort     = 8472
	underlayMTU   = 1500
	vxlanOverhead = 50
)

// Spec says what cluster to build.
type Spec struct {
	Name     string  `json:"name"` // unique prefix of its namespaces and cgroups
	Nodes    int     `json:"nodes"`
	Backend  Backend `json:"backend"`
	Plugin   string  `json:"plugin"`   // netshim's --network-plugin: cni or kubenet
	BinDir   string  `json:"binDir"`   // netshim, pause, runc and the CNI plugins
	StateDir string  `json:"stateDir"` // per-node dirs, sockets, logs, cluster.json

	// What a Kubernetes cluster on these nodes (test/kube) changes:
	//
	// Flannel leaves the routes between pod subnets to a flanneld on each
	// node, started by the caller; Backend still sets the pods' MTU.
	Flannel bool `json:"flannel,omitempty"`
	// KubeletPodCIDR leaves the node's PodCIDR to its kubelet, which sends
	// it through UpdateRuntimeConfig once the API server assigns one: Up
	// neither sends one nor waits for the network to be ready (kubenet).
	KubeletPodCIDR bool `json:"kubeletPodCIDR,omitempty"`
	// NetshimArgs are added to every node's netshim flags.
	NetshimArgs []string `json:"netshimArgs,omitempty"`
	// PrivateDirs get a tmpfs of their own in every node's mount namespace
	// (for host dirs that every kubelet writes whatever its flags say); one
	// missing on the host is made, and removed again by Down.
	PrivateDirs []string `json:"privateDirs,omitempty"`
}

// requiredBinaries are what a node runs: netshim, and what netshim runs.
var requiredBinaries = []string{"netshim", "pause", "runc", "bridge", "host-local", "loopback", "portmap", "bandwidth"}

var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

func (s Spec) validate() error {
	if !validName.MatchString(s.Name) {
		return fmt.Errorf("cluster name %q: want 1-24 of a-z, 0-9 and '-', starting with a letter", s.Name)
	}
	if s.Nodes < 1 || s.Nodes > MaxNodes {
		return fmt.Errorf("%d nodes: want 1 to %d", s.Nodes, MaxNodes)
	}
	if s.Backend != HostGW && s.Backend != VXLAN {
		return fmt.Errorf("backend %q: want %q or %q", s.Backend, HostGW, VXLAN)
	}
	if s.Plugin != "cni" && s.Plugin != "kubenet" {
		return fmt.Errorf("network plugin %q: want cni or kubenet", s.Plugin)
	}
	for _, b := range requiredBinaries {
		if _, err := os.Stat(filepath.Join(s.BinDir, b)); err != nil {
			return fmt.Errorf("%s missing from %s: run `make build tools`", b, s.BinDir)
		}
	}
	if !filepath.IsAbs(s.StateDir) {
		return fmt.Errorf("state dir %q: want an absolute path", s.StateDir)
	}
	return nil
}

// Cluster is a built (or partly built) cluster.
type Cluster struct {
	Spec     Spec    `json:"spec"`
	Underlay string  `json:"underlay"` // the underlay bridge's netns pin
	Nodes    []*Node `json:"nodes"`
	// Hosts are further namespaces on the underlay (AddHost), such as a
	// control plane, with no netshim of their own.
	Hosts []*Host `json:"hosts,omitempty"`
	// MadeDirs are the PrivateDirs Up had to create on the host.
	MadeDirs []string `json:"madeDirs,omitempty"`
}

// stateFile is where Up records the cluster for Load.
func stateFile(stateDir string) string { return filepath.Join(stateDir, "cluster.json") }

// Up builds the cluster: underlay, nodes, the backend's routes, and a ready
// netshim on every node. On failure it removes whatever it made.
func Up(ctx context.Context, spec Spec) (*Cluster, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(stateFile(spec.StateDir)); err == nil {
		return nil, fmt.Errorf("a cluster is already recorded in %s: take it down first", spec.StateDir)
	}
	// Down removes the state dir, so it must hold nothing but the cluster's.
	if entries, err := os.ReadDir(spec.StateDir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("state dir %s is not empty: give a new or empty dir", spec.StateDir)
	}
	if err := os.MkdirAll(spec.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	c := &Cluster{Spec: spec, Underlay: filepath.Join(netnsDir, spec.Name+"-underlay")}
	for i := 1; i <= spec.Nodes; i++ {
		name := "node" + strconv.Itoa(i)
		dir := filepath.Join(spec.StateDir, name)
		c.Nodes = append(c.Nodes, &Node{
			Name:         name,
			NetNS:        filepath.Join(netnsDir, spec.Name+"-"+name),
			IP:           fmt.Sprintf("198.19.0.%d", i),
			PodCIDR:      fmt.Sprintf("198.18.%d.0/24", i),
			Dir:          dir,
			Socket:       filepath.Join(dir, "netshim.sock"),
			CgroupParent: "/" + spec.Name + "/" + name,
		})
	}
	// Recorded before anything is made, so a Down from another process finds it all.
	if err := c.save(); err != nil {
		return nil, err
	}
	if err := c.build(ctx); err != nil {
		if derr := c.Down(context.WithoutCancel(ctx)); derr != nil {
			err = fmt.Errorf("%w (and taking the partial cluster down: %v)", err, derr)
		}
		return nil, err
	}
	return c, c.save()
}

func (c *Cluster) build(ctx context.Context) error {
	for _, d := range c.Spec.PrivateDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
			c.MadeDirs = append(c.MadeDirs, d)
			if err := c.save(); err != nil {
				return err
			}
		}
	}
	if err := c.makeUnderlay(); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		if err := c.makeNode(n); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	if !c.Spec.Flannel {
		if err := c.joinPodSubnets(); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := n.start(ctx, c.Spec); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if err := c.save(); err != nil { // the PID, for a Down from elsewhere
			return err
		}
	}
	return nil
}

// Load reads the cluster that Up recorded in stateDir.
func Load(stateDir string) (*Cluster, error) {
	data, err := os.ReadFile(stateFile(stateDir))
	if err != nil {
		return nil, fmt.Errorf("no cluster recorded: %w", err)
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", stateFile(stateDir), err)
	}
	return &c, nil
}

func (c *Cluster) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(stateFile(c.Spec.StateDir), data, 0o644); err != nil {
		return fmt.Errorf("record cluster: %w", err)
	}
	return nil
}

// Down removes the cluster, in the order a node would be drained: every pod
// through its node's netshim (so CNI DEL runs and IPs are released), then the
// netshims, then any pause process a netshim could not stop (found by its
// sandbox's ID, or in the cluster's cgroups), then the namespaces
// (which takes their links, routes and VXLAN devices with them), then the
// state dir. It goes on past errors and may be called again.
func (c *Cluster) Down(ctx context.Context) error {
	var errs []error
	for _, n := range c.Nodes {
		if err := n.removeAllPods(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	for _, n := range c.Nodes {
		if err := n.stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	for _, n := range c.Nodes {
		if err := n.removeLeftovers(filepath.Join(c.Spec.BinDir, "runc")); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
	}
	if err := removeCgroups(c.Spec.Name); err != nil {
		errs = append(errs, err)
	}
	for _, pin := range c.netnsPins() {
		if err := unpin(pin); err != nil {
			errs = append(errs, err)
		}
	}
	// Deepest first, and only if empty: something a person put there stays.
	for i := len(c.MadeDirs) - 1; i >= 0; i-- {
		if err := os.Remove(c.MadeDirs[i]); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("remove %s, made by up: %w", c.MadeDirs[i], err))
		}
	}
	// Only what Up made: a file someone put beside it keeps the dir, and says so.
	for _, n := range c.Nodes {
		if err := os.RemoveAll(n.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", n.Dir, err))
		}
	}
	if err := os.Remove(stateFile(c.Spec.StateDir)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("remove cluster record: %w", err))
	}
	if err := os.Remove(c.Spec.StateDir); err != nil && !os.IsNotExist(err) {
		errs = append(errs, fmt.Errorf("remove state dir: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Cluster) netnsPins() []string {
	pins := []string{c.Underlay}
	for _, n := range c.Nodes {
		pins = append(pins, n.NetNS)
	}
	for _, h := range c.Hosts {
		pins = append(pins, h.NetNS)
	}
	return pins
}

// Leftovers lists whatever of the cluster is still on the machine: after
// Down it must be empty.
func (c *Cluster) Leftovers() []string {
	var left []string
	for _, pin := range c.netnsPins() {
		if _, err := os.Lstat(pin); err == nil {
			left = append(left, "netns pin "+pin)
		}
	}
	for _, dir := range cgroupDirs(c.Spec.Name) {
		left = append(left, "cgroup "+dir)
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, c.Spec.Name) || strings.Contains(line, c.Spec.StateDir) {
				left = append(left, "mount "+line)
			}
		}
	}
	for _, pid := range pidsMentioning(c.Spec.StateDir) {
		left = append(left, fmt.Sprintf("process %d", pid))
	}
	if _, err := os.Stat(c.Spec.StateDir); err == nil {
		left = append(left, "state dir "+c.Spec.StateDir)
	}
	for _, d := range c.MadeDirs {
		if _, err := os.Stat(d); err == nil {
			left = append(left, "dir "+d)
		}
	}
	return left
}

// Close drops the CRI connections this process holds; the cluster runs on.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.closeConn()
	}
}
