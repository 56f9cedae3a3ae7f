package cri

import (
	"context"
	"strings"
	"time"

	"github.com/netshim/netshim/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

func (s *Server) ContainerStats(_ context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.containers.Get(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "stats of container")
	}
	st, err := s.containerStats(c)
	if err != nil {
		return nil, wrapf(err, "stats of container %s", c.ID)
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

func (s *Server) ListContainerStats(_ context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.ContainerStats
	for _, c := range s.containers.List() {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.GetId()) ||
			f.GetPodSandboxId() != "" && !strings.HasPrefix(c.SandboxID, f.GetPodSandboxId()) ||
			!labelsMatch(c.Labels, f.GetLabelSelector()) {
			continue
		}
		st, err := s.containerStats(c)
		if err != nil {
			klog.ErrorS(err, "Could not read container stats", "container", c.ID)
			continue
		}
		out = append(out, st)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Server) containerStats(c *container.Container) (*runtimeapi.ContainerStats, error) {
	st, err := s.containers.Stats(c)
	if err != nil {
		return nil, err
	}
	ts := st.Timestamp.UnixNano()
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: c.ID, Metadata: containerMetadata(c), Labels: c.Labels, Annotations: c.Annotations},
		Cpu:        &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUUsageNanos}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: st.MemoryWorkingSet},
			UsageBytes: &runtimeapi.UInt64Value{Value: st.MemoryUsage}},
		WritableLayer: &runtimeapi.FilesystemUsage{
			Timestamp: ts, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: st.LayerMountpoint},
			UsedBytes: &runtimeapi.UInt64Value{Value: st.WritableLayerBytes}, InodesUsed: &runtimeapi.UInt64Value{Value: st.WritableLayerInodes},
		},
	}, nil
}

func (s *Server) PodSandboxStats(_ context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, wrapf(err, "stats of pod sandbox")
	}
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return nil, wrapf(err, "stats of pod sandbox %s", id)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb.ID, metadata(sb.Spec), sb.Spec.Labels, sb.Spec.Annotations)}, nil
}

func (s *Server) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.PodSandboxStats
	for _, sb := range s.sandboxes.List() {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) || !labelsMatch(sb.Spec.Labels, f.GetLabelSelector()) {
			continue
		}
		out = append(out, s.podStats(sb.ID, metadata(sb.Spec), sb.Spec.Labels, sb.Spec.Annotations))
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// podStats sums the pod's containers; the pause process's own few KiB are
// left out, as in CRI-O.
func (s *Server) podStats(id string, md *runtimeapi.PodSandboxMetadata, labels, annotations map[string]string) *runtimeapi.PodSandboxStats {
	var cpu, mem uint64
	var ctrs []*runtimeapi.ContainerStats
	for _, c := range s.containers.List() {
		if c.SandboxID != id {
			continue
		}
		st, err := s.containerStats(c)
		if err != nil {
			continue
		}
		cpu += st.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		mem += st.GetMemory().GetWorkingSetBytes().GetValue()
		ctrs = append(ctrs, st)
	}
	ts := time.Now().UnixNano()
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: id, Metadata: md, Labels: labels, Annotations: annotations},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu:        &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}},
			Memory:     &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: mem}},
			Containers: ctrs,
		},
	}
}
