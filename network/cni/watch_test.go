package cni

import (
	"os"
	"testing"
	"time"
)

// A conf dir removed and recreated with a config is noticed within about a
// second (the missing-dir poll), not at the next 30 s resync.
func TestRecreatedConfDirIsNoticedQuickly(t *testing.T) {
	const conf = `{"cniVersion":"1.0.0","name":"fake","plugins":[{"type":"loopback"}]}`
	p := newFakePlugin(t, map[string]string{"loopback": okLoopback}, conf, nil)
	if err := p.Status(); err != nil {
		t.Fatalf("Status with a config = %v", err)
	}
	dir := p.cfg.ConfDir
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return p.Status() != nil })
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConf(t, dir, "10-fake.conflist", conf)
	// resyncWatched is 30 s: well past this bound, which the missing-dir
	// poll (resyncMissing, 1 s) meets with room on a loaded machine.
	deadline := time.Now().Add(3 * resyncMissing)
	for p.Status() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the recreated conf dir was not noticed within %v", 3*resyncMissing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
