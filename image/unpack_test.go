package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot: unpacking sets owners, makes whiteout devices and trusted
// xattrs. Under CI a missing root is a failure, not a skip.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
}

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

func layerTar(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, Uid: e.uid, Gid: e.gid,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		for k, v := range e.xattrs {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = v
		}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// Owners, modes (set-id bits too), xattrs, symlinks and hard links are
// kept; a hard link's own header does not re-own the inode it names.
func TestUnpackKeepsMetadata(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	_, err := unpack(layerTar(t,
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "bin/tool", body: "#!/bin/sh\n", mode: 0o4755, uid: 1000, gid: 1001, xattrs: map[string]string{"user.origin": "test"}},
		entry{name: "bin/alias", typ: tar.TypeLink, link: "bin/tool"},
		entry{name: "bin/sym", typ: tar.TypeSymlink, link: "/bin/tool"},
		entry{name: "deep/er/file", body: "x"},
	), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "bin/tool"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o4755 || st.Nlink != 2 {
		t.Errorf("bin/tool: uid %d gid %d mode %o links %d; want 1000 1001 4755 2", st.Uid, st.Gid, st.Mode&0o7777, st.Nlink)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "bin/tool"), "user.origin", buf); err != nil || string(buf[:n]) != "test" {
		t.Errorf("xattr user.origin: %q, %v", buf[:n], err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sym")); err != nil || l != "/bin/tool" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "deep/er")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("an implied parent dir: %v, %v; want 0755", fi, err)
	}
}

// OCI whiteouts become overlay's: a 0/0 character device for a deleted
// file, trusted.overlay.opaque=y on a dir whose lower contents are hidden.
func TestUnpackWhiteouts(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	_, err := unpack(layerTar(t,
		entry{name: "etc/.wh.group"},
		entry{name: "var/cache/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "var/cache/.wh..wh..opq"},
		entry{name: "var/cache/new", body: "fresh"},
	), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "etc/group"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("etc/group: mode %o rdev %d, want a 0/0 character device", st.Mode, st.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/.wh.group")); !os.IsNotExist(err) {
		t.Errorf("the whiteout file itself was written: %v", err)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "var/cache"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("var/cache opaque xattr: %q, %v", buf[:n], err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "var/cache/new")); err != nil || string(data) != "fresh" {
		t.Errorf("var/cache/new: %q, %v", data, err)
	}
}

// No entry writes outside its layer: not by "..", not by a hard link to a
// file outside, not through a symlink pointing out.
func TestUnpackRefusesEscapes(t *testing.T) {
	needRoot(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, entries := range map[string][]entry{
		"dot-dot":            {{name: "../escaped", body: "x"}},
		"hard link outside":  {{name: "link", typ: tar.TypeLink, link: "../../../../../../" + secret}},
		"absolute hard link": {{name: "link", typ: tar.TypeLink, link: "../" + filepath.Base(outside) + "/secret"}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layer")
			_, err := unpack(layerTar(t, entries...), dir, nil)
			if err == nil || !strings.Contains(err.Error(), "outside its layer") {
				t.Errorf("unpack: %v, want an error saying the entry is outside its layer", err)
			}
		})
	}
	// A symlink to the host's dir, then a file "through" it: the file lands
	// inside the layer, never in the host's dir.
	dir := t.TempDir()
	_, err := unpack(layerTar(t,
		entry{name: "out", typ: tar.TypeSymlink, link: outside},
		entry{name: "out/planted", body: "x"},
	), dir, nil)
	if _, statErr := os.Stat(filepath.Join(outside, "planted")); statErr == nil {
		t.Fatalf("a file was written through a symlink to the host (unpack: %v)", err)
	}
	if data, _ := os.ReadFile(secret); string(data) != "host" {
		t.Errorf("the host's file changed: %q", data)
	}
}

// A later entry replaces an earlier one of the same name.
func TestUnpackLaterEntryWins(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if _, err := unpack(layerTar(t, entry{name: "f", body: "old"}, entry{name: "f", body: "new"}), dir, nil); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "f")); string(data) != "new" {
		t.Errorf("f = %q, want new", data)
	}
}
