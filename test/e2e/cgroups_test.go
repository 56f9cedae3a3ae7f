package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The e2e pods and containers take the default cgroup parent, /netshim, in
// every hierarchy (cgroup v1) or the unified one (v2).
var cgroupParents, _ = filepath.Glob("/sys/fs/cgroup/*/netshim")

func init() {
	if _, err := os.Stat("/sys/fs/cgroup/netshim"); err == nil {
		cgroupParents = append(cgroupParents, "/sys/fs/cgroup/netshim")
	}
}

var runtimeIDName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// podCgroups lists the sandbox and container cgroups under the default
// parent: hierarchy/ID paths.
func podCgroups() map[string]bool {
	found := map[string]bool{}
	for _, parent := range cgroupParents {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.IsDir() && runtimeIDName.MatchString(e.Name()) {
				found[filepath.Join(parent, e.Name())] = true
			}
		}
	}
	return found
}

// sweepNewCgroups removes, and returns, the pod cgroups that were not there
// before and whose ID is in log (a shim's log names every sandbox and
// container it made): what that shim's pods and containers left behind.
// Another shim of the same test may still be running its own.
func sweepNewCgroups(before map[string]bool, log string) []string {
	var left []string
	for dir := range podCgroups() {
		if before[dir] || !strings.Contains(log, filepath.Base(dir)) {
			continue
		}
		left = append(left, dir)
		_ = os.Remove(dir) // only an empty cgroup can go; a busy one is reported all the same
	}
	return left
}
