package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/netshim/netshim/pkg/atomicfile"
	"github.com/netshim/netshim/pkg/checkpoint"
	"github.com/netshim/netshim/pkg/idindex"
)

// pendingAdds records, before each ADD of the default network, the config and
// runtime arguments it runs with. libcni caches them only after an ADD
// succeeds, so without this record the DEL owed to an ADD that failed, or
// was cut short by a crash, would run with whatever the conf dir holds by
// then: another network's DEL, and the pod's IP leaked. A record is
// forgotten once the ADD succeeded (libcni's cache then holds the same) or a
// DEL with it has succeeded. Records are checkpoints (pkg/checkpoint), one
// per sandbox.
type pendingAdds struct {
	store checkpoint.Store[pendingAdd]
}

// pendingAdd is one record: enough to DEL without the pod or the conf dir.
type pendingAdd struct {
	SandboxID      string         `json:"sandboxID"`
	Network        string         `json:"network"`
	Config         []byte         `json:"config"` // the conflist bytes, as libcni caches them
	Args           [][2]string    `json:"args"`   // CNI_ARGS, as the ADD had them
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
}

func newPendingAdds(cacheDir string) (pendingAdds, error) {
	if cacheDir == "" {
		cacheDir = libcni.CacheDir // where libcni keeps its own cache then
	}
	dir := filepath.Join(cacheDir, "netshim-pending-adds")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pendingAdds{}, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := atomicfile.RemoveTemps(dir); err != nil {
		return pendingAdds{}, fmt.Errorf("clean %s: %w", dir, err)
	}
	return pendingAdds{store: checkpoint.Store[pendingAdd]{
		Dir: dir, Kind: "recorded ADD of sandbox",
		ID: func(r *pendingAdd) string { return r.SandboxID }, Valid: idindex.Valid,
	}}, nil
}

func (s pendingAdds) path(sandboxID string) string { return s.store.Path(sandboxID) }

// record writes the record of an ADD about to run; a failure fails the ADD.
// Unsynced: it must survive a crash of netshim, which it does; a power cut
// that loses it leaves the DEL to the conf dir's config.
func (s pendingAdds) record(sandboxID string, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	rec := &pendingAdd{SandboxID: sandboxID, Network: list.Name, Config: list.Bytes, Args: rt.Args, CapabilityArgs: rt.CapabilityArgs}
	if err := s.store.SaveUnsynced(rec); err != nil {
		return fmt.Errorf("record the ADD of network %q: %w", list.Name, err)
	}
	return nil
}

// load returns the sandbox's record, or nil when it has none.
func (s pendingAdds) load(sandboxID string) (*pendingAdd, *libcni.NetworkConfigList, error) {
	rec, err := s.store.Load(sandboxID)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		// Written before the records were checkpoints: the bare record.
		legacy, lerr := loadLegacy(s.path(sandboxID))
		if lerr != nil {
			return nil, nil, err
		}
		rec = legacy
		rec.SandboxID = sandboxID
	}
	list, err := libcni.NetworkConfFromBytes(rec.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("parse the recorded config of network %q: %w", rec.Network, err)
	}
	return rec, list, nil
}

// loadLegacy reads a record as netshim wrote it before the records were
// checkpoints: the bare JSON of pendingAdd, with no envelope.
func loadLegacy(path string) (*pendingAdd, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec pendingAdd
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, err
	}
	if rec.Network == "" || len(rec.Config) == 0 {
		return nil, fmt.Errorf("%s is no recorded ADD", path)
	}
	return &rec, nil
}

// setAside renames an unreadable record out of the way, so it can be looked
// at but never blocks a teardown again.
func (s pendingAdds) setAside(sandboxID string) error {
	return s.store.SetAside(sandboxID)
}

func (s pendingAdds) forget(sandboxID string) error {
	return s.store.Remove(sandboxID)
}

// sandboxIDs lists the sandboxes that have records.
func (s pendingAdds) sandboxIDs() []string {
	entries, _ := os.ReadDir(s.store.Dir)
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") {
			ids = append(ids, id)
		}
	}
	return ids
}
