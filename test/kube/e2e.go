package kube

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// E2EOptions choose the specs e2e.test runs.
type E2EOptions struct {
	Focus, Skip string
	Report      string // ginkgo's JSON report
	DryRun      bool
	Stdout      io.Writer
}

// RunE2E runs bin/e2e.test against the cluster from the control plane's
// namespace, one spec at a time (ginkgo's default without -p).
func (c *Cluster) RunE2E(ctx context.Context, o E2EOptions) error {
	bin := filepath.Join(c.Spec.BinDir, "e2e.test")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s missing: run `make kube-build-e2e`", bin)
	}
	work := c.path("e2e")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	args := []string{"--net=" + c.ControlPlane, "--", bin,
		"--kubeconfig", c.InClusterKubeconfig(),
		"--kubectl-path", filepath.Join(c.Spec.BinDir, "kubectl"),
		"--provider", "local", "--num-nodes", strconv.Itoa(c.Spec.Nodes),
		"--dns-domain", ClusterDomain,
		"--report-dir", work,
		"--ginkgo.focus", o.Focus, "--ginkgo.skip", o.Skip,
		"--ginkgo.json-report", o.Report,
		"--ginkgo.no-color", "--ginkgo.timeout", "4h",
	}
	if o.DryRun {
		args = append(args, "--ginkgo.dry-run", "--ginkgo.v")
	}
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = o.Stdout, o.Stdout
	return cmd.Run()
}
