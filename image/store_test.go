package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The GC that a removal runs never takes a layer an in-flight pull has
// unpacked but not yet recorded; once the pull is done with it, an unused
// layer goes. A restart drops layers a killed pull committed.
func TestGCSparesLayersOfInFlightPulls(t *testing.T) {
	root := t.TempDir()
	s, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	chain := "sha256:" + strings.Repeat("ab", 32)
	layer := s.layerDir(chain)
	if err := os.MkdirAll(filepath.Join(layer, "diff"), 0o755); err != nil {
		t.Fatal(err)
	}
	release := s.holdChains([]string{chain})
	s.mu.Lock()
	s.gcLocked()
	s.mu.Unlock()
	if _, err := os.Stat(layer); err != nil {
		t.Fatalf("GC took the layer of an in-flight pull: %v", err)
	}
	release()

	if _, err := NewStore(Config{Root: root}); err != nil { // a restart
		t.Fatal(err)
	}
	if _, err := os.Stat(layer); !os.IsNotExist(err) {
		t.Errorf("a layer no image uses survived a restart: %v", err)
	}
}

// Records: a tag moves from one image to the next pulled under it, in
// memory and on disk; an image is found by ID, ID prefix, tag and digest;
// removing one of two tags keeps the image; the records survive a restart.
func TestImageRecordsTagsAndLookups(t *testing.T) {
	root := t.TempDir()
	s, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ref := func(r string) reference {
		t.Helper()
		p, err := parseReference(r)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	idA, idB := "sha256:"+strings.Repeat("a1", 32), "sha256:"+strings.Repeat("b2", 32)
	digest := "docker.io/library/web@sha256:" + strings.Repeat("c3", 32)
	// The config blobs go with the records: at start, a record is read with its config.
	cfg := func(id string) blob { return blob{id, []byte(`{"config":{"Cmd":["sh"]}}`)} }
	s.commit(&Image{ID: idA}, ref("web:1"), digest, cfg(idA))
	s.commit(&Image{ID: idA}, ref("web:stable"), digest, cfg(idA))
	s.commit(&Image{ID: idB}, ref("web:1"), "docker.io/library/web@sha256:"+strings.Repeat("d4", 32), cfg(idB))

	check := func(s *Store) {
		t.Helper()
		for r, want := range map[string]string{
			"web:1": idB, "web:stable": idA, idA: idA, "a1a1a1": idA, "sha256:b2b2": idB, digest: idA,
		} {
			img, err := s.Get(r)
			if err != nil || img.ID != want {
				t.Errorf("Get(%s) = %v, %v; want %s", r, img, err, want)
			}
		}
		a, _ := s.Get(idA)
		if len(a.RepoTags) != 1 || a.RepoTags[0] != "docker.io/library/web:stable" {
			t.Errorf("image A's tags %v: web:1 should have moved to B", a.RepoTags)
		}
	}
	check(s)
	s2, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	check(s2)

	// A copy handed out changes nothing in the store.
	a, _ := s2.Get(idA)
	a.RepoTags[0] = "changed"
	if again, _ := s2.Get(idA); again.RepoTags[0] == "changed" {
		t.Fatal("a returned image shares its tags with the store")
	}
	if err := s2.Remove("web:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(idB); err == nil {
		t.Error("image B, named by its last tag, was not removed")
	}
	if img, err := s2.Get("a1a"); err != nil || img.ID != idA {
		t.Errorf("image A after B's removal: %v, %v", img, err)
	}
}

// A node upgraded from a netshim whose leases were bare JSON files named
// after the container keeps them: the layers they hold survive the start's
// GC, and the lease is rewritten as a checkpoint.
func TestOldLeasesUpgradeAndKeepTheirLayers(t *testing.T) {
	root := t.TempDir()
	container := strings.Repeat("c0", 32)
	chain := "sha256:" + strings.Repeat("ab", 32)
	leases := filepath.Join(root, "images", "leases")
	layer := filepath.Join(root, "images", "layers", strings.Repeat("ab", 32), "diff")
	for _, d := range []string{leases, layer} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := `{"imageID":"sha256:` + strings.Repeat("d1", 32) + `","chains":["` + chain + `"]}`
	if err := os.WriteFile(filepath.Join(leases, container), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(layer); err != nil {
		t.Fatalf("the start's GC took a layer an old lease holds: %v", err)
	}
	if got := s.Leases(); len(got) != 1 || got[0] != container {
		t.Fatalf("leases %v, want the old one's container", got)
	}
	if _, err := os.Stat(filepath.Join(leases, container)); !os.IsNotExist(err) {
		t.Errorf("the old lease file is still there: %v", err)
	}
	l, err := s.leaseRecords.Load(container)
	if err != nil || len(l.Chains) != 1 || l.Chains[0] != chain {
		t.Fatalf("the lease as a checkpoint: %+v, %v", l, err)
	}
	// And it holds across the next start.
	s2, err := NewStore(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Leases(); len(got) != 1 {
		t.Fatalf("leases after a second start: %v", got)
	}
	if _, err := os.Stat(layer); err != nil {
		t.Fatalf("layer gone after a second start: %v", err)
	}
}
