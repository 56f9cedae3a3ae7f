package kube

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/netshim/netshim/test/netcheck"
)

// identity is one client of the API server: a static token mapped to a
// user and its groups (--token-auth-file), and a kubeconfig carrying it.
type identity struct {
	file   string // kubeconfig name under the cluster's dir
	user   string
	groups []string
}

func (c *Cluster) identities() []identity {
	ids := []identity{
		{"admin", "admin", []string{"system:masters"}},
		{"kube-controller-manager", "system:kube-controller-manager", nil},
		{"kube-scheduler", "system:kube-scheduler", nil},
		// Bound to system:node-proxier by the API server's bootstrap policy.
		{"kube-proxy", "system:kube-proxy", nil},
		// Bound to the flannel ClusterRole by addons.go.
		{"flannel", "flannel", nil},
	}
	for i := 1; i <= c.Spec.Nodes; i++ {
		// The Node authorizer and NodeRestriction know a node by this name and group.
		name := fmt.Sprintf("node%d", i)
		ids = append(ids, identity{name, "system:node:" + name, []string{"system:nodes"}})
	}
	return ids
}

func (c *Cluster) kubeconfigFor(name string) string { return c.path("kubeconfig", name) }

func (c *Cluster) pki() pki { return pki{dir: c.path("pki")} }

// writeCredentials makes the PKI, the token file and a kubeconfig per
// identity (to the API server's underlay address), plus the admin's
// kubeconfig through the loopback proxy.
func (c *Cluster) writeCredentials() error {
	names := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain, "localhost"}
	ips := []net.IP{net.ParseIP(ControlPlaneIP), net.ParseIP(APIServiceIP), net.ParseIP("127.0.0.1")}
	if err := c.pki().make(names, ips); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := os.MkdirAll(c.path("kubeconfig"), 0o700); err != nil {
		return err
	}
	ca, err := os.ReadFile(c.pki().caCert())
	if err != nil {
		return err
	}
	var tokens strings.Builder
	server := fmt.Sprintf("https://%s:%d", ControlPlaneIP, apiPort)
	for i, id := range c.identities() {
		token, err := randomToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(&tokens, "%s,%s,%d,%q\n", token, id.user, 1000+i, strings.Join(id.groups, ","))
		if err := writeKubeconfig(c.kubeconfigFor(id.file), server, ca, token); err != nil {
			return err
		}
		if id.file == "admin" {
			if err := writeKubeconfig(c.InClusterKubeconfig(), server, ca, token); err != nil {
				return err
			}
			port, err := freeLoopbackPort()
			if err != nil {
				return err
			}
			c.ProxyAddr = fmt.Sprintf("127.0.0.1:%d", port)
			if err := writeKubeconfig(c.Kubeconfig(), "https://"+c.ProxyAddr, ca, token); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(c.path("pki", "tokens.csv"), []byte(tokens.String()), 0o600); err != nil {
		return err
	}
	return c.save()
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func writeKubeconfig(path, server string, ca []byte, token string) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: netshim-kube
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: user
  user:
    token: %s
contexts:
- name: netshim-kube
  context: {cluster: netshim-kube, user: user}
current-context: netshim-kube
`, server, base64.StdEncoding.EncodeToString(ca), token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// inControlPlane runs a binary in the control plane's network namespace.
func (c *Cluster) inControlPlane(bin string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + c.ControlPlane, "--", filepath.Join(c.Spec.BinDir, bin)}, args...)...)
}

func (c *Cluster) start(name string, cmd *exec.Cmd) (*Proc, error) {
	p, err := launch(name, cmd, filepath.Join(c.LogDir(), name+".log"))
	if err != nil {
		return nil, err
	}
	return p, c.record(p)
}

// startControlPlane starts etcd, the API server (and the loopback proxy to
// it), the controller-manager (which gives every node its PodCIDR) and the
// scheduler, and waits for the API server to be ready.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	p := c.pki()
	etcdDir := c.path("etcd")
	// Tests need no durability: --unsafe-no-fsync keeps etcd off the disk's critical path.
	if _, err := c.start("etcd", c.inControlPlane("etcd", "--name", "cp", "--data-dir", etcdDir,
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "cp=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn")); err != nil {
		return err
	}
	api, err := c.start("kube-apiserver", c.inControlPlane("kube-apiserver",
		"--etcd-servers", "http://127.0.0.1:2379",
		"--advertise-address", ControlPlaneIP, "--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", c.path("pki", "apiserver"),
		"--tls-cert-file", p.serverCert(), "--tls-private-key-file", p.serverKey(),
		"--client-ca-file", p.caCert(),
		"--token-auth-file", c.path("pki", "tokens.csv"),
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--service-account-issuer", "https://kubernetes.default.svc."+ClusterDomain,
		"--service-account-key-file", p.saPub(), "--service-account-signing-key-file", p.saKey(),
		"--service-cluster-ip-range", ServiceCIDR,
		"--allow-privileged",
		"--kubelet-preferred-address-types", "InternalIP",
		"--profiling=false", "--v", "1"))
	if err != nil {
		return err
	}
	if _, err := c.start("apiserver-proxy", exec.Command(filepath.Join(c.Spec.BinDir, "netshim-kube"), "proxy",
		"--listen", c.ProxyAddr, "--netns", c.ControlPlane, "--to", fmt.Sprintf("%s:%d", ControlPlaneIP, apiPort),
		"--dir", c.Spec.Dir)); err != nil {
		return err
	}
	client, err := c.apiClient()
	if err != nil {
		return err
	}
	err = waitFor(ctx, 2*time.Minute, "kube-apiserver /readyz", func() error {
		if !api.alive() {
			return fmt.Errorf("kube-apiserver exited; its log ends:\n%s", api.logTail(20))
		}
		return c.get(ctx, client, "/readyz")
	})
	if err != nil {
		return err
	}
	if _, err := c.start("kube-controller-manager", c.inControlPlane("kube-controller-manager",
		"--kubeconfig", c.kubeconfigFor("kube-controller-manager"),
		"--allocate-node-cidrs", "--cluster-cidr", "198.18.0.0/16", "--node-cidr-mask-size", "24",
		"--service-cluster-ip-range", ServiceCIDR,
		"--root-ca-file", p.caCert(), "--service-account-private-key-file", p.saKey(),
		"--use-service-account-credentials",
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--v", "1")); err != nil {
		return err
	}
	_, err = c.start("kube-scheduler", c.inControlPlane("kube-scheduler",
		"--kubeconfig", c.kubeconfigFor("kube-scheduler"),
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--v", "1"))
	return err
}

// apiClient is an HTTPS client that reaches the API server from inside the
// control plane's namespace, as the admin.
func (c *Cluster) apiClient() (*http.Client, error) {
	ca, err := os.ReadFile(c.pki().caCert())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     netcheck.DialerIn(c.ControlPlane),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}, nil
}

func (c *Cluster) adminToken() (string, error) {
	data, err := os.ReadFile(c.path("pki", "tokens.csv"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Split(line, ","); len(f) > 1 && f[1] == "admin" {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no admin token in %s", c.path("pki", "tokens.csv"))
}

// get asks the API server for path as the admin and wants a 200.
func (c *Cluster) get(ctx context.Context, client *http.Client, path string) error {
	token, err := c.adminToken()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s:%d%s", ControlPlaneIP, apiPort, path), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

// Kubectl runs bin/kubectl as the admin with stdin, and returns its output.
func (c *Cluster) Kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.Spec.BinDir, "kubectl"), append([]string{"--kubeconfig", c.Kubeconfig()}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
