package image

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/netshim/netshim/pkg/errdefs"
)

// An image whose config or manifest is larger than any real one is refused
// before it is read into memory, and leaves nothing in the store (a 150 MiB
// config took netshim to 2.9 GB).
func TestOversizedConfigAndManifestAreRefused(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	bigConfig := reg.push(t, "big/config:1", testImage(t,
		v1.Config{Cmd: []string{"sh"}, Labels: map[string]string{"pad": strings.Repeat("a", maxConfigSize)}}, smallLayer(t, "a")))
	withAnnotations := mutate.Annotations(testImage(t, v1.Config{Cmd: []string{"sh"}}, smallLayer(t, "b")),
		map[string]string{"pad": strings.Repeat("m", maxManifestSize)}).(v1.Image)
	bigManifest := reg.push(t, "big/manifest:1", withAnnotations)

	s := newTestStore(t, Config{})
	_, err := s.Pull(pullCtx(t), bigConfig, nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("pull of an image with a config over the limit: %v, want InvalidArgument naming the limit", err)
	}
	if _, err := s.Pull(pullCtx(t), bigManifest, nil); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("pull of an image with a manifest over the limit: %v, want an error naming the limit", err)
	}
	if list := s.List(); len(list) != 0 {
		t.Errorf("refused images were recorded: %v", list)
	}
}

// The image records hold names and layers, not the config: images.json
// stays small however large the configs are (every change rewrites it),
// and the config, read from its blob, is still whole after a restart.
func TestImageRecordsHoldNoConfig(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	label := strings.Repeat("l", 1<<20)
	ref := reg.push(t, "cfg/app:1", testImage(t,
		v1.Config{Cmd: []string{"sh"}, Env: []string{"A=1"}, Labels: map[string]string{"big": label}}, smallLayer(t, "a")))
	root := t.TempDir()
	s := newTestStore(t, Config{Root: root})
	img, err := s.Pull(pullCtx(t), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(s.path("images.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 64<<10 {
		t.Errorf("images.json is %d bytes for one image, want it to hold no config", st.Size())
	}
	raw, err := s.RawConfig(img.ID)
	if err != nil || !bytes.Contains(raw, []byte(label)) {
		t.Errorf("RawConfig: %d bytes, %v; want the whole config", len(raw), err)
	}
	s2 := newTestStore(t, Config{Root: root}) // a restart
	again, err := s2.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	if again.Config.Labels["big"] != label || len(again.Config.Cmd) != 1 || again.Config.Env[0] != "A=1" {
		t.Errorf("config after a restart: cmd %v env %v, label of %d bytes; want the image's", again.Config.Cmd, again.Config.Env, len(again.Config.Labels["big"]))
	}
}

// Removing an image removes what only it referenced: its config, its
// manifest and its layers; what another image still names stays. With
// every image gone, the store uses nothing (ImageFsInfo counted 91 MiB of
// manifests left behind).
func TestRemoveTakesWhatOnlyTheImageReferenced(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	shared := smallLayer(t, "shared")
	refA := reg.push(t, "gc/a:1", testImage(t, v1.Config{Cmd: []string{"a"}}, shared, smallLayer(t, "a")))
	refB := reg.push(t, "gc/b:1", testImage(t, v1.Config{Cmd: []string{"b"}}, shared))
	s := newTestStore(t, Config{})
	a, err := s.Pull(pullCtx(t), refA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Pull(pullCtx(t), refB, nil)
	if err != nil {
		t.Fatal(err)
	}
	blobs := func() int {
		entries, err := os.ReadDir(s.path("blobs", "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	if n := blobs(); n != 4 {
		t.Fatalf("%d blobs after two pulls, want 4 (two configs, two manifests)", n)
	}
	if err := s.Remove(a.ID); err != nil {
		t.Fatal(err)
	}
	if n := blobs(); n != 2 {
		t.Errorf("%d blobs after removing one of two images, want the other's 2", n)
	}
	if _, err := s.RawConfig(b.ID); err != nil {
		t.Errorf("the remaining image's config: %v", err)
	}
	if err := s.Remove(b.ID); err != nil {
		t.Fatal(err)
	}
	fs, err := s.FsInfo()
	if err != nil {
		t.Fatal(err)
	}
	if n := blobs(); n != 0 || fs.UsedBytes != 0 || fs.Inodes != 0 {
		t.Errorf("with no image left: %d blobs, FsInfo %d bytes and %d inodes used; want nothing", n, fs.UsedBytes, fs.Inodes)
	}
}

// images.json as an older netshim wrote it, with the config and the raw
// config inline, still loads: the config from its blob where it is there,
// else from the record, where it then stays; the raw config goes at the
// next write.
func TestOldImageRecordsStillLoad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "images")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
		t.Fatal(err)
	}
	withBlob, withoutBlob := strings.Repeat("a7", 32), strings.Repeat("b8", 32)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", withBlob), []byte(`{"config":{"Cmd":["from-blob"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := `[{"id":"sha256:` + withBlob + `","repoTags":["docker.io/library/a:1"],"size":1,"config":{"cmd":["stale"]},"chains":[],"rawConfig":{"config":{"Cmd":["from-blob"]}}},` +
		`{"id":"sha256:` + withoutBlob + `","repoTags":["docker.io/library/b:1"],"size":1,"config":{"cmd":["from-record"]},"chains":[],"rawConfig":{"config":{"Cmd":["from-record"]}}}]`
	if err := os.WriteFile(filepath.Join(dir, "images.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, Config{Root: root})
	for ref, want := range map[string]string{"a:1": "from-blob", "b:1": "from-record"} {
		img, err := s.Get(ref)
		if err != nil || len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != want {
			t.Errorf("%s after the upgrade: %+v, %v; want cmd %s", ref, img, err, want)
		}
	}
	if err := s.Remove("a:1"); err != nil { // a write
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "images.json"))
	if err != nil || bytes.Contains(data, []byte("rawConfig")) || !bytes.Contains(data, []byte(withoutBlob)) {
		t.Errorf("images.json after a write: %s, %v; want b's record without its raw config", data, err)
	}
	// b, whose blob is missing, keeps its config in its record.
	s2 := newTestStore(t, Config{Root: root})
	if img, err := s2.Get("b:1"); err != nil || len(img.Config.Cmd) != 1 || img.Config.Cmd[0] != "from-record" {
		t.Errorf("b:1 after a write and a restart: %+v, %v; want cmd from-record", img, err)
	}
}
