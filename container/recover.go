package container

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/netshim/netshim/oci"
	"k8s.io/klog/v2"
)

// Recover loads every checkpoint at start, undoes creates that were
// interrupted, brings states up to date (containers that exited while
// netshim was down have their exit files) and sweeps what no record knows.
func (m *Manager) Recover(ctx context.Context) error {
	good, bad := m.checkpoints.LoadAll()
	for _, e := range bad {
		klog.ErrorS(e, "Set aside a corrupt container checkpoint")
	}
	var errs []error
	for _, c := range good {
		m.records.Add(c.ID, c.clone())
		if err := m.records.Reserve(c.Name, c.ID); err != nil {
			klog.ErrorS(err, "Two container checkpoints hold one name", "container", c.ID)
		}
		if c.State == StateCreating {
			klog.InfoS("Undoing container whose create was interrupted", "container", c.ID)
			if err := m.removeResources(ctx, c); err != nil {
				errs = append(errs, fmt.Errorf("undo interrupted container %s: %w", c.ID, err))
			}
			continue
		}
		m.refresh(c.ID)
	}
	m.sweepOrphans(ctx)
	return errors.Join(append(errs, bad...)...)
}

// sweepOrphans removes runtime containers, bundles, writable layers and
// leases that no record knows (a crash between their making and the record).
func (m *Manager) sweepOrphans(ctx context.Context) {
	known := map[string]bool{}
	for _, id := range m.records.IDs() {
		known[id] = true
	}
	oci.SweepOrphans(ctx, m.cfg.Runtime, func(id string) bool { return !known[id] })
	for _, name := range slices.Sorted(maps.Keys(m.cfg.Handlers)) {
		// A handler's root may be shared with its sandboxes (gVisor): only
		// a runtime container with a container bundle is a container.
		oci.SweepOrphans(ctx, m.cfg.Handlers[name].Runtime, func(id string) bool {
			_, err := os.Stat(m.bundleDir(id))
			return !known[id] && err == nil
		})
	}
	orphans := map[string]bool{}
	for _, dir := range []string{filepath.Join(m.cfg.StateDir, "bundles"), m.layersDir()} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !known[e.Name()] {
				orphans[e.Name()] = true
			}
		}
	}
	for _, id := range m.cfg.Rootfs.Leases() {
		if !known[id] {
			orphans[id] = true
		}
	}
	for id := range orphans {
		klog.InfoS("Removing what is left of an unknown container", "container", id)
		if err := m.cfg.Rootfs.Unmount(id, m.layerDir(id)); err != nil {
			klog.ErrorS(err, "Failed to unmount an orphan rootfs", "container", id)
			continue
		}
		_ = os.RemoveAll(m.bundleDir(id))
		_ = os.Remove(filepath.Join(m.exitDir(), id))
	}
}
