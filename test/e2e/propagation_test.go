package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A BIDIRECTIONAL mount, as CSI node plugins use: what the privileged
// container mounts under it appears on the host; a HOST_TO_CONTAINER one
// sees the host's new mounts but does not send its own back.
func TestMountPropagation(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	host := t.TempDir()
	// A shared mount of its own, as kubelet's pods dir is on a node.
	if err := unix.Mount(host, host, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(host, unix.MNT_DETACH) })
	if err := unix.Mount("", host, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"from-container", "from-host", "slave-try"} {
		if err := os.Mkdir(filepath.Join(host, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	podCfg := podWithLogs(t, "propagation")
	podCfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}
	pod := s.runPod(podCfg)
	cfg := ctrConfig("bidi", image, "exec sleep 3600")
	cfg.Linux.SecurityContext.Privileged = true
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/shared", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		{ContainerPath: "/slave", HostPath: host, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}
	ctr := s.runContainer(pod, podCfg, cfg)
	t.Cleanup(func() {
		_ = unix.Unmount(filepath.Join(host, "from-container"), unix.MNT_DETACH)
		_ = unix.Unmount(filepath.Join(host, "from-host"), unix.MNT_DETACH)
		_ = unix.Unmount(filepath.Join(host, "slave-try"), unix.MNT_DETACH)
	})

	s.execSync(ctr, "sh", "-c", "mount -t tmpfs tmpfs /shared/from-container && touch /shared/from-container/made-inside")
	if _, err := os.Stat(filepath.Join(host, "from-container", "made-inside")); err != nil {
		t.Errorf("the container's mount under a BIDIRECTIONAL volume did not reach the host: %v", err)
	}
	if err := unix.Mount("tmpfs", filepath.Join(host, "from-host"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "from-host", "made-outside"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := s.execSync(ctr, "ls", "/slave/from-host"); !strings.Contains(out, "made-outside") {
		t.Errorf("the host's new mount did not reach the HOST_TO_CONTAINER volume: %q", out)
	}
	s.execSync(ctr, "sh", "-c", "mount -t tmpfs tmpfs /slave/slave-try && touch /slave/slave-try/inside")
	if _, err := os.Stat(filepath.Join(host, "slave-try", "inside")); err == nil {
		t.Error("a mount made in a HOST_TO_CONTAINER volume reached the host")
	}
	s.removePod(pod)
}
