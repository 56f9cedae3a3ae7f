// Command netshim is a CRI runtime shim for kubelet: pod sandboxes run by an
// OCI runtime, with kubelet-style network plugins (cni, kubenet, none).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/cri"
	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/network/cni"
	"github.com/netshim/netshim/network/kubenet"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/reaper"
	"github.com/netshim/netshim/sandbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

type options struct {
	endpoint          string
	rootDir           string
	stateDir          string
	netnsDir          string
	networkPlugin     string
	cniConfDir        string
	cniBinDir         string
	cniCacheDir       string
	kubenetBridge     string
	hairpinMode       string
	nonMasqueradeCIDR string
	mtu               int
	ociRuntime        string
	pauseBinary       string
	conmon            string
	registryConfig    string
	registryCertsDir  string
	streamingAddress  string
	metricsAddress    string
	socketGroup       string
}

func main() {
	klog.InitFlags(nil)
	opts := parseFlags()
	if err := run(opts); err != nil {
		klog.ErrorS(err, "netshim failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.endpoint, "container-runtime-endpoint", "unix:///run/netshim/netshim.sock", "CRI endpoint to serve (a unix socket), as kubelet's --container-runtime-endpoint names it")
	flag.StringVar(&o.rootDir, "root-dir", "/var/lib/netshim", "directory for persistent state: sandbox checkpoints")
	flag.StringVar(&o.stateDir, "state-dir", "/run/netshim", "directory for runtime state: OCI bundles, the OCI runtime's state, the pause rootfs")
	flag.StringVar(&o.netnsDir, "netns-dir", "/run/netns", "directory where sandbox network namespaces are pinned (so `ip netns` sees them)")
	flag.StringVar(&o.networkPlugin, "network-plugin", cni.PluginName, "network plugin: cni, kubenet, or none (\"\" also means none)")
	flag.StringVar(&o.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory of CNI network configs; the first valid file in lexical order is the default network")
	flag.StringVar(&o.cniBinDir, "cni-bin-dir", "/opt/cni/bin", "comma-separated directories holding CNI plugin binaries")
	flag.StringVar(&o.cniCacheDir, "cni-cache-dir", "/var/lib/cni", "directory where libcni caches results and configs for teardown")
	flag.StringVar(&o.kubenetBridge, "kubenet-bridge", kubenet.DefaultBridge, "the bridge kubenet creates and attaches pods to")
	flag.StringVar(&o.hairpinMode, "hairpin-mode", string(network.HairpinPromiscuousBridge), "how pods reach themselves through a service: promiscuous-bridge, hairpin-veth or none")
	flag.StringVar(&o.nonMasqueradeCIDR, "non-masquerade-cidr", "10.0.0.0/8", "traffic to IPs outside this range is masqueraded (kubenet)")
	flag.IntVar(&o.mtu, "network-plugin-mtu", 0, "MTU for pod interfaces (kubenet); 0 picks the default")
	flag.StringVar(&o.ociRuntime, "oci-runtime", "", "path of the OCI runtime binary (runc); default: runc beside netshim, else on PATH")
	flag.StringVar(&o.pauseBinary, "pause-binary", "", "path of the static pause program; default: pause beside netshim")
	flag.StringVar(&o.streamingAddress, "streaming-address", "127.0.0.1:0", "host:port the exec, attach and port-forward streams are served on (port 0 picks a free one); keep it on loopback unless the node's network is trusted")
	flag.StringVar(&o.conmon, "conmon", "conmon", "path of conmon, the per-container monitor (found on PATH by default)")
	flag.StringVar(&o.registryConfig, "registry-config", "", "registries.conf (v2) file: mirrors, plain-HTTP and blocked registries; empty pulls from each image's own registry")
	flag.StringVar(&o.registryCertsDir, "registry-certs-dir", "/etc/containers/certs.d", "directory of per-registry CA files: <host[:port]>/*.crt")
	flag.StringVar(&o.socketGroup, "socket-group", "", "group (name or GID) given access to the CRI socket, which is mode 0660; default: root's")
	flag.StringVar(&o.metricsAddress, "metrics-address", "", "host:port to serve Prometheus metrics on (e.g. 127.0.0.1:9753); empty turns them off")
	flag.Parse()
	return o
}

// besideExecutable finds name next to netshim's own binary, else on PATH.
func besideExecutable(name string) string {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

func run(o options) error {
	hairpin, err := network.ParseHairpinMode(o.hairpinMode)
	if err != nil {
		return err
	}
	if o.ociRuntime == "" {
		o.ociRuntime = besideExecutable("runc")
	}
	if o.pauseBinary == "" {
		o.pauseBinary = besideExecutable("pause")
	}
	if _, err := exec.LookPath(o.ociRuntime); err != nil {
		return fmt.Errorf("OCI runtime %q not found (set --oci-runtime): %w", o.ociRuntime, err)
	}
	conmon, err := exec.LookPath(o.conmon)
	if err != nil {
		return fmt.Errorf("conmon %q not found (install Debian's conmon, or set --conmon): %w", o.conmon, err)
	}
	plugin, err := newPlugin(o)
	if err != nil {
		return err
	}
	if err := reaper.BecomeSubreaper(); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	network.InitNode()

	reap := reaper.New()
	defer reap.Stop()
	sandboxes, err := sandbox.NewManager(sandbox.Config{
		Reaper:      reap,
		RootDir:     o.rootDir,
		StateDir:    o.stateDir,
		NetNSDir:    o.netnsDir,
		PauseBinary: o.pauseBinary,
		Runtime:     &oci.Runc{Binary: o.ociRuntime, Root: filepath.Join(o.stateDir, "runtime")},
	})
	if err != nil {
		return err
	}
	defer sandboxes.Close()
	if eff := network.EffectiveHairpinMode(hairpin, plugin.Name()); eff != hairpin {
		klog.InfoS("Hairpin mode promiscuous-bridge needs kubenet; using hairpin-veth", "networkPlugin", plugin.Name())
		hairpin = eff
	}
	if err := plugin.Init(sandboxes, hairpin, o.nonMasqueradeCIDR, o.mtu); err != nil {
		return fmt.Errorf("init network plugin %s: %w", plugin.Name(), err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	plugins := network.NewPluginManager(plugin, reg)
	defer plugins.Close()

	images, err := image.NewStore(image.Config{Root: o.rootDir, RegistryConfig: o.registryConfig, CertsDir: o.registryCertsDir, Registerer: reg})
	if err != nil {
		return err
	}
	containerRuntime := &oci.Runc{Binary: o.ociRuntime, Root: filepath.Join(o.stateDir, "containers-runc")}
	containers, err := container.NewManager(container.Config{
		RootDir:  filepath.Join(o.rootDir, "containers"),
		StateDir: filepath.Join(o.stateDir, "containers"),
		Runtime:  containerRuntime,
		Monitor:  &oci.Conmon{Binary: conmon, Runtime: containerRuntime},
		Rootfs:   images,
		Reaper:   reap,
	})
	if err != nil {
		return err
	}
	server := cri.NewServer(cri.Services{Sandboxes: sandboxes, Network: plugins, Containers: containers, Images: images, Exec: containerRuntime}, cri.Dirs{
		Protected: []string{o.rootDir, o.stateDir, o.netnsDir, o.cniConfDir, o.cniCacheDir},
	})
	if err := server.Recover(context.Background()); err != nil {
		return err
	}
	streamLis, err := net.Listen("tcp", o.streamingAddress)
	if err != nil {
		return fmt.Errorf("listen for streaming on %s: %w", o.streamingAddress, err)
	}
	streamServer, err := cri.NewStreamingServer(server, streamLis)
	if err != nil {
		return err
	}
	go func() { _ = streamServer.Serve(streamLis) }()
	defer streamServer.Close()
	klog.InfoS("Serving exec, attach and port-forward streams", "address", streamLis.Addr().String())
	reg.MustRegister(cri.NewSandboxCollector(sandboxes))
	interceptors := cri.NewInterceptors(reg)
	grpcServer := grpc.NewServer(grpc.ChainUnaryInterceptor(interceptors.Unary), grpc.ChainStreamInterceptor(interceptors.Stream))
	runtimeapi.RegisterRuntimeServiceServer(grpcServer, server)
	runtimeapi.RegisterImageServiceServer(grpcServer, server)

	lis, sockPath, err := listen(o.endpoint, o.socketGroup)
	if err != nil {
		return err
	}
	defer os.Remove(sockPath)

	if o.metricsAddress != "" {
		metricsLis, err := net.Listen("tcp", o.metricsAddress)
		if err != nil {
			return fmt.Errorf("listen for metrics on %s: %w", o.metricsAddress, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(metricsLis) }()
		defer srv.Close()
		klog.InfoS("Serving metrics", "address", metricsLis.Addr().String())
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	serveErr := make(chan error, 1)
	go func() { serveErr <- grpcServer.Serve(lis) }()
	klog.InfoS("netshim serving CRI", "endpoint", o.endpoint, "networkPlugin", plugin.Name(), "runtime", o.ociRuntime)

	select {
	case sig := <-sigs:
		// Pods keep running: a restart of netshim must not disturb them.
		klog.InfoS("Shutting down; pod sandboxes keep running", "signal", sig.String())
		stopped := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			grpcServer.Stop()
		}
		return nil
	case err := <-serveErr:
		return fmt.Errorf("serve CRI: %w", err)
	}
}

func newPlugin(o options) (network.NetworkPlugin, error) {
	switch o.networkPlugin {
	case cni.PluginName:
		return cni.New(cni.Config{ConfDir: o.cniConfDir, BinDirs: strings.Split(o.cniBinDir, ","), CacheDir: o.cniCacheDir})
	case kubenet.PluginName:
		return kubenet.New(kubenet.Config{BinDirs: strings.Split(o.cniBinDir, ","), CacheDir: o.cniCacheDir, Bridge: o.kubenetBridge})
	case "", network.NoopPluginName:
		return &network.NoopPlugin{}, nil
	}
	return nil, fmt.Errorf("unknown --network-plugin %q: want cni, kubenet or none", o.networkPlugin)
}

// listen opens the unix socket of endpoint (mode 0660, group socketGroup).
// It replaces a stale socket of an earlier run, but refuses a path that is a
// symlink, is not a socket, or belongs to another user: removing or chmodding
// such a thing could be turned against the node.
func listen(endpoint, socketGroup string) (net.Listener, string, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || path == "" {
		return nil, "", fmt.Errorf("--container-runtime-endpoint %q: want unix:///path/to.sock", endpoint)
	}
	gid := -1
	if socketGroup != "" {
		g, err := lookupGroup(socketGroup)
		if err != nil {
			return nil, "", fmt.Errorf("--socket-group %q: %w", socketGroup, err)
		}
		gid = g
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("create socket dir: %w", err)
	}
	if st, err := os.Lstat(path); err == nil {
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			return nil, "", fmt.Errorf("socket path %s is a symlink; refusing to use it", path)
		case st.Mode()&os.ModeSocket == 0:
			return nil, "", fmt.Errorf("socket path %s exists and is not a socket", path)
		case st.Sys().(*syscall.Stat_t).Uid != uint32(os.Geteuid()):
			return nil, "", fmt.Errorf("socket path %s belongs to uid %d, not to netshim's user", path, st.Sys().(*syscall.Stat_t).Uid)
		}
		if err := os.Remove(path); err != nil {
			return nil, "", fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, "", fmt.Errorf("set socket mode: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			lis.Close()
			return nil, "", fmt.Errorf("set socket group: %w", err)
		}
	}
	return lis, path, nil
}

// lookupGroup accepts a group name or a numeric GID.
func lookupGroup(g string) (int, error) {
	if gid, err := strconv.Atoi(g); err == nil {
		return gid, nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(grp.Gid)
}
