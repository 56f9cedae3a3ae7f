package cni

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/netshim/netshim/network"
)

// loggingPlugin logs "COMMAND name CONTAINERID" to log; its ADD fails when failAdd.
func loggingPlugin(name, log string, failAdd bool) string {
	add := "exit 0"
	if failAdd {
		add = `echo '{"cniVersion":"1.0.0","code":11,"msg":"no address for you"}'; exit 1`
	}
	return fmt.Sprintf("#!/bin/sh\necho \"$CNI_COMMAND %s $CNI_CONTAINERID\" >> %q\n[ \"$CNI_COMMAND\" = ADD ] && { %s; }\nexit 0\n", name, log, add)
}

// failSetUp runs an ADD that must fail.
func failSetUp(t *testing.T, p *Plugin, pod network.Pod) {
	t.Helper()
	if _, err := p.SetUpPod(context.Background(), pod); err == nil {
		t.Fatal("SetUpPod succeeded with a failing plugin")
	}
}

// switchNetwork makes the default network `name`, one plugin of type pluginType,
// as a conf dir change would.
func switchNetwork(t *testing.T, p *Plugin, name, pluginType string) {
	t.Helper()
	list, err := libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"1.0.0","name":"` + name + `","plugins":[{"type":"` + pluginType + `"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p.SetNetwork(&Network{File: name + ".conflist", List: list})
}

func logLines(t *testing.T, log string) string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(data)
}

// A pod whose ADD failed is deleted with the network it was added to, even
// after the conf dir moved on to another: its IP lives in that network.
func TestDeleteAfterAFailedAddUsesTheConfigItRanWith(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls")
	p := newFakePlugin(t, map[string]string{
		"oldnet": loggingPlugin("oldnet", log, true), "newnet": loggingPlugin("newnet", log, false), "loopback": okLoopback,
	}, `{"cniVersion":"1.0.0","name":"old","plugins":[{"type":"oldnet"}]}`, nsHost{})

	failSetUp(t, p, brokenPod)
	switchNetwork(t, p, "new", "newnet")

	if err := p.TearDownPod(context.Background(), brokenPod); err != nil {
		t.Fatalf("TearDownPod: %v", err)
	}
	calls := logLines(t, log)
	if !strings.Contains(calls, "DEL oldnet "+brokenPod.SandboxID) {
		t.Errorf("no DEL of the network the ADD ran with; calls:\n%s", calls)
	}
	if strings.Contains(calls, "newnet") {
		t.Errorf("the new network was called for a pod never added to it; calls:\n%s", calls)
	}
	if ids := p.pending.sandboxIDs(); len(ids) != 0 {
		t.Errorf("the record outlived a successful DEL: %v", ids)
	}
}

// An ADD record whose sandbox is gone gets its DEL at GC, with the recorded
// config and arguments; a valid sandbox's record is left alone.
func TestGCDeletesRecordedAddsOfGoneSandboxes(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls")
	p := newFakePlugin(t, map[string]string{"oldnet": loggingPlugin("oldnet", log, true), "loopback": okLoopback},
		`{"cniVersion":"1.0.0","name":"old","plugins":[{"type":"oldnet"}]}`, nsHost{})
	gone, kept := brokenPod, brokenPod
	kept.SandboxID = strings.Repeat("b", 64)
	for _, pod := range []network.Pod{gone, kept} {
		failSetUp(t, p, pod)
	}
	if err := p.GC(context.Background(), []string{kept.SandboxID}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	calls := logLines(t, log)
	if !strings.Contains(calls, "DEL oldnet "+gone.SandboxID) {
		t.Errorf("GC sent no DEL for the gone sandbox; calls:\n%s", calls)
	}
	if strings.Contains(calls, "DEL oldnet "+kept.SandboxID) {
		t.Errorf("GC deleted a valid sandbox's network; calls:\n%s", calls)
	}
	if ids := p.pending.sandboxIDs(); len(ids) != 1 || ids[0] != kept.SandboxID {
		t.Errorf("records after GC: %v, want only the valid sandbox's", ids)
	}
}

// An unreadable record is set aside and the teardown goes on.
func TestUnreadableAddRecordDoesNotBlockTeardown(t *testing.T) {
	p := brokenPlugin(t, "#!/bin/sh\nexit 0\n")
	path := p.pending.path(brokenPod.SandboxID)
	if err := os.WriteFile(path, []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.TearDownPod(context.Background(), brokenPod); err != nil {
		t.Fatalf("TearDownPod with an unreadable record: %v", err)
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Errorf("the unreadable record was not set aside: %v", err)
	}
}

// When the recorded config cannot DEL either, a fix of the same network in
// the conf dir is used; another network is not: the DEL stays owed.
func TestFailingRecordedDeleteFallsBackOnlyToTheSameNetworkFixed(t *testing.T) {
	failing := "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"broken both ways\"}'\nexit 1\n"
	for _, tc := range []struct {
		fixedName string
		wantOK    bool
	}{{"old", true}, {"other", false}} {
		log := filepath.Join(t.TempDir(), "calls")
		p := newFakePlugin(t, map[string]string{"oldnet": failing, "fixed": loggingPlugin("fixed", log, false), "loopback": okLoopback},
			`{"cniVersion":"1.0.0","name":"old","plugins":[{"type":"oldnet"}]}`, nsHost{})
		failSetUp(t, p, brokenPod)
		switchNetwork(t, p, tc.fixedName, "fixed")
		err := p.TearDownPod(context.Background(), brokenPod)
		if tc.wantOK && (err != nil || !strings.Contains(logLines(t, log), "DEL fixed")) {
			t.Errorf("network %q: TearDownPod = %v, calls %q; want the fixed config's DEL to succeed", tc.fixedName, err, logLines(t, log))
		}
		if !tc.wantOK && (err == nil || strings.Contains(logLines(t, log), "fixed")) {
			t.Errorf("network %q: TearDownPod = %v, calls %q; want the owed DEL to fail and no other network called", tc.fixedName, err, logLines(t, log))
		}
		if got := len(p.pending.sandboxIDs()); got != map[bool]int{true: 0, false: 1}[tc.wantOK] {
			t.Errorf("network %q: %d records left", tc.fixedName, got)
		}
	}
}

// Once an ADD succeeded, libcni's cache holds what the record held: no
// record is kept for a running pod.
func TestSucceededAddKeepsNoRecord(t *testing.T) {
	p := newFakePlugin(t, map[string]string{"good": okLoopback, "loopback": okLoopback},
		`{"cniVersion":"1.0.0","name":"good","plugins":[{"type":"good"}]}`, nsHost{})
	if _, err := p.SetUpPod(context.Background(), brokenPod); err != nil {
		t.Fatalf("SetUpPod: %v", err)
	}
	if ids := p.pending.sandboxIDs(); len(ids) != 0 {
		t.Errorf("records after a successful ADD: %v", ids)
	}
}

// A record as netshim wrote it before the records were checkpoints (the
// bare JSON, no envelope) still gets its DEL with the config it holds, so
// an upgrade does not strand the DEL of a failed ADD.
func TestLegacyAddRecordStillDeletes(t *testing.T) {
	log := filepath.Join(t.TempDir(), "calls")
	p := newFakePlugin(t, map[string]string{
		"oldnet": loggingPlugin("oldnet", log, true), "newnet": loggingPlugin("newnet", log, false), "loopback": okLoopback,
	}, `{"cniVersion":"1.0.0","name":"old","plugins":[{"type":"oldnet"}]}`, nsHost{})
	failSetUp(t, p, brokenPod)
	rec, _, err := p.pending.load(brokenPod.SandboxID)
	if err != nil || rec == nil {
		t.Fatalf("the failed ADD's record: %v, %v", rec, err)
	}
	legacy := fmt.Sprintf(`{"network":%q,"config":%q,"args":[["IgnoreUnknown","1"]]}`,
		rec.Network, base64.StdEncoding.EncodeToString(rec.Config))
	if err := os.WriteFile(p.pending.path(brokenPod.SandboxID), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	switchNetwork(t, p, "new", "newnet")
	if err := p.TearDownPod(context.Background(), brokenPod); err != nil {
		t.Fatalf("TearDownPod: %v", err)
	}
	if calls := logLines(t, log); !strings.Contains(calls, "DEL oldnet "+brokenPod.SandboxID) || strings.Contains(calls, "newnet") {
		t.Errorf("the legacy record's DEL did not use its config; calls:\n%s", calls)
	}
	if ids := p.pending.sandboxIDs(); len(ids) != 0 {
		t.Errorf("the legacy record outlived its DEL: %v", ids)
	}
}
