package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"strings"
	"sync"
	"time"

	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	"github.com/netshim/netshim/sandbox"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// undoTimeout bounds the clean-up after a failed RunPodSandbox. It runs on a
// fresh context: the request's own may be what was cancelled.
const undoTimeout = 30 * time.Second

// networkTimeout caps a network set-up or teardown (a hanging plugin) when
// the client set no earlier deadline; it is kubelet's runtime request timeout.
const networkTimeout = 2 * time.Minute

func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	start := time.Now()
	cfg := req.GetConfig()
	if err := validate.Sandbox(cfg, s.dirs.Protected); err != nil {
		return nil, err
	}
	handler, err := s.checkHandler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err // it names the field, or the handler and why
	}
	hostNetwork := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
	if !hostNetwork {
		if err := s.network.Status(); err != nil {
			return nil, fmt.Errorf("run pod sandbox %s: network plugin is not ready: %v: %w", podRef(cfg), err, errdefs.ErrFailedPrecondition)
		}
		if v4, v6, known := s.network.IPFamilies(); known {
			if err := validate.HostIPFamilies(cfg.GetPortMappings(), v4, v6); err != nil {
				return nil, err
			}
		}
	}
	spec, err := specFromConfig(cfg)
	if err != nil {
		return nil, wrapf(err, "run pod sandbox %s", podRef(cfg))
	}
	spec.RuntimeHandler = req.GetRuntimeHandler()
	if spec.UserNS != nil && (handler == nil || !handler.Features.UserNamespaces) {
		return nil, fmt.Errorf("run pod sandbox %s: runtime handler %q cannot run pods in a user namespace on this host (Status says so: its user_namespaces feature is false): %w",
			podRef(cfg), req.GetRuntimeHandler(), errdefs.ErrFailedPrecondition)
	}
	sb, err := s.sandboxes.Create(spec)
	if err != nil {
		return nil, wrapf(err, "run pod sandbox %s", podRef(cfg))
	}
	unlock := s.ops.Lock(sb.ID)
	defer unlock()

	ips, err := s.startSandbox(ctx, sb, cfg, handler != nil && handler.GVisor)
	if err == nil {
		err = s.sandboxes.Ready(sb.ID, ips)
	}
	if err != nil {
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if uerr := s.removeSandbox(undoCtx, sb.ID); uerr != nil {
			klog.ErrorS(uerr, "Failed to undo a sandbox whose start failed", "sandbox", sb.ID)
			err = fmt.Errorf("%w; undoing it failed too, so sandbox %s is kept NOTREADY until a remove succeeds: %v", err, sb.ID, uerr)
		}
		return nil, wrapf(err, "run pod sandbox %s", podRef(cfg))
	}
	// At the default level: the one line an operator looks for per pod.
	klog.InfoS("Pod sandbox ready", "pod", klog.KRef(spec.Namespace, spec.Name), "sandbox", sb.ID,
		"netns", sb.NetNSPath, "ips", ips, "duration", time.Since(start))
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}

// startSandbox starts the pause process and sets up the network. Both need
// only the pinned netns, so they run side by side; except under gVisor,
// whose sandbox takes the pod's interfaces from the netns when it boots, so
// the network comes first. The caller undoes on error.
func (s *Server) startSandbox(ctx context.Context, sb *sandbox.Sandbox, cfg *runtimeapi.PodSandboxConfig, networkFirst bool) ([]string, error) {
	if sb.Spec.HostNetwork {
		return nil, s.sandboxes.StartPause(ctx, sb.ID)
	}
	if networkFirst {
		ips, err := s.setUpNetwork(ctx, sb, cfg)
		if err != nil {
			return nil, err
		}
		if err := s.sandboxes.StartPause(ctx, sb.ID); err != nil {
			return nil, err
		}
		return ips, nil
	}
	var (
		wg        sync.WaitGroup
		pauseErr  error
		pauseTook time.Duration
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.Now()
		pauseErr = s.sandboxes.StartPause(ctx, sb.ID)
		pauseTook = time.Since(t)
	}()
	t := time.Now()
	ips, netErr := s.setUpNetwork(ctx, sb, cfg)
	netTook := time.Since(t)
	wg.Wait()
	klog.V(4).InfoS("Pod sandbox started", "sandbox", sb.ID, "pauseStart", pauseTook, "networkAdd", netTook)
	if err := errors.Join(pauseErr, netErr); err != nil {
		return nil, err
	}
	return ips, nil
}

// setUpNetwork runs the network plugin's set-up of the pod and returns its IPs.
func (s *Server) setUpNetwork(ctx context.Context, sb *sandbox.Sandbox, cfg *runtimeapi.PodSandboxConfig) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, networkTimeout)
	defer cancel()
	st, err := s.network.SetUpPod(ctx, podNetwork(sb.ID, cfg))
	if err != nil {
		return nil, fmt.Errorf("set up network (plugin %s): %w", s.network.PluginName(), err)
	}
	ips := make([]string, 0, len(st.IPs))
	for _, ip := range st.IPs {
		ips = append(ips, ip.String())
	}
	return ips, nil
}

func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			// Idempotent, as the CRI says; but a typo should not pass unseen.
			klog.InfoS("StopPodSandbox of an unknown sandbox: nothing to stop", "sandbox", req.GetPodSandboxId())
			return &runtimeapi.StopPodSandboxResponse{}, nil
		}
		return nil, wrapf(err, "stop pod sandbox")
	}
	defer s.ops.Lock(id)()
	if err := s.stopSandbox(ctx, id); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return nil, wrapf(err, "stop pod sandbox %s", id)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopSandbox tears down the network while the pause process is stopped
// (the DEL needs only the pinned netns, so the two run side by side), then
// unpins the netns. A failed DEL does not keep the pause running: the
// sandbox still stops, stays marked attached with its netns pinned, and the
// error is returned so that the next stop or remove retries the DEL. The
// caller holds ops for id.
func (s *Server) stopSandbox(ctx context.Context, id string) error {
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := s.stopContainersOf(ctx, id); err != nil {
		return fmt.Errorf("stop containers of sandbox %s: %w", id, err)
	}
	containersDone := time.Since(start)
	// Recorded before the DEL: a crash mid-stop must not leave a READY
	// sandbox whose network is gone.
	if sb.State == sandbox.StateReady {
		if err := s.sandboxes.MarkNotReady(id); err != nil {
			return err
		}
	}
	var (
		netErr, pauseErr   error
		netTook, pauseTook time.Duration
	)
	if sb.NetworkAttached {
		pauseDone := make(chan struct{})
		go func() {
			defer close(pauseDone)
			t := time.Now()
			pauseErr = s.sandboxes.StopPause(ctx, id)
			pauseTook = time.Since(t)
		}()
		t := time.Now()
		netErr = s.tearDownNetwork(ctx, sb)
		netTook = time.Since(t)
		<-pauseDone
		crashpoint.Hit(crashpoint.DuringStop)
	}
	if err := s.sandboxes.Stop(ctx, id); err != nil {
		return errors.Join(netErr, pauseErr, err)
	}
	if netErr == nil {
		// The steps' times, for an operator asking where a stop's time went.
		klog.V(2).InfoS("Pod sandbox stopped", "pod", klog.KRef(sb.Spec.Namespace, sb.Spec.Name), "sandbox", id,
			"netns", sb.NetNSPath, "ips", sb.IPs, "duration", time.Since(start),
			"containers", containersDone, "networkDel", netTook, "pauseStop", pauseTook)
	}
	return netErr
}

func (s *Server) tearDownNetwork(ctx context.Context, sb *sandbox.Sandbox) error {
	cfg, err := decodeConfig(sb)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, networkTimeout)
	defer cancel()
	if err := s.network.TearDownPod(ctx, podNetwork(sb.ID, cfg)); err != nil {
		return fmt.Errorf("tear down network (plugin %s): %w", s.network.PluginName(), err)
	}
	return s.sandboxes.NetworkDetached(sb.ID)
}

func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return &runtimeapi.RemovePodSandboxResponse{}, nil
		}
		return nil, wrapf(err, "remove pod sandbox")
	}
	defer s.ops.Lock(id)()
	if err := s.removeSandbox(ctx, id); err != nil {
		return nil, wrapf(err, "remove pod sandbox %s", id)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// removeSandbox stops the sandbox if needed, then removes its containers
// and what is left of it.
func (s *Server) removeSandbox(ctx context.Context, id string) error {
	if err := s.stopSandbox(ctx, id); err != nil {
		if errors.Is(err, sandbox.ErrNotFound) {
			return nil
		}
		return err
	}
	if err := s.removeContainersOf(ctx, id); err != nil {
		return fmt.Errorf("remove containers of sandbox %s: %w", id, err)
	}
	return s.sandboxes.Remove(ctx, id)
}

func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, wrapf(err, "status of pod sandbox")
	}
	s.sandboxes.RefreshState(id)
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return nil, wrapf(err, "status of pod sandbox %s", id)
	}
	cfg, err := decodeConfig(sb)
	if err != nil {
		return nil, wrapf(err, "status of pod sandbox %s", id)
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: sandboxStatus(sb, cfg)}
	if req.GetVerbose() {
		var netInfo map[string]string
		if sb.NetworkAttached && sb.State == sandbox.StateReady {
			st, err := s.network.GetPodNetworkStatus(ctx, podNetwork(id, cfg))
			if err != nil {
				netInfo = map[string]string{"error": err.Error()}
			} else {
				netInfo = st.Info
			}
		}
		info, err := verboseInfo(sb, cfg, s.network.PluginName(), netInfo)
		if err != nil {
			return nil, wrapf(err, "status of pod sandbox %s", id)
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// resolveSandbox returns the full ID of the sandbox that id names, in full
// or by a unique prefix, as crictl prints them.
func (s *Server) resolveSandbox(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("pod_sandbox_id is required: %w", errdefs.ErrInvalidArgument)
	}
	return s.sandboxes.Resolve(id)
}

func (s *Server) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: s.listSandboxes(req.GetFilter())}, nil
}

// streamChunk is how many sandboxes go in one StreamPodSandboxes message.
const streamChunk = 500

func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	items := s.listSandboxes(req.GetFilter())
	for len(items) > 0 {
		n := min(streamChunk, len(items))
		if err := stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: items[:n]}); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

func (s *Server) listSandboxes(f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	var items []*runtimeapi.PodSandbox
	for _, sb := range s.sandboxes.List() {
		if f != nil && f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		s.sandboxes.RefreshState(sb.ID)
		state := criState(sb.State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		if !labelsMatch(sb.Spec.Labels, f.GetLabelSelector()) {
			continue
		}
		items = append(items, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       metadata(sb.Spec),
			State:          state,
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Spec.Labels,
			Annotations:    sb.Spec.Annotations,
			RuntimeHandler: sb.Spec.RuntimeHandler,
		})
	}
	return items
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func criState(st sandbox.State) runtimeapi.PodSandboxState {
	if st == sandbox.StateReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func metadata(spec sandbox.Spec) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: spec.Name, Namespace: spec.Namespace, Uid: spec.UID, Attempt: spec.Attempt}
}

func sandboxStatus(sb *sandbox.Sandbox, cfg *runtimeapi.PodSandboxConfig) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       metadata(sb.Spec),
		State:          criState(sb.State),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Labels:         sb.Spec.Labels,
		Annotations:    sb.Spec.Annotations,
		RuntimeHandler: sb.Spec.RuntimeHandler,
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

// verboseInfo is the "info" entry of a verbose status: what an operator needs
// to find the sandbox on the node (pid, netns) and the config it was run with.
func verboseInfo(sb *sandbox.Sandbox, cfg *runtimeapi.PodSandboxConfig, plugin string, netInfo map[string]string) (string, error) {
	cfgJSON, err := protojson.Marshal(cfg)
	if err != nil {
		return "", err
	}
	info := struct {
		PID             int               `json:"pid"`
		NetNSPath       string            `json:"netnsPath"`
		State           sandbox.State     `json:"state"`
		NetworkPlugin   string            `json:"networkPlugin"`
		NetworkAttached bool              `json:"networkAttached"`
		IPs             []string          `json:"ips"`
		Network         map[string]string `json:"network,omitempty"`
		Config          json.RawMessage   `json:"config"`
	}{sb.PausePID, sb.NetNSPath, sb.State, plugin, sb.NetworkAttached, sb.IPs, netInfo, cfgJSON}
	out, err := json.Marshal(info)
	return string(out), err
}

// specFromConfig types what the sandbox uses of cfg and keeps the rest as
// Spec.Config. Labels and annotations, which may be large, are stored once,
// in the Spec, and left out of Config; decodeConfig puts them back.
func specFromConfig(cfg *runtimeapi.PodSandboxConfig) (sandbox.Spec, error) {
	rest := proto.Clone(cfg).(*runtimeapi.PodSandboxConfig)
	rest.Labels, rest.Annotations = nil, nil
	raw, err := proto.Marshal(rest)
	if err != nil {
		return sandbox.Spec{}, fmt.Errorf("encode config: %w", err)
	}
	md := cfg.GetMetadata()
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	spec := sandbox.Spec{
		Name:         md.GetName(),
		Namespace:    md.GetNamespace(),
		UID:          md.GetUid(),
		Attempt:      md.GetAttempt(),
		Labels:       cfg.GetLabels(),
		Annotations:  cfg.GetAnnotations(),
		Hostname:     cfg.GetHostname(),
		Sysctls:      cfg.GetLinux().GetSysctls(),
		CgroupParent: cfg.GetLinux().GetCgroupParent(),
		HostNetwork:  nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		HostPID:      nsOpts.GetPid() == runtimeapi.NamespaceMode_NODE,
		HostIPC:      nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
		Config:       raw,
	}
	if u := nsOpts.GetUsernsOptions(); u != nil && u.GetMode() == runtimeapi.NamespaceMode_POD {
		spec.UserNS = &sandbox.IDMappings{UIDs: idMappings(u.GetUids()), GIDs: idMappings(u.GetGids())}
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		spec.DNS = &sandbox.DNS{Servers: dns.GetServers(), Searches: dns.GetSearches(), Options: dns.GetOptions()}
	}
	return spec, nil
}

func idMappings(in []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, 0, len(in))
	for _, m := range in {
		out = append(out, specs.LinuxIDMapping{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
	}
	return out
}

func decodeConfig(sb *sandbox.Sandbox) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := proto.Unmarshal(sb.Spec.Config, cfg); err != nil {
		return nil, fmt.Errorf("decode stored config of sandbox %s: %w", sb.ID, err)
	}
	// Checkpoints written before labels and annotations moved out of
	// Config hold them in both places, with the same values.
	cfg.Labels, cfg.Annotations = sb.Spec.Labels, sb.Spec.Annotations
	return cfg, nil
}

// podNetwork is what the network plugin is told about a pod. Mappings
// without a host port publish nothing, so they are not passed (as containerd).
func podNetwork(id string, cfg *runtimeapi.PodSandboxConfig) network.Pod {
	md := cfg.GetMetadata()
	pod := network.Pod{Namespace: md.GetNamespace(), Name: md.GetName(), UID: md.GetUid(), SandboxID: id, Annotations: cfg.GetAnnotations()}
	// Validated at RunPodSandbox, so an error cannot occur here.
	pod.Bandwidth, _ = bandwidthFromAnnotations(cfg.GetAnnotations())
	for _, pm := range cfg.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		pod.PortMappings = append(pod.PortMappings, network.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(),
			Protocol: strings.ToLower(pm.GetProtocol().String()), HostIP: pm.GetHostIp(),
		})
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		pod.DNS = &network.DNSConfig{Servers: dns.GetServers(), Searches: dns.GetSearches(), Options: dns.GetOptions()}
	}
	return pod
}

func podRef(cfg *runtimeapi.PodSandboxConfig) string {
	return cfg.GetMetadata().GetNamespace() + "/" + cfg.GetMetadata().GetName()
}
