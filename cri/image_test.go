package cri

import (
	"context"
	"testing"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fsImages and fsContainers answer only what ImageFsInfo and the mounts of
// a ContainerStatus ask.
type fsImages struct {
	Images
	usage  image.FsUsage
	images map[string]*image.Image
}

func (f fsImages) FsInfo() (image.FsUsage, error) { return f.usage, nil }

func (f fsImages) Get(ref string) (*image.Image, error) {
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return nil, errdefs.ErrNotFound
}

type fsContainers struct {
	Containers
	usage container.FsUsage
}

func (f fsContainers) FsInfo() container.FsUsage { return f.usage }

// ImageFsInfo reports the image store and, as the split-disk KEP asks,
// the containers' writable layers, each with its own mount point.
func TestImageFsInfoReportsContainerFilesystems(t *testing.T) {
	s := NewServer(Services{
		Images:     fsImages{usage: image.FsUsage{Mountpoint: "/root/images", UsedBytes: 100, Inodes: 3}},
		Containers: fsContainers{usage: container.FsUsage{Mountpoint: "/root/containers/layers", UsedBytes: 4096, Inodes: 7}},
	}, Dirs{})
	resp, err := s.ImageFsInfo(context.Background(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for what, tc := range map[string]struct {
		got           []*runtimeapi.FilesystemUsage
		mount         string
		bytes, inodes uint64
	}{
		"image":     {resp.ImageFilesystems, "/root/images", 100, 3},
		"container": {resp.ContainerFilesystems, "/root/containers/layers", 4096, 7},
	} {
		if len(tc.got) != 1 {
			t.Fatalf("%s filesystems: %v", what, tc.got)
		}
		fs := tc.got[0]
		if fs.GetFsId().GetMountpoint() != tc.mount || fs.GetUsedBytes().GetValue() != tc.bytes || fs.GetInodesUsed().GetValue() != tc.inodes || fs.GetTimestamp() == 0 {
			t.Errorf("%s filesystem: %v, want %s with %d bytes, %d inodes", what, fs, tc.mount, tc.bytes, tc.inodes)
		}
	}
}

// A container's status names the image of each image volume by the ID
// PullImage answered (image_ref), and leaves the stored config as it was.
func TestStatusMountsNameTheImageVolumesImage(t *testing.T) {
	s := NewServer(Services{Images: fsImages{images: map[string]*image.Image{"tools:1": {ID: "sha256:abc"}}}}, Dirs{})
	stored := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/srv"},
		{ContainerPath: "/tools", Readonly: true, Image: &runtimeapi.ImageSpec{Image: "tools:1"}},
	}
	got := s.imageVolumeRefs(append([]*runtimeapi.Mount(nil), stored...))
	if got[0] != stored[0] || got[1].GetImage().GetImageRef() != "sha256:abc" || got[1].GetImage().GetImage() != "tools:1" {
		t.Errorf("status mounts: %v", got)
	}
	if stored[1].GetImage().GetImageRef() != "" {
		t.Error("the stored config was changed")
	}
}
