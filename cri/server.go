// Package cri is netshim's CRI v1 gRPC server. It validates requests, maps
// errors to gRPC codes, and is the one place that sequences the sandbox
// lifecycle (package sandbox) with pod networking (package network).
package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/keylock"
	"github.com/netshim/netshim/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/klog/v2"
)

const (
	runtimeName = "netshim"
	// kubeAPIVersion must be exactly this: kubelet refuses other answers.
	kubeAPIVersion    = "0.1.0"
	runtimeAPIVersion = "v1"
)

// MaxMessageSize is the largest gRPC message netshim takes or sends:
// kubelet's own limit (16 MiB). gRPC's 4 MiB default refused requests
// kubelet sends (a CreateContainer with 5 MiB of annotations), and an
// answer over it is refused by kubelet.
const MaxMessageSize = 16 << 20

// Sandboxes is what the server needs of the sandbox manager.
type Sandboxes interface {
	Create(spec sandbox.Spec) (*sandbox.Sandbox, error)
	StartPause(ctx context.Context, id string) error
	NetworkDetached(id string) error
	Ready(id string, ips []string) error
	MarkNotReady(id string) error
	StopPause(ctx context.Context, id string) error
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
	Get(id string) (*sandbox.Sandbox, error)
	Resolve(prefix string) (string, error)
	Files(id string) sandbox.Files
	List() []*sandbox.Sandbox
	RefreshState(id string)
	RuntimeStatus() error
	Recover() ([]*sandbox.Sandbox, error)
	SweepOrphans(ctx context.Context)
	SetEventSink(sandbox.EventSink) // for GetContainerEvents (events.go)
}

// Network is what the server needs of the network PluginManager.
type Network interface {
	PluginName() string
	Status() error
	IPFamilies() (v4, v6, known bool)
	SetPodCIDR(cidrs []string) error
	SetUpPod(ctx context.Context, pod network.Pod) (*network.PodNetworkStatus, error)
	TearDownPod(ctx context.Context, pod network.Pod) error
	GetPodNetworkStatus(ctx context.Context, pod network.Pod) (*network.PodNetworkStatus, error)
	GC(ctx context.Context, validSandboxIDs []string) error
	StopOrphanedPlugins(sandboxIDs []string) []int
}

// Server implements the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	config     ConfigInfo                          // see SetConfigInfo
	cniNetwork func() (name, file string, ok bool) // see SetConfigInfo

	sandboxes Sandboxes
	network   Network
	// containers, images and streaming are defined in container.go,
	// image.go and streaming.go, where they are used.
	containers Containers
	images     Images
	execer     Execer
	// defaultHandler and handlers are the runtime handlers (handlers.go).
	defaultHandler *oci.Handler
	handlers       map[string]*oci.Handler
	// streaming is set by NewStreamingServer.
	streaming streaming.Server
	// ops serialises whole lifecycle operations (network plus sandbox
	// steps) on one sandbox ID, so a stop and a remove never interleave.
	ops  keylock.Locks
	dirs Dirs
	// runtimeVersion is what Version reports as RuntimeVersion.
	runtimeVersion string
	// events streams the managers' changes to GetContainerEvents; nil
	// leaves it unimplemented.
	events *Events
}

// sandboxImageNote is what `crictl info` says in place of containerd's
// sandboxImage: no image is pulled for sandboxes.
const sandboxImageNote = "none: sandboxes run netshim's built-in static pause program; kubelet's --pod-infra-container-image is not used"

// Dirs are netshim's own directories as the server needs them.
type Dirs struct {
	// Protected are netshim's state directories: no pod may log into them.
	Protected []string
	// Exec holds each exec's dir (pid file, console socket, process spec);
	// "" is the system's temp dir.
	Exec string
}

// Services are the parts the server sequences.
type Services struct {
	Sandboxes  Sandboxes
	Network    Network
	Containers Containers
	Images     Images
	// Exec runs processes in containers, for ExecSync and exec streams.
	Exec Execer
	// Events, if set, is told of every sandbox and container change, for
	// GetContainerEvents (see NewEvents).
	Events *Events
}

// NewServer returns a server over the given services.
func NewServer(svc Services, dirs Dirs) *Server {
	s := &Server{sandboxes: svc.Sandboxes, network: svc.Network, containers: svc.Containers,
		images: svc.Images, execer: svc.Exec, dirs: dirs, runtimeVersion: "dev", events: svc.Events}
	if s.events != nil {
		s.sandboxes.SetEventSink(publisher{s})
		s.containers.SetEventSink(publisher{s})
	}
	return s
}

// ConfigInfo is the effective configuration `crictl info` shows (the
// verbose Status's "config" entry, JSON), so that an operator sees what this
// netshim runs with without reading its unit. The server fills in what it
// knows itself: version, cgroup driver, network plugin, CNI network.
type ConfigInfo struct {
	Version          string   `json:"version"`
	CgroupDriver     string   `json:"cgroupDriver"`
	NetworkPlugin    string   `json:"networkPlugin"`
	CNINetwork       string   `json:"cniNetwork,omitempty"`
	CNINetworkFile   string   `json:"cniNetworkFile,omitempty"`
	CNIConfDir       string   `json:"cniConfDir,omitempty"`
	CNIBinDirs       []string `json:"cniBinDirs,omitempty"`
	CNICacheDir      string   `json:"cniCacheDir,omitempty"`
	RootDir          string   `json:"rootDir"`
	StateDir         string   `json:"stateDir"`
	RegistryConfig   string   `json:"registryConfig"`
	StreamingAddress string   `json:"streamingAddress"`
	SandboxImage     string   `json:"sandboxImage"`
	// The default handler (runc) first, then the others by name.
	RuntimeHandlers []RuntimeHandlerInfo `json:"runtimeHandlers,omitempty"`
}

// RuntimeHandlerInfo is one runtime handler as `crictl info` shows it.
type RuntimeHandlerInfo struct {
	Name string   `json:"name"`
	Path string   `json:"path"`
	Root string   `json:"root,omitempty"`
	Args []string `json:"args,omitempty"`
}

// SetConfigInfo sets what the verbose Status reports of the configuration;
// cniNetwork, if set, names the default CNI network loaded at the time of
// the call and its file (it changes on reload).
func (s *Server) SetConfigInfo(c ConfigInfo, cniNetwork func() (name, file string, ok bool)) {
	s.config, s.cniNetwork = c, cniNetwork
}

// SetRuntimeVersion sets what Version reports as RuntimeVersion (crictl
// version, kubelet's log): the build's version, as --version prints it.
func (s *Server) SetRuntimeVersion(v string) {
	if v != "" {
		s.runtimeVersion = v
	}
}

// Recover restores sandboxes after a restart and undoes those whose set-up
// was interrupted: network DEL, pause stopped, netns unpinned, record gone.
// A sandbox that cannot be undone (its DEL fails) never stops the node: it
// is logged and kept NOTREADY with its DEL owed, for a later stop or remove
// to retry, and every other sandbox is served. The order matters: the
// network GC sends the DEL of every attachment no sandbox holds while its
// netns is still pinned, and only then are orphan pins and pauses swept.
func (s *Server) Recover(ctx context.Context) error {
	// Containers first: undoing an interrupted sandbox removes its containers.
	if err := s.containers.Recover(ctx); err != nil {
		klog.ErrorS(err, "Some containers could not be restored")
	}
	interrupted, err := s.sandboxes.Recover()
	if err != nil {
		klog.ErrorS(err, "Some sandbox checkpoints could not be restored")
	}
	// A plugin the previous netshim left running must end before any DEL
	// of its sandbox runs, or it may finish its ADD after that DEL. Only a
	// sandbox caught mid-set-up or mid-stop can have one; after a clean
	// stop there is none, and no process is looked at.
	var inDoubt []string
	for _, sb := range s.sandboxes.List() {
		if sb.State == sandbox.StateCreating || (sb.NetworkAttached && sb.State != sandbox.StateReady) {
			inDoubt = append(inDoubt, sb.ID)
		}
	}
	s.network.StopOrphanedPlugins(inDoubt)
	for _, sb := range interrupted {
		klog.InfoS("Undoing sandbox whose set-up was interrupted", "sandbox", sb.ID, "pod", klog.KRef(sb.Spec.Namespace, sb.Spec.Name))
		if err := s.removeSandbox(ctx, sb.ID); err != nil {
			klog.ErrorS(err, "Could not undo a sandbox whose set-up was interrupted; it stays NOTREADY and a stop or remove retries",
				"sandbox", sb.ID, "pod", klog.KRef(sb.Spec.Namespace, sb.Spec.Name))
		}
	}
	// Reclaim what a crash leaked: every attachment not held by a known
	// sandbox. A sandbox whose DEL is still owed stays valid: GC never replaces DEL.
	var valid []string
	for _, sb := range s.sandboxes.List() {
		if sb.NetworkAttached {
			valid = append(valid, sb.ID)
		}
	}
	if err := s.network.GC(ctx, valid); err != nil {
		klog.ErrorS(err, "Network garbage collection at start failed")
	}
	s.sandboxes.SweepOrphans(ctx)
	return nil
}

func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    s.runtimeVersion,
		RuntimeApiVersion: runtimeAPIVersion,
	}, nil
}

func (s *Server) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.network.Status(); err != nil {
		netReady.Status = false
		netReady.Reason = "NetworkPluginNotReady"
		netReady.Message = fmt.Sprintf("Network plugin returns error: %v", err)
	}
	runtimeReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if err := s.sandboxes.RuntimeStatus(); err != nil {
		runtimeReady.Status = false
		runtimeReady.Reason = "OCIRuntimeNotAvailable"
		runtimeReady.Message = err.Error()
	}
	resp := &runtimeapi.StatusResponse{
		Status:          &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeReady, netReady}},
		RuntimeHandlers: s.runtimeHandlers(),
		// Strict is done in container/user.go: only the groups asked for.
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		cfg := s.config
		cfg.Version = s.runtimeVersion
		cfg.CgroupDriver = string(cgroupdriver.Current())
		cfg.NetworkPlugin = s.network.PluginName()
		cfg.SandboxImage = sandboxImageNote
		if s.cniNetwork != nil {
			cfg.CNINetwork, cfg.CNINetworkFile, _ = s.cniNetwork()
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("status: encode config: %w", err)
		}
		resp.Info = map[string]string{"config": string(data)}
	}
	return resp, nil
}

// RuntimeConfig tells kubelet the cgroup driver netshim uses
// (--cgroup-driver), which kubelet's own cgroupDriver must match.
func (s *Server) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if cgroupdriver.Current() == cgroupdriver.Systemd {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// UpdateRuntimeConfig passes the node's PodCIDR(s) (comma-separated for dual
// stack, as kubelet sends them) to the network plugin.
func (s *Server) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	podCIDR := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if podCIDR == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if err := s.network.SetPodCIDR(strings.Split(podCIDR, ",")); err != nil {
		return nil, errdefs.InvalidField("runtime_config.network_config.pod_cidr", ": %v", err)
	}
	klog.InfoS("Pod CIDR updated", "podCIDR", podCIDR)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

func (s *Server) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{}, nil
}

func (s *Server) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return &runtimeapi.ListPodSandboxMetricsResponse{}, nil
}
