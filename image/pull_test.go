package image

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/netshim/netshim/pkg/errdefs"
)

// A registry that redirects a blob to itself fails the pull after Go's
// usual 10 redirects, instead of being followed for good (go-containerregistry's
// redirect check against SSRF had replaced Go's limit).
func TestRedirectLoopFailsThePull(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	img := testImage(t, v1.Config{Cmd: []string{"sh"}}, smallLayer(t, "a"))
	ref := reg.push(t, "loop/app:1", img)
	blob := "/blobs/" + layerDigest(t, img, 0)
	var hops atomic.Int64
	reg.setMisbehave(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !strings.HasSuffix(r.URL.Path, blob) {
			next.ServeHTTP(w, r)
			return
		}
		// Past 200 hops the loop ends by itself, so the test ends unfixed too.
		if hops.Add(1) > 200 {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, r.URL.String(), http.StatusTemporaryRedirect)
	})
	s := newTestStore(t, Config{})
	_, err := s.Pull(pullCtx(t), ref, nil)
	if err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("pull of a blob that redirects to itself: %v, want an error about redirects", err)
	}
	// At most maxRedirects+1 requests per attempt; go-containerregistry
	// may retry once or twice.
	if n := hops.Load(); n > 3*(maxRedirects+1) {
		t.Errorf("the registry saw %d requests of the looping blob, want at most %d", n, 3*(maxRedirects+1))
	}
}

// A registry that stalls mid-blob fails the pull once no byte came for
// the progress timeout, and the pulls that joined it with it; once the
// registry is well again, a new pull of the same reference starts afresh
// and succeeds.
func TestStalledPullFailsAndTheNextStartsFresh(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	img := testImage(t, v1.Config{Cmd: []string{"sh"}}, layerTar(t, entry{name: "big", body: noise(256 << 10)}))
	ref := reg.push(t, "stall/app:1", img)
	blob := "/blobs/" + layerDigest(t, img, 0)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	stalled := make(chan struct{}, 10)
	var stall atomic.Bool
	stall.Store(true)
	reg.setMisbehave(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if !stall.Load() || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, blob) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&stallingWriter{ResponseWriter: w, left: 64 << 10, stalled: stalled, release: release, done: r.Context().Done()}, r)
	})
	s := newTestStore(t, Config{PullProgressTimeout: 5 * time.Second})

	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(1)
	go func() { defer wg.Done(); _, errs[0] = s.Pull(pullCtx(t), ref, nil) }()
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the pull never reached the stalling blob")
	}
	wg.Add(1)
	go func() { defer wg.Done(); _, errs[1] = s.Pull(pullCtx(t), ref, nil) }() // joins the stuck one
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), "no progress") {
			t.Errorf("pull %d from a stalled registry: %v, want Unavailable, no progress", i, err)
		}
	}

	stall.Store(false)
	if _, err := s.Pull(pullCtx(t), ref, nil); err != nil {
		t.Fatalf("pull after the registry recovered: %v", err)
	}
}

// noise is n bytes that do not compress.
func noise(n int) string {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}

// stallingWriter passes left bytes, then blocks until released or the
// client goes.
type stallingWriter struct {
	http.ResponseWriter
	left    int
	stalled chan<- struct{}
	release <-chan struct{}
	done    <-chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n, _ := w.ResponseWriter.Write(p[:w.left])
		w.left -= n
		w.ResponseWriter.(http.Flusher).Flush()
		select {
		case w.stalled <- struct{}{}:
		default:
		}
		select {
		case <-w.release:
		case <-w.done:
		}
		return n, errors.New("stalled on purpose")
	}
	n, err := w.ResponseWriter.Write(p)
	w.left -= n
	return n, err
}

// Pulls share one transport per registry: the connections a pull leaves
// idle are reused or closed, not kept open by a transport per pull.
func TestPullsShareTransports(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	ref := reg.push(t, "conns/app:1", testImage(t, v1.Config{Cmd: []string{"sh"}}, smallLayer(t, "a")))
	s := newTestStore(t, Config{})
	const pulls = 20
	for range pulls {
		if _, err := s.Pull(pullCtx(t), ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A connection the client closed may still look open to the server
	// for a moment: wait (bounded) for it to settle.
	const max = 8 // the transport's idle connections per host
	deadline := time.Now().Add(30 * time.Second)
	for reg.openConns() > max && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := reg.openConns(); n > max {
		t.Errorf("%d connections open after %d pulls, want at most %d", n, pulls, max)
	}
}
