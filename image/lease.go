package image

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/netshim/netshim/pkg/checkpoint"
	"github.com/netshim/netshim/pkg/idindex"
	"k8s.io/klog/v2"
)

// lease keeps an image's layers for a container; it names the chains so
// they stay even when the image itself is removed.
type lease struct {
	Container string   `json:"container"`
	ImageID   string   `json:"imageID"`
	Chains    []string `json:"chains"`
	// Volumes are the images the container mounts as image volumes: they
	// keep their layers, and their images cannot be removed, until the
	// container's lease is dropped.
	Volumes []volumeLease `json:"volumes,omitempty"`
}

// volumeLease is one image a container mounts as a volume.
type volumeLease struct {
	ImageID string   `json:"imageID"`
	Chains  []string `json:"chains"`
}

// newLeaseRecords is the store of leases on disk, one checkpoint per
// container, in dir.
func newLeaseRecords(dir string) checkpoint.Store[lease] {
	return checkpoint.Store[lease]{Dir: dir, Kind: "image lease of container",
		ID: func(l *lease) string { return l.Container }, Valid: idindex.Valid}
}

// loadLeases reads the leases at start, older ones upgraded first.
func (s *Store) loadLeases() error {
	if err := s.upgradeLeases(); err != nil {
		return err
	}
	good, bad := s.leaseRecords.LoadAll()
	for _, err := range bad {
		klog.ErrorS(err, "Set aside an unreadable image lease; the layers it kept may be collected")
	}
	for _, l := range good {
		s.leases[l.Container] = *l
	}
	return nil
}

// upgradeLeases rewrites the leases an older netshim wrote (bare JSON in a
// file named after the container, no envelope) as checkpoints, so that a
// node's running containers keep their layers across the upgrade. One
// that cannot be read is left for LoadAll to set aside and report.
func (s *Store) upgradeLeases() error {
	entries, err := os.ReadDir(s.path("leases"))
	if err != nil {
		return fmt.Errorf("read image leases: %w", err)
	}
	for _, e := range entries {
		if !idindex.Valid(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		old := s.path("leases", e.Name())
		var l lease
		data, err := os.ReadFile(old)
		if err == nil {
			err = json.Unmarshal(data, &l)
		}
		if err != nil {
			continue
		}
		l.Container = e.Name()
		if err := s.leaseRecords.Save(&l); err != nil {
			return fmt.Errorf("upgrade image lease of container %s: %w", l.Container, err)
		}
		if err := os.Remove(old); err != nil {
			return fmt.Errorf("upgrade image lease of container %s: %w", l.Container, err)
		}
	}
	return nil
}
