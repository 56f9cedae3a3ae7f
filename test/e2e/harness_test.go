// Package e2e drives the real netshim binary over CRI with real runc, real
// CNI plugins and real network namespaces. It needs root; under CI=true it
// fails rather than skips when it cannot run.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netshim/netshim/test/bench"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// binDir holds netshim, pause, runc and the CNI plugins, as `make build tools` leaves them.
var binDir string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == killPausePlugin {
		os.Exit(runKillPausePlugin()) // run by netshim as a CNI plugin
	}
	if reason := cannotRun(); reason != "" {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "e2e: cannot run under CI: %s\n", reason)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "e2e: skipped: %s\n", reason)
		os.Exit(0)
	}
	cgroupsBefore := podCgroups()
	code := m.Run()
	// Any pod cgroup the suite made and no test accounted for.
	for dir := range podCgroups() {
		if !cgroupsBefore[dir] {
			fmt.Fprintf(os.Stderr, "e2e: cgroup %s was left behind\n", dir)
			_ = os.Remove(dir)
			code = 1
		}
	}
	sweepTestLinks()
	stopTestRegistry()
	os.Exit(code)
}

// madeLinks are the names of every link the suite made (bridges, node
// addresses): each test removes its own, and sweepTestLinks removes and
// reports any that came back, e.g. recreated by a CNI plugin that a killed
// netshim left running.
var madeLinks sync.Map

func sweepTestLinks() {
	madeLinks.Range(func(name, _ any) bool {
		if l, err := netlink.LinkByName(name.(string)); err == nil {
			fmt.Fprintf(os.Stderr, "e2e: link %s outlived its test; removed it\n", name)
			_ = netlink.LinkDel(l)
		}
		return true
	})
}

func cannotRun() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, runc, bridges)"
	}
	_, file, _, _ := runtime.Caller(0)
	binDir = filepath.Join(filepath.Dir(file), "..", "..", "bin")
	for _, b := range []string{"/usr/bin/conmon", "/usr/bin/docker-registry", "/bin/busybox"} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Sprintf("%s missing: run hack/install-deps.sh (or make test)", b)
		}
	}
	for _, b := range []string{"netshim", "pause", "runc", "bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return fmt.Sprintf("%s missing from %s: run `make build tools` (or `make test`)", b, binDir)
		}
	}
	return ""
}

// testNet is a test's own bridge and subnet: a unique name and a /24 inside
// 198.18.0.0/15, so tests never touch a network they did not make.
type testNet struct {
	Bridge  string
	Subnet  *net.IPNet
	Gateway net.IP
}

func newTestNet(t *testing.T) testNet {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// 198.18.0.0/15 holds 512 /24s; pick one at random to keep parallel runs apart.
	idx := (int(b[0])<<8 | int(b[1])) % 512
	subnet := &net.IPNet{IP: net.IPv4(198, byte(18+idx/256), byte(idx%256), 0).To4(), Mask: net.CIDRMask(24, 32)}
	gw := net.IPv4(subnet.IP[0], subnet.IP[1], subnet.IP[2], 1).To4()
	tn := testNet{Bridge: "nste2e" + hex.EncodeToString(b), Subnet: subnet, Gateway: gw}
	madeLinks.Store(tn.Bridge, true)
	madeLinks.Store(tn.Bridge+"b", true) // the second bridge of the config-change test
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(tn.Bridge); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	return tn
}

// shim is one running netshim with its own dirs, and a CRI client to it.
type shim struct {
	t        *testing.T
	noConf   bool              // start with an empty CNI conf dir
	extra    string            // a plugin appended to the test conflist at start
	cniVer   string            // cniVersion of the test conflist
	v6Subnet string            // a ULA /64 listed before the IPv4 range, when set
	ipMasq   bool              // the bridge masquerades pod traffic (iptables rules per pod)
	cgroups  map[string]bool   // pod cgroups that existed before this shim started
	binDir   string            // the CNI bin dir netshim is given: binDir, or the test's own copy
	plugins  map[string]string // extra plugins for its own bin dir: name → the file it links to
	env      []string          // extra environment for the next start
	dir      string
	net      testNet
	socket   string
	confDir  string
	ipamDir  string
	netnsDir string
	cmd      *exec.Cmd
	args     []string
	logPath  string
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
	img      runtimeapi.ImageServiceClient
}

type shimOption func(*shim)

// withoutConfig starts netshim with an empty CNI conf dir.
func withoutConfig() shimOption { return func(s *shim) { s.noConf = true } }

// withExtraPlugin appends a plugin (a JSON object) to the test conflist.
func withExtraPlugin(plugin string) shimOption { return func(s *shim) { s.extra = plugin } }

// withTinySubnet gives the test network a /30: room for exactly one pod.
func withTinySubnet() shimOption {
	return func(s *shim) { s.net.Subnet.Mask = net.CIDRMask(30, 32) }
}

// withIPv6 adds an fd00::/8 ULA /64 to the test network, listed first.
func withIPv6() shimOption {
	return func(s *shim) {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		s.v6Subnet = fmt.Sprintf("fd00:%x::/64", int(b[0])<<8|int(b[1]))
	}
}

// withIPMasq makes the bridge masquerade, as the usual node config does:
// each pod then has iptables rules that only a DEL with its netns removes.
func withIPMasq() shimOption { return func(s *shim) { s.ipMasq = true } }

// withOwnPluginDir gives netshim a CNI bin dir of its own (links to the
// built plugins), so a test can take a plugin away and put it back.
func withOwnPluginDir() shimOption {
	return func(s *shim) { s.binDir = filepath.Join(s.dir, "cni-bin") }
}

// withPlugin gives netshim a CNI bin dir of its own holding, beside the
// built plugins, a plugin name that links to path.
func withPlugin(name, path string) shimOption {
	return func(s *shim) {
		withOwnPluginDir()(s)
		if s.plugins == nil {
			s.plugins = map[string]string{}
		}
		s.plugins[name] = path
	}
}

// withArgs adds flags to netshim's command line.
func withArgs(args ...string) shimOption { return func(s *shim) { s.args = append(s.args, args...) } }

func startShim(t *testing.T, opts ...shimOption) *shim {
	t.Helper()
	dir, err := os.MkdirTemp("", "netshim-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// Passable, as /run and /var/lib are: a user-namespaced pod's runc
	// reaches its rootfs through here.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	s := &shim{t: t, dir: dir, net: newTestNet(t), socket: filepath.Join(dir, "netshim.sock"),
		confDir: filepath.Join(dir, "net.d"), ipamDir: filepath.Join(dir, "ipam"), netnsDir: filepath.Join(dir, "netns"),
		logPath: filepath.Join(dir, "netshim.log"), cniVer: "1.0.0", binDir: binDir}
	for _, o := range opts {
		o(s)
	}
	if s.binDir != binDir {
		if err := os.MkdirAll(s.binDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"bridge", "host-local", "loopback", "portmap", "bandwidth"} {
			if err := os.Symlink(filepath.Join(binDir, p), filepath.Join(s.binDir, p)); err != nil {
				t.Fatal(err)
			}
		}
		for name, path := range s.plugins {
			if err := os.Symlink(path, filepath.Join(s.binDir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(s.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !s.noConf {
		s.writeBridgeConf("10-e2e.conflist", s.net.Bridge, s.extra)
	}
	s.cgroups = podCgroups()
	t.Cleanup(s.cleanup)
	s.start()
	return s
}

// writeBridgeConf writes the test's bridge + host-local + portmap conflist;
// extra is appended to the plugin list (a JSON object, or "").
func (s *shim) writeBridgeConf(file, bridge, extra string) {
	s.t.Helper()
	ranges := fmt.Sprintf(`[[{"subnet":%q}]]`, s.net.Subnet.String())
	if s.v6Subnet != "" {
		ranges = fmt.Sprintf(`[[{"subnet":%q}],[{"subnet":%q}]]`, s.v6Subnet, s.net.Subnet.String())
	}
	plugins := []string{
		fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":%t,
		  "ipam":{"type":"host-local","dataDir":%q,"ranges":%s,"routes":[{"dst":"198.18.0.0/15"}]}}`,
			bridge, s.ipMasq, s.ipamDir, ranges),
		`{"type":"portmap","capabilities":{"portMappings":true}}`,
	}
	if extra != "" {
		plugins = append(plugins, extra)
	}
	conf := fmt.Sprintf(`{"cniVersion":%q,"name":"e2e","plugins":[%s]}`, s.cniVer, strings.Join(plugins, ","))
	if err := os.WriteFile(filepath.Join(s.confDir, file), []byte(conf), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *shim) start() {
	s.t.Helper()
	args := append([]string{
		"--config=", "--container-runtime-endpoint", "unix://" + s.socket,
		"--root-dir", filepath.Join(s.dir, "root"),
		"--state-dir", filepath.Join(s.dir, "run"),
		"--netns-dir", s.netnsDir,
		"--cni-conf-dir", s.confDir,
		"--cni-bin-dir", s.binDir,
		"--cni-cache-dir", filepath.Join(s.dir, "cni-cache"),
		"-v", "4",
	}, s.args...)
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(filepath.Join(binDir, "netshim"), args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	// Ready when the socket accepts: a socket file may be a stale one of a
	// killed run. Probing with a plain dial keeps gRPC out of its 1 s
	// reconnect backoff.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", s.socket)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("netshim did not accept on its socket in 10s (%v); log:\n%s", err, s.log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+s.socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		// kubelet's limit: ExecSync answers may be up to 16 MiB.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		s.t.Fatal(err)
	}
	s.conn, s.rt, s.img = conn, runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

// stop ends netshim with sig (by its PID, never by name) and waits for it.
func (s *shim) stop(sig syscall.Signal) {
	s.t.Helper()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *shim) restart() {
	s.t.Helper()
	s.stop(syscall.SIGTERM)
	s.start()
}

func (s *shim) log() string {
	data, _ := os.ReadFile(s.logPath)
	return string(data)
}

// cleanup removes every pod through netshim, then stops it, then sweeps
// whatever a failed test may have left: pause processes (by PID), netns
// pins, runtime containers and the temp dir.
func (s *shim) cleanup() {
	if s.rt != nil && s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if list, err := s.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, p := range list.Items {
				if _, err := s.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
					s.t.Errorf("cleanup: remove sandbox %s: %v", p.Id, err)
				}
			}
		}
		cancel()
	}
	s.stop(syscall.SIGTERM)
	if s.t.Failed() {
		s.t.Logf("netshim log:\n%s", s.log())
	}
	s.sweep()
	for _, r := range sweepNATRules(strings.TrimSuffix(s.net.Subnet.IP.String(), "0")) {
		s.t.Errorf("cleanup: iptables %s was left behind", r)
	}
	for _, c := range sweepNewCgroups(s.cgroups, s.log()) {
		s.t.Errorf("cleanup: cgroup %s was left behind", c)
	}
	_ = os.RemoveAll(s.dir)
}

func (s *shim) sweep() {
	removed, err := bench.RemoveLeftoverSandboxes(filepath.Join(binDir, "runc"), filepath.Join(s.dir, "root"), filepath.Join(s.dir, "run"))
	for _, r := range removed {
		s.t.Errorf("cleanup: %s was left behind", r)
	}
	if err != nil {
		s.t.Errorf("cleanup: %v", err)
	}
	defer s.sweepMounts()
	pins, _ := os.ReadDir(s.netnsDir)
	for _, p := range pins {
		path := filepath.Join(s.netnsDir, p.Name())
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		s.t.Errorf("cleanup: netns pin %s was left behind", p.Name())
	}
}

// sweepMounts unmounts, and reports, anything still mounted under the
// test's dir, so no netns pin outlives its test even if its dir was unreadable.
func (s *shim) sweepMounts() {
	for _, m := range bench.UnmountAllUnder(s.dir) {
		s.t.Errorf("cleanup: %s was still mounted", m)
	}
}

func (s *shim) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	s.t.Cleanup(cancel)
	return ctx
}

// podConfig is a sandbox config with a unique name in the test's namespace.
func podConfig(name string) *runtimeapi.PodSandboxConfig {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	uid := hex.EncodeToString(b)
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: uid},
		Hostname:     name,
		Labels:       map[string]string{"app": name, "suite": "e2e"},
		Annotations:  map[string]string{"note": "e2e"},
		LogDirectory: "/tmp",
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func (s *shim) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	s.t.Helper()
	resp, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		s.t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
	}
	return resp.PodSandboxId
}

// podInfo is the verbose status's "info" entry.
type podInfo struct {
	PID       int      `json:"pid"`
	NetNSPath string   `json:"netnsPath"`
	IPs       []string `json:"ips"`
}

func (s *shim) status(id string) (*runtimeapi.PodSandboxStatus, podInfo) {
	s.t.Helper()
	resp, err := s.rt.PodSandboxStatus(s.ctx(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		s.t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	var info podInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		s.t.Fatalf("decode verbose info of %s: %v (%q)", id, err, resp.Info["info"])
	}
	return resp.Status, info
}

func (s *shim) stopPod(id string) {
	s.t.Helper()
	if _, err := s.rt.StopPodSandbox(s.ctx(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		s.t.Fatalf("StopPodSandbox %s: %v", id, err)
	}
}

func (s *shim) removePod(id string) {
	s.t.Helper()
	if _, err := s.rt.RemovePodSandbox(s.ctx(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		s.t.Fatalf("RemovePodSandbox %s: %v", id, err)
	}
}

// ipReservations lists the IPs host-local has reserved in the test's network.
func (s *shim) ipReservations() []string {
	entries, _ := os.ReadDir(filepath.Join(s.ipamDir, "e2e"))
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// bridgePorts lists the host interfaces attached to the test's bridge.
func (s *shim) bridgePorts() []string {
	br, err := netlink.LinkByName(s.net.Bridge)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
