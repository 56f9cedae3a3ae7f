package container

import "path/filepath"

// FsUsage is what the containers' writable layers hold of their file system.
type FsUsage struct {
	Mountpoint string // --root-dir/containers/layers
	UsedBytes  uint64
	Inodes     uint64
}

// FsInfo sums every container's writable layer, as its stats measure it
// (kept, and measured again in the background once older than
// layerUsageMaxAge), so kubelet's frequent ImageFsInfo costs no walk
// beyond a new container's first.
func (m *Manager) FsInfo() FsUsage {
	out := FsUsage{Mountpoint: m.layersDir()}
	for _, id := range m.records.IDs() {
		b, i := m.layerUsage(id, filepath.Join(m.layerDir(id), "upper")) // as Stats measures it
		out.UsedBytes += b
		out.Inodes += i
	}
	return out
}
