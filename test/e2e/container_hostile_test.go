package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/netshim/netshim/test/registry"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostileImage pushes the busybox image with one more layer, whose
// etc/group is a FIFO or a char device like /dev/zero (1:5), and returns
// its reference.
func hostileImage(t *testing.T, kind string) string {
	t.Helper()
	reg := testRegistry(t)
	files, err := registry.BusyboxFiles()
	if err != nil {
		t.Fatal(err)
	}
	base, err := registry.Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Name: "etc/group", Mode: 0o644, Typeflag: tar.TypeFifo, Format: tar.FormatPAX}
	if kind == "zero" {
		hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, 1, 5
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	hostile, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.Image(v1.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}, base, hostile)
	if err != nil {
		t.Fatal(err)
	}
	repo := "e2e/hostile-group-" + kind
	if _, err := reg.Push(repo, "1", img); err != nil {
		t.Fatal(err)
	}
	return reg.Addr + "/" + repo + ":1"
}

// A hostile image or request cannot wedge or exhaust netshim (issue 23,
// fault 2): an image whose /etc/group is a FIFO hung CreateContainer for
// good while it held the pod's lock; one whose /etc/group is a char device
// (/dev/zero) was read until netshim was OOM-killed; so were a seccomp
// localhost profile that is a FIFO or /dev/zero; a log_path that is a FIFO
// blocked conmon. Each is refused as InvalidArgument naming what is wrong,
// and the pod can still be stopped and removed, leaving nothing.
func TestHostileContainerFilesAreRefused(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "hostile")
	pod := s.runPod(podCfg)

	fifo := filepath.Join(t.TempDir(), "profile.json")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(podCfg.LogDirectory, "fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	seccomp := func(path string) func(*runtimeapi.ContainerConfig) {
		return func(c *runtimeapi.ContainerConfig) {
			c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: path}
		}
	}
	cases := []struct {
		name, image, want string
		mutate            func(*runtimeapi.ContainerConfig)
	}{
		{"group-fifo", "fifo", "/etc/group", nil},
		{"group-zero", "zero", "/etc/group", nil},
		{"seccomp-fifo", "", "seccomp.localhost_ref", seccomp(fifo)},
		{"seccomp-zero", "", "seccomp.localhost_ref", seccomp("/dev/zero")},
		{"log-fifo", "", "config.log_path", func(c *runtimeapi.ContainerConfig) { c.LogPath = "fifo.log" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := image
			if tc.image != "" {
				ref = hostileImage(t, tc.image)
				s.pull(ref)
			}
			cfg := ctrConfig(tc.name, ref, "true")
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			// s.ctx() bounds the call: before the fix a FIFO hung it.
			_, err := s.rt.CreateContainer(s.ctx(), &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: podCfg})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CreateContainer: %v, want InvalidArgument naming %s", err, tc.want)
			}
		})
	}
	list, err := s.rt.ListContainers(s.ctx(), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Containers) != 0 {
		t.Errorf("refused creates left %d containers", len(list.Containers))
	}
	// The pod's lock is free: it stops and goes.
	s.stopPod(pod)
	s.removePod(pod)
	s.assertNoContainersLeft()
}
