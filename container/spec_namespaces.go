package container

import (
	"fmt"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withNamespaces puts the container in its pod's namespaces.
func withNamespaces(spec *specs.Spec, in SpecInput, _ HostFacts) error {
	var err error
	spec.Linux.Namespaces, err = namespaces(in.Pod, in.Config.GetLinux().GetSecurityContext())
	return err
}

// namespaces joins the pod's: the netns by its pin, IPC and UTS (and PID
// when asked) through the pause process.
func namespaces(pod PodContext, sc *runtimeapi.LinuxContainerSecurityContext) ([]specs.LinuxNamespace, error) {
	podNS := pod.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	pausePath := func(kind string) (string, error) {
		if pod.PausePID <= 0 {
			return "", fmt.Errorf("the pod sandbox's pause process is not running: %w", errdefs.ErrFailedPrecondition)
		}
		return fmt.Sprintf("/proc/%d/ns/%s", pod.PausePID, kind), nil
	}
	if pod.NetNSPath != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pod.NetNSPath})
	}
	if podNS.GetNetwork() != runtimeapi.NamespaceMode_NODE {
		p, err := pausePath("uts")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: p})
	}
	if podNS.GetIpc() != runtimeapi.NamespaceMode_NODE {
		p, err := pausePath("ipc")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: p})
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		p, err := pausePath("pid")
		if err != nil {
			return nil, err
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: p})
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtimeapi.NamespaceMode_NODE:
	default:
		return nil, invalid("config.linux.security_context.namespace_options.pid", "%s is not supported", sc.GetNamespaceOptions().GetPid())
	}
	return ns, nil
}
