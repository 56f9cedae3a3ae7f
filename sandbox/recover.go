package sandbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/proc"
	"k8s.io/klog/v2"
)

// Recover loads every checkpoint at start and reconciles it with the system:
// a ready sandbox whose pause process died while netshim was down becomes
// NOTREADY. Sandboxes still in StateCreating are returned for the caller to
// undo, since only it can tear down their network. It removes nothing: the
// caller sweeps orphans (SweepOrphans) once every DEL owed has been sent.
func (m *Manager) Recover() (interrupted []*Sandbox, err error) {
	good, bad := m.checkpoints.LoadAll()
	for _, e := range bad {
		klog.ErrorS(e, "Set aside a corrupt sandbox checkpoint")
	}
	for _, sb := range good {
		m.records.Add(sb.ID, sb.clone())
		if err := m.records.Reserve(sb.Spec.ReservationName(), sb.ID); err != nil {
			klog.ErrorS(err, "Two sandbox checkpoints hold one name", "sandbox", sb.ID)
		}
		switch {
		case sb.State == StateCreating:
			interrupted = append(interrupted, sb.clone())
		case sb.State == StateReady && !proc.SameAlive(sb.PausePID, sb.PauseStartTime):
			klog.InfoS("Pause process of sandbox died while netshim was down", "sandbox", sb.ID, "pid", sb.PausePID)
			if _, err := m.update(sb.ID, teardown, pauseExited); err != nil {
				return nil, err
			}
		}
	}
	if len(bad) > 0 {
		err = fmt.Errorf("%d corrupt checkpoints set aside: %w", len(bad), errors.Join(bad...))
	}
	return interrupted, err
}

// SweepOrphans removes what this netshim made but no checkpoint knows:
// runtime containers and bundles in its own dirs, and the netns pins it
// recorded making (a marker in its state dir). A pin in the netns dir
// without a marker is never touched: the dir may be shared with `ip netns`
// or with another netshim. Call it after the network GC, so that every
// forgotten attachment got its DEL while its netns was still there.
func (m *Manager) SweepOrphans(ctx context.Context) {
	known := map[string]bool{}
	pins := map[string]bool{}
	for _, sb := range m.records.List() {
		known[sb.ID] = true
		pins[sb.NetNSPath] = true
	}
	oci.SweepOrphans(ctx, m.cfg.Runtime, func(id string) bool { return !known[id] })
	for _, name := range slices.Sorted(maps.Keys(m.cfg.Handlers)) {
		// A handler's root may be shared with the pod's containers (gVisor):
		// only a runtime container with a sandbox bundle is a sandbox.
		oci.SweepOrphans(ctx, m.cfg.Handlers[name].Runtime, func(id string) bool {
			_, err := os.Stat(m.bundleDir(id))
			return !known[id] && err == nil
		})
	}
	bundles, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, "sandboxes"))
	for _, b := range bundles {
		if !known[b.Name()] {
			klog.InfoS("Removing orphan bundle", "id", b.Name())
			if err := unmountShm(filepath.Join(m.cfg.StateDir, "sandboxes", b.Name())); err != nil {
				klog.ErrorS(err, "Failed to unmount the /dev/shm of an orphan bundle", "id", b.Name())
				continue
			}
			_ = os.RemoveAll(filepath.Join(m.cfg.StateDir, "sandboxes", b.Name()))
		}
	}
	markers, _ := os.ReadDir(filepath.Join(m.cfg.StateDir, pinMarkerDir))
	for _, e := range markers {
		path := filepath.Join(m.cfg.NetNSDir, e.Name())
		if pins[path] {
			continue
		}
		klog.InfoS("Removing orphan netns pin", "path", path)
		if err := m.unpin(path); err != nil {
			klog.ErrorS(err, "Failed to remove orphan netns pin", "path", path)
		}
	}
}
