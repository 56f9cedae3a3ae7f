package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testSandbox(id string) *Sandbox {
	return &Sandbox{
		ID:        id,
		Spec:      Spec{Name: "web", Namespace: "default", UID: "u1", Attempt: 2, Labels: map[string]string{"app": "web"}},
		CreatedAt: time.Unix(1700000000, 0).UTC(),
		Status: Status{
			State:     StateReady,
			NetNSPath: "/run/netns/web_default_" + id[:12],
			PausePID:  4242,
			IPs:       []string{"198.18.0.5"},
		},
	}
}

const idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func TestCheckpointRoundTrip(t *testing.T) {
	c := checkpoints{dir: t.TempDir()}
	want := testSandbox(idA)
	if err := c.save(want); err != nil {
		t.Fatal(err)
	}
	got, bad := c.loadAll()
	if len(bad) != 0 || len(got) != 1 {
		t.Fatalf("loaded %d good, %v bad; want 1 good", len(got), bad)
	}
	g := got[0]
	if g.ID != want.ID || g.Spec.ReservationName() != want.Spec.ReservationName() || g.State != want.State ||
		g.NetNSPath != want.NetNSPath || g.PausePID != want.PausePID || g.IPs[0] != want.IPs[0] || !g.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", g, want)
	}
	if err := c.remove(idA); err != nil {
		t.Fatal(err)
	}
	if err := c.remove(idA); err != nil {
		t.Fatalf("second remove: %v, want nil (idempotent)", err)
	}
}

func TestCorruptCheckpointIsSetAsideAndReported(t *testing.T) {
	dir := t.TempDir()
	c := checkpoints{dir: dir}
	if err := c.save(testSandbox(idA)); err != nil {
		t.Fatal(err)
	}
	// A tampered record: valid JSON, wrong checksum.
	if err := c.save(testSandbox(idB)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(c.path(idB))
	tampered := strings.Replace(string(data), "198.18.0.5", "198.18.0.6", 1)
	if err := os.WriteFile(c.path(idB), []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	// A torn file.
	torn := filepath.Join(dir, strings.Repeat("c", 64)+".json")
	if err := os.WriteFile(torn, []byte(`{"version":1,"checks`), 0o600); err != nil {
		t.Fatal(err)
	}
	good, bad := c.loadAll()
	if len(good) != 1 || good[0].ID != idA {
		t.Fatalf("good = %d records, want only %s", len(good), idA)
	}
	if len(bad) != 2 {
		t.Fatalf("bad = %v, want 2 reported", bad)
	}
	for _, p := range []string{c.path(idB), torn} {
		if _, err := os.Stat(p + ".corrupt"); err != nil {
			t.Errorf("%s not set aside as .corrupt: %v", p, err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still in place", p)
		}
	}
}

func TestDecodeRejectsWrongVersionAndBadID(t *testing.T) {
	sb := testSandbox(idA)
	data, err := encodeCheckpoint(sb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCheckpoint([]byte(strings.Replace(string(data), `"version":1`, `"version":9`, 1))); err == nil {
		t.Error("version 9 accepted")
	}
	sb.ID = "../../etc"
	data, _ = encodeCheckpoint(sb)
	if _, err := decodeCheckpoint(data); err == nil {
		t.Error("a checkpoint with a path-like ID was accepted")
	}
}

// Whatever bytes a checkpoint file holds, decoding returns a record with a
// valid ID or an error: it never panics and never accepts a path-like ID.
func FuzzDecodeCheckpoint(f *testing.F) {
	good, _ := encodeCheckpoint(testSandbox(idA))
	f.Add(good)
	f.Add([]byte(`{"version":1,"checksum":"00","sandbox":{}}`))
	f.Add([]byte(`{"version":1`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := decodeCheckpoint(data)
		if err == nil && !isSandboxID(sb.ID) {
			t.Fatalf("accepted sandbox id %q", sb.ID)
		}
	})
}

// A checkpoint replaced by a directory (or anything else that is not a
// checkpoint file) is reported and set aside, never skipped in silence.
func TestNonFileInCheckpointDirIsReported(t *testing.T) {
	dir := t.TempDir()
	c := checkpoints{dir: dir}
	if err := c.save(testSandbox(idA)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(c.path(idB), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good, bad := c.loadAll()
	if len(good) != 1 || good[0].ID != idA {
		t.Fatalf("loaded %d good records, want only %s", len(good), idA)
	}
	if len(bad) != 2 || !strings.Contains(errors.Join(bad...).Error(), "not a regular file") {
		t.Fatalf("bad = %v, want the directory and the foreign file reported", bad)
	}
	for _, aside := range []string{c.path(idB) + ".corrupt", filepath.Join(dir, "notes.txt.corrupt")} {
		if _, err := os.Stat(aside); err != nil {
			t.Errorf("%s not set aside: %v", aside, err)
		}
	}
	// Set aside once: the next start reports nothing new.
	if _, bad := c.loadAll(); len(bad) != 0 {
		t.Fatalf("second load reported %v again", bad)
	}
}
