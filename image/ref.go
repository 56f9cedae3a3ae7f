package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/netshim/netshim/pkg/errdefs"
)

// dockerHub is how containerd and kubelet write Docker Hub's registry;
// go-containerregistry says index.docker.io.
const dockerHub = "docker.io"

// reference is an image reference in containerd's normalized form:
// docker.io/library/busybox:latest, registry.k8s.io/pause@sha256:….
type reference struct {
	Registry   string // docker.io, registry.k8s.io, 127.0.0.1:5000
	Repository string // library/busybox
	Tag        string // "" for a digest reference
	Digest     string // sha256:…, "" for a tag reference
}

// parseReference normalizes ref, adding docker.io/library/ and :latest where
// the short forms leave them out.
func parseReference(ref string) (reference, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return reference{}, fmt.Errorf("image reference %q: %v: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	out := reference{Registry: r.Context().RegistryStr(), Repository: r.Context().RepositoryStr()}
	if out.Registry == name.DefaultRegistry {
		out.Registry = dockerHub
	}
	switch v := r.(type) {
	case name.Tag:
		out.Tag = v.TagStr()
	case name.Digest:
		out.Digest = v.DigestStr()
	}
	// "busybox:1.36@sha256:…" parses as a digest; the tag is only a label then.
	return out, nil
}

// Name is registry/repository.
func (r reference) Name() string { return r.Registry + "/" + r.Repository }

// String is the normalized reference.
func (r reference) String() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.Tag
}

// onRegistry is the same repository and tag or digest on another host (a
// mirror), as go-containerregistry needs it; a mirror may add a path.
func (r reference) onRegistry(host string, insecure bool) (name.Reference, error) {
	opts := []name.Option{name.WeakValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	registry, prefix, _ := strings.Cut(host, "/")
	repo := r.Repository
	if prefix != "" {
		repo = prefix + "/" + repo
	}
	if registry == dockerHub {
		registry = name.DefaultRegistry
	}
	s := registry + "/" + repo
	if r.Digest != "" {
		return name.NewDigest(s+"@"+r.Digest, opts...)
	}
	return name.NewTag(s+":"+r.Tag, opts...)
}
