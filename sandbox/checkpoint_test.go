package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oldCheckpoint is a READY sandbox's checkpoint byte for byte as netshim
// wrote it before pkg/checkpoint was the one format (the record under
// "sandbox" in the envelope).
const oldCheckpoint = `{"version":1,"checksum":"d74b6e0b81a52f4e54f9fe8552dc1fbddff642e7c8bc590cdad7df0ded99772f","sandbox":{"id":"5f0c3b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a","spec":{"name":"web","namespace":"default","uid":"0b6c1e5e-2d9f-4c1a-9e7b-3f2a1d0c9b8e","attempt":1,"labels":{"app":"web"},"annotations":{"kubernetes.io/config.source":"api"},"hostname":"web","dns":{"servers":["198.18.0.10"],"searches":["default.svc.cluster.local"],"options":["ndots:5"]},"cgroupParent":"/kubepods/besteffort/pod0b6c1e5e","config":"CgN3ZWI="},"createdAt":"2025-12-05T16:00:00.123456789Z","state":"ready","netnsPath":"/var/run/netns/web_default_5f0c3b2a9d8e","pausePID":4242,"pauseStartTime":987654,"networkAttached":true,"ips":["198.18.0.5"]}}`

const oldID = "5f0c3b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"

// A node's state dir written by the old netshim upgrades without losing the
// pod: the sandbox is recovered whole (its DEL still owed, its pin known),
// and its next write is in the one format.
func TestOldNodeStateDirUpgrades(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(checkpointsDir(h.cfg.RootDir), oldID+".json"), []byte(oldCheckpoint), 0o600); err != nil {
		t.Fatal(err)
	}
	m := h.restart(t)
	interrupted, err := m.Recover()
	if err != nil || len(interrupted) != 0 {
		t.Fatalf("Recover: %v, interrupted %v", err, interrupted)
	}
	sb, err := m.Get(oldID)
	if err != nil {
		t.Fatalf("the old node's sandbox was lost: %v", err)
	}
	if sb.Spec.ReservationName() != "web_default_0b6c1e5e-2d9f-4c1a-9e7b-3f2a1d0c9b8e_1" || sb.Spec.DNS == nil ||
		sb.Spec.DNS.Servers[0] != "198.18.0.10" || string(sb.Spec.Config) != "\x0a\x03web" ||
		sb.Spec.CgroupParent != "/kubepods/besteffort/pod0b6c1e5e" || sb.CreatedAt.UnixNano() != 1764950400123456789 {
		t.Fatalf("spec not recovered whole: %+v", sb.Spec)
	}
	if !sb.NetworkAttached || sb.NetNSPath != "/var/run/netns/web_default_5f0c3b2a9d8e" || len(sb.IPs) != 1 || sb.IPs[0] != "198.18.0.5" {
		t.Fatalf("status not recovered whole: %+v", sb.Status)
	}
	// Its pause (PID 4242 with that start time) is not running here: it
	// is NOTREADY, which is the write that upgrades the file.
	if sb.State != StateNotReady {
		t.Fatalf("state %s, want notready: its pause is gone", sb.State)
	}
	data, err := os.ReadFile(m.checkpoints.Path(oldID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"record":`) {
		t.Fatalf("checkpoint still in the old format: %s", data)
	}
	again, err := h.restart(t).Recover()
	if err != nil || len(again) != 0 {
		t.Fatalf("after the upgrade: %v, %v", err, again)
	}
}
