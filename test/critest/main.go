// Command critest runs the CRI conformance suite (critest, from
// kubernetes-sigs/cri-tools) against a netshim of its own and writes the
// result of every spec to a Markdown table. `make critest` runs it.
//
// Everything it makes is its own: a netshim on temp dirs and a temp socket,
// a loopback registry filled with stand-in images built from Debian's
// busybox-static and two small C programs, configured as the mirror of
// every registry critest names, and a bridge on a /24 of 198.18.0.0/15. It
// removes all of it when done, even when critest fails.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/netshim/netshim/test/bench"
	"github.com/netshim/netshim/test/registry"
)

// mirrored are the registries critest's images are named for.
var mirrored = []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "quay.io"}

// errNoCritest is followed by howToGetCritest on stderr: an error's text
// is one line without a full stop, the how-to is several.
var errNoCritest = errors.New("critest is not on PATH")

const howToGetCritest = `Build it from cri-tools v1.36 (not part of this repository):
  git clone --branch v1.36.0 https://github.com/kubernetes-sigs/cri-tools
  cd cri-tools && make critest && install build/bin/linux/*/critest /usr/local/bin/
then run make critest again (or pass --critest PATH).`

func main() {
	var (
		critest = flag.String("critest", "", "the critest binary (default: critest on PATH)")
		binDir  = flag.String("bin", "bin", "where netshim, pause, runc and the CNI plugins are (make build tools)")
		out     = flag.String("out", "docs/conformance.md", "the Markdown table to write")
		focus   = flag.String("focus", "", "run only the specs matching this regexp (critest's --ginkgo.focus)")
		keep    = flag.Bool("keep", false, "keep the temp dir (netshim's log, critest's log and report)")
	)
	flag.Parse()
	if err := run(*critest, *binDir, *out, *focus, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "critest:", err)
		if errors.Is(err, errNoCritest) {
			fmt.Fprintln(os.Stderr, howToGetCritest)
		}
		os.Exit(1)
	}
}

func run(critest, binDir, out, focus string, keep bool) (err error) {
	if critest == "" {
		if critest, err = exec.LookPath("critest"); err != nil {
			return errNoCritest
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: netshim makes namespaces, mounts and bridges")
	}
	if binDir, err = filepath.Abs(binDir); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "netshim-critest-")
	if err != nil {
		return err
	}
	// Passable, as /run and /var/lib are: a user-namespaced pod's runc
	// reaches its rootfs through here.
	if err := os.Chmod(work, 0o711); err != nil {
		return err
	}
	fmt.Println("critest: working in", work)
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		bench.UnmountAllUnder(work)
		killConmons(work)
		if keep {
			fmt.Println("critest: kept", work)
		} else {
			_ = os.RemoveAll(work)
		}
	}()

	reg, err := registry.Start(filepath.Join(work, "registry"), registry.Options{})
	if err != nil {
		return err
	}
	undo = append(undo, reg.Stop)
	images, err := testImages(work, filepath.Join(binDir, "pause"))
	if err != nil {
		return err
	}
	if err := pushImages(reg, images); err != nil {
		return err
	}
	regConf := filepath.Join(work, "registries.conf")
	if err := os.WriteFile(regConf, []byte(reg.MirrorConfig(mirrored...)), 0o600); err != nil {
		return err
	}

	bridge, confDir, err := writeNetwork(work)
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		if link, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(link)
		}
	})

	sock := filepath.Join(work, "netshim.sock")
	shim, err := startNetshim(binDir, work, sock, confDir, regConf)
	if err != nil {
		return err
	}
	undo = append(undo, func() { stopNetshim(shim, sock) })

	junit := filepath.Join(work, "junit.xml")
	args := []string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock,
		"--ginkgo.junit-report", junit, "--ginkgo.no-color"}
	if focus != "" {
		args = append(args, "--ginkgo.focus", focus)
	}
	logFile, err := os.Create(filepath.Join(work, "critest.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(critest, args...)
	cmd.Dir = work // critest looks for a crictl.yaml beside it and in its dir
	cmd.Stdout = io.MultiWriter(os.Stdout, logFile)
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	fmt.Println("critest:", critest, strings.Join(args, " "))
	runErr := cmd.Run() // failing specs make it exit non-zero: the report says which
	elapsed := time.Since(start)

	specs, err := readJUnit(junit)
	if err != nil {
		return fmt.Errorf("critest wrote no report (%v): %w", runErr, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	writeReport(f, specs, critestVersion(critest), elapsed)
	if err := f.Close(); err != nil {
		return err
	}
	byStatus := map[string]int{}
	for _, s := range specs {
		byStatus[s.Status]++
	}
	fmt.Printf("critest: %d passed, %d failed, %d skipped in %s; the table is in %s\n",
		byStatus["passed"], len(specs)-byStatus["passed"]-byStatus["skipped"]-byStatus["pending"],
		byStatus["skipped"]+byStatus["pending"], elapsed.Round(time.Second), out)
	return nil
}

// writeNetwork writes a bridge network on a random /24 of 198.18.0.0/15
// (the half e2e tests do not use) and returns the bridge's name.
func writeNetwork(work string) (bridge, confDir string, err error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100))
	if err != nil {
		return "", "", err
	}
	bridge = "nsct" + hex.EncodeToString(b)
	subnet := fmt.Sprintf("198.19.%d.0/24", 100+n.Int64())
	confDir = filepath.Join(work, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", "", err
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"critest","plugins":[
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":%q}},
{"type":"portmap","capabilities":{"portMappings":true}}]}`, bridge, subnet, filepath.Join(work, "ipam"))
	return bridge, confDir, os.WriteFile(filepath.Join(confDir, "10-critest.conflist"), []byte(conf), 0o644)
}

func startNetshim(binDir, work, sock, confDir, regConf string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(work, "netshim.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, "netshim"),
		"--config=", "--container-runtime-endpoint", "unix://"+sock,
		"--root-dir", filepath.Join(work, "root"), "--state-dir", filepath.Join(work, "run"),
		"--netns-dir", filepath.Join(work, "netns"), "--cni-conf-dir", confDir, "--cni-bin-dir", binDir,
		"--cni-cache-dir", filepath.Join(work, "cni-cache"), "--registry-config", regConf, "-v", "2")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for range 100 {
		if _, err := os.Stat(sock); err == nil {
			return cmd, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return nil, fmt.Errorf("netshim did not serve %s; see %s", sock, log.Name())
}

// stopNetshim removes every pod critest left, then stops netshim by PID.
func stopNetshim(cmd *exec.Cmd, sock string) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err == nil {
		rt := runtimeapi.NewRuntimeServiceClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range pods.Items {
				_, _ = rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
				if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					fmt.Fprintf(os.Stderr, "critest: remove pod %s: %v\n", p.Id, err)
				}
			}
		}
		cancel()
		_ = conn.Close()
	}
	bench.StopProcess(cmd, 10*time.Second)
}

// killConmons stops, by PID, any conmon still running for this run.
func killConmons(work string) {
	for _, pid := range bench.LivePIDsNamed("conmon") {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if strings.Contains(string(cmdline), work) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func critestVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").Output()
	if v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); v != "" {
		return v // ginkgo prints more lines after it
	}
	return "critest (no version)"
}
