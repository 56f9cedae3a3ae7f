// Package checkpoint keeps one crash-safe JSON file per record in a dir:
// written atomically, versioned and checksummed, so a torn or tampered file
// is found, set aside as *.corrupt and reported, never a crash. Anything in
// the dir that is not a checkpoint file (a directory, a link, a foreign
// name) is set aside and reported too, never followed nor skipped in
// silence. It is the one record format of sandboxes and containers.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/pkg/atomicfile"
	"golang.org/x/sys/unix"
)

// Version is bumped whenever a record's meaning changes.
const Version = 1

// CorruptSuffix marks an entry of a checkpoint dir set aside as unreadable.
const CorruptSuffix = ".corrupt"

// envelope is the file: the record plus what proves it whole.
type envelope struct {
	Version  int             `json:"version"`
	Checksum string          `json:"checksum"` // sha256 of Record, hex
	Record   json.RawMessage `json:"record"`
}

// Store keeps records of type T, each under its ID, in Dir. Kind names the
// records in errors ("container").
type Store[T any] struct {
	Dir  string
	Kind string
	// ID returns a record's ID; a decoded record whose ID is not Valid or
	// not its file's name is corrupt.
	ID    func(*T) string
	Valid func(id string) bool
	// Legacy, if set, is the name the record had in envelopes written
	// before this package was their one format ("sandbox"). Such files are
	// read, never written: the next save of the record rewrites it.
	Legacy string
}

// Path is the file of the record id.
func (s Store[T]) Path(id string) string { return filepath.Join(s.Dir, id+".json") }

// Save writes rec atomically and durably (file and dir fsynced): for
// records whose loss to a power cut recovery could not make up for.
func (s Store[T]) Save(rec *T) error { return s.save(atomicfile.Write, rec) }

// SaveUnsynced writes rec atomically without fsync: a crash of netshim
// keeps it, a power cut may lose it (see atomicfile.WriteUnsynced).
func (s Store[T]) SaveUnsynced(rec *T) error { return s.save(atomicfile.WriteUnsynced, rec) }

// SaveMakingRoom is SaveUnsynced that, on a full disk, gives the old
// file's blocks to the new one; if even that fails, the old file is gone
// (see atomicfile.WriteMakingRoom). For teardown steps, which recovery redoes.
func (s Store[T]) SaveMakingRoom(rec *T) error { return s.save(atomicfile.WriteMakingRoom, rec) }

func (s Store[T]) save(write func(string, []byte, os.FileMode) error, rec *T) error {
	id := s.ID(rec)
	data, err := s.Encode(rec)
	if err != nil {
		return err
	}
	if err := write(s.Path(id), data, 0o600); err != nil {
		return fmt.Errorf("write checkpoint of %s %s: %w", s.Kind, id, err)
	}
	return nil
}

// Encode is the content of rec's checkpoint file.
func (s Store[T]) Encode(rec *T) ([]byte, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", s.Kind, s.ID(rec), err)
	}
	sum := sha256.Sum256(body)
	return json.Marshal(envelope{Version: Version, Checksum: hex.EncodeToString(sum[:]), Record: body})
}

// Remove deletes the checkpoint of id; a missing one is no error.
func (s Store[T]) Remove(id string) error {
	if err := os.Remove(s.Path(id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove checkpoint of %s %s: %w", s.Kind, id, err)
	}
	return nil
}

// LoadAll reads every checkpoint. Anything in the dir that is not a valid
// checkpoint file (one that cannot be decoded, a directory, a link, a
// foreign name) is renamed to *.corrupt and reported in bad, never fatal.
// Temp files of interrupted writes are removed first.
func (s Store[T]) LoadAll() (good []*T, bad []error) {
	if err := atomicfile.RemoveTemps(s.Dir); err != nil {
		bad = append(bad, fmt.Errorf("remove interrupted checkpoint writes: %w", err))
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read checkpoint dir %s: %w", s.Dir, err)}
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, CorruptSuffix) {
			continue // set aside earlier, and reported then
		}
		path := filepath.Join(s.Dir, name)
		var (
			rec *T
			err error
		)
		switch {
		case !e.Type().IsRegular(): // lstat's type: a link is never followed
			err = fmt.Errorf("not a regular file (%s)", e.Type())
		case !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "."):
			err = fmt.Errorf("not a checkpoint's name")
		default:
			var data []byte
			if data, err = readNoFollow(path); err == nil {
				rec, err = s.Decode(data)
			}
		}
		if err == nil && s.ID(rec)+".json" != name {
			err = fmt.Errorf("holds %s %s", s.Kind, s.ID(rec))
		}
		if err != nil {
			aside := path + CorruptSuffix
			_ = os.Rename(path, aside)
			bad = append(bad, fmt.Errorf("checkpoint %s (moved to %s): %w", path, aside, err))
			continue
		}
		good = append(good, rec)
	}
	return good, bad
}

// Load reads the checkpoint of id alone. A missing one wraps
// fs.ErrNotExist; one that is not a valid checkpoint of id is an error
// (the caller decides whether to set it aside, with SetAside).
func (s Store[T]) Load(id string) (*T, error) {
	data, err := readNoFollow(s.Path(id))
	if err != nil {
		return nil, fmt.Errorf("read checkpoint of %s %s: %w", s.Kind, id, err)
	}
	rec, err := s.Decode(data)
	if err == nil && s.ID(rec) != id {
		err = fmt.Errorf("holds %s %s", s.Kind, s.ID(rec))
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", s.Path(id), err)
	}
	return rec, nil
}

// SetAside renames the checkpoint of id to *.corrupt, out of the way of
// every later load but there to be looked at.
func (s Store[T]) SetAside(id string) error {
	if err := os.Rename(s.Path(id), s.Path(id)+CorruptSuffix); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("set aside checkpoint of %s %s: %w", s.Kind, id, err)
	}
	return nil
}

// readNoFollow reads path, refusing a symlink put there after the listing.
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Decode checks and decodes one checkpoint file's content.
func (s Store[T]) Decode(data []byte) (*T, error) {
	var f envelope
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("version %d, want %d", f.Version, Version)
	}
	if f.Record == nil && s.Legacy != "" {
		var old map[string]json.RawMessage
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		f.Record = old[s.Legacy]
	}
	if f.Record == nil {
		return nil, fmt.Errorf("no record")
	}
	sum := sha256.Sum256(f.Record)
	if hex.EncodeToString(sum[:]) != f.Checksum {
		return nil, fmt.Errorf("checksum mismatch")
	}
	var rec T
	if err := json.Unmarshal(f.Record, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", s.Kind, err)
	}
	if id := s.ID(&rec); !s.Valid(id) {
		return nil, fmt.Errorf("invalid %s id %q", s.Kind, id)
	}
	return &rec, nil
}
