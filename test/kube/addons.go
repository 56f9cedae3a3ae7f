package kube

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/netshim/netshim/test/multinode/cluster"
	"github.com/netshim/netshim/test/netcheck"
)

// CoreDNSImage is the CoreDNS image the cluster runs, built here from
// CoreDNS's Go module (images.go).
const CoreDNSImage = "registry.k8s.io/coredns/coredns:v1.14.7"

// addons are applied once the API server is ready: flannel's RBAC, and
// CoreDNS behind the kube-dns Service at DNSServiceIP. CoreDNS answers for
// the cluster's domain only: there is no upstream to forward to.
var addons = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: flannel}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get]
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch, patch]
- apiGroups: [""]
  resources: [nodes/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: flannel}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flannel}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: flannel}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {kind: ServiceAccount, name: coredns, namespace: kube-system}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health {
            lameduck 5s
        }
        ready
        kubernetes CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 2
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      tolerations:
      - {key: node-role.kubernetes.io/control-plane, effect: NoSchedule}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels: {k8s-app: kube-dns}
      containers:
      - name: coredns
        image: COREDNS_IMAGE
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        volumeMounts:
        - {name: config-volume, mountPath: /etc/coredns, readOnly: true}
        livenessProbe:
          httpGet: {path: /health, port: 8080}
          initialDelaySeconds: 10
          periodSeconds: 10
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
      volumes:
      - name: config-volume
        configMap:
          name: coredns
          items: [{key: Corefile, path: Corefile}]
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: DNS_SERVICE_IP
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
`

func (c *Cluster) applyAddons(ctx context.Context) error {
	manifest := strings.NewReplacer("CLUSTER_DOMAIN", ClusterDomain, "COREDNS_IMAGE", CoreDNSImage,
		"DNS_SERVICE_IP", DNSServiceIP).Replace(addons)
	// RBAC objects may take a moment after /readyz; retry until applied.
	return waitFor(ctx, time.Minute, "apply flannel RBAC and CoreDNS", func() error {
		_, err := c.Kubectl(ctx, manifest, "apply", "-f", "-")
		return err
	})
}

// waitReady waits until every node is Ready, routes the control plane's
// namespace to every node's pods (so the API server reaches pods and
// e2e.test, run there, reaches them too), and CoreDNS answers for the API
// server's Service from every node.
func (c *Cluster) waitReady(ctx context.Context) error {
	err := waitFor(ctx, 3*time.Minute, "every node Ready", func() error {
		out, err := c.Kubectl(ctx, "", "get", "nodes", "-o",
			`jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}`)
		if err != nil {
			return err
		}
		ready := 0
		for _, f := range strings.Fields(out) {
			if strings.HasSuffix(f, "=True") {
				ready++
			}
		}
		if ready != c.Spec.Nodes {
			return fmt.Errorf("%d of %d nodes Ready: %s", ready, c.Spec.Nodes, out)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cp := &cluster.Host{NetNS: c.ControlPlane}
	for _, n := range c.nodes.Nodes {
		out, err := c.Kubectl(ctx, "", "get", "node", n.Name, "-o", "jsonpath={.spec.podCIDR}")
		if err != nil {
			return err
		}
		if err := cp.RouteToPods(strings.TrimSpace(out), n); err != nil {
			return fmt.Errorf("route the control plane to %s's pods: %w", n.Name, err)
		}
	}
	for _, n := range c.nodes.Nodes {
		err := waitFor(ctx, 3*time.Minute, "CoreDNS answering on "+n.Name, func() error {
			return c.resolveOn(ctx, n, "kubernetes.default.svc."+ClusterDomain, APIServiceIP)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// resolveOn asks the cluster DNS, from node n's namespace (through its
// kube-proxy's Service rules), for name, and wants want among the answers.
func (c *Cluster) resolveOn(ctx context.Context, n *cluster.Node, name, want string) error {
	dial := netcheck.DialerIn(n.NetNS)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, net.JoinHostPort(DNSServiceIP, "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a == want {
			return nil
		}
	}
	return fmt.Errorf("%s resolved to %v, want %s", name, addrs, want)
}
