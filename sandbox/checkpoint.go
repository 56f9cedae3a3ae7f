package sandbox

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

// checkpointVersion is bumped whenever the record's meaning changes.
const checkpointVersion = 1

// corruptSuffix marks an entry of the checkpoint dir set aside as unreadable.
const corruptSuffix = ".corrupt"

// checkpointFile is the on-disk envelope: the record plus what proves it whole.
type checkpointFile struct {
	Version  int             `json:"version"`
	Checksum string          `json:"checksum"` // sha256 of Sandbox, hex
	Sandbox  json.RawMessage `json:"sandbox"`
}

// checkpoints stores one file per sandbox in dir.
type checkpoints struct{ dir string }

func (c checkpoints) path(id string) string { return filepath.Join(c.dir, id+".json") }

func (c checkpoints) save(sb *Sandbox) error {
	return c.saveWith(atomicfile.Write, sb)
}

// saveUnsynced is save without fsync: for a record whose loss on a power
// cut recovery handles (see atomicfile.WriteUnsynced).
func (c checkpoints) saveUnsynced(sb *Sandbox) error {
	return c.saveWith(atomicfile.WriteUnsynced, sb)
}

// saveMakingRoom is save that, on a full disk, gives up the old checkpoint's
// blocks to the new one (see atomicfile.WriteMakingRoom).
func (c checkpoints) saveMakingRoom(sb *Sandbox) error {
	return c.saveWith(atomicfile.WriteMakingRoom, sb)
}

func (c checkpoints) saveWith(write func(string, []byte, os.FileMode) error, sb *Sandbox) error {
	data, err := encodeCheckpoint(sb)
	if err != nil {
		return err
	}
	if err := write(c.path(sb.ID), data, 0o600); err != nil {
		return fmt.Errorf("write checkpoint of sandbox %s: %w", sb.ID, err)
	}
	return nil
}

func (c checkpoints) remove(id string) error {
	if err := os.Remove(c.path(id)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove checkpoint of sandbox %s: %w", id, err)
	}
	return nil
}

// loadAll reads every checkpoint. Anything in the dir that is not a valid
// checkpoint file (one that cannot be decoded, a directory, a link, a
// foreign name) is renamed to *.corrupt and reported in bad, never fatal
// and never silently dropped.
func (c checkpoints) loadAll() (good []*Sandbox, bad []error) {
	if err := atomicfile.RemoveTemps(c.dir); err != nil {
		bad = append(bad, fmt.Errorf("remove interrupted checkpoint writes: %w", err))
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("read checkpoint dir %s: %w", c.dir, err)}
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, corruptSuffix) {
			continue // set aside earlier, and reported then
		}
		path := filepath.Join(c.dir, name)
		var (
			sb  *Sandbox
			err error
		)
		switch {
		case !e.Type().IsRegular():
			err = fmt.Errorf("not a regular file (%s)", e.Type())
		case !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "."):
			err = fmt.Errorf("not a checkpoint's name")
		default:
			var data []byte
			if data, err = os.ReadFile(path); err == nil {
				sb, err = decodeCheckpoint(data)
			}
		}
		if err == nil && sb.ID+".json" != name {
			err = fmt.Errorf("holds sandbox %s", sb.ID)
		}
		if err != nil {
			aside := path + corruptSuffix
			_ = os.Rename(path, aside)
			bad = append(bad, fmt.Errorf("checkpoint %s (moved to %s): %w", path, aside, err))
			continue
		}
		good = append(good, sb)
	}
	return good, bad
}

func encodeCheckpoint(sb *Sandbox) ([]byte, error) {
	body, err := json.Marshal(sb)
	if err != nil {
		return nil, fmt.Errorf("encode sandbox %s: %w", sb.ID, err)
	}
	sum := sha256.Sum256(body)
	return json.Marshal(checkpointFile{Version: checkpointVersion, Checksum: hex.EncodeToString(sum[:]), Sandbox: body})
}

func decodeCheckpoint(data []byte) (*Sandbox, error) {
	var f checkpointFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if f.Version != checkpointVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, checkpointVersion)
	}
	sum := sha256.Sum256(f.Sandbox)
	if hex.EncodeToString(sum[:]) != f.Checksum {
		return nil, fmt.Errorf("checksum mismatch")
	}
	var sb Sandbox
	if err := json.Unmarshal(f.Sandbox, &sb); err != nil {
		return nil, fmt.Errorf("decode sandbox: %w", err)
	}
	if !isSandboxID(sb.ID) {
		return nil, fmt.Errorf("invalid sandbox id %q", sb.ID)
	}
	return &sb, nil
}

func isSandboxID(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
