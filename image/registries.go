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

// httpTransport is the HTTP transport for a registry host: the system roots
// plus the host's CA files under certsDir (<host[:port]>/*.crt, as CRI-O
// and podman read them), or no verification for an insecure registry.
func httpTransport(certsDir, host string, insecure bool) (http.RoundTripper, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // asked for by the registry config
	} else if certsDir != "" {
		hostOnly, _, _ := strings.Cut(host, "/")
		files, _ := filepath.Glob(filepath.Join(certsDir, hostOnly, "*.crt"))
		if len(files) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			for _, f := range files {
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
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   8,
	}, nil
}
