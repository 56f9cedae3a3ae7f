package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// volumesDir is the dir, in a container's layer dir, of its image volumes'
// mounts: Rootfs.Unmount of the layer dir unmounts them with the rootfs.
const volumesDir = "volumes"

// mountImageVolumes mounts each of the config's image volumes (KEP-4639)
// read-only and returns its host source, by the mount's index: the
// image's root, or its image_sub_path. What it mounted before a failure
// is undone with the rest of the create (Rootfs.Unmount).
func (m *Manager) mountImageVolumes(id string, cfg *runtimeapi.ContainerConfig) (map[int]string, error) {
	var out map[int]string
	for i, mnt := range cfg.GetMounts() {
		if mnt.GetImage() == nil {
			continue
		}
		field := fmt.Sprintf("config.mounts[%d]", i)
		ref := mnt.GetImage().GetImage()
		root, err := m.cfg.Rootfs.MountVolume(id, ref, filepath.Join(m.layerDir(id), volumesDir, strconv.Itoa(i)))
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, fmt.Errorf("%s.image: image %q is not present: pull it first: %w", field, ref, errdefs.ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("%s.image: mount image %q: %w", field, ref, err)
		}
		src, err := imageSubPath(root, mnt.GetImageSubPath(), field+".image_sub_path", ref)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[int]string{}
		}
		out[i] = src
	}
	return out, nil
}

// imageSubPath is the directory sub names in the image volume mounted at
// root. A path that leaves the image is refused; a symlink on the way
// resolves inside the image, never on the host (runc would follow it
// there when it binds the source).
func imageSubPath(root, sub, field, ref string) (string, error) {
	if sub == "" {
		return root, nil
	}
	clean := filepath.Clean(sub)
	if filepath.IsAbs(sub) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", invalid(field, "%q leaves the image: it must be a relative path inside it", sub)
	}
	path, err := securejoin.SecureJoin(root, clean)
	if err != nil {
		return "", invalid(field, "%q: %v", sub, err)
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", invalid(field, "%q does not exist in image %q", sub, ref)
	}
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", field, sub, err)
	}
	if !st.IsDir() {
		return "", invalid(field, "%q in image %q is not a directory: an image volume mounts directories only", sub, ref)
	}
	return path, nil
}
