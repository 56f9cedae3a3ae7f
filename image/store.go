// Package image is netshim's image service: it pulls images over the
// registry protocol (go-containerregistry), through the mirrors of a
// registries.conf, into a content-addressed store where each layer is
// unpacked once per chain, and mounts an image's layers as an overlay rootfs
// for a container, leased so that nothing in use is ever deleted.
package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/netshim/netshim/pkg/atomicfile"
	"github.com/netshim/netshim/pkg/checkpoint"
	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/memstore"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"
)

// Config places the store and says where to pull from.
type Config struct {
	Root string // --root-dir: the store lives in Root/images
	// RegistryConfig is a registries.conf (v2) file; "" pulls from each
	// image's own registry.
	RegistryConfig string
	// CertsDir holds CA files per registry host (<host[:port]>/*.crt).
	CertsDir   string
	Registerer prometheus.Registerer
	// PullProgressTimeout fails a pull from an endpoint that sent no bytes
	// for this long; 0 means never.
	PullProgressTimeout time.Duration
}

// Auth is a registry credential as kubelet passes it from a pull secret.
type Auth struct {
	Username, Password, Auth, IdentityToken, RegistryToken string
}

// ImageConfig is what containers take from an image's config.
type ImageConfig struct {
	User       string            `json:"user,omitempty"`
	Env        []string          `json:"env,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	StopSignal string            `json:"stopSignal,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Volumes    []string          `json:"volumes,omitempty"`
}

// Image is one image in the store.
type Image struct {
	// ID is "sha256:<hex of the config digest>", as containerd names images.
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
	Size        uint64   `json:"size"` // compressed layers plus config, as registries count it
	// Config is read from the config blob, at the pull and at start; the
	// records on disk hold names and layers only, so they stay small.
	Config ImageConfig `json:"-"`
	Pinned bool        `json:"pinned,omitempty"`
	// Chains are the layers' chain IDs, bottom first.
	Chains []string `json:"chains"`
	// configInline: the config blob is missing and Config came from an
	// older record; it stays in the record.
	configInline bool
}

// storedImage is an image record as images.json holds it. Older netshims
// wrote the config there (and the whole raw config, now ignored); it is
// read from there, and kept there, only for an image whose config blob
// is missing.
type storedImage struct {
	Image
	LegacyConfig *ImageConfig `json:"config,omitempty"`
}

// imageConfig is what containers take from an image's config file.
func imageConfig(cf *v1.ConfigFile) ImageConfig {
	c := cf.Config
	out := ImageConfig{User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir, StopSignal: c.StopSignal, Labels: c.Labels}
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	return out
}

// RawConfig is the config file of the image with id, for a verbose status.
func (s *Store) RawConfig(id string) ([]byte, error) {
	data, err := s.readBlob(id, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config of image %s: %w", id, err)
	}
	return data, nil
}

// readBlob reads the blob digest, refusing one over limit bytes.
func (s *Store) readBlob(digest string, limit int64) ([]byte, error) {
	f, err := os.Open(s.path("blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("blob %s is over %d bytes", digest, limit)
	}
	return data, nil
}

func (img *Image) clone() *Image {
	c := *img
	c.RepoTags = append([]string(nil), img.RepoTags...)
	c.RepoDigests = append([]string(nil), img.RepoDigests...)
	return &c
}

// FsUsage is what the store uses of its filesystem.
type FsUsage struct {
	Mountpoint string
	UsedBytes  uint64
	Inodes     uint64
}

// Store is the image store.
type Store struct {
	dir             string
	regs            *registriesConf
	metrics         *metrics
	transports      *transports
	progressTimeout time.Duration

	pulls  singleflight.Group // one download per reference
	layers singleflight.Group // one unpack per chain

	mu sync.RWMutex
	// images are by ID ("sha256:<hex>"), found by a prefix of the hex.
	// Changes go through s.mu too, so that a tag moves from one image to
	// another in one step.
	images *memstore.Store[Image]
	leases map[string]lease // by container ID
	// leaseRecords are the leases on disk, one checkpoint per container.
	leaseRecords checkpoint.Store[lease]
	// pulling counts the in-flight pulls that need each chain: a GC run
	// by a concurrent removal must not take a layer a pull has just
	// unpacked but not yet recorded.
	pulling map[string]int
}

func newImageRecords() *memstore.Store[Image] {
	return memstore.New((*Image).clone).WithIndexKey(func(id string) string { return strings.TrimPrefix(id, "sha256:") })
}

// NewStore opens (or makes) the store, dropping what an interrupted pull left.
func NewStore(cfg Config) (*Store, error) {
	regs, err := loadRegistriesConf(cfg.RegistryConfig)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: filepath.Join(cfg.Root, "images"), regs: regs, transports: newTransports(cfg.CertsDir),
		progressTimeout: cfg.PullProgressTimeout,
		metrics:         newMetrics(cfg.Registerer), images: newImageRecords(), leases: map[string]lease{}, pulling: map[string]int{}}
	// A pull killed midway leaves only temp files: they go, and nothing
	// half-made is ever in blobs/ or layers/ under its final name.
	if err := os.RemoveAll(s.path("tmp")); err != nil {
		return nil, fmt.Errorf("clear image temp dir: %w", err)
	}
	s.leaseRecords = newLeaseRecords(s.path("leases"))
	for _, d := range []string{"tmp", "blobs/sha256", "layers", "leases"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return nil, fmt.Errorf("create image store: %w", err)
		}
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	// Layers a killed pull committed before it could record its image.
	s.gcLocked()
	return s, nil
}

func (s *Store) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

func (s *Store) layerDir(chain string) string {
	return s.path("layers", strings.TrimPrefix(chain, "sha256:"))
}

func (s *Store) load() error {
	data, err := os.ReadFile(s.path("images.json"))
	if err == nil {
		var list []*storedImage
		if err := json.Unmarshal(data, &list); err != nil {
			aside := s.path("images.json.corrupt")
			_ = os.Rename(s.path("images.json"), aside)
			klog.ErrorS(err, "Image records are corrupt; set aside, images must be pulled again", "file", aside)
		}
		for _, rec := range list {
			img := rec.Image
			raw, err := s.readBlob(img.ID, maxConfigSize)
			var cf *v1.ConfigFile
			if err == nil {
				cf, err = v1.ParseConfigFile(bytes.NewReader(raw))
			}
			switch {
			case err == nil:
				img.Config = imageConfig(cf)
			case rec.LegacyConfig != nil:
				img.Config, img.configInline = *rec.LegacyConfig, true
			default:
				klog.ErrorS(err, "Image's config cannot be read; dropped, it must be pulled again", "image", img.ID)
				continue
			}
			s.images.Add(img.ID, &img)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read image records: %w", err)
	}
	return s.loadLeases()
}

// saveLocked writes every image record atomically; s.mu is held.
func (s *Store) saveLocked() error {
	list := s.images.List()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	records := make([]storedImage, len(list))
	for i, img := range list {
		records[i].Image = *img
		if img.configInline {
			records[i].LegacyConfig = &img.Config
		}
	}
	data, err := json.Marshal(records)
	if err != nil {
		return fmt.Errorf("encode image records: %w", err)
	}
	if err := atomicfile.Write(s.path("images.json"), data, 0o600); err != nil {
		return fmt.Errorf("write image records: %w", err)
	}
	return nil
}

// Pull fetches ref into the store. Concurrent pulls of one reference share
// one download.
func (s *Store) Pull(ctx context.Context, ref string, auth *Auth) (*Image, error) {
	r, err := parseReference(ref)
	if err != nil {
		return nil, err
	}
	key := r.String()
	if auth != nil {
		key += "\x00" + auth.Username + "\x00" + auth.Password + "\x00" + auth.Auth + "\x00" + auth.IdentityToken + "\x00" + auth.RegistryToken
	}
	ch := s.pulls.DoChan(key, func() (any, error) {
		// Detached from any one caller: others may be waiting on it.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Minute)
		defer cancel()
		return s.pull(pctx, r, auth)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Image).clone(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pull %s: %w", r, ctx.Err())
	}
}

func (s *Store) pull(ctx context.Context, r reference, auth *Auth) (*Image, error) {
	start := time.Now()
	endpoints, err := s.registries().endpoints(r)
	if err != nil {
		s.metrics.pulls.WithLabelValues("error").Inc()
		return nil, fmt.Errorf("pull %s: %v: %w", r, err, errdefs.ErrFailedPrecondition)
	}
	var errs []error
	for _, ep := range endpoints {
		img, n, err := s.pullFrom(ctx, r, ep, auth)
		if err == nil {
			d := time.Since(start)
			s.metrics.pulls.WithLabelValues("ok").Inc()
			s.metrics.duration.Observe(d.Seconds())
			s.metrics.bytes.Add(float64(n))
			klog.InfoS("Pulled image", "image", r.String(), "from", ep.Host, "id", img.ID, "bytes", n,
				"duration", d, "MBps", fmt.Sprintf("%.1f", float64(n)/1e6/max(d.Seconds(), 1e-3)))
			return img, nil
		}
		klog.V(2).InfoS("Pull from endpoint failed", "image", r.String(), "endpoint", ep.Host, "err", err)
		errs = append(errs, fmt.Errorf("from %s: %w", ep.Host, err))
		if ctx.Err() != nil {
			break
		}
	}
	s.metrics.pulls.WithLabelValues("error").Inc()
	return nil, fmt.Errorf("pull %s: %w", r, classify(errors.Join(errs...)))
}

// classify wraps a pull error in the kind the CRI answers with.
func classify(err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case 404:
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		case 401, 403:
			return fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
		}
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable)
	}
	return err
}

// Close lets go of the registries' idle connections.
func (s *Store) Close() {
	s.transports.closeIdle()
}

// pullFrom pulls from one endpoint, failing when it sends nothing for the
// progress timeout; the next endpoint (a mirror's registry) may do better.
func (s *Store) pullFrom(ctx context.Context, r reference, ep endpoint, auth *Auth) (*Image, uint64, error) {
	pctx, p, stop := watchProgress(ctx, s.progressTimeout)
	defer stop()
	img, n, err := s.pullFromWatched(pctx, p, r, ep, auth)
	if err != nil && errors.Is(context.Cause(pctx), errStalled) {
		// Not the context's Canceled: the registry stalled, and may not later.
		return nil, 0, fmt.Errorf("%v: %v: %w", context.Cause(pctx), err, errdefs.ErrUnavailable)
	}
	return img, n, err
}

func (s *Store) pullFromWatched(ctx context.Context, p *progress, r reference, ep endpoint, auth *Auth) (*Image, uint64, error) {
	ref, err := r.onRegistry(ep.Host, ep.Insecure)
	if err != nil {
		return nil, 0, err
	}
	tr, err := s.transports.get(ep.Host, ep.Insecure)
	if err != nil {
		return nil, 0, err
	}
	opts := []remote.Option{
		remote.WithContext(ctx), remote.WithTransport(pullTransport{next: tr, p: p}),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		remote.WithAuth(authenticator(auth)),
	}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, 0, err
	}
	img, err := desc.Image()
	if err != nil {
		return nil, 0, fmt.Errorf("resolve image for linux/%s: %w", runtime.GOARCH, err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, 0, err
	}
	// The config is read whole into memory: its size is checked first
	// (go-containerregistry reads no more than the manifest says).
	m, err := img.Manifest()
	if err != nil {
		return nil, 0, err
	}
	if m.Config.Size > maxConfigSize {
		return nil, 0, fmt.Errorf("image config %s is %d bytes, over netshim's limit of %d: %w", cfgName, m.Config.Size, maxConfigSize, errdefs.ErrInvalidArgument)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, 0, fmt.Errorf("fetch config: %w", err)
	}
	if sum := sha256.Sum256(rawCfg); "sha256:"+hex.EncodeToString(sum[:]) != cfgName.String() {
		return nil, 0, fmt.Errorf("config blob does not match its digest %s", cfgName)
	}
	cfgFile, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, 0, fmt.Errorf("parse config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, 0, err
	}
	if len(layers) != len(cfgFile.RootFS.DiffIDs) {
		return nil, 0, fmt.Errorf("manifest has %d layers, config %d diff IDs", len(layers), len(cfgFile.RootFS.DiffIDs))
	}
	var size, fetched uint64 = uint64(len(rawCfg)), 0
	chains := make([]string, len(layers))
	parent := ""
	for i := range layers {
		chains[i] = chainID(parent, cfgFile.RootFS.DiffIDs[i].String())
		parent = chains[i]
	}
	defer s.holdChains(chains)()
	// Layers download and unpack in parallel: each goes to its own chain
	// directory, and the chain IDs are known from the config up front.
	// A layer with a hard link to a file below waits for the layers below
	// (started before it, so never waiting on it) when it meets the link.
	var fetchedEach = make([]uint64, len(layers))
	done := make([]chan struct{}, len(layers))
	for i := range done {
		done[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelLayers)
	for i, l := range layers {
		if n, err := l.Size(); err == nil {
			size += uint64(n)
		}
		lower := func() ([]string, error) {
			dirs := make([]string, 0, i)
			for j := i - 1; j >= 0; j-- {
				select {
				case <-done[j]:
				case <-gctx.Done():
					return nil, gctx.Err()
				}
				dirs = append(dirs, filepath.Join(s.layerDir(chains[j]), "diff"))
			}
			return dirs, nil
		}
		g.Go(func() error {
			n, err := s.ensureLayer(gctx, p, l, cfgFile.RootFS.DiffIDs[i].String(), chains[i], lower)
			if err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			fetchedEach[i] = n
			close(done[i])
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	for _, n := range fetchedEach {
		fetched += n
	}
	// The config and the manifest are kept as blobs (a verbose status
	// shows the config, and the records are read with it); layers only
	// unpacked.
	blobs := []blob{{cfgName.String(), rawCfg}}
	if raw, err := desc.RawManifest(); err == nil {
		blobs = append(blobs, blob{desc.Digest.String(), raw})
	}
	record := &Image{ID: cfgName.String(), Size: size, Chains: chains, Config: imageConfig(cfgFile)}
	committed, err := s.commit(record, r, r.Name()+"@"+desc.Digest.String(), blobs...)
	if err != nil {
		return nil, 0, err
	}
	return committed, fetched, nil
}

// blob is a blob to keep, by digest.
type blob struct {
	digest string
	data   []byte
}

// maxParallelLayers bounds the layers one pull fetches and unpacks at once.
const maxParallelLayers = 3

// holdChains keeps the GC off chains until the returned func is called.
func (s *Store) holdChains(chains []string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range chains {
		s.pulling[strings.TrimPrefix(c, "sha256:")]++
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range chains {
			key := strings.TrimPrefix(c, "sha256:")
			if s.pulling[key]--; s.pulling[key] <= 0 {
				delete(s.pulling, key)
			}
		}
	}
}

// commit writes blobs, then records img under ref's tag (taking the tag
// from any other image) and its repo digest, merging with what the store
// already has. The blobs are written under s.mu, so a removal's GC never
// sees them before the record that keeps them.
func (s *Store) commit(img *Image, r reference, repoDigest string, blobs ...blob) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range blobs {
		if err := s.writeBlob(b.digest, b.data); err != nil {
			return nil, err
		}
	}
	if old, ok := s.images.Get(img.ID); ok {
		img.RepoTags, img.RepoDigests, img.Pinned = old.RepoTags, old.RepoDigests, old.Pinned
	}
	if r.Tag != "" {
		tag := r.String()
		for _, other := range s.images.List() {
			if other.ID != img.ID && slices.Contains(other.RepoTags, tag) {
				other.RepoTags = without(other.RepoTags, tag)
				s.images.Replace(other.ID, other)
			}
		}
		img.RepoTags = appendUnique(img.RepoTags, tag)
	}
	img.RepoDigests = appendUnique(img.RepoDigests, repoDigest)
	s.images.Add(img.ID, img.clone())
	if err := s.saveLocked(); err != nil {
		klog.ErrorS(err, "Could not save image records")
	}
	return img.clone(), nil
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

func without(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// chainID is the OCI chain ID of a layer on top of parent.
func chainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	sum := sha256.Sum256([]byte(parent + " " + diffID))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ensureLayer unpacks layer as chain unless it is there already; concurrent
// pulls that share the layer share the one unpack. It returns the bytes fetched.
func (s *Store) ensureLayer(ctx context.Context, p *progress, l v1.Layer, diffID, chain string, lower lowerLayers) (uint64, error) {
	if _, err := os.Stat(s.layerDir(chain)); err == nil {
		return 0, nil
	}
	// Waiting on another pull's download is progress for this one's watch;
	// running the download here is not (its bytes are).
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	v, err, _ := s.layers.Do(chain, func() (any, error) {
		p.waiting.Add(-1)
		defer p.waiting.Add(1)
		if _, err := os.Stat(s.layerDir(chain)); err == nil {
			return uint64(0), nil
		}
		return s.unpackLayer(ctx, l, diffID, chain, lower)
	})
	if err != nil {
		return 0, err
	}
	return v.(uint64), nil
}

// unpackLayer downloads and unpacks into a temp dir, checks the compressed
// digest (go-containerregistry verifies it at the end of the stream) and the
// diff ID, and only then renames the layer into place.
func (s *Store) unpackLayer(ctx context.Context, l v1.Layer, diffID, chain string, lower lowerLayers) (uint64, error) {
	digest, _ := l.Digest()
	tmp, err := os.MkdirTemp(s.path("tmp"), "layer-")
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", digest, err)
	}
	defer os.RemoveAll(tmp)
	rc, err := l.Compressed()
	if err != nil {
		return 0, fmt.Errorf("fetch layer %s: %w", digest, err)
	}
	defer rc.Close()
	counted := &countingReader{r: rc, ctx: ctx}
	un, err := decompress(counted)
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", digest, err)
	}
	h := sha256.New()
	diff := filepath.Join(tmp, "diff")
	if err := os.Mkdir(diff, 0o755); err != nil {
		return 0, err
	}
	u, err := unpack(io.TeeReader(un, h), diff, lower)
	if err != nil {
		return 0, fmt.Errorf("unpack layer %s: %w", digest, err)
	}
	// Read to the end: the tar may have padding, and the digest check of the
	// compressed stream happens at EOF.
	if _, err := io.Copy(h, un); err != nil {
		return 0, fmt.Errorf("layer %s: %w", digest, err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return 0, fmt.Errorf("layer %s: %w", digest, err)
	}
	if err := rc.Close(); err != nil {
		return 0, fmt.Errorf("layer %s: %w", digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return 0, fmt.Errorf("layer %s unpacks to %s, but the image config says %s", digest, got, diffID)
	}
	meta, _ := json.Marshal(struct {
		DiffID string `json:"diffID"`
		usage
	}{diffID, u})
	if err := os.WriteFile(filepath.Join(tmp, "layer.json"), meta, 0o600); err != nil {
		return 0, err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return 0, err
	}
	crashpoint.Hit(crashpoint.DuringImagePull)
	if err := os.Rename(tmp, s.layerDir(chain)); err != nil {
		return 0, fmt.Errorf("commit layer %s: %w", digest, err)
	}
	return counted.n, nil
}

type countingReader struct {
	r   io.Reader
	n   uint64
	ctx context.Context
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

func (s *Store) writeBlob(digest string, data []byte) error {
	hexd := strings.TrimPrefix(digest, "sha256:")
	if err := atomicfile.Write(s.path("blobs", "sha256", hexd), data, 0o600); err != nil {
		return fmt.Errorf("write blob %s: %w", digest, err)
	}
	return nil
}

func authenticator(a *Auth) authn.Authenticator {
	if a == nil || *a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// Get finds an image by name (normalized: busybox is
// docker.io/library/busybox:latest), by ID, by name@digest, or by a unique
// prefix of its ID.
func (s *Store) Get(ref string) (*Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(ref)
}

// getLocked returns a copy of the image ref names; s.mu is held.
func (s *Store) getLocked(ref string) (*Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	if img, ok := s.images.Get(ref); ok {
		return img, nil
	}
	if hexID, ok := strings.CutPrefix(ref, "sha256:"); ok || isHex(ref) {
		if !ok {
			hexID = ref
		}
		if id, err := s.images.Resolve(hexID); err == nil {
			if img, ok := s.images.Get("sha256:" + id); ok {
				return img, nil
			}
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
	}
	r, err := parseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
	}
	want := r.String()
	if img, ok := s.images.Find(func(img *Image) bool {
		return slices.Contains(img.RepoTags, want) || slices.Contains(img.RepoDigests, want)
	}); ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func isHex(s string) bool {
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	_, err := hex.DecodeString(s + strings.Repeat("0", len(s)%2))
	return err == nil
}

// List returns every image, by ID.
func (s *Store) List() []*Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := s.images.List()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Remove deletes the image that ref names. Named by one of several tags,
// the image only loses that tag, as with `docker rmi`; named by its ID, a
// digest or its last tag, it goes with all its names (kubelet's image GC
// and critest remove by ID). Layers a container still uses stay until its
// lease is gone; an image a container mounts as a volume is not removed
// (FailedPrecondition, naming the container). An unknown image is no error.
func (s *Store) Remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.getLocked(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if tag := s.tagNamed(img, ref); tag != "" && len(img.RepoTags) > 1 {
		img.RepoTags = slices.DeleteFunc(img.RepoTags, func(t string) bool { return t == tag })
		s.images.Replace(img.ID, img)
		return s.saveLocked()
	}
	// A volume's mount reads the image's layers, which a lease keeps; the
	// image itself must stay too, so that kubelet, which sees it in use,
	// finds what it mounted.
	if user := s.volumeUserLocked(img.ID); user != "" {
		return fmt.Errorf("image %s is mounted as an image volume by container %s: remove the container first: %w", img.ID, user, errdefs.ErrFailedPrecondition)
	}
	s.images.Delete(img.ID)
	if err := s.saveLocked(); err != nil {
		return err
	}
	s.gcLocked()
	return nil
}

// tagNamed returns the tag of img that ref names, or "" when ref names it
// otherwise (by ID, ID prefix or digest).
func (s *Store) tagNamed(img *Image, ref string) string {
	if _, ok := s.images.Get(ref); ok {
		return ""
	}
	r, err := parseReference(ref)
	if err != nil {
		return ""
	}
	if slices.Contains(img.RepoTags, r.String()) {
		return r.String()
	}
	return ""
}

// gcLocked deletes blobs no image names, and layers that no image, lease
// or in-flight pull uses.
func (s *Store) gcLocked() {
	used := map[string]bool{}
	for c := range s.pulling {
		used[c] = true
	}
	for _, img := range s.images.List() {
		for _, c := range img.Chains {
			used[strings.TrimPrefix(c, "sha256:")] = true
		}
	}
	for _, l := range s.leases {
		for _, c := range l.Chains {
			used[strings.TrimPrefix(c, "sha256:")] = true
		}
		for _, v := range l.Volumes {
			for _, c := range v.Chains {
				used[strings.TrimPrefix(c, "sha256:")] = true
			}
		}
	}
	s.gcBlobsLocked()
	entries, _ := os.ReadDir(s.path("layers"))
	for _, e := range entries {
		if used[e.Name()] {
			continue
		}
		// Renamed out of the way first, so a crash mid-delete never leaves a
		// half-deleted layer under a name a pull would trust.
		tmp := s.path("tmp", "gc-"+e.Name())
		if err := os.Rename(s.path("layers", e.Name()), tmp); err != nil {
			klog.ErrorS(err, "Could not remove unused layer", "chain", e.Name())
			continue
		}
		if err := os.RemoveAll(tmp); err != nil {
			klog.ErrorS(err, "Could not remove unused layer", "chain", e.Name())
		}
	}
}

// gcBlobsLocked deletes the blobs no image names: its config (the ID)
// and its manifests (the digests of its repo digests). Pulls write blobs
// under s.mu with the record that names them, so none is in flight.
func (s *Store) gcBlobsLocked() {
	used := map[string]bool{}
	for _, img := range s.images.List() {
		used[strings.TrimPrefix(img.ID, "sha256:")] = true
		for _, d := range img.RepoDigests {
			if _, digest, ok := strings.Cut(d, "@sha256:"); ok {
				used[digest] = true
			}
		}
	}
	entries, _ := os.ReadDir(s.path("blobs", "sha256"))
	for _, e := range entries {
		if used[e.Name()] {
			continue
		}
		if err := os.Remove(s.path("blobs", "sha256", e.Name())); err != nil {
			klog.ErrorS(err, "Could not remove unused blob", "digest", "sha256:"+e.Name())
		}
	}
}

// FsInfo sums the store's layers and blobs, as recorded when they were
// written, so kubelet's frequent calls cost no walk.
func (s *Store) FsInfo() (FsUsage, error) {
	out := FsUsage{Mountpoint: s.dir}
	entries, err := os.ReadDir(s.path("layers"))
	if err != nil {
		return out, err
	}
	for _, e := range entries {
		var meta usage
		if data, err := os.ReadFile(s.path("layers", e.Name(), "layer.json")); err == nil {
			_ = json.Unmarshal(data, &meta)
		}
		out.UsedBytes += meta.Bytes
		out.Inodes += meta.Inodes + 1
	}
	blobs, _ := os.ReadDir(s.path("blobs", "sha256"))
	for _, b := range blobs {
		if info, err := b.Info(); err == nil {
			out.UsedBytes += uint64(info.Size())
			out.Inodes++
		}
	}
	return out, nil
}
