package cluster

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
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/pkg/proc"
	"github.com/netshim/netshim/test/bench"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Node is one node of the cluster and its netshim.
type Node struct {
	Name         string `json:"name"`    // node1, node2, …
	NetNS        string `json:"netns"`   // the node's netns pin on the host
	IP           string `json:"ip"`      // its underlay address
	PodCIDR      string `json:"podCIDR"` // its pod subnet
	VTEPMAC      string `json:"vtepMAC,omitempty"`
	Dir          string `json:"dir"` // its netshim's root, state, conf and cache dirs, and log
	Socket       string `json:"socket"`
	CgroupParent string `json:"cgroupParent"` // for its pods, so Down finds every process
	PID          int    `json:"pid,omitempty"`

	exited chan struct{} // closed when the netshim this process started is reaped
	conn   *grpc.ClientConn
	rt     runtimeapi.RuntimeServiceClient
}

// Log is the path of the node's netshim log.
func (n *Node) Log() string { return filepath.Join(n.Dir, "netshim.log") }

// ConfDir is the node's CNI conf dir.
func (n *Node) ConfDir() string { return filepath.Join(n.Dir, "net.d") }

// ipamDir is where host-local keeps the node's IP reservations (cni plugin).
func (n *Node) ipamDir() string { return filepath.Join(n.Dir, "ipam") }

func (n *Node) cacheDir() string { return filepath.Join(n.Dir, "cni-cache") }

// podMTU leaves room for the VXLAN header when pod traffic is encapsulated,
// as flannel's subnet.env tells its CNI plugin.
func podMTU(b Backend) int {
	if b == VXLAN {
		return underlayMTU - vxlanOverhead
	}
	return underlayMTU
}

// writeConf writes the node's CNI config: what flannel's CNI plugin hands
// the bridge plugin, a bridge and host-local over the node's pod subnet.
func (n *Node) writeConf(b Backend) error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "podnet",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": podMTU(b),
				"ipam": map[string]any{
					"type": "host-local", "dataDir": n.ipamDir(),
					"ranges": [][]map[string]string{{{"subnet": n.PodCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.ConfDir(), "10-podnet.conflist"), data, 0o644)
}

// start runs the node's netshim inside the node's netns and a mount namespace
// of its own, where a tmpfs over /run/netns keeps its pod pins apart from the
// host's and the other nodes'; then hands it its PodCIDR when it runs kubenet,
// and waits until it reports the network ready.
func (n *Node) start(ctx context.Context, spec Spec) error {
	if err := os.MkdirAll(n.ConfDir(), 0o755); err != nil {
		return err
	}
	args := []string{
		"--config=", "--container-runtime-endpoint", "unix://" + n.Socket,
		"--root-dir", filepath.Join(n.Dir, "root"),
		"--state-dir", filepath.Join(n.Dir, "run"),
		"--netns-dir", netnsDir,
		"--cni-bin-dir", spec.BinDir,
		"--cni-conf-dir", n.ConfDir(),
		"--cni-cache-dir", n.cacheDir(),
		"--network-plugin", spec.Plugin,
		"-v", "2",
	}
	if spec.Plugin == "kubenet" {
		args = append(args, "--non-masquerade-cidr", ClusterCIDR, "--network-plugin-mtu", fmt.Sprint(podMTU(spec.Backend)))
	} else if err := n.writeConf(spec.Backend); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	args = append(args, spec.NetshimArgs...)
	logFile, err := os.OpenFile(n.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// sh mounts the tmpfs (named after the node, $0) in the new mount
	// namespace, then becomes netshim, so the PID is netshim's.
	script := `mount -t tmpfs -o mode=0755 "$0" /run/netns`
	for _, d := range spec.PrivateDirs {
		script += fmt.Sprintf(` && mount -t tmpfs -o mode=0755 "$0" '%s'`, d)
	}
	script += ` && exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, spec.Name + "-" + n.Name + "-netns",
		filepath.Join(spec.BinDir, "netshim")}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own session, so it outlives a `cluster up` that started it; Go
	// makes the new mount namespace private before exec.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Unshareflags: syscall.CLONE_NEWNS}
	// The child is forked from this locked thread, so it starts in the node's netns.
	if err := ns.WithNetNSPath(n.NetNS, func(ns.NetNS) error { return cmd.Start() }); err != nil {
		return fmt.Errorf("start netshim: %w", err)
	}
	n.PID, n.exited = cmd.Process.Pid, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.exited) }()
	if err := n.waitForSocket(15 * time.Second); err != nil {
		return err
	}
	if err := n.dial(); err != nil {
		return err
	}
	if spec.KubeletPodCIDR {
		return nil
	}
	if spec.Plugin == "kubenet" {
		// What kubelet does once the node object has its spec.podCIDR.
		req := &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
			NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: n.PodCIDR}}}
		if _, err := n.rt.UpdateRuntimeConfig(ctx, req); err != nil {
			return fmt.Errorf("UpdateRuntimeConfig with PodCIDR %s: %w", n.PodCIDR, err)
		}
	}
	return n.waitForNetworkReady(ctx, 15*time.Second)
}

func (n *Node) waitForSocket(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.Dial("unix", n.Socket)
		if err == nil {
			return c.Close()
		}
		select {
		case <-n.exited:
			return fmt.Errorf("netshim exited at start; its log %s ends:\n%s", n.Log(), n.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netshim did not accept on %s in %v (%v); its log ends:\n%s", n.Socket, timeout, err, n.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *Node) logTail() string {
	data, _ := os.ReadFile(n.Log())
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

func (n *Node) waitForNetworkReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := n.rt.Status(ctx, &runtimeapi.StatusRequest{})
		if err != nil {
			return fmt.Errorf("CRI Status: %w", err)
		}
		var last *runtimeapi.RuntimeCondition
		for _, c := range st.GetStatus().GetConditions() {
			if c.Type == runtimeapi.NetworkReady {
				if c.Status {
					return nil
				}
				last = c
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("network not ready after %v: %s: %s", timeout, last.GetReason(), last.GetMessage())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) dial() error {
	if n.conn != nil {
		return nil
	}
	conn, err := grpc.NewClient("unix://"+n.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI client for %s: %w", n.Socket, err)
	}
	n.conn, n.rt = conn, runtimeapi.NewRuntimeServiceClient(conn)
	return nil
}

func (n *Node) closeConn() {
	if n.conn != nil {
		n.conn.Close()
		n.conn, n.rt = nil, nil
	}
}

// Command runs name inside the node: in its network namespace and in the
// mount namespace of its netshim, where the node's /run/netns and private
// dirs are, so that what it mounts (kubelet's volumes) netshim's runc sees.
func (n *Node) Command(name string, args ...string) (*exec.Cmd, error) {
	if !n.running() {
		return nil, fmt.Errorf("%s: its netshim is not running, so there is no mount namespace to enter", n.Name)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.NetNS,
		fmt.Sprintf("--mount=/proc/%d/ns/mnt", n.PID), "--", name}, args...)...)
	// Its own session, so it outlives the process that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, nil
}

// Runtime is a CRI client to the node's netshim.
func (n *Node) Runtime() (runtimeapi.RuntimeServiceClient, error) {
	if err := n.dial(); err != nil {
		return nil, err
	}
	return n.rt, nil
}

// Pod is a sandbox running on a node.
type Pod struct {
	ID       string
	Name     string
	IP       net.IP // as CRI reports it
	PID      int    // of its pause process
	NetNSPin string // its netns pin, a path in the node's mount namespace
	Node     *Node
}

// NetNS is a path to the pod's netns that works from the host's mount
// namespace (its pin lives in the node's).
func (p *Pod) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", p.PID) }

// RunPod starts a pod on the node, as kubelet would, under the node's cgroup parent.
func (n *Node) RunPod(ctx context.Context, name string) (*Pod, error) {
	rt, err := n.Runtime()
	if err != nil {
		return nil, err
	}
	uid := make([]byte, 8)
	_, _ = rand.Read(uid)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "multinode", Uid: hex.EncodeToString(uid)},
		Hostname: name,
		Labels:   map[string]string{"app": name, "node": n.Name},
		Linux:    &runtimeapi.LinuxPodSandboxConfig{CgroupParent: n.CgroupParent},
	}
	run, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("run pod %s on %s: %w", name, n.Name, err)
	}
	st, err := rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: run.PodSandboxId, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("status of pod %s on %s: %w", name, n.Name, err)
	}
	var info struct {
		PID       int    `json:"pid"`
		NetNSPath string `json:"netnsPath"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.PID == 0 {
		return nil, fmt.Errorf("pod %s on %s: no pause PID in verbose status (%v)", name, n.Name, err)
	}
	return &Pod{ID: run.PodSandboxId, Name: name, IP: net.ParseIP(st.GetStatus().GetNetwork().GetIp()), PID: info.PID, NetNSPin: info.NetNSPath, Node: n}, nil
}

// RemovePod stops and removes a pod, as kubelet does when it is deleted.
func (n *Node) RemovePod(ctx context.Context, id string) error {
	rt, err := n.Runtime()
	if err != nil {
		return err
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod %s on %s: %w", id, n.Name, err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod %s on %s: %w", id, n.Name, err)
	}
	return nil
}

// IPReservations lists the IPs host-local holds for the node's pods.
func (n *Node) IPReservations(plugin string) []string {
	dir := filepath.Join(n.ipamDir(), "podnet")
	if plugin == "kubenet" {
		dir = filepath.Join(n.cacheDir(), "networks", "kubenet")
	}
	entries, _ := os.ReadDir(dir)
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// removeAllPods drains the node through its netshim, if it still answers.
func (n *Node) removeAllPods(ctx context.Context) error {
	if !n.running() {
		return nil
	}
	rt, err := n.Runtime()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	for _, p := range list.Items {
		if err := n.RemovePod(ctx, p.Id); err != nil {
			return err
		}
	}
	return nil
}

// running reports whether the recorded PID is still this node's netshim:
// its command line names the node's socket, which no other process's does.
// With no PID recorded (an `up` stopped between start and record), it
// looks for the process by that socket path.
func (n *Node) running() bool {
	if n.PID == 0 {
		if n.PID = netshimServing(n.Socket); n.PID == 0 {
			return false
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.PID))
	return err == nil && strings.Contains(string(cmdline), n.Socket) && proc.Alive(n.PID)
}

// stop ends the node's netshim by its PID: SIGTERM, then SIGKILL if it lingers.
func (n *Node) stop() error {
	n.closeConn()
	if !n.running() {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(n.PID, sig)
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if n.gone() {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return fmt.Errorf("netshim pid %d did not exit", n.PID)
}

// gone: reaped, if this process started it; else exited (a zombie left to
// whoever adopted it counts).
func (n *Node) gone() bool {
	if n.exited != nil {
		select {
		case <-n.exited:
			return true
		default:
			return false
		}
	}
	return !n.running()
}

// removeLeftovers removes the node's pause containers and processes that
// outlived its netshim, whatever cgroup parent their pods asked for.
func (n *Node) removeLeftovers(runc string) error {
	_, err := bench.RemoveLeftoverSandboxes(runc, filepath.Join(n.Dir, "root"), filepath.Join(n.Dir, "run"))
	return err
}

// netshimServing is the PID of the netshim whose command line names socket, or 0.
func netshimServing(socket string) int {
	for _, pid := range bench.LivePIDsNamed("netshim") {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmdline), socket) {
			return pid
		}
	}
	return 0
}
