package cni

import (
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
	return newFakePlugin(t, map[string]string{"fakestatus": fakeStatusPlugin, "loopback": "#!/bin/sh\n"},
		`{"cniVersion":"`+cniVersion+`","name":"fake","plugins":[{"type":"fakestatus"}]}`, nil)
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
