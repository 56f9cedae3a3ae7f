package cri

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/pkg/errdefs"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Images is what the server needs of the image store (package image).
type Images interface {
	Pull(ctx context.Context, ref string, auth *image.Auth) (*image.Image, error)
	Get(ref string) (*image.Image, error)
	List() []*image.Image
	Remove(ref string) error
	FsInfo() (image.FsUsage, error)
	RawConfig(id string) ([]byte, error)
}

func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidField("image.image", "is required")
	}
	var auth *image.Auth
	if a := req.GetAuth(); a != nil {
		auth = &image.Auth{Username: a.GetUsername(), Password: a.GetPassword(), Auth: a.GetAuth(),
			IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
	}
	img, err := s.images.Pull(ctx, ref, auth)
	if err != nil {
		return nil, err
	}
	// The image's ID, as containerd answers: kubelet compares it with ImageStatus's.
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

func (s *Server) ListImages(_ context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	var out []*runtimeapi.Image
	want := req.GetFilter().GetImage().GetImage()
	var match *image.Image
	if want != "" {
		img, err := s.images.Get(want)
		if err != nil {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		match = img
	}
	for _, img := range s.images.List() {
		if match != nil && img.ID != match.ID {
			continue
		}
		out = append(out, criImage(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	resp, _ := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: req.GetFilter()})
	items := resp.GetImages()
	for len(items) > 0 {
		n := min(streamChunk, len(items))
		if err := stream.Send(&runtimeapi.StreamImagesResponse{Images: items[:n]}); err != nil {
			return err
		}
		items = items[n:]
	}
	return nil
}

// ImageStatus answers a nil image for an unknown one, as the CRI says.
func (s *Server) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := s.images.Get(req.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, wrapf(err, "status of image %q", req.GetImage().GetImage())
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		raw, err := s.images.RawConfig(img.ID)
		if err != nil {
			return nil, wrapf(err, "status of image %q", req.GetImage().GetImage())
		}
		info, _ := json.Marshal(struct {
			ImageSpec json.RawMessage `json:"imageSpec"`
			Chains    []string        `json:"chainIDs"`
		}{raw, img.Chains})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// criImage is the CRI's view of an image: the user is a uid when the
// image's user is numeric ("1000", "1000:1000"), else a username.
func criImage(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests, Size: img.Size,
		Pinned: img.Pinned, Spec: &runtimeapi.ImageSpec{Image: img.ID},
	}
	user, _, _ := strings.Cut(img.Config.User, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		out.Uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		out.Username = user
	}
	return out
}

// RemoveImage is idempotent: removing an image that is not there succeeds.
func (s *Server) RemoveImage(_ context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.InvalidField("image.image", "is required")
	}
	if err := s.images.Remove(ref); err != nil {
		return nil, wrapf(err, "remove image %q", ref)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

func (s *Server) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	fs, err := s.images.FsInfo()
	if err != nil {
		return nil, wrapf(err, "image filesystem info")
	}
	usage := &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: fs.Mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: fs.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: fs.Inodes},
	}
	// The containers' writable layers, as the split-disk KEP (4191) asks:
	// kubelet learns where they live and what they hold.
	layers := s.containers.FsInfo()
	ctrs := &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: layers.Mountpoint},
		UsedBytes:  &runtimeapi.UInt64Value{Value: layers.UsedBytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: layers.Inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{usage},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{ctrs}}, nil
}

// imageVolumeRefs is a container's mounts as its status reports them: an
// image volume's image says which image it is (image_ref, the image's ID
// as PullImage answered), as kubelet reads it since KEP-5365.
func (s *Server) imageVolumeRefs(mounts []*runtimeapi.Mount) []*runtimeapi.Mount {
	for i, m := range mounts {
		if m.GetImage() == nil {
			continue
		}
		img, err := s.images.Get(m.GetImage().GetImage())
		if err != nil {
			continue // mounted, it cannot have been removed; nothing to add if it was
		}
		spec := proto.Clone(m.GetImage()).(*runtimeapi.ImageSpec)
		spec.ImageRef = img.ID
		mounts[i] = proto.Clone(m).(*runtimeapi.Mount)
		mounts[i].Image = spec
	}
	return mounts
}
