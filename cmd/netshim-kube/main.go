// Command netshim-kube runs a three-node Kubernetes cluster on this one
// machine with netshim as every node's runtime (package test/kube), for
// make kube-up, make kube-down and make kube-e2e.
//
//	netshim-kube up   [--dir DIR] [--nodes 3] [--backend vxlan|host-gw]
//	netshim-kube down [--dir DIR]
//	netshim-kube e2e  [--dir DIR] [--focus RE] [--skip RE] [--report FILE]
//	netshim-kube report --dry-run JSON --run JSON...
//	netshim-kube proxy --listen ADDR --netns PIN --to ADDR
//
// up prints `export KUBECONFIG=PATH` as its last line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netshim/netshim/test/kube"
	"github.com/netshim/netshim/test/netcheck"
)

const usage = `usage: netshim-kube up [flags]     build the cluster, wait until it is Ready
       netshim-kube down [flags]   stop and remove all of it
       netshim-kube e2e [flags]    run Kubernetes' e2e.test against it
       netshim-kube report [flags] the spec table of docs/kubernetes.md
       netshim-kube proxy [flags]  (internal) kubectl's way to the API server`

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
	case "e2e":
		err = e2e(os.Args[2:])
	case "proxy":
		err = proxy(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s\n", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netshim-kube:", err)
		os.Exit(1)
	}
}

// defaultBinDir is the bin dir beside this binary: make builds everything there.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

func dirFlag(fs *flag.FlagSet) *string {
	return fs.String("dir", "/var/lib/netshim-kube", "the cluster's state, kubeconfigs and logs")
}

func absDir(d string) (string, error) { return filepath.Abs(d) }

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	dir := dirFlag(fs)
	nodes := fs.Int("nodes", 3, "how many nodes")
	backend := fs.String("backend", "vxlan", "flannel's backend: vxlan or host-gw")
	name := fs.String("name", "nskube", "prefix of the cluster's namespaces and cgroups")
	keep := fs.Bool("keep-on-failure", false, "leave a cluster that failed to come up for a post-mortem (make kube-down removes it)")
	_ = fs.Parse(args)
	d, err := absDir(*dir)
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "kube-up %5.1fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	c, err := kube.Up(ctx, kube.Spec{Name: *name, Nodes: *nodes, Backend: *backend, BinDir: defaultBinDir(), Dir: d}, logf)
	if err != nil {
		if c != nil && !*keep {
			logf("taking down what was made: %v", err)
			if derr := c.Down(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, fmt.Errorf("and taking it down: %w", derr))
			}
		}
		return err
	}
	logf("cluster ready: %d nodes; logs in %s", *nodes, c.LogDir())
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
	return nil
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	dir := dirFlag(fs)
	_ = fs.Parse(args)
	d, err := absDir(*dir)
	if err != nil {
		return err
	}
	c, err := kube.Load(d)
	if err != nil {
		if os.IsNotExist(errors.Unwrap(err)) {
			fmt.Fprintf(os.Stderr, "netshim-kube: no cluster in %s\n", d)
			return nil
		}
		return err
	}
	if err := c.Down(context.Background()); err != nil {
		return err
	}
	if left := c.Leftovers(); len(left) > 0 {
		return fmt.Errorf("still on the machine after down: %v", left)
	}
	fmt.Fprintf(os.Stderr, "netshim-kube: cluster removed; its logs stay in %s\n", c.LogDir())
	return nil
}

// proxy accepts on a loopback address in the host's netns and joins each
// connection to the target, dialled inside the netns pinned at --netns.
func proxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	listen := fs.String("listen", "", "address to accept on (loopback)")
	pin := fs.String("netns", "", "netns pin to dial from")
	to := fs.String("to", "", "address to dial there")
	_ = fs.String("dir", "", "the cluster's dir (names the process for kube-down)")
	_ = fs.Parse(args)
	if *listen == "" || *pin == "" || *to == "" {
		return errors.New("proxy needs --listen, --netns and --to")
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	dial := netcheck.DialerIn(*pin)
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			upstream, err := dial(ctx, "tcp", *to)
			cancel()
			if err != nil {
				return
			}
			defer upstream.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(upstream, conn); done <- struct{}{} }()
			go func() { _, _ = io.Copy(conn, upstream); done <- struct{}{} }()
			<-done
		}()
	}
}

// e2e runs e2e.test from the control plane's namespace (it reaches nodes
// and pods there, as a test host inside a real cluster's network would),
// serially, and writes its JSON report.
func e2e(args []string) error {
	fs := flag.NewFlagSet("e2e", flag.ExitOnError)
	dir := dirFlag(fs)
	focus := fs.String("focus", `\[sig-network\].*\[Conformance\]|\[NodeConformance\]`, "ginkgo focus")
	skip := fs.String("skip", `\[Disruptive\]|\[Flaky\]`, "ginkgo skip: disruptive specs restart what the cluster cannot restart")
	report := fs.String("report", "", "JSON report path (default DIR/logs/e2e-report.json)")
	dryRun := fs.Bool("dry-run", false, "list the specs that would run")
	_ = fs.Parse(args)
	d, err := absDir(*dir)
	if err != nil {
		return err
	}
	c, err := kube.Load(d)
	if err != nil {
		return err
	}
	if *report == "" {
		*report = filepath.Join(c.LogDir(), "e2e-report.json")
	}
	ctx, cancel := signalContext()
	defer cancel()
	return c.RunE2E(ctx, kube.E2EOptions{Focus: *focus, Skip: *skip, Report: *report, DryRun: *dryRun,
		Stdout: os.Stdout})
}

// report prints docs/kubernetes.md's table: every spec the dry run lists,
// with its result in the runs' JSON reports.
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dry := fs.String("dry-run", "", "JSON report of `e2e --dry-run` (every spec)")
	var runs multiFlag
	fs.Var(&runs, "run", "JSON report of a run (repeat; later ones win)")
	_ = fs.Parse(args)
	table, counts, err := kube.E2ETable(*dry, runs, kube.Explanations)
	if err != nil {
		return err
	}
	fmt.Print(table)
	fmt.Fprintf(os.Stderr, "passed %d, failed %d, skipped %d, not run %d\n",
		counts["passed"], counts["failed"], counts["skipped"], counts["not run"])
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
