package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	"github.com/netshim/netshim/sandbox"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Containers is what the server needs of the container manager (package container).
type Containers interface {
	Create(ctx context.Context, req container.CreateRequest) (*container.Container, error)
	Start(ctx context.Context, id string) error
	Stop(ctx context.Context, id string, timeout time.Duration) error
	Remove(ctx context.Context, id string) error
	Get(idOrPrefix string) (*container.Container, error)
	Resolve(prefix string) (string, error)
	List() []*container.Container
	UpdateResources(ctx context.Context, id string, res *runtimeapi.LinuxContainerResources) error
	ReopenLog(id string) error
	Stats(c *container.Container) (*container.Stats, error)
	FsInfo() container.FsUsage
	Recover(ctx context.Context) error
	// For GetContainerEvents (events.go).
	SetEventSink(container.EventSink)
	PodRecords(sandboxID string) []*container.Container
}

func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	// The config first: a bad one is refused whatever its pod.
	if err := validate.Container(cfg); err != nil {
		return nil, err
	}
	sbID, err := s.sandboxes.Resolve(req.GetPodSandboxId())
	if err != nil {
		return nil, wrapf(err, "create container %q", cfg.GetMetadata().GetName())
	}
	defer s.ops.Lock(sbID)()
	sb, err := s.sandboxes.Get(sbID)
	if err != nil {
		return nil, wrapf(err, "create container %q", cfg.GetMetadata().GetName())
	}
	if sb.State != sandbox.StateReady {
		return nil, fmt.Errorf("create container %q: pod sandbox %s is not ready (%s): %w", cfg.GetMetadata().GetName(), sbID, sb.State, errdefs.ErrFailedPrecondition)
	}
	podCfg, err := decodeConfig(sb)
	if err != nil {
		return nil, wrapf(err, "create container %q", cfg.GetMetadata().GetName())
	}
	if err := validate.ContainerInPod(cfg, podCfg); err != nil {
		return nil, err
	}
	if req.GetSandboxConfig() != nil && req.GetSandboxConfig().GetLogDirectory() != podCfg.GetLogDirectory() {
		klog.V(4).InfoS("CreateContainer's sandbox_config differs from the pod's; using the pod's", "sandbox", sbID)
	}
	img, err := s.images.Get(cfg.GetImage().GetImage())
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("create container %q: image %q is not present: pull it first: %w", cfg.GetMetadata().GetName(), cfg.GetImage().GetImage(), errdefs.ErrNotFound)
		}
		return nil, wrapf(err, "create container %q", cfg.GetMetadata().GetName())
	}
	files := s.sandboxes.Files(sbID)
	creq := container.CreateRequest{
		Config: cfg,
		Pod: container.PodContext{
			SandboxID: sbID, Config: podCfg, NetNSPath: sb.NetNSPath, PausePID: sb.PausePID,
			CgroupParent: sb.Spec.CgroupParent, ResolvConfPath: files.ResolvConf,
			HostnamePath: files.Hostname, HostsPath: files.Hosts, ShmPath: files.Shm,
		},
		ImageID:  img.ID,
		ImageRef: imageRef(img),
		Image: container.ImageConfig{
			User: img.Config.User, Env: img.Config.Env, Entrypoint: img.Config.Entrypoint,
			Cmd: img.Config.Cmd, WorkingDir: img.Config.WorkingDir, StopSignal: img.Config.StopSignal,
		},
	}
	if dir, p := podCfg.GetLogDirectory(), cfg.GetLogPath(); dir != "" && p != "" {
		creq.LogPath = filepath.Join(dir, p)
	}
	c, err := s.containers.Create(ctx, creq)
	if err != nil {
		return nil, wrapf(err, "create container %q in pod %s", cfg.GetMetadata().GetName(), podRef(podCfg))
	}
	klog.V(2).InfoS("Container created", "pod", klog.KRef(podCfg.GetMetadata().GetNamespace(), podCfg.GetMetadata().GetName()),
		"container", c.ID, "name", c.Metadata.Name, "image", c.Image)
	return &runtimeapi.CreateContainerResponse{ContainerId: c.ID}, nil
}

// imageRef is what kubelet shows as the container's imageID: the repo
// digest when there is one, as containerd answers.
func imageRef(img *image.Image) string {
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.ID
}

func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.containers.Get(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "start container")
	}
	defer s.ops.Lock(c.SandboxID)()
	if sb, err := s.sandboxes.Get(c.SandboxID); err != nil || sb.State != sandbox.StateReady {
		return nil, fmt.Errorf("start container %s: its pod sandbox %s is not ready: %w", c.ID, c.SandboxID, errdefs.ErrFailedPrecondition)
	}
	if err := s.containers.Start(ctx, c.ID); err != nil {
		return nil, wrapf(err, "start container %s", c.ID)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer and RemoveContainer succeed for an unknown ID, as the CRI
// says, kubelet's garbage collector relies on, containerd answers (since
// containerd#10521) and critest's Idempotence tests check. An unknown ID
// in a stop is logged, so that a typo does not pass unseen.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, errdefs.InvalidField("container_id", "is required")
	}
	timeout := time.Duration(req.GetTimeout()) * time.Second
	err := s.containers.Stop(ctx, req.GetContainerId(), timeout)
	if errors.Is(err, errdefs.ErrNotFound) {
		klog.InfoS("StopContainer of an unknown container: nothing to stop", "container", req.GetContainerId())
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, wrapf(err, "stop container %s", req.GetContainerId())
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, errdefs.InvalidField("container_id", "is required")
	}
	if err := s.containers.Remove(ctx, req.GetContainerId()); err != nil {
		return nil, wrapf(err, "remove container %s", req.GetContainerId())
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// stopContainersOf stops every container of a pod, SIGKILL at once: kubelet
// stops them with their grace period before it stops the sandbox.
func (s *Server) stopContainersOf(ctx context.Context, sandboxID string) error {
	var errs []error
	for _, c := range s.containers.List() {
		if c.SandboxID == sandboxID {
			if err := s.containers.Stop(ctx, c.ID, 0); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) removeContainersOf(ctx context.Context, sandboxID string) error {
	var errs []error
	for _, c := range s.containers.List() {
		if c.SandboxID == sandboxID {
			if err := s.containers.Remove(ctx, c.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: s.listContainers(req.GetFilter())}, nil
}

func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	items := s.listContainers(req.GetFilter())
	for len(items) > 0 {
		n := min(streamChunk, len(items))
		if err := stream.Send(&runtimeapi.StreamContainersResponse{Containers: items[:n]}); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

func (s *Server) listContainers(f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	var items []*runtimeapi.Container
	for _, c := range s.containers.List() {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.SandboxID, f.GetPodSandboxId()) {
			continue
		}
		state := containerState(c.State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		if !labelsMatch(c.Labels, f.GetLabelSelector()) {
			continue
		}
		items = append(items, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.SandboxID, Metadata: containerMetadata(c),
			Image: &runtimeapi.ImageSpec{Image: c.Image}, ImageRef: c.ImageRef, ImageId: c.ImageID,
			State: state, CreatedAt: c.CreatedAt.UnixNano(), Labels: c.Labels, Annotations: c.Annotations,
		})
	}
	return items
}

func containerMetadata(c *container.Container) *runtimeapi.ContainerMetadata {
	return &runtimeapi.ContainerMetadata{Name: c.Metadata.Name, Attempt: c.Metadata.Attempt}
}

func containerState(st container.State) runtimeapi.ContainerState {
	switch st {
	case container.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (s *Server) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.containers.Get(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "status of container")
	}
	st, err := s.containerStatus(c)
	if err != nil {
		return nil, wrapf(err, "status of container %s", c.ID)
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		info, err := containerInfo(c)
		if err != nil {
			return nil, wrapf(err, "status of container %s", c.ID)
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

// containerStatus is c's CRI status, as ContainerStatus and the container
// events report it.
func (s *Server) containerStatus(c *container.Container) (*runtimeapi.ContainerStatus, error) {
	cfg := &runtimeapi.ContainerConfig{}
	if err := proto.Unmarshal(c.Config, cfg); err != nil {
		return nil, fmt.Errorf("decode stored config of container %s: %w", c.ID, err)
	}
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: containerMetadata(c), State: containerState(c.State),
		CreatedAt: c.CreatedAt.UnixNano(), ExitCode: c.ExitCode,
		Image: &runtimeapi.ImageSpec{Image: c.Image}, ImageRef: c.ImageRef, ImageId: c.ImageID,
		Reason: c.Reason, Message: c.Message, Labels: c.Labels, Annotations: c.Annotations,
		Mounts: s.imageVolumeRefs(cfg.GetMounts()), LogPath: c.LogPath,
	}
	if !c.StartedAt.IsZero() {
		st.StartedAt = c.StartedAt.UnixNano()
	}
	if !c.FinishedAt.IsZero() {
		st.FinishedAt = c.FinishedAt.UnixNano()
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	if sc := cfg.GetLinux().GetSecurityContext(); sc != nil {
		if u := sc.GetRunAsUser(); u != nil {
			st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{Uid: u.GetValue(), Gid: sc.GetRunAsGroup().GetValue(), SupplementalGroups: sc.GetSupplementalGroups()}}
		}
	}
	return st, nil
}

// containerInfo is the "info" of a verbose status, as containerd and CRI-O
// give it: what an operator needs to find the container on the node.
func containerInfo(c *container.Container) (string, error) {
	spec, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		spec = []byte("null")
	}
	info := struct {
		SandboxID   string          `json:"sandboxID"`
		PID         int             `json:"pid"`
		MonitorPID  int             `json:"monitorPid"`
		Bundle      string          `json:"bundle"`
		CgroupsPath string          `json:"cgroupsPath"`
		RuntimeSpec json.RawMessage `json:"runtimeSpec"`
	}{c.SandboxID, c.PID, c.MonitorPID, c.Bundle, c.CgroupsPath, spec}
	out, err := json.Marshal(info)
	return string(out), err
}

func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	if req.GetLinux() == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if err := validate.Resources("linux", req.GetLinux()); err != nil {
		return nil, err
	}
	if err := s.containers.UpdateResources(ctx, req.GetContainerId(), req.GetLinux()); err != nil {
		return nil, wrapf(err, "update resources of container %s", req.GetContainerId())
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

func (s *Server) ReopenContainerLog(_ context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	if err := s.containers.ReopenLog(req.GetContainerId()); err != nil {
		return nil, wrapf(err, "reopen log of container %s", req.GetContainerId())
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
