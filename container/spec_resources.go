package container

import (
	"fmt"

	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// withResources sets the container's cgroup (under its pod's parent), its
// limits, and its oom_score_adj.
func withResources(spec *specs.Spec, in SpecInput, host HostFacts) error {
	r := in.Config.GetLinux().GetResources()
	res, err := linuxResources(r, host)
	if err != nil {
		return err
	}
	if res != nil {
		// withDevices made the device cgroup.
		if spec.Linux.Resources != nil {
			res.Devices = spec.Linux.Resources.Devices
		}
		spec.Linux.Resources = res
	}
	if adj := r.GetOomScoreAdj(); adj != 0 {
		v := clampOOMScoreAdj(int(adj), host)
		spec.Process.OOMScoreAdj = &v
	}
	path, err := cgroupsPath(in.Pod, in.ID)
	if err != nil {
		return err
	}
	spec.Linux.CgroupsPath = path
	return nil
}

// cgroupsPath is the container's cgroup under its pod's parent. Create
// records it before anything runs, so an undo finds a cgroup that a create
// cut short left behind.
func cgroupsPath(pod PodContext, id string) (string, error) {
	// RunPodSandbox admits only parents the driver can place; a pod
	// recorded by an older netshim, or under the other driver, may hold
	// another (a cgroupfs Join of ../../x climbs out of every hierarchy).
	p, err := cgroupdriver.Current().ContainerPath(pod.CgroupParent, id)
	if err != nil {
		return "", fmt.Errorf("the pod's linux.cgroup_parent %q cannot hold a container under the %s cgroup driver (%v); remove the pod and run it again: %w",
			pod.CgroupParent, cgroupdriver.Current(), err, errdefs.ErrFailedPrecondition)
	}
	return p, nil
}

// LinuxResources turns the CRI's resources into the OCI spec's, for this
// node; it is also what UpdateContainerResources applies.
func LinuxResources(r *runtimeapi.LinuxContainerResources) (*specs.LinuxResources, error) {
	return linuxResources(r, node{})
}

// linuxResources leaves out what host cannot limit (swap, huge pages,
// unified keys on cgroup v1) rather than have runc fail the container.
func linuxResources(r *runtimeapi.LinuxContainerResources, host HostFacts) (*specs.LinuxResources, error) {
	if r == nil {
		return nil, nil
	}
	// The CRI server checked the request; this guards the conversion
	// (a negative value would wrap around as a uint64).
	if err := validate.Resources("config.linux.resources", r); err != nil {
		return nil, err
	}
	if r.GetCpuQuota() > 0 && r.GetCpuPeriod() == 0 {
		// runc's default period applies, as in containerd.
		klog.V(4).InfoS("cpu_quota without cpu_period: the runtime's default period applies")
	}
	out := &specs.LinuxResources{}
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if v := uint64(r.GetCpuShares()); v != 0 {
		cpu.Shares = &v
	}
	if v := r.GetCpuQuota(); v != 0 {
		cpu.Quota = &v
	}
	if v := uint64(r.GetCpuPeriod()); v != 0 {
		cpu.Period = &v
	}
	out.CPU = cpu
	if v := r.GetMemoryLimitInBytes(); v != 0 {
		swap := v
		if r.GetMemorySwapLimitInBytes() > 0 {
			swap = r.GetMemorySwapLimitInBytes()
		}
		out.Memory = &specs.LinuxMemory{Limit: &v}
		if host.SwapAccounting() {
			out.Memory.Swap = &swap
		}
	}
	if len(r.GetHugepageLimits()) > 0 {
		if host.HugetlbController() {
			for _, h := range r.GetHugepageLimits() {
				out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
			}
		} else {
			// kubelet sends a limit for every page size the kernel has, even
			// where no hugetlb cgroup exists to set it: runc would fail the
			// container, so the limits go, as CRI-O drops them.
			klog.V(2).InfoS("Ignoring hugepage limits: this node has no hugetlb cgroup controller")
		}
	}
	if len(r.GetUnified()) > 0 {
		if host.Cgroup2() {
			out.Unified = r.GetUnified()
		} else {
			klog.InfoS("Ignoring linux.resources.unified: this node uses cgroup v1")
		}
	}
	return out, nil
}

// clampOOMScoreAdj keeps a container from asking for a lower oom_score_adj
// than netshim's own: without CAP_SYS_RESOURCE the kernel refuses it (as
// containerd's restrict_oom_score_adj does).
func clampOOMScoreAdj(v int, host HostFacts) int {
	own, err := host.OOMScoreAdj()
	if err != nil || v >= own {
		return v
	}
	return own
}
