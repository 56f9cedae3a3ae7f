// Command netshim-cluster brings up, on this one machine, the small
// multi-node cluster that netshim's multi-node suite tests, for a person to
// poke at with crictl and ip: each node a network and mount namespace with its
// own netshim, joined by flannel-style host-gw routes or VXLAN.
//
//	netshim-cluster up [--nodes 3] [--backend host-gw|vxlan] [--network-plugin cni|kubenet]
//	netshim-cluster down
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/netshim/netshim/test/multinode/cluster"
)

const usage = `usage: netshim-cluster up [flags]    build the cluster and start a netshim on every node
       netshim-cluster down [flags]  remove every pod, netshim, namespace and cgroup of it`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = down(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "netshim-cluster %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func besideSelf() string {
	self, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(self)
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	var spec cluster.Spec
	backend := fs.String("backend", string(cluster.HostGW), "how nodes reach each other's pod subnets: host-gw or vxlan")
	fs.IntVar(&spec.Nodes, "nodes", 3, "number of nodes")
	fs.StringVar(&spec.Plugin, "network-plugin", "cni", "each netshim's --network-plugin: cni or kubenet")
	fs.StringVar(&spec.Name, "name", "nscluster", "prefix of the cluster's namespaces and cgroups")
	fs.StringVar(&spec.StateDir, "state-dir", "/run/netshim-cluster", "where the nodes' dirs, sockets and logs go")
	fs.StringVar(&spec.BinDir, "bin-dir", besideSelf(), "netshim, pause, runc and the CNI plugins")
	_ = fs.Parse(args)
	spec.Backend = cluster.Backend(*backend)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := cluster.Up(ctx, spec)
	if err != nil {
		return err
	}
	describe(os.Stdout, c)
	return nil
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	stateDir := fs.String("state-dir", "/run/netshim-cluster", "the state dir the cluster was brought up with")
	_ = fs.Parse(args)
	c, err := cluster.Load(*stateDir)
	if err != nil {
		return err
	}
	if err := c.Down(context.Background()); err != nil {
		return err
	}
	if left := c.Leftovers(); len(left) > 0 {
		return fmt.Errorf("left behind: %v", left)
	}
	fmt.Printf("cluster %s is down; nothing of it is left\n", c.Spec.Name)
	return nil
}

// describe tells a person what is up and how to reach it.
func describe(w io.Writer, c *cluster.Cluster) {
	s := c.Spec
	fmt.Fprintf(w, "cluster %s is up: %d nodes, network plugin %s, backend %s, underlay %s, pods %s\n\n",
		s.Name, s.Nodes, s.Plugin, s.Backend, cluster.UnderlayCIDR, cluster.ClusterCIDR)
	for _, n := range c.Nodes {
		fmt.Fprintf(w, "%s  underlay %s  pods %s  netshim pid %d\n", n.Name, n.IP, n.PodCIDR, n.PID)
		fmt.Fprintf(w, "  crictl --runtime-endpoint unix://%s pods\n", n.Socket)
		fmt.Fprintf(w, "  ip netns exec %s ip route\n", filepath.Base(n.NetNS))
		fmt.Fprintf(w, "  log: %s\n\n", n.Log())
	}
	fmt.Fprintf(w, "A pod's netns pin is private to its node; enter a pod through its pause process:\n")
	fmt.Fprintf(w, "  nsenter -t \"$(crictl --runtime-endpoint unix://%s inspectp -o go-template --template '{{.info.pid}}' POD)\" -n ip addr\n", c.Nodes[0].Socket)
	fmt.Fprintf(w, "Take it down with: make cluster-down\n")
}
