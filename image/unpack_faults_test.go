package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A PAX global header ('g') holds archive-wide comments, not a file: it
// is skipped, as moby does, and the layer unpacks.
func TestUnpackIgnoresPAXGlobalHeader(t *testing.T) {
	needRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "built by a tool"}}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, Size: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := unpack(&buf, dir, nil); err != nil {
		t.Fatalf("unpack of a layer with a PAX global header: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "ok" {
		t.Errorf("f: %q, %v", data, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "pax_global_header")); !os.IsNotExist(err) {
		t.Errorf("the global header was written as a file: %v", err)
	}
}

// gnuSparseTar is a tar (GNU format) of one sparse file ('S'): "head" at
// 0, "tail" at 1 MiB, holes between.
func gnuSparseTar() []byte {
	const real = 1<<20 + 4
	hdr := make([]byte, 512)
	octal := func(off, width int, v int64) { copy(hdr[off:off+width], fmt.Sprintf("%0*o\x00", width-1, v)) }
	copy(hdr[0:], "sparse")
	octal(100, 8, 0o644)
	octal(108, 8, 0)
	octal(116, 8, 0)
	octal(124, 12, 8) // the bytes stored: "head" and "tail"
	octal(136, 12, 1700000000)
	hdr[156] = 'S'
	copy(hdr[257:], "ustar  \x00") // GNU magic and version
	octal(386, 12, 0)           // sparse[0]: offset, length
	octal(398, 12, 4)
	octal(410, 12, 1<<20) // sparse[1]
	octal(422, 12, 4)
	octal(483, 12, real) // the file's real size
	copy(hdr[148:156], "        ")
	sum := 0
	for _, b := range hdr {
		sum += int(b)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	data := make([]byte, 512)
	copy(data, "headtail")
	return append(append(hdr, data...), make([]byte, 1024)...)
}

// A GNU sparse file unpacks to its whole content, holes kept as holes.
func TestUnpackGNUSparseFile(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if _, err := unpack(bytes.NewReader(gnuSparseTar()), dir, nil); err != nil {
		t.Fatalf("unpack of a GNU sparse file: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte("head"), make([]byte, 1<<20-4)...), "tail"...)
	if !bytes.Equal(data, want) {
		t.Errorf("sparse file: %d bytes, starting %q, ending %q; want head, 1 MiB of zeros, tail", len(data), data[:min(4, len(data))], data[max(0, len(data)-4):])
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "sparse"), &st); err == nil && st.Blocks*512 >= 1<<20 {
		t.Errorf("the holes were written: %d bytes allocated", st.Blocks*512)
	}
}

// A whiteout must name a file: ".wh.." and ".wh..." would white out the
// dir itself or its parent (up to the whole layer). They are refused.
func TestUnpackRefusesDotWhiteouts(t *testing.T) {
	needRoot(t)
	for _, name := range []string{"sub/.wh..", "sub/.wh..."} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := unpack(layerTar(t,
				entry{name: "keep", body: "k"},
				entry{name: "sub/", typ: tar.TypeDir, mode: 0o755},
				entry{name: "sub/file", body: "f"},
				entry{name: name},
			), dir, nil)
			if err == nil || !strings.Contains(err.Error(), "whiteout") {
				t.Errorf("unpack of whiteout %q: %v, want it refused", name, err)
			}
			for _, f := range []string{"keep", "sub/file"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("whiteout %q took %s: %v", name, f, err)
				}
			}
		})
	}
}

// A layer may hard-link a file of a layer below it (what a build that
// links an existing binary makes). The pull succeeds and, mounted, both
// names are one file with the lower file's content, owner and mode, and
// the link's target may be in a dir this layer does not have.
func TestHardLinkToALowerLayer(t *testing.T) {
	needRoot(t)
	reg := startTestRegistry(t)
	base := layerTar(t, entry{name: "bin/", typ: tar.TypeDir, mode: 0o755}, entry{name: "bin/tool", body: "#!/bin/sh\n", mode: 0o4750, uid: 1000, gid: 1001})
	top := layerTar(t, entry{name: "bin/alias", typ: tar.TypeLink, link: "bin/tool"}, entry{name: "sbin/tool", typ: tar.TypeLink, link: "bin/tool"})
	ref := reg.push(t, "links/app:1", testImage(t, v1.Config{Cmd: []string{"sh"}}, base, top))
	s := newTestStore(t, Config{})
	img, err := s.Pull(pullCtx(t), ref, nil)
	if err != nil {
		t.Fatalf("pull of a layer linking a file below: %v", err)
	}
	container := strings.Repeat("d2", 32)
	dir := filepath.Join(t.TempDir(), container)
	rootfs, err := s.Mount(container, img.ID, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Unmount(container, dir) })
	var tool, alias syscall.Stat_t
	if err := syscall.Stat(filepath.Join(rootfs, "bin/tool"), &tool); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(rootfs, "bin/alias"), &alias); err != nil {
		t.Fatal(err)
	}
	if alias.Ino != tool.Ino || alias.Nlink != 3 || alias.Uid != 1000 || alias.Gid != 1001 || alias.Mode&0o7777 != 0o4750 {
		t.Errorf("bin/alias: ino %d (tool's %d), links %d, owner %d:%d, mode %o; want bin/tool's inode, 3 links, 1000:1001, 4750",
			alias.Ino, tool.Ino, alias.Nlink, alias.Uid, alias.Gid, alias.Mode&0o7777)
	}
	for _, name := range []string{"bin/alias", "sbin/tool"} {
		if data, err := os.ReadFile(filepath.Join(rootfs, name)); err != nil || string(data) != "#!/bin/sh\n" {
			t.Errorf("%s: %q, %v", name, data, err)
		}
	}
}
