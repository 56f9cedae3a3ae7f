package e2e

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// With every image removed, as kubelet's image GC does by ID, the store
// holds nothing and ImageFsInfo says so: manifests were left behind, and
// counted.
func TestRemovingEveryImageEmptiesTheStore(t *testing.T) {
	reg := testRegistry(t)
	if _, err := reg.Push("e2e/app", "gc", appImage(t)); err != nil {
		t.Fatal(err)
	}
	s := startShim(t)
	ids := []string{s.pull(busyboxImage(t)), s.pull(reg.Addr + "/e2e/app:gc")}
	for _, id := range ids {
		if _, err := s.img.RemoveImage(s.ctx(), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: id}}); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := s.img.ImageFsInfo(s.ctx(), &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 {
		t.Fatalf("ImageFsInfo: %v, %v", fs, err)
	}
	if used, inodes := fs.ImageFilesystems[0].UsedBytes.GetValue(), fs.ImageFilesystems[0].InodesUsed.GetValue(); used != 0 || inodes != 0 {
		t.Errorf("ImageFsInfo with no images: %d bytes, %d inodes used; want none", used, inodes)
	}
	if n := s.storeEntries("blobs/sha256") + s.storeEntries("layers"); n != 0 {
		t.Errorf("%d blobs and layers left with no images", n)
	}
}
