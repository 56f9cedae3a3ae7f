package e2e

import (
	"os"
	"sync"
	"testing"

	"github.com/netshim/netshim/test/registry"
)

// The suite's registry: one docker-registry on a loopback port for every
// test, filled with images built here from Debian's busybox-static.
var (
	regOnce sync.Once
	reg     *registry.Registry
	regDir  string
	regErr  error
	busybox string // the busybox image's reference in reg
)

// testRegistry starts the suite's registry on first use and pushes the
// busybox image to it.
func testRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	regOnce.Do(func() {
		regDir, regErr = os.MkdirTemp("", "netshim-e2e-registry-")
		if regErr != nil {
			return
		}
		if reg, regErr = registry.Start(regDir, registry.Options{}); regErr != nil {
			return
		}
		img, err := registry.Busybox()
		if err != nil {
			regErr = err
			return
		}
		if _, regErr = reg.Push("e2e/busybox", "1", img); regErr != nil {
			return
		}
		busybox = reg.Addr + "/e2e/busybox:1"
	})
	if regErr != nil {
		t.Fatalf("test registry: %v", regErr)
	}
	return reg
}

// busyboxImage is the reference of the suite's busybox image.
func busyboxImage(t *testing.T) string {
	testRegistry(t)
	return busybox
}

func stopTestRegistry() {
	if reg != nil {
		reg.Stop()
	}
	if regDir != "" {
		_ = os.RemoveAll(regDir)
	}
}
