package image

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// registriesConf is the part of containers' registries.conf (v2, as CRI-O
// and podman read it) that netshim uses: per registry prefix, where to pull
// from, mirrors tried first, plain HTTP or unverified TLS, or blocked.
type registriesConf struct {
	Registries []registryConf `toml:"registry"`
}

type registryConf struct {
	Prefix   string       `toml:"prefix"`
	Location string       `toml:"location"`
	Insecure bool         `toml:"insecure"`
	Blocked  bool         `toml:"blocked"`
	Mirrors  []mirrorConf `toml:"mirror"`
}

type mirrorConf struct {
	Location string `toml:"location"`
	Insecure bool   `toml:"insecure"`
}

// endpoint is one place to pull a reference from.
type endpoint struct {
	Host     string // host[:port][/path]
	Insecure bool
}

func loadRegistriesConf(path string) (*registriesConf, error) {
	conf := &registriesConf{}
	if path == "" {
		return conf, nil
	}
	md, err := toml.DecodeFile(path, conf)
	if err != nil {
		return nil, fmt.Errorf("registry config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return nil, fmt.Errorf("registry config %s: unknown keys %v", path, undecoded)
	}
	for i, r := range conf.Registries {
		if r.Prefix == "" {
			r.Prefix = r.Location
		}
		if r.Prefix == "" {
			return nil, fmt.Errorf("registry config %s: registry %d has neither prefix nor location", path, i)
		}
		conf.Registries[i] = r
	}
	return conf, nil
}

// endpoints lists where to pull ref from, in order: the mirrors of the
// registry entry whose prefix matches ref best, then its location (the
// registry itself when no entry matches).
func (c *registriesConf) endpoints(ref reference) ([]endpoint, error) {
	full := ref.Name()
	var best *registryConf
	for i := range c.Registries {
		r := &c.Registries[i]
		p := strings.TrimSuffix(r.Prefix, "/")
		if full == p || strings.HasPrefix(full, p+"/") || ref.Registry == p {
			if best == nil || len(p) > len(strings.TrimSuffix(best.Prefix, "/")) {
				best = r
			}
		}
	}
	if best == nil {
		return []endpoint{{Host: ref.Registry}}, nil
	}
	if best.Blocked {
		return nil, fmt.Errorf("registry %s is blocked by the registry config", best.Prefix)
	}
	var out []endpoint
	for _, m := range best.Mirrors {
		out = append(out, endpoint{Host: m.Location, Insecure: m.Insecure})
	}
	loc := best.Location
	if loc == "" {
		loc = ref.Registry
	}
	return append(out, endpoint{Host: loc, Insecure: best.Insecure}), nil
}

// transports holds one HTTP transport per registry host, shared by every
// pull from it: a transport per pull was never closed, and its idle
// connections (two goroutines and an fd each) stayed open for good.
type transports struct {
	certsDir string
	mu       sync.Mutex
	byHost   map[string]*sharedTransport
}

type sharedTransport struct {
	key string // what it was built from: insecure, and the CA files' names, sizes and times
	tr  *http.Transport
}

func newTransports(certsDir string) *transports {
	return &transports{certsDir: certsDir, byHost: map[string]*sharedTransport{}}
}

// get is the transport for host. A change of the host's CA files (or of
// insecure) builds a new one, so a CA added to certsDir takes effect on the
// next pull; the old one's idle connections are closed.
func (t *transports) get(host string, insecure bool) (http.RoundTripper, error) {
	files := t.caFiles(host, insecure)
	key := fmt.Sprint(insecure)
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			key += fmt.Sprintf("|%s:%d:%d", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.byHost[host]; ok && cur.key == key {
		return redirectLimit{cur.tr}, nil
	}
	tr, err := httpTransport(files, insecure)
	if err != nil {
		return nil, err
	}
	if old, ok := t.byHost[host]; ok {
		old.tr.CloseIdleConnections()
	}
	t.byHost[host] = &sharedTransport{key: key, tr: tr}
	return redirectLimit{tr}, nil
}

// caFiles are host's CA files under certsDir (<host[:port]>/*.crt, as
// CRI-O and podman read them).
func (t *transports) caFiles(host string, insecure bool) []string {
	if insecure || t.certsDir == "" {
		return nil
	}
	hostOnly, _, _ := strings.Cut(host, "/")
	files, _ := filepath.Glob(filepath.Join(t.certsDir, hostOnly, "*.crt"))
	return files
}

// closeIdle closes every idle connection (the store is closing).
func (t *transports) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range t.byHost {
		st.tr.CloseIdleConnections()
	}
}

// httpTransport is the HTTP transport for a registry host: the system roots
// plus the host's CA files, or no verification for an insecure registry.
func httpTransport(caFiles []string, insecure bool) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // asked for by the registry config
	} else if len(caFiles) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range caFiles {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read CA %s: %w", f, err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA %s holds no PEM certificate", f)
			}
		}
		tlsConf.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   8,
		// Idle connections go after a while, as with Go's default transport.
		IdleConnTimeout: 90 * time.Second,
	}, nil
}

// maxRedirects is Go's own limit, which go-containerregistry's redirect
// check (against SSRF) replaces: a registry redirecting a blob to itself
// made netshim follow it thousands of times a second, for good.
const maxRedirects = 10

// redirectLimit refuses a request that is the maxRedirects+1-th hop of a
// chain of redirects. http.Client links each redirected request to the
// response that caused it (Request.Response), so the chain's length is
// known here, below any CheckRedirect a library sets.
type redirectLimit struct{ next http.RoundTripper }

func (r redirectLimit) RoundTrip(req *http.Request) (*http.Response, error) {
	n := 0
	for resp := req.Response; resp != nil && resp.Request != nil; resp = resp.Request.Response {
		n++
	}
	if n >= maxRedirects {
		return nil, fmt.Errorf("stopped after %d redirects", n)
	}
	return r.next.RoundTrip(req)
}
