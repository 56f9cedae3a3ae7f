package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func imageVolume(path, ref, sub string) *runtimeapi.Mount {
	return &runtimeapi.Mount{ContainerPath: path, Readonly: true, Image: &runtimeapi.ImageSpec{Image: ref}, ImageSubPath: sub}
}

func bundleSpec(t *testing.T, m *Manager, id string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(m.bundleDir(id), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	return &spec
}

// An image volume is the image's tree (or the sub path of it), mounted
// under the container's layer dir and bound read-only, but not noexec, at
// its path; removing the container unmounts it with the rootfs.
func TestImageVolumesAreBoundReadOnly(t *testing.T) {
	m, w, cfg := newTestManager(t)
	ctx := context.Background()
	req := request("web")
	req.Config.Mounts = []*runtimeapi.Mount{imageVolume("/tools", "tools:1", ""), imageVolume("/tools-etc", "tools:1", "etc")}
	c, err := m.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	spec := bundleSpec(t, m, c.ID)
	for dst, src := range map[string]string{
		"/tools":     filepath.Join(m.layerDir(c.ID), "volumes", "0", "rootfs"),
		"/tools-etc": filepath.Join(m.layerDir(c.ID), "volumes", "1", "rootfs", "etc"),
	} {
		got := mountAt(spec, dst)
		if got == nil {
			t.Fatalf("no mount at %s: %+v", dst, spec.Mounts)
		}
		if got.Source != src || got.Type != "bind" || !slices.Contains(got.Options, "ro") || slices.Contains(got.Options, "noexec") {
			t.Errorf("mount at %s: %+v, want a read-only, exec bind of %s", dst, got, src)
		}
	}
	w.mu.Lock()
	refs := slices.Clone(w.volumes[c.ID])
	w.mu.Unlock()
	if !slices.Equal(refs, []string{"tools:1", "tools:1"}) {
		t.Errorf("volumes mounted: %v", refs)
	}
	if err := m.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	nothingLeft(t, m, w, cfg, c.ID, c.Name)
}

// A create whose image volume cannot be mounted, or whose sub path is
// wrong, fails with the code and field that say why, and undoes every
// mount it made, the volumes before it too.
func TestImageVolumeFailuresUndoTheCreate(t *testing.T) {
	for _, tc := range []struct {
		name string
		sub  string
		fail error
		code error
		says []string
	}{
		{"image not present", "", fmt.Errorf("image %q: %w", "missing:1", errdefs.ErrNotFound), errdefs.ErrNotFound,
			[]string{"config.mounts[1].image", `"missing:1"`, "pull it first"}},
		{"mount fails", "", errors.New("overlay said no"), nil, []string{"config.mounts[1].image", "overlay said no"}},
		{"sub path leaves the image", "../..", nil, errdefs.ErrInvalidArgument, []string{"config.mounts[1].image_sub_path", "leaves the image"}},
		{"absolute sub path", "/etc", nil, errdefs.ErrInvalidArgument, []string{"config.mounts[1].image_sub_path", "leaves the image"}},
		{"sub path missing", "not-there", nil, errdefs.ErrInvalidArgument, []string{"config.mounts[1].image_sub_path", `"not-there" does not exist in image "missing:1"`}},
		{"sub path a file", "image", nil, errdefs.ErrInvalidArgument, []string{"config.mounts[1].image_sub_path", "is not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, w, cfg := newTestManager(t)
			if tc.fail != nil {
				w.failVolume["missing:1"] = tc.fail
			}
			req := request("web")
			req.Config.Mounts = []*runtimeapi.Mount{imageVolume("/tools", "tools:1", ""), imageVolume("/other", "missing:1", tc.sub)}
			_, err := m.Create(context.Background(), req)
			if err == nil {
				t.Fatal("create succeeded")
			}
			if tc.code != nil && !errors.Is(err, tc.code) {
				t.Errorf("error %v: want %v", err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if len(m.List()) != 0 {
				t.Error("a record is left")
			}
			if entries, _ := os.ReadDir(filepath.Join(cfg.RootDir, "layers")); len(entries) != 0 {
				t.Errorf("layer dirs left: %d", len(entries))
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.volumes) != 0 || len(w.mounted) != 0 {
				t.Errorf("left mounted: volumes %v, rootfs %v", w.volumes, w.mounted)
			}
		})
	}
}

// A symlink in the image on the way to the sub path resolves inside the
// image, never on the host.
func TestImageSubPathSymlinkStaysInTheImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]string{"abs": filepath.Join(root, "etc"), "up/etc": filepath.Join(root, "etc"), "etc/": filepath.Join(root, "etc")} {
		got, err := imageSubPath(root, sub, "f", "img")
		if err != nil || got != want {
			t.Errorf("sub path %q: %q, %v; want %q", sub, got, err, want)
		}
	}
}

// kubelet always asks for an image volume read-only; anything else is
// refused before anything is made. A relative host path (kubelet sends
// none) is not refused: it is not used.
func TestImageVolumeConfigIsChecked(t *testing.T) {
	for field, m := range map[string]*runtimeapi.Mount{
		"config.mounts[0].readonly":    {ContainerPath: "/t", Image: &runtimeapi.ImageSpec{Image: "tools:1"}},
		"config.mounts[0].image.image": {ContainerPath: "/t", Readonly: true, Image: &runtimeapi.ImageSpec{}},
		"config.mounts[0].propagation": {ContainerPath: "/t", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL, Image: &runtimeapi.ImageSpec{Image: "tools:1"}},
	} {
		cfg := request("web").Config
		cfg.Mounts = []*runtimeapi.Mount{m}
		err := validate.Container(cfg)
		var fe *errdefs.FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("mount %v: %v, want a refusal of %s", m, err, field)
		}
	}
	cfg := request("web").Config
	cfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/t", Readonly: true, HostPath: "ignored", Image: &runtimeapi.ImageSpec{Image: "tools:1"}}}
	if err := validate.Container(cfg); err != nil {
		t.Errorf("an image volume with a host path: %v", err)
	}
}
