// Command netshim is a CRI runtime shim for kubelet: pod sandboxes run by an
// OCI runtime, with kubelet-style network plugins (cni, kubenet, none).
package main

import (
	"context"
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
	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/netshim/netshim/pkg/dirlock"
	"github.com/netshim/netshim/pkg/reaper"
	"github.com/netshim/netshim/preflight"
	"github.com/netshim/netshim/sandbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

func main() {
	// Before anything can start a child: see takeNotifySocket.
	notifySocket := takeNotifySocket()
	klog.InitFlags(nil)
	if len(os.Args) > 1 && oci.IsGVisorCommand(os.Args[1]) {
		os.Exit(oci.RunGVisorRuntime(os.Args[1], os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(runCheck(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "config" {
		os.Exit(runConfig(os.Args[2:], os.Stdout, os.Stderr))
	}
	var o options
	fs := newFlagSet("netshim", &o)
	setUsage(fs, os.Stderr)
	if code := parseOptions(fs, &o, os.Args[1:]); code >= 0 {
		os.Exit(code)
	}
	if o.version {
		fmt.Println(versionString())
		return
	}
	// What a SIGHUP compares the config files with (see reloader).
	startup := reloader{args: os.Args[1:], applied: effectiveConfig(fs, &o)}
	if err := run(o, notifySocket, startup); err != nil {
		klog.ErrorS(err, "netshim failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(o options, notifySocket string, reloads reloader) error {
	if len(o.configFilesRead) > 0 {
		klog.InfoS("Read the config", "files", o.configFilesRead)
	} else {
		klog.InfoS("No config file; flags and defaults only", "config", o.configFile)
	}
	// SIGHUP reloads (see reloader); caught from the start, so that one
	// sent while netshim recovers does not end it.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	if o.verbosityFile != "" {
		if err := applyVerbosityFile(o.verbosityFile); err != nil {
			return err
		}
	}
	if o.eventsBuffer < 1 {
		return fmt.Errorf("--container-events-buffer %d: a subscriber must be allowed at least 1 event", o.eventsBuffer)
	}
	// Before anything names a cgroup: pods, containers and runc follow it.
	driver, err := cgroupdriver.Parse(o.cgroupDriver)
	if err != nil {
		return fmt.Errorf("--cgroup-driver: %w", err)
	}
	if driver == cgroupdriver.Systemd {
		if err := cgroupdriver.CheckInit("/proc", "/run"); err != nil {
			return err
		}
	}
	cgroupdriver.Set(driver)
	var hairpin network.HairpinMode
	if o.hairpinMode != "" {
		if hairpin, err = network.ParseHairpinMode(o.hairpinMode); err != nil {
			return err
		}
	}
	// Before anything reads them: a second netshim on the same root or
	// state dir would adopt the first one's checkpoints and pods.
	locks, err := lockDirs(o.rootDir, o.stateDir)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range locks {
			l.Close()
		}
	}()
	o.resolveHelpers()
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

	if container.HostAppArmorEnabled() {
		if err := container.LoadDefaultAppArmorProfile(); err != nil {
			klog.ErrorS(err, "AppArmor is enabled but netshim's default profile could not be loaded; containers asking for RuntimeDefault will be refused")
		}
	}
	defHandler, handlers, err := runtimeHandlers(context.Background(), &o)
	if err != nil {
		return err
	}
	reap := reaper.New()
	defer reap.Stop()
	sandboxes, err := sandbox.NewManager(sandbox.Config{
		Reaper:      reap,
		RootDir:     o.rootDir,
		StateDir:    o.stateDir,
		NetNSDir:    o.netnsDir,
		PauseBinary: o.pauseBinary,
		Runtime:     defHandler.Sandbox,
		Handlers:    sandboxHandlers(handlers, reap),
	})
	if err != nil {
		return err
	}
	defer sandboxes.Close()
	switch eff := network.EffectiveHairpinMode(hairpin, plugin.Name()); {
	case hairpin == "":
		// Not chosen: nothing to tell the user.
		hairpin = network.DefaultHairpinMode(plugin.Name())
	case eff != hairpin:
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

	images, err := image.NewStore(image.Config{Root: o.rootDir, RegistryConfig: o.registryConfig, CertsDir: o.registryCertsDir, Registerer: reg,
		PullProgressTimeout: o.pullProgress})
	if err != nil {
		return err
	}
	defer images.Close()
	containerRuntime := defHandler.Containers
	ctrHandlers, err := containerHandlers(handlers, conmon)
	if err != nil {
		return err
	}
	containers, err := container.NewManager(container.Config{
		RootDir:     filepath.Join(o.rootDir, "containers"),
		StateDir:    filepath.Join(o.stateDir, "containers"),
		Runtime:     containerRuntime,
		Monitor:     &oci.Conmon{Binary: conmon, Runtime: containerRuntime},
		Handlers:    ctrHandlers,
		Rootfs:      images,
		Reaper:      reap,
		CDISpecDirs: o.cdiSpecDirs,
	})
	if err != nil {
		return err
	}
	defer containers.Close()
	execDir, err := prepareExecDir(filepath.Join(o.stateDir, "execs"))
	if err != nil {
		return err
	}
	events := cri.NewEvents(o.eventsBuffer, reg)
	server := cri.NewServer(cri.Services{Sandboxes: sandboxes, Network: plugins, Containers: containers, Images: images, Exec: containerRuntime,
		Events: events}, cri.Dirs{
		Protected: []string{o.rootDir, o.stateDir, o.netnsDir, o.cniConfDir, o.cniCacheDir},
		Exec:      execDir,
	})
	server.SetRuntimeVersion(runtimeVersion())
	server.SetHandlers(defHandler, handlers)
	if err := server.Recover(context.Background()); err != nil {
		return err
	}
	logRecovered(sandboxes.List(), containers.List())
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
	info := cri.ConfigInfo{RootDir: o.rootDir, StateDir: o.stateDir, RegistryConfig: o.registryConfig,
		StreamingAddress: streamLis.Addr().String(), RuntimeHandlers: handlerInfo(&o)}
	var cniNetwork func() (string, string, bool)
	if p, ok := plugin.(*cni.Plugin); ok {
		cniNetwork = p.DefaultNetwork
	}
	switch plugin.Name() {
	case cni.PluginName:
		info.CNIConfDir = o.cniConfDir
		fallthrough
	case kubenet.PluginName: // kubenet makes its own network config
		info.CNIBinDirs, info.CNICacheDir = strings.Split(o.cniBinDir, ","), o.cniCacheDir
	}
	server.SetConfigInfo(info, cniNetwork)
	reg.MustRegister(cri.NewSandboxCollector(sandboxes))
	reg.MustRegister(cri.NewContainerCollector(containers))
	interceptors := cri.NewInterceptors(reg)
	grpcServer := grpc.NewServer(grpc.MaxRecvMsgSize(cri.MaxMessageSize), grpc.MaxSendMsgSize(cri.MaxMessageSize),
		grpc.ChainUnaryInterceptor(interceptors.Unary), grpc.ChainStreamInterceptor(interceptors.Stream))
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
	// The socket accepts connections from here on (the kernel queues them
	// until Serve takes them), and every earlier pod is recovered: this is
	// when kubelet may start.
	notifyReady(notifySocket)
	serveErr := make(chan error, 1)
	go func() { serveErr <- grpcServer.Serve(lis) }()
	klog.InfoS("netshim serving CRI", "endpoint", o.endpoint, "networkPlugin", plugin.Name(), "runtime", o.ociRuntime, "version", versionString())

	reloads.o, reloads.images, reloads.plugin = o, images, plugin
	for {
		select {
		case <-hups:
			reloads.reload()
		case sig := <-sigs:
			// Pods keep running: a restart of netshim must not disturb them.
			klog.InfoS("Shutting down; pod sandboxes keep running", "signal", sig.String())
			events.Close() // a subscriber's stream would hold GracefulStop up
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
}

func newPlugin(o options) (network.NetworkPlugin, error) {
	switch o.networkPlugin {
	case cni.PluginName:
		return cni.New(cni.Config{ConfDir: o.cniConfDir, BinDirs: strings.Split(o.cniBinDir, ","), CacheDir: o.cniCacheDir,
			LoopbackPlugin: o.cniLoopbackPlugin})
	case kubenet.PluginName:
		return kubenet.New(kubenet.Config{BinDirs: strings.Split(o.cniBinDir, ","), CacheDir: o.cniCacheDir, Bridge: o.kubenetBridge,
			LoopbackPlugin: o.cniLoopbackPlugin})
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
	state, st, err := preflight.InspectSocketPath(path, os.Geteuid())
	switch {
	case err != nil:
		return nil, "", err
	case state == preflight.SocketPathSymlink:
		return nil, "", fmt.Errorf("socket path %s is a symlink; refusing to use it", path)
	case state == preflight.SocketPathNotSocket:
		return nil, "", fmt.Errorf("socket path %s exists and is not a socket", path)
	case state == preflight.SocketPathOtherUser:
		return nil, "", fmt.Errorf("socket path %s belongs to uid %d, not to netshim's user", path, st.Sys().(*syscall.Stat_t).Uid)
	case state == preflight.SocketPathOwnSocket:
		if err := os.Remove(path); err != nil {
			return nil, "", fmt.Errorf("remove stale socket %s: %w", path, err)
		}
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

// prepareExecDir makes the dir of the execs' own dirs (0700: a TTY exec's
// holds the container's process spec, environment included) and sweeps
// what the execs of a netshim killed during them left there, their
// processes included.
func prepareExecDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create exec dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("exec dir: %w", err)
	}
	killed, err := oci.SweepExecs(dir)
	if len(killed) > 0 {
		klog.InfoS("Killed the processes of execs a killed netshim left running", "pids", killed)
	}
	if err != nil {
		klog.ErrorS(err, "Some exec dirs of an earlier run could not be removed", "dir", dir)
	}
	return dir, nil
}

// lockDirs takes the root and state dirs for this process (see dirlock).
// One dir given as both is locked once: a second flock from this process
// would refuse it, naming netshim itself.
func lockDirs(rootDir, stateDir string) ([]*os.File, error) {
	// Not listable by others from the start: both hold pod configs and
	// runtime state (the sandbox manager sets 0711 on dirs that existed
	// before).
	for _, d := range []string{rootDir, stateDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	root, err := dirlock.Lock(rootDir, "root dir", "--root-dir")
	if err != nil {
		return nil, err
	}
	if filepath.Clean(stateDir) == filepath.Clean(rootDir) {
		return []*os.File{root}, nil
	}
	state, err := dirlock.Lock(stateDir, "state dir", "--state-dir")
	if err != nil {
		root.Close()
		return nil, err
	}
	return []*os.File{root, state}, nil
}

// logRecovered says in one line, at the default level, what this start
// took over from the last run: what an operator checks first after a
// restart. A pod whose network DEL is still owed (its network attached
// but not READY) is kept for a later stop or remove to retry.
func logRecovered(sbs []*sandbox.Sandbox, ctrs []*container.Container) {
	var ready, owed, running int
	for _, sb := range sbs {
		if sb.State == sandbox.StateReady {
			ready++
		} else if sb.NetworkAttached {
			owed++
		}
	}
	for _, c := range ctrs {
		if c.State == container.StateRunning {
			running++
		}
	}
	klog.InfoS("Recovered pods and containers of the last run", "pods", len(sbs), "readyPods", ready,
		"containers", len(ctrs), "runningContainers", running, "networkDELsOwed", owed)
}
