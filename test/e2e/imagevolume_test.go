package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/netshim/netshim/test/registry"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// toolsImage pushes an image of two layers, share/greeting and
// share/extra/more, with no command: content for an image volume.
func toolsImage(t *testing.T) string {
	t.Helper()
	reg := testRegistry(t)
	low, err := registry.Layer([]registry.File{{Name: "share/greeting", Body: []byte("hello from tools\n")}})
	if err != nil {
		t.Fatal(err)
	}
	top, err := registry.Layer([]registry.File{{Name: "share/extra/more", Body: []byte("more\n")}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.Image(v1.Config{}, low, top)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Push("e2e/tools", "1", img); err != nil {
		t.Fatal(err)
	}
	return reg.Addr + "/e2e/tools:1"
}

func imageVolume(path, ref, sub string) *runtimeapi.Mount {
	return &runtimeapi.Mount{ContainerPath: path, Readonly: true, Image: &runtimeapi.ImageSpec{Image: ref}, ImageSubPath: sub}
}

// mountsUnder lists what is mounted under dir, of any type.
func mountsUnder(dir string) []string {
	data, _ := os.ReadFile("/proc/self/mounts")
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[1], dir+"/") {
			out = append(out, f[1]+" ("+f[2]+")")
		}
	}
	return out
}

// A container mounts a second image (and a sub dir of it, and its own
// image, whose programs run from there) read-only, as kubelet asks for an
// image volume; the image cannot be removed while mounted, also across a
// restart of netshim, and can be once the container is gone, leaving
// nothing mounted.
func TestImageVolumes(t *testing.T) {
	s := startShim(t)
	bb := busyboxImage(t)
	s.pull(bb)
	tools := toolsImage(t)
	podCfg := podWithLogs(t, "imgvol")
	pod := s.runPod(podCfg)

	// kubelet pulls first; a volume of an image not present is NotFound.
	cfg := ctrConfig("vol", bb, "sleep 300")
	cfg.Mounts = []*runtimeapi.Mount{imageVolume("/tools", tools, "")}
	_, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), tools) {
		t.Fatalf("volume of an image not pulled: %v, want NotFound naming %s", err, tools)
	}
	if m := mountsUnder(filepath.Join(s.dir, "root")); len(m) != 0 {
		t.Errorf("the refused create left mounts: %v", m)
	}

	toolsID := s.pull(tools)
	cfg.Mounts = append(cfg.Mounts, imageVolume("/more", tools, "share/extra"), imageVolume("/bb", bb, ""))
	id := s.runContainer(pod, podCfg, cfg)
	if got := s.execSync(id, "cat", "/tools/share/greeting"); got != "hello from tools\n" {
		t.Errorf("the image's file in the volume: %q", got)
	}
	if got := s.execSync(id, "cat", "/more/more"); got != "more\n" {
		t.Errorf("the sub path's file: %q", got)
	}
	if got := s.execSync(id, "/bb/bin/sh", "-c", "echo ran"); got != "ran\n" {
		t.Errorf("a program of the volume: %q", got)
	}
	resp, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"touch", "/tools/new"}, Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	if resp.ExitCode == 0 || !strings.Contains(string(resp.Stderr), "Read-only file system") {
		t.Errorf("a write into the volume: exit %d, %s; want EROFS", resp.ExitCode, resp.Stderr)
	}
	var ref string
	for _, m := range s.containerStatus(id).Mounts {
		if m.ContainerPath == "/tools" {
			ref = m.GetImage().GetImageRef()
		}
	}
	if ref != toolsID {
		t.Errorf("status's image_ref of the volume: %q, want %q", ref, toolsID)
	}

	refused := func(when string) {
		t.Helper()
		_, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: tools}})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), id) {
			t.Errorf("RemoveImage of a mounted image %s: %v, want FailedPrecondition naming container %s", when, err, id)
		}
	}
	refused("")
	s.restart()
	refused("after a restart")
	if got := s.execSync(id, "cat", "/tools/share/greeting"); got != "hello from tools\n" {
		t.Errorf("the volume after a restart: %q", got)
	}

	if _, err := s.rt.RemoveContainer(s.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(filepath.Join(s.dir, "root")); len(m) != 0 {
		t.Errorf("mounts left after the container's removal: %v", m)
	}
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: tools}}); err != nil {
		t.Fatalf("RemoveImage once unmounted: %v", err)
	}
	if img := s.imageStatus(tools); img != nil {
		t.Errorf("image still there: %v", img)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNoContainersLeft()
}

// ImageFsInfo reports the containers' writable layers beside the image
// store (KEP-4191's split disk): their dir, and what a container wrote.
func TestImageFsInfoReportsContainerLayers(t *testing.T) {
	s := startShim(t)
	bb := busyboxImage(t)
	s.pull(bb)
	podCfg := podWithLogs(t, "fsinfo")
	pod := s.runPod(podCfg)
	s.runContainer(pod, podCfg, ctrConfig("writer", bb, "head -c 2097152 /dev/zero > /big; sleep 300"))
	layers := filepath.Join(s.dir, "root", "containers", "layers")
	eventually(t, 20*time.Second, "ImageFsInfo to count the 2 MiB the container wrote", func() bool {
		resp, err := s.img.ImageFsInfo(s.ctx(), &runtimeapi.ImageFsInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ImageFilesystems) != 1 || len(resp.ContainerFilesystems) != 1 {
			t.Fatalf("filesystems: %v", resp)
		}
		fs := resp.ContainerFilesystems[0]
		if fs.GetFsId().GetMountpoint() != layers {
			t.Fatalf("container filesystem at %q, want %q", fs.GetFsId().GetMountpoint(), layers)
		}
		return fs.GetUsedBytes().GetValue() >= 2<<20 && fs.GetInodesUsed().GetValue() >= 2
	})
	s.stopPod(pod)
	s.removePod(pod)
}

// A container whose record was lost (netshim killed between its mounts and
// its record, simulated by removing the checkpoint while netshim is down)
// leaves image volumes mounted that no record names: the start's sweep
// unmounts them with the rootfs, and drops their lease, so the image can
// be removed again.
func TestImageVolumeLeftoversAreSweptAtStart(t *testing.T) {
	s := startShim(t)
	bb := busyboxImage(t)
	s.pull(bb)
	tools := toolsImage(t)
	s.pull(tools)
	podCfg := podWithLogs(t, "imgvol-sweep")
	pod := s.runPod(podCfg)
	cfg := ctrConfig("vol", bb, "sleep 300")
	cfg.Mounts = []*runtimeapi.Mount{imageVolume("/tools", tools, ""), imageVolume("/more", tools, "share/extra")}
	id := s.runContainer(pod, podCfg, cfg)
	root := filepath.Join(s.dir, "root")
	if m := mountsUnder(filepath.Join(root, "containers", "layers", id, "volumes")); len(m) != 2 {
		t.Fatalf("image volumes mounted: %v, want 2", m)
	}

	s.stop(syscall.SIGKILL)
	if err := os.Remove(filepath.Join(root, "containers", "checkpoints", id+".json")); err != nil {
		t.Fatal(err)
	}
	s.start()
	if m := mountsUnder(root); len(m) != 0 {
		t.Errorf("mounts left after the start's sweep: %v", m)
	}
	if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: tools}}); err != nil {
		t.Errorf("RemoveImage once the sweep dropped the lease: %v", err)
	}
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNoContainersLeft()
}
