// Package checkpoint keeps one crash-safe JSON file per record in a dir:
// written atomically, versioned and checksummed, so a torn or tampered file
// is found, set aside as *.corrupt and reported, never a crash.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/pkg/atomicfile"
)

// Version is bumped whenever a record's meaning changes.
const Version = 1

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
	// ID returns a record's ID; a decoded record whose ID is not valid or
	// not its file's name is corrupt.
	ID    func(*T) string
	Valid func(id string) bool
}

func (s Store[T]) path(id string) string { return filepath.Join(s.Dir, id+".json") }

// Save writes rec atomically.
func (s Store[T]) Save(rec *T) error {
	id := s.ID(rec)
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", s.Kind, id, err)
	}
	sum := sha256.Sum256(body)
	data, err := json.Marshal(envelope{Version: Version, Checksum: hex.EncodeToString(sum[:]), Record: body})
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", s.Kind, id, err)
	}
	if err := atomicfile.Write(s.path(id), data, 0o600); err != nil {
		return fmt.Errorf("write checkpoint of %s %s: %w", s.Kind, id, err)
	}
	return nil
}

// Remove deletes the checkpoint of id; a missing one is no error.
func (s Store[T]) Remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove checkpoint of %s %s: %w", s.Kind, id, err)
	}
	return nil
}

// LoadAll reads every checkpoint. A file that cannot be decoded is renamed
// to *.corrupt and reported in bad.
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
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(s.Dir, name)
		data, err := os.ReadFile(path)
		var rec *T
		if err == nil {
			rec, err = s.Decode(data)
		}
		if err == nil && s.ID(rec)+".json" != name {
			err = fmt.Errorf("holds %s %s", s.Kind, s.ID(rec))
		}
		if err != nil {
			aside := path + ".corrupt"
			_ = os.Rename(path, aside)
			bad = append(bad, fmt.Errorf("checkpoint %s (moved to %s): %w", path, aside, err))
			continue
		}
		good = append(good, rec)
	}
	return good, bad
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
