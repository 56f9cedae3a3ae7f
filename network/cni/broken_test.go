package cni

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netshim/netshim/network"
)

// nsHost answers every sandbox with the test process's own netns path; the
// fake plugins below never enter it.
type nsHost struct{}

func (nsHost) GetNetNS(string) (string, error) { return "/proc/self/ns/net", nil }

const okLoopback = `#!/bin/sh
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[]}'
exit 0
`

// newFakePlugin is a cni plugin over fake plugin binaries (name → script)
// and one network config, initialised with host.
func newFakePlugin(t *testing.T, scripts map[string]string, conflist string, host network.Host) *Plugin {
	t.Helper()
	bin := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := t.TempDir()
	writeConf(t, conf, "10-fake.conflist", conflist)
	// lo by the fake loopback plugin: in-process it would enter the netns,
	// which needs root, and these tests are about the default network.
	p, err := New(Config{ConfDir: conf, BinDirs: []string{bin}, CacheDir: t.TempDir(), LoopbackPlugin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(host, network.HairpinNone, "", 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func brokenPlugin(t *testing.T, script string) *Plugin {
	return newFakePlugin(t, map[string]string{"broken": script, "loopback": okLoopback},
		`{"cniVersion":"1.0.0","name":"broken","plugins":[{"type":"broken"}]}`, nsHost{})
}

var brokenPod = network.Pod{Namespace: "ns", Name: "p", UID: "u", SandboxID: strings.Repeat("a", 64)}

// A plugin that hangs is ended at the deadline, for ADD and for the undo's DEL.
func TestHangingPluginIsBoundedByTheDeadline(t *testing.T) {
	p := brokenPlugin(t, "#!/bin/sh\nexec sleep 60\n")
	for name, op := range map[string]func(context.Context) error{
		"ADD": func(ctx context.Context) error { _, err := p.SetUpPod(ctx, brokenPod); return err },
		"DEL": func(ctx context.Context) error { return p.TearDownPod(ctx, brokenPod) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := op(ctx)
		cancel()
		if err == nil {
			t.Fatalf("%s with a hanging plugin succeeded", name)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s returned after %v: the deadline did not bound it", name, d)
		}
		if !strings.Contains(err.Error(), `"broken"`) {
			t.Errorf("%s error %q does not name the plugin", name, err)
		}
	}
}

// A plugin that prints garbage fails the ADD with an error naming it.
func TestGarbagePluginOutputIsAnError(t *testing.T) {
	p := brokenPlugin(t, "#!/bin/sh\necho 'this is not JSON'\nexit 0\n")
	_, err := p.SetUpPod(context.Background(), brokenPod)
	if err == nil || !strings.Contains(err.Error(), `"broken"`) {
		t.Fatalf("SetUpPod with garbage output: %v, want an error naming the plugin", err)
	}
}
