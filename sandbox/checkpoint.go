package sandbox

import (
	"path/filepath"

	"github.com/netshim/netshim/pkg/checkpoint"
	"github.com/netshim/netshim/pkg/idindex"
)

// newCheckpoints is the store of sandbox records, one file per sandbox in
// dir. Nodes that ran a netshim from before pkg/checkpoint was the one
// format have files whose envelope names the record "sandbox": they are
// read, and rewritten in the one format on their next save.
func newCheckpoints(dir string) checkpoint.Store[Sandbox] {
	return checkpoint.Store[Sandbox]{
		Dir: dir, Kind: "sandbox", Legacy: "sandbox",
		ID: func(sb *Sandbox) string { return sb.ID }, Valid: idindex.Valid,
	}
}

func checkpointsDir(rootDir string) string { return filepath.Join(rootDir, "sandboxes") }
