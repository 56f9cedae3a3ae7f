package cni

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeStatusPlugin is a CNI plugin that answers VERSION and fails STATUS
// with a CNI error, as a plugin whose backend is down would.
const fakeStatusPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
STATUS) echo '{"cniVersion":"1.1.0","code":50,"msg":"backend unreachable"}'; exit 1 ;;
esac
`

func statusPlugin(t *testing.T, cniVersion string) *Plugin {
	t.Helper()
	bin := t.TempDir()
	for name, body := range map[string]string{"fakestatus": fakeStatusPlugin, "loopback": "#!/bin/sh\n"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := t.TempDir()
	writeConf(t, conf, "10-fake.conflist", `{"cniVersion":"`+cniVersion+`","name":"fake","plugins":[{"type":"fakestatus"}]}`)
	p, err := New(Config{ConfDir: conf, BinDirs: []string{bin}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(nil, "none", "", 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestStatusFollowsCNIStatusFor11Configs(t *testing.T) {
	err := statusPlugin(t, "1.1.0").Status()
	if err == nil || !strings.Contains(err.Error(), "backend unreachable") || !strings.Contains(err.Error(), `network "fake"`) {
		t.Fatalf("Status = %v, want the plugin's STATUS error naming the network", err)
	}
}

func TestStatusIsNotAskedOfOlderConfigs(t *testing.T) {
	if err := statusPlugin(t, "1.0.0").Status(); err != nil {
		t.Fatalf("Status of a 1.0.0 config = %v, want nil: STATUS is a 1.1 verb", err)
	}
}
