package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netshim/netshim/test/multinode/cluster"
)

// nodeDir holds a node's kubelet, flannel and kube-proxy files. It is below
// the node's own dir, which the multinode harness removes at Down.
func nodeDir(n *cluster.Node, elem ...string) string {
	return filepath.Join(append([]string{n.Dir, "kube"}, elem...)...)
}

// startNode starts the node's kubelet and waits until the controller-manager
// has given the node a PodCIDR (kubelet hands it to netshim's kubenet), then
// flanneld, which carries that PodCIDR to the other nodes, and kube-proxy.
func (c *Cluster) startNode(ctx context.Context, n *cluster.Node) error {
	for _, d := range []string{nodeDir(n, "work"), nodeDir(n, "pod-logs"), nodeDir(n, "kubelet"), nodeDir(n, "pki")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := makeCgroupRoot(c.cgroupRoot(n)); err != nil {
		return err
	}
	// An empty resolv.conf: pods with dnsPolicy Default (CoreDNS) get no
	// upstream, so nothing in the cluster resolves names on the internet.
	resolv := nodeDir(n, "resolv.conf")
	if err := os.WriteFile(resolv, nil, 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
containerRuntimeEndpoint: unix://%s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
failSwapOn: false
podLogsDir: %s
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
serializeImagePulls: false
resolvConf: %s
clusterDNS: [%s]
clusterDomain: %s
`, c.cgroupRoot(n), n.Socket, n.IP, nodeDir(n, "pod-logs"), resolv, DNSServiceIP, ClusterDomain)
	cfgPath := nodeDir(n, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	kubelet, err := n.Command(filepath.Join(c.Spec.BinDir, "kubelet"), "--config", cfgPath,
		"--kubeconfig", c.kubeconfigFor(n.Name), "--root-dir", nodeDir(n, "kubelet"),
		"--cert-dir", nodeDir(n, "pki"), "--hostname-override", n.Name, "--node-ip", n.IP, "--v", "2")
	if err != nil {
		return err
	}
	// kubelet deletes <log_path>* of removed containers: an empty dir of its own.
	kubelet.Dir = nodeDir(n, "work")
	kp, err := c.start("kubelet-"+n.Name, kubelet)
	if err != nil {
		return err
	}
	var podCIDR string
	err = waitFor(ctx, 2*time.Minute, n.Name+" registered with a PodCIDR", func() error {
		if !kp.alive() {
			return fmt.Errorf("kubelet exited; its log ends:\n%s", kp.logTail(20))
		}
		out, err := c.Kubectl(ctx, "", "get", "node", n.Name, "-o", "jsonpath={.spec.podCIDR}")
		if err != nil {
			return err
		}
		if podCIDR = strings.TrimSpace(out); podCIDR == "" {
			return fmt.Errorf("no spec.podCIDR yet")
		}
		return nil
	})
	if err != nil {
		return err
	}
	n.PodCIDR = podCIDR
	netConf, _ := json.Marshal(map[string]any{"Network": cluster.ClusterCIDR, "Backend": map[string]string{"Type": c.Spec.Backend}})
	if err := os.WriteFile(nodeDir(n, "net-conf.json"), netConf, 0o644); err != nil {
		return err
	}
	flannel, err := n.Command(filepath.Join(c.Spec.BinDir, "flanneld"), "--kube-subnet-mgr",
		"--kubeconfig-file", c.kubeconfigFor("flannel"), "--iface", "eth0", "--ip-masq=false",
		"--net-config-path", nodeDir(n, "net-conf.json"), "--subnet-file", nodeDir(n, "subnet.env"), "--v", "1")
	if err != nil {
		return err
	}
	flannel.Env = append(os.Environ(), "NODE_NAME="+n.Name)
	if _, err := c.start("flanneld-"+n.Name, flannel); err != nil {
		return err
	}
	// kube-proxy leaves the host's conntrack table alone (those sysctls are
	// not per network namespace): every conntrack setting is 0, "as it is".
	proxy, err := n.Command(filepath.Join(c.Spec.BinDir, "kube-proxy"),
		"--kubeconfig", c.kubeconfigFor("kube-proxy"), "--hostname-override", n.Name,
		"--proxy-mode", "iptables", "--cluster-cidr", cluster.ClusterCIDR,
		"--conntrack-max-per-core", "0", "--conntrack-min", "0",
		"--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0",
		"--metrics-bind-address", "127.0.0.1:10249", "--healthz-bind-address", "127.0.0.1:10256", "--v", "1")
	if err != nil {
		return err
	}
	if _, err := c.start("kube-proxy-"+n.Name, proxy); err != nil {
		return err
	}
	return nil
}

// cgroupRoot is the node's kubelet --cgroup-root: below the cluster's own
// cgroup, which the multinode harness empties and removes at Down.
func (c *Cluster) cgroupRoot(n *cluster.Node) string { return "/" + c.Spec.Name + "/" + n.Name }

// makeCgroupRoot creates dir in every cgroup hierarchy (kubelet refuses a
// cgroup root that is missing from one), giving cpuset dirs their parent's
// CPUs and memory nodes, which a new cpuset lacks.
func makeCgroupRoot(dir string) error {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*/cgroup.procs")
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		hierarchies = []string{"/sys/fs/cgroup/cgroup.procs"}
	}
	for _, h := range hierarchies {
		base := filepath.Dir(h)
		cur := base
		for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
			parent := cur
			cur = filepath.Join(cur, part)
			if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
				return fmt.Errorf("cgroup %s: %w", cur, err)
			}
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				inherited, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					continue // not the cpuset hierarchy
				}
				own, err := os.ReadFile(filepath.Join(cur, f))
				if err == nil && strings.TrimSpace(string(own)) == "" {
					if err := os.WriteFile(filepath.Join(cur, f), inherited, 0o644); err != nil {
						return fmt.Errorf("cgroup %s: %w", filepath.Join(cur, f), err)
					}
				}
			}
		}
	}
	return nil
}
