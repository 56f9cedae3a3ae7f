package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second"} {
		if err := Write(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Fatalf("read %q, want %q", got, content)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only the target file", len(entries))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestWriteIntoMissingDirFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestRemoveTempsKeepsRealFiles(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "a.json"), []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What a write killed before its rename leaves behind.
	if err := os.WriteFile(filepath.Join(dir, ".b.json.tmp-123"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "a.json" {
		t.Fatalf("entries after RemoveTemps: %v, want only a.json", entries)
	}
}

// On a full disk, WriteMakingRoom gives up the old file's blocks to the new
// content (Write alone needs room for both).
func TestWriteMakingRoomOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		// Under CI a missing root is a failure, never a silent pass.
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to mount a tiny tmpfs")
		}
		t.Skip("needs root to mount a tiny tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	path := filepath.Join(dir, "record.json")
	old := bytes.Repeat([]byte("o"), 16<<10)
	if err := Write(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	filler.Close()
	updated := bytes.Repeat([]byte("n"), 12<<10)
	if err := Write(path, updated, 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write on a full disk = %v, want ENOSPC (else this test proves nothing)", err)
	}
	if err := WriteMakingRoom(path, updated, 0o600); err != nil {
		t.Fatalf("WriteMakingRoom = %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, updated) {
		t.Fatalf("file holds %d bytes, want the %d new ones", len(got), len(updated))
	}
	if err := RemoveTemps(dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("dir holds %d entries, want the record and the filler", len(entries))
	}
}
