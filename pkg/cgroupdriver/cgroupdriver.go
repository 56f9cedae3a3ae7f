// Package cgroupdriver names pod and container cgroups for the node's
// cgroup driver, kubelet's cgroupDriver: cgroupfs, where a cgroup is a path
// under each hierarchy's root (/kubepods/burstable/pod<uid>/<id>), or
// systemd, where a pod's parent is a slice unit
// (kubepods-burstable-pod<uid>.slice) and runc, given --systemd-cgroup and
// a "slice:prefix:name" cgroupsPath, has systemd make the scope
// prefix-name.scope in it. netshim uses one driver, chosen at start.
package cgroupdriver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
)

// Driver is kubelet's name of a cgroup driver.
type Driver string

const (
	Cgroupfs Driver = "cgroupfs"
	Systemd  Driver = "systemd"
)

// ScopePrefix names netshim's scopes under the systemd driver:
// netshim-<id>.scope (containerd's are cri-containerd-<id>.scope).
const ScopePrefix = "netshim"

// maxUnitName is systemd's limit on a unit's name (UNIT_NAME_MAX - 1).
const maxUnitName = 255

var current atomic.Value // Driver

// Set chooses the driver, once at start, before any pod is made.
func Set(d Driver) { current.Store(d) }

// Current is the driver Set chose; cgroupfs until then.
func Current() Driver {
	if d, ok := current.Load().(Driver); ok {
		return d
	}
	return Cgroupfs
}

// Parse reads a --cgroup-driver value.
func Parse(s string) (Driver, error) {
	switch d := Driver(s); d {
	case Cgroupfs, Systemd:
		return d, nil
	}
	return "", fmt.Errorf("unknown cgroup driver %q: want cgroupfs or systemd, as kubelet's cgroupDriver", s)
}

// DefaultParent is the parent of a pod that names none.
func (d Driver) DefaultParent() string {
	if d == Systemd {
		return "netshim.slice"
	}
	return "/netshim"
}

// ParentAdvice says, in an error, what a pod's cgroup parent must be.
func (d Driver) ParentAdvice() string {
	if d == Systemd {
		return "netshim uses the systemd cgroup driver (--cgroup-driver=systemd; kubelet's cgroupDriver: systemd): give a slice name such as kubepods-besteffort-pod<uid>.slice"
	}
	return "netshim uses the cgroupfs cgroup driver (--cgroup-driver=cgroupfs; kubelet's cgroupDriver: cgroupfs): give an absolute, clean path such as /kubepods/besteffort/pod<uid>"
}

// ContainerPath is the OCI linux.cgroupsPath of container (or pause) id
// under parent ("" is DefaultParent). A parent the driver cannot place is
// an error.
func (d Driver) ContainerPath(parent, id string) (string, error) {
	if parent == "" {
		parent = d.DefaultParent()
	}
	if d == Systemd {
		if err := validSlice(parent); err != nil {
			return "", err
		}
		return parent + ":" + ScopePrefix + ":" + id, nil
	}
	// A Join of anything else could climb out of the hierarchy (../x).
	if !filepath.IsAbs(parent) || filepath.Clean(parent) != parent || strings.ContainsAny(parent, ":\x00\n") {
		return "", fmt.Errorf("cgroup parent %q is not a clean absolute path", parent)
	}
	return filepath.Join(parent, id), nil
}

// ValidateParent checks a pod's cgroup parent for the driver; "" is valid.
func (d Driver) ValidateParent(p string) error {
	if p == "" {
		return nil
	}
	if d == Systemd {
		return validSlice(p)
	}
	if strings.Contains(p, ":") || (strings.HasSuffix(p, ".slice") && !strings.Contains(p, "/")) {
		return errors.New("is a systemd slice")
	}
	return nil // the path rules are the caller's (pkg/validate)
}

// sliceName is a slice unit's name as kubelet's systemd driver makes them:
// no '/' and no ':' (runc splits its cgroupsPath at ':').
var sliceName = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.slice$`)

func validSlice(s string) error {
	switch {
	case len(s) > maxUnitName:
		return fmt.Errorf("is %d characters long; a systemd unit's name is at most %d", len(s), maxUnitName)
	case !sliceName.MatchString(s):
		return errors.New("is not a systemd slice's name (letters, digits, '_', '.', '-', ending in .slice; no '/' or ':')")
	case s == "-.slice":
		return errors.New("is the root slice; pods go in a slice of their own")
	}
	for _, part := range strings.Split(strings.TrimSuffix(s, ".slice"), "-") {
		if part == "" {
			return errors.New("has an empty element between '-'s; systemd's slice names nest at each '-'")
		}
	}
	return nil
}

// ExpandSlice is the path, under each hierarchy's root, of slice unit s:
// each '-' is a level, so a-b-c.slice is /a.slice/a-b.slice/a-b-c.slice.
func ExpandSlice(s string) (string, error) {
	if err := validSlice(s); err != nil {
		return "", fmt.Errorf("slice %q %w", s, err)
	}
	parts := strings.Split(strings.TrimSuffix(s, ".slice"), "-")
	var b strings.Builder
	for i := range parts {
		b.WriteString("/" + strings.Join(parts[:i+1], "-") + ".slice")
	}
	return b.String(), nil
}

// FSPath is where a cgroup of either driver is, relative to each
// hierarchy's root: a cgroupfs path as it is; a systemd cgroupsPath
// (slice:prefix:name) as the scope's directory in its expanded slice; a
// bare slice name as the slice's directory. What it cannot read it
// returns unchanged.
func FSPath(p string) string {
	if slice, rest, ok := strings.Cut(p, ":"); ok {
		prefix, name, ok := strings.Cut(rest, ":")
		dir, err := ExpandSlice(slice)
		if !ok || err != nil {
			return p
		}
		unit := name
		if !strings.HasSuffix(name, ".slice") {
			unit = prefix + "-" + name + ".scope"
		}
		return dir + "/" + unit
	}
	if !strings.Contains(p, "/") && strings.HasSuffix(p, ".slice") {
		if dir, err := ExpandSlice(p); err == nil {
			return dir
		}
	}
	return p
}

// CheckInit says whether systemd is PID 1, as runc's systemd driver needs
// (it asks systemd over D-Bus to make each scope). procDir and runDir are
// /proc and /run but for tests. It returns what PID 1 is when it is not.
func CheckInit(procDir, runDir string) error {
	comm, err := os.ReadFile(filepath.Join(procDir, "1/comm"))
	if err != nil {
		return fmt.Errorf("--cgroup-driver=systemd needs systemd as PID 1, and PID 1 cannot be read: %w", err)
	}
	name := strings.TrimSpace(string(comm))
	// systemd's own test for a system it booted (sd_booted).
	if st, err := os.Stat(filepath.Join(runDir, "systemd/system")); err != nil || !st.IsDir() || name != "systemd" {
		return fmt.Errorf("--cgroup-driver=systemd needs systemd as PID 1 (runc has systemd make each pod's cgroups over D-Bus), but PID 1 is %q: "+
			"run netshim with --cgroup-driver=cgroupfs (the default) and kubelet with cgroupDriver: cgroupfs", name)
	}
	return nil
}
