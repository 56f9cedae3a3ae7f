package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/netshim/netshim/test/registry"
)

// BenchRegistry is a loopback registry holding the benchmark's images: the
// busybox image containers run, and a 3-layer image of 48 MiB of
// incompressible bytes (the same bytes every run) that pulls are timed with.
type BenchRegistry struct {
	reg               *registry.Registry
	dir               string
	Busybox, BigImage string
	Addr              string // host:port on loopback
}

// StartRegistry starts the registry and pushes both images.
func StartRegistry() (*BenchRegistry, error) {
	dir, err := os.MkdirTemp("", "netshim-bench-registry-")
	if err != nil {
		return nil, err
	}
	reg, err := registry.Start(dir, registry.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b := &BenchRegistry{reg: reg, dir: dir}
	fail := func(err error) (*BenchRegistry, error) { b.Stop(); return nil, err }
	bb, err := registry.Busybox()
	if err != nil {
		return fail(err)
	}
	if _, err := reg.Push("bench/busybox", "1", bb); err != nil {
		return fail(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var layers []v1.Layer
	for i := range 3 {
		body := make([]byte, 16<<20)
		for j := 0; j < len(body); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				body[j+k] = byte(v >> (8 * k))
			}
		}
		l, err := registry.Layer([]registry.File{{Name: fmt.Sprintf("data-%d", i), Body: body}})
		if err != nil {
			return fail(err)
		}
		layers = append(layers, l)
	}
	big, err := registry.Image(v1.Config{Cmd: []string{"/data-0"}}, layers...)
	if err != nil {
		return fail(err)
	}
	if _, err := reg.Push("bench/big", "1", big); err != nil {
		return fail(err)
	}
	b.Busybox, b.BigImage, b.Addr = reg.Addr+"/bench/busybox:1", reg.Addr+"/bench/big:1", reg.Addr
	return b, nil
}

// Stop stops the registry by its PID and removes its storage.
func (b *BenchRegistry) Stop() {
	b.reg.Stop()
	_ = os.RemoveAll(b.dir)
}

// ContainerdHosts tells a containerd (1.5 or later, its CRI registry
// config_path set to dir) to pull from the registry at addr over plain
// HTTP: it writes dir/<addr>/hosts.toml, which containerd reads at each
// pull. The returned func removes it.
func ContainerdHosts(dir, addr string) (func(), error) {
	hostDir := filepath.Join(dir, addr)
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		return nil, fmt.Errorf("containerd hosts dir for %s: %w", addr, err)
	}
	conf := fmt.Sprintf("server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", addr)
	if err := os.WriteFile(filepath.Join(hostDir, "hosts.toml"), []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("containerd hosts.toml for %s: %w", addr, err)
	}
	return func() { _ = os.RemoveAll(hostDir) }, nil
}
