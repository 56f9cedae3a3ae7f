package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultPullProgressTimeout is containerd's image_pull_progress_timeout.
const DefaultPullProgressTimeout = 5 * time.Minute

// Caps on what a pull reads into memory (and keeps in the store). Real
// images' manifests are kilobytes and their configs well under a megabyte;
// containerd refuses manifests over 4 MiB too.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
)

// errStalled is the cause of a pull's cancellation when no bytes came for
// its progress timeout.
var errStalled = errors.New("no progress")

// progress watches one pull from one endpoint: every byte read from the
// registry, and every request sent, counts. When nothing counts for the
// timeout, the pull's context is cancelled with errStalled, so a registry
// that stalls mid-blob fails the pull instead of pinning it (and every
// later pull of the same reference, which joins it) for good.
type progress struct {
	start   time.Time    // its monotonic clock, which wall-clock steps do not move
	last    atomic.Int64 // the last progress, in nanoseconds since start
	waiting atomic.Int32 // waits on another pull's download of a shared layer
}

func (p *progress) touch() { p.last.Store(int64(time.Since(p.start))) }

// watch returns a context cancelled with errStalled once there has been no
// progress for timeout (never when timeout is 0), and its cancel func.
// A wait on another pull's download of a shared layer counts as progress:
// that pull's own watch fails it, and this one with it, when it stalls.
func watchProgress(ctx context.Context, timeout time.Duration) (context.Context, *progress, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	p := &progress{start: time.Now()}
	p.touch()
	if timeout <= 0 {
		return ctx, p, func() { cancel(nil) }
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p.waiting.Load() > 0 {
				p.touch()
			}
			idle := time.Since(p.start) - time.Duration(p.last.Load())
			if idle >= timeout {
				cancel(fmt.Errorf("%w for %s", errStalled, timeout))
				return
			}
			t.Reset(timeout - idle)
		}
	}()
	return ctx, p, func() { close(done); cancel(nil) }
}

// pullTransport is one pull's view of a registry's shared transport: it
// records progress, and caps what a manifest may send.
type pullTransport struct {
	next http.RoundTripper
	p    *progress
}

func (t pullTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.p.touch()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.p.touch()
	limit := int64(-1)
	if strings.Contains(req.URL.Path, "/manifests/") {
		limit = maxManifestSize
		if resp.ContentLength > limit {
			resp.Body.Close()
			return nil, fmt.Errorf("manifest %s is %d bytes, over netshim's limit of %d", req.URL.Path, resp.ContentLength, limit)
		}
	}
	resp.Body = &progressBody{rc: resp.Body, p: t.p, left: limit, path: req.URL.Path}
	return resp, nil
}

type progressBody struct {
	rc   io.ReadCloser
	p    *progress
	left int64 // bytes it may still read; -1 for no limit
	path string
}

func (b *progressBody) Read(buf []byte) (int, error) {
	if b.left == 0 {
		// One byte more than the limit tells a body at the limit from one over it.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("manifest %s is over netshim's limit of %d bytes", b.path, maxManifestSize)
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return 0, err
	}
	if b.left > 0 && int64(len(buf)) > b.left {
		buf = buf[:b.left]
	}
	n, err := b.rc.Read(buf)
	if n > 0 {
		b.p.touch()
		if b.left > 0 {
			b.left -= int64(n)
		}
	}
	return n, err
}

func (b *progressBody) Close() error { return b.rc.Close() }
