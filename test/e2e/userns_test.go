package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A pod with hostUsers: false (userns POD) runs in a user namespace of its
// own with kubelet's mappings: its root is an unprivileged host user, yet
// it owns its image's files and its volume's root-owned files, writes its
// root file system, and nothing of its idmapped mounts outlives it.
func TestUserNamespacePod(t *testing.T) {
	const hostID = 1 << 20 // what kubelet would pick: a multiple of 65536
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: 65536}}
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)

	st, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.RuntimeHandlers {
		if h.Name == "" && !h.GetFeatures().GetUserNamespaces() {
			t.Fatalf("the default handler says it has no user namespaces on this host (kernel 6.18, runc 1.5): %v", h)
		}
	}

	volume := t.TempDir()
	if err := os.Chmod(volume, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(volume, "owned-by-root"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	podCfg := podWithLogs(t, "userns")
	nsOpts := &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}}
	podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: nsOpts}
	pod := s.runPod(podCfg)
	_, info := s.status(pod)
	if m, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(info.PID), "uid_map")); err != nil || !strings.Contains(string(m), "1048576") {
		t.Errorf("pause's uid_map %q (%v): want container 0 at host %d", m, err, hostID)
	}

	cfg := ctrConfig("app", image, `cat /proc/self/uid_map; echo "id=$(id -u)"; echo "passwd-owner=$(stat -c %u /etc/passwd)"
echo "volume-owner=$(stat -c %u /data/owned-by-root)"; echo written > /made-here && echo "root-fs-writable"; echo done; exec sleep 300`)
	cfg.Linux.SecurityContext.NamespaceOptions = nsOpts
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data", HostPath: volume, Readonly: true}}
	ctr := s.runContainer(pod, podCfg, cfg)
	log := waitLog(t, filepath.Join(podCfg.LogDirectory, "app.log"), "done")
	for _, want := range []string{"1048576", "id=0", "passwd-owner=0", "volume-owner=0", "root-fs-writable"} {
		if !strings.Contains(log, want) {
			t.Errorf("container's log lacks %q:\n%s", want, log)
		}
	}
	// On the host, the file the pod's root made belongs to its host ID.
	cst := s.containerStatus(ctr)
	if cst.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container state %v", cst.State)
	}
	made := filepath.Join(s.dir, "root", "containers", "layers", ctr, "upper", "made-here")
	if fi, err := os.Stat(made); err != nil || fi.Sys().(*syscall.Stat_t).Uid != hostID {
		t.Errorf("%s: %v; want it owned by host uid %d", made, err, hostID)
	}

	// A container may not leave its pod's user namespace.
	host := ctrConfig("host", image, "true")
	host.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}
	if _, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: host, SandboxConfig: podCfg}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a container asking for the host's user namespace in a userns pod: %v, want InvalidArgument", err)
	}

	s.stopPod(pod)
	s.removePod(pod)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(s.dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if strings.Contains(m.Mountpoint, ctr) {
			t.Errorf("mount left after the pod was removed: %s", m.Mountpoint)
		}
	}
	s.assertNothingLeft()
}
