package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// gatedStatusPlugin answers STATUS only once the file named by $GATE exists,
// and counts its STATUS calls in $GATE.calls: a plugin whose backend is slow.
const gatedStatusPlugin = `#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}' ;;
STATUS) echo x >> "%[1]s.calls"; while [ ! -e "%[1]s" ]; do sleep 0.01; done ;;
esac
`

// Once a network has a STATUS answer, a slow STATUS never holds a caller:
// the last answer is served while the refresh runs (RunPodSandbox asks for
// Status on its path; a plugin stuck for 10 s must not stall every pod).
func TestSlowStatusServesTheLastAnswer(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	p := newFakePlugin(t, map[string]string{"gated": fmt.Sprintf(gatedStatusPlugin, gate), "loopback": "#!/bin/sh\n"},
		`{"cniVersion":"1.1.0","name":"gated","plugins":[{"type":"gated"}]}`, nil)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.Status(); err != nil {
		t.Fatalf("first Status = %v, want nil", err)
	}
	// Close the gate and let the answer age: the next STATUS will hang.
	if err := os.Remove(gate); err != nil {
		t.Fatal(err)
	}
	p.statusMu.Lock()
	p.statusAt = time.Now().Add(-time.Hour)
	p.statusMu.Unlock()

	answered := make(chan error, 1)
	go func() { answered <- p.Status() }()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("Status during a refresh = %v, want the last answer (nil)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Status waited for a STATUS that hangs; it should serve the last answer")
	}
	// The refresh did start, and ends once the plugin answers.
	eventually(t, func() bool { calls, _ := os.ReadFile(gate + ".calls"); return len(calls) == 4 })
	_ = os.WriteFile(gate, nil, 0o644)
	eventually(t, func() bool {
		p.statusMu.Lock()
		defer p.statusMu.Unlock()
		return p.statusRefresh == nil && time.Since(p.statusAt) < time.Minute
	})
}

// A reload that removes the default network while Status runs must not
// crash it: Status reads the network once.
func TestStatusDuringReloadDoesNotCrash(t *testing.T) {
	p := statusPlugin(t, "1.0.0")
	good := p.defaultNet.Load()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.defaultNet.Store(nil)
			p.defaultNet.Store(good)
		}
	}()
	for i := 0; i < 20000; i++ {
		_ = p.Status()
	}
	close(stop)
	<-done
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
