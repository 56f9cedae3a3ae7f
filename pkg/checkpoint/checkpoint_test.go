package checkpoint

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type record struct {
	ID    string   `json:"id"`
	State string   `json:"state"`
	IPs   []string `json:"ips,omitempty"`
}

func isID(id string) bool {
	_, err := hex.DecodeString(id)
	return len(id) == 64 && err == nil
}

func newStore(dir string) Store[record] {
	return Store[record]{Dir: dir, Kind: "thing", ID: func(r *record) string { return r.ID }, Valid: isID}
}

const idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func testRecord(id string) *record {
	return &record{ID: id, State: "ready", IPs: []string{"198.18.0.5"}}
}

// Every write mode writes the same file, and it reads back as written.
func TestRoundTripInEveryWriteMode(t *testing.T) {
	for name, save := range map[string]func(Store[record], *record) error{
		"durable":     Store[record].Save,
		"unsynced":    Store[record].SaveUnsynced,
		"making room": Store[record].SaveMakingRoom,
	} {
		s := newStore(t.TempDir())
		want := testRecord(idA)
		if err := save(s, want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, bad := s.LoadAll()
		if len(bad) != 0 || len(got) != 1 || got[0].ID != idA || got[0].State != "ready" || got[0].IPs[0] != "198.18.0.5" {
			t.Fatalf("%s: loaded %+v, bad %v", name, got, bad)
		}
		if err := s.Remove(idA); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(idA); err != nil {
			t.Fatalf("%s: second remove: %v, want nil (idempotent)", name, err)
		}
	}
}

func TestCorruptCheckpointIsSetAsideAndReported(t *testing.T) {
	dir := t.TempDir()
	s := newStore(dir)
	if err := s.Save(testRecord(idA)); err != nil {
		t.Fatal(err)
	}
	// A tampered record: valid JSON, wrong checksum.
	if err := s.Save(testRecord(idB)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(s.Path(idB))
	tampered := strings.Replace(string(data), "198.18.0.5", "198.18.0.6", 1)
	if err := os.WriteFile(s.Path(idB), []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	// A torn file.
	torn := filepath.Join(dir, strings.Repeat("c", 64)+".json")
	if err := os.WriteFile(torn, []byte(`{"version":1,"checks`), 0o600); err != nil {
		t.Fatal(err)
	}
	good, bad := s.LoadAll()
	if len(good) != 1 || good[0].ID != idA {
		t.Fatalf("good = %d records, want only %s", len(good), idA)
	}
	if len(bad) != 2 {
		t.Fatalf("bad = %v, want 2 reported", bad)
	}
	for _, p := range []string{s.Path(idB), torn} {
		if _, err := os.Stat(p + CorruptSuffix); err != nil {
			t.Errorf("%s not set aside as .corrupt: %v", p, err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still in place", p)
		}
	}
}

func TestDecodeRejectsWrongVersionBadIDAndNoRecord(t *testing.T) {
	s := newStore("")
	r := testRecord(idA)
	data, err := s.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decode([]byte(strings.Replace(string(data), `"version":1`, `"version":9`, 1))); err == nil {
		t.Error("version 9 accepted")
	}
	r.ID = "../../etc"
	data, _ = s.Encode(r)
	if _, err := s.Decode(data); err == nil {
		t.Error("a checkpoint with a path-like ID was accepted")
	}
	if _, err := s.Decode([]byte(`{"version":1,"checksum":""}`)); err == nil {
		t.Error("an envelope without a record was accepted")
	}
}

// A file whose name is another record's is not that record.
func TestCheckpointUnderAnotherNameIsSetAside(t *testing.T) {
	s := newStore(t.TempDir())
	data, _ := s.Encode(testRecord(idA))
	if err := os.WriteFile(s.Path(idB), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if good, bad := s.LoadAll(); len(good) != 0 || len(bad) != 1 || !strings.Contains(bad[0].Error(), "holds thing "+idA) {
		t.Fatalf("good %v, bad %v; want it reported as holding %s", good, bad, idA)
	}
}

// Whatever bytes a checkpoint file holds, decoding returns a record with a
// valid ID or an error: it never panics and never accepts a path-like ID,
// in the one format or the legacy one.
func FuzzDecode(f *testing.F) {
	s := newStore("")
	s.Legacy = "sandbox"
	good, _ := s.Encode(testRecord(idA))
	f.Add(good)
	f.Add([]byte(oldEnvelope))
	f.Add([]byte(`{"version":1,"checksum":"00","sandbox":{}}`))
	f.Add([]byte(`{"version":1,"checksum":"00","record":null}`))
	f.Add([]byte(`{"version":1`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := s.Decode(data)
		if err == nil && !isID(r.ID) {
			t.Fatalf("accepted id %q", r.ID)
		}
	})
}

// A checkpoint replaced by a directory (or anything else that is not a
// checkpoint file) is reported and set aside, never skipped in silence.
func TestNonFileInCheckpointDirIsReported(t *testing.T) {
	dir := t.TempDir()
	s := newStore(dir)
	if err := s.Save(testRecord(idA)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Path(idB), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	good, bad := s.LoadAll()
	if len(good) != 1 || good[0].ID != idA {
		t.Fatalf("loaded %d good records, want only %s", len(good), idA)
	}
	if len(bad) != 2 || !strings.Contains(errors.Join(bad...).Error(), "not a regular file") {
		t.Fatalf("bad = %v, want the directory and the foreign file reported", bad)
	}
	for _, aside := range []string{s.Path(idB) + CorruptSuffix, filepath.Join(dir, "notes.txt"+CorruptSuffix)} {
		if _, err := os.Stat(aside); err != nil {
			t.Errorf("%s not set aside: %v", aside, err)
		}
	}
	// Set aside once: the next start reports nothing new.
	if _, bad := s.LoadAll(); len(bad) != 0 {
		t.Fatalf("second load reported %v again", bad)
	}
}

// A link in the dir, even to a valid checkpoint, is never followed: it is
// set aside, and its target left alone.
func TestSymlinkIsNotFollowed(t *testing.T) {
	elsewhere := newStore(t.TempDir())
	if err := elsewhere.Save(testRecord(idB)); err != nil {
		t.Fatal(err)
	}
	s := newStore(t.TempDir())
	if err := os.Symlink(elsewhere.Path(idB), s.Path(idB)); err != nil {
		t.Fatal(err)
	}
	good, bad := s.LoadAll()
	if len(good) != 0 || len(bad) != 1 {
		t.Fatalf("loaded %v through a link (bad %v)", good, bad)
	}
	if _, err := os.Stat(elsewhere.Path(idB)); err != nil {
		t.Fatalf("the link's target was touched: %v", err)
	}
	if fi, err := os.Lstat(s.Path(idB) + CorruptSuffix); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was not set aside: %v", err)
	}
}

// oldEnvelope is a sandbox checkpoint byte for byte as netshim wrote it
// before pkg/checkpoint was the one format: the record under "sandbox".
const oldEnvelope = `{"version":1,"checksum":"d74b6e0b81a52f4e54f9fe8552dc1fbddff642e7c8bc590cdad7df0ded99772f","sandbox":{"id":"5f0c3b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a","spec":{"name":"web","namespace":"default","uid":"0b6c1e5e-2d9f-4c1a-9e7b-3f2a1d0c9b8e","attempt":1,"labels":{"app":"web"},"annotations":{"kubernetes.io/config.source":"api"},"hostname":"web","dns":{"servers":["198.18.0.10"],"searches":["default.svc.cluster.local"],"options":["ndots:5"]},"cgroupParent":"/kubepods/besteffort/pod0b6c1e5e","config":"CgN3ZWI="},"createdAt":"2025-12-05T16:00:00.123456789Z","state":"ready","netnsPath":"/var/run/netns/web_default_5f0c3b2a9d8e","pausePID":4242,"pauseStartTime":987654,"networkAttached":true,"ips":["198.18.0.5"]}}`

const oldID = "5f0c3b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"

// A store with Legacy reads the old envelope (checksum and all) and writes
// the one format; a store without it sets the old file aside.
func TestLegacyEnvelopeIsReadAndRewritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, oldID+".json"), []byte(oldEnvelope), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newStore(dir)
	s.Legacy = "sandbox"
	good, bad := s.LoadAll()
	if len(bad) != 0 || len(good) != 1 || good[0].ID != oldID || good[0].State != "ready" || good[0].IPs[0] != "198.18.0.5" {
		t.Fatalf("old envelope: loaded %+v, bad %v", good, bad)
	}
	if err := s.Save(good[0]); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(s.Path(oldID))
	if !strings.Contains(string(data), `"record":`) || strings.Contains(string(data), `"sandbox":`) {
		t.Fatalf("rewritten as %s, want the one format", data)
	}
	if _, err := newStore(dir).Decode(data); err != nil {
		t.Fatalf("the rewritten file is not in the one format: %v", err)
	}
	if _, err := newStore(dir).Decode([]byte(oldEnvelope)); err == nil {
		t.Fatal("a store without Legacy read the old envelope")
	}
	// Tampered, the old envelope is refused like any other.
	if _, err := s.Decode([]byte(strings.Replace(oldEnvelope, "198.18.0.5", "198.18.0.6", 1))); err == nil {
		t.Fatal("a tampered old envelope was accepted")
	}
}

// Load reads one record with the same checks as LoadAll; a missing one is
// fs.ErrNotExist, and SetAside moves a bad one out of the way.
func TestLoadOne(t *testing.T) {
	s := newStore(t.TempDir())
	if _, err := s.Load(idA); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing record: %v, want ErrNotExist", err)
	}
	if err := s.SaveUnsynced(testRecord(idA)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Load(idA); err != nil || r.ID != idA {
		t.Fatalf("Load = %+v, %v", r, err)
	}
	data, _ := s.Encode(testRecord(idA))
	if err := os.WriteFile(s.Path(idB), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(idB); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a file holding another record: %v", err)
	}
	if err := os.Remove(s.Path(idA)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(s.Path(idB), s.Path(idA)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(idA); err == nil {
		t.Fatal("Load followed a link")
	}
	if err := s.SetAside(idB); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path(idB) + CorruptSuffix); err != nil {
		t.Fatalf("not set aside: %v", err)
	}
	if err := s.SetAside(idB); err != nil {
		t.Fatalf("setting aside what is gone: %v", err)
	}
}
