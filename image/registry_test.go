package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is an in-memory registry on a loopback port. Once pushed
// to, it serves through misbehave (when set), so a test can make it
// redirect, stall or lie on purpose.
type testRegistry struct {
	srv  *httptest.Server
	host string // 127.0.0.1:port

	mu        sync.Mutex
	misbehave func(w http.ResponseWriter, r *http.Request, next http.Handler)
	open      map[net.Conn]bool // connections the server has open
}

func startTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := &testRegistry{open: map[net.Conn]bool{}}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	reg.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.mu.Lock()
		m := reg.misbehave
		reg.mu.Unlock()
		if m != nil {
			m(w, r, inner)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	reg.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		reg.mu.Lock()
		defer reg.mu.Unlock()
		switch st {
		case http.StateClosed, http.StateHijacked:
			delete(reg.open, c)
		default:
			reg.open[c] = true
		}
	}
	reg.srv.Start() // httptest listens on 127.0.0.1 only
	t.Cleanup(reg.srv.Close)
	reg.host = strings.TrimPrefix(reg.srv.URL, "http://")
	return reg
}

func (reg *testRegistry) setMisbehave(m func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	reg.misbehave = m
}

func (reg *testRegistry) openConns() int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return len(reg.open)
}

// push writes img as repo:tag and returns the reference to pull.
func (reg *testRegistry) push(t *testing.T, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.NewTag(reg.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

// testImage is an image of the given layers (tar streams) and config.
func testImage(t *testing.T, cfg v1.Config, layers ...*bytes.Buffer) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, buf := range layers {
		data := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layerDigest is the digest of img's layer i.
func layerDigest(t *testing.T, img v1.Image, i int) string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[i].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// pullCtx bounds a test's pull; no test waits longer.
func pullCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func smallLayer(t *testing.T, file string) *bytes.Buffer {
	return layerTar(t, entry{name: file, body: fmt.Sprintf("content of %s\n", file)})
}
