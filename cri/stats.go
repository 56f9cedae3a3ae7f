package cri

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/netshim/netshim/sandbox"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
	st, err := s.podStats(sb, containersByPod(s.containers.List())[sb.ID])
	if err != nil {
		return nil, wrapf(err, "stats of pod sandbox %s", id)
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

func (s *Server) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	var out []*runtimeapi.PodSandboxStats
	// Listed once for all pods: a list looks at every container (a full
	// node's 220, for each of its 110 pods, was 333 ms a call).
	byPod := containersByPod(s.containers.List())
	for _, sb := range s.sandboxes.List() {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) || !labelsMatch(sb.Spec.Labels, f.GetLabelSelector()) {
			continue
		}
		st, err := s.podStats(sb, byPod[sb.ID])
		if err != nil {
			klog.ErrorS(err, "Could not read pod sandbox stats", "sandbox", sb.ID)
			continue
		}
		out = append(out, st)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

// containersByPod groups containers by their sandbox's ID.
func containersByPod(all []*container.Container) map[string][]*container.Container {
	out := map[string][]*container.Container{}
	for _, c := range all {
		out[c.SandboxID] = append(out[c.SandboxID], c)
	}
	return out
}

// podStats reads the pod's cgroup, as containerd does: kubelet's summary
// API takes it for the pod's usage, pause included, and a pod with only its
// pause must not read as zero.
func (s *Server) podStats(sb *sandbox.Sandbox, containers []*container.Container) (*runtimeapi.PodSandboxStats, error) {
	var ctrs []*runtimeapi.ContainerStats
	for _, c := range containers {
		st, err := s.containerStats(c)
		if err != nil {
			continue
		}
		ctrs = append(ctrs, st)
	}
	usage, err := podCgroupUsage(sb, ctrs)
	if err != nil {
		return nil, err
	}
	ts := usage.Timestamp.UnixNano()
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.ID, Metadata: metadata(sb.Spec), Labels: sb.Spec.Labels, Annotations: sb.Spec.Annotations},
		Linux: &runtimeapi.LinuxPodSandboxStats{
			Cpu: &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: usage.CPUUsageNanos}},
			Memory: &runtimeapi.MemoryUsage{Timestamp: ts, WorkingSetBytes: &runtimeapi.UInt64Value{Value: usage.MemoryWorkingSet},
				UsageBytes: &runtimeapi.UInt64Value{Value: usage.MemoryUsage}},
			Network:    podNetworkUsage(sb),
			Containers: ctrs,
		},
	}, nil
}

// podCgroupUsage is the CPU and memory of the pod's cgroup parent, which
// holds the pause and every container. A pod without a parent of its own
// shares netshim's default one with every such pod: its usage is then the
// pause's cgroup plus its containers' (ctrs). A cgroup that is gone (the
// pod is stopped) reads as zero.
func podCgroupUsage(sb *sandbox.Sandbox, ctrs []*runtimeapi.ContainerStats) (*container.Stats, error) {
	usage := &container.Stats{Timestamp: time.Now()}
	path := sb.Spec.CgroupParent
	if path == "" {
		path = sb.CgroupsPath()
		for _, c := range ctrs {
			usage.CPUUsageNanos += c.GetCpu().GetUsageCoreNanoSeconds().GetValue()
			usage.MemoryWorkingSet += c.GetMemory().GetWorkingSetBytes().GetValue()
			usage.MemoryUsage += c.GetMemory().GetUsageBytes().GetValue()
		}
	}
	// A systemd slice (or slice:prefix:name) as the directory it names.
	path = cgroupdriver.FSPath(path)
	// RunPodSandbox admits only clean absolute parents; one recorded by an
	// older netshim might point outside the cgroup tree.
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return nil, fmt.Errorf("read cgroup %q of the pod: not a clean absolute path", path)
	}
	var pod container.Stats
	if err := container.ReadCgroup(path, &pod); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read cgroup %s of the pod: %w", path, err)
	}
	usage.CPUUsageNanos += pod.CPUUsageNanos
	usage.MemoryWorkingSet += pod.MemoryWorkingSet
	usage.MemoryUsage += pod.MemoryUsage
	return usage, nil
}

// podInterface is the pod's interface in its netns: the name kubelet gives
// every CNI network, and the one containerd reports.
const podInterface = "eth0"

// podNetworkUsage reads the counters of the pod's interface in its netns.
// A host-network pod has none of its own (its traffic is the node's), nor
// has a stopped pod, nor a pod without a network (plugin none): nil, as in
// containerd. A failed read is logged, and the rest of the stats stand.
func podNetworkUsage(sb *sandbox.Sandbox) *runtimeapi.NetworkUsage {
	if sb.Spec.HostNetwork || sb.State != sandbox.StateReady || sb.NetNSPath == "" {
		return nil
	}
	ts := time.Now().UnixNano()
	st, err := linkStats(sb.NetNSPath, podInterface)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) {
			klog.ErrorS(err, "Could not read the pod's network stats", "sandbox", sb.ID)
		}
		return nil
	}
	return &runtimeapi.NetworkUsage{Timestamp: ts, DefaultInterface: &runtimeapi.NetworkInterfaceUsage{
		Name:     podInterface,
		RxBytes:  &runtimeapi.UInt64Value{Value: st.RxBytes},
		RxErrors: &runtimeapi.UInt64Value{Value: st.RxErrors},
		TxBytes:  &runtimeapi.UInt64Value{Value: st.TxBytes},
		TxErrors: &runtimeapi.UInt64Value{Value: st.TxErrors},
	}}
}

// linkStats reads link's counters over a netlink socket opened in the netns
// pinned at nsPath. ns.WithNetNSPath, as elsewhere in netshim, rather than
// netlink.NewHandleAt: should the thread fail to switch back, the former
// scraps it, where the latter would hand it back to the runtime still in
// the pod's netns (and a CNI plugin exec'd from it would run there).
func linkStats(nsPath, link string) (*netlink.LinkStatistics, error) {
	var st *netlink.LinkStatistics
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		defer h.Close()
		l, err := h.LinkByName(link)
		if err != nil {
			return fmt.Errorf("find %s: %w", link, err)
		}
		st = l.Attrs().Statistics
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("in netns %s: %w", nsPath, err)
	}
	if st == nil {
		return nil, fmt.Errorf("no statistics for %s in netns %s", link, nsPath)
	}
	return st, nil
}
