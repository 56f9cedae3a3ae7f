package container

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"
	"tags.cncf.io/container-device-interface/pkg/cdi"
)

// CDIInjector applies the edits of CDI devices (fully qualified names,
// vendor.com/class=name) to a spec, and returns the names it does not
// know; *CDIRegistry is one.
type CDIInjector interface {
	InjectDevices(spec *specs.Spec, devices ...string) (unresolved []string, err error)
}

// DefaultCDISpecDirs are where CDI specs are looked for unless the
// manager's config says otherwise: /etc/cdi and /var/run/cdi.
var DefaultCDISpecDirs = slices.Clone(cdi.DefaultSpecDirs)

// CDIRegistry is the CDI specs of some dirs, read again at every
// injection, so a spec a device plugin or driver has just written is seen
// by the next container.
type CDIRegistry struct {
	dirs  []string
	cache *cdi.Cache
}

// NewCDIRegistry reads the CDI specs of dirs (DefaultCDISpecDirs when
// empty); a dir that does not exist holds none.
func NewCDIRegistry(dirs []string) (*CDIRegistry, error) {
	if len(dirs) == 0 {
		dirs = DefaultCDISpecDirs
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if err != nil {
		return nil, fmt.Errorf("CDI spec dirs %s: %w", strings.Join(dirs, ", "), err)
	}
	return &CDIRegistry{dirs: dirs, cache: cache}, nil
}

// InjectDevices reads the spec dirs again and applies the devices' edits.
// A spec that cannot be read is logged, and its devices are unknown: a
// broken spec of one vendor does not fail every other's devices.
func (r *CDIRegistry) InjectDevices(spec *specs.Spec, devices ...string) ([]string, error) {
	if err := r.cache.Refresh(); err != nil {
		klog.ErrorS(err, "Some CDI specs could not be read; their devices are unknown", "dirs", r.dirs)
	}
	return r.cache.InjectDevices(spec, devices...)
}

// cdiDevices injects the devices the config names, in its CDI_devices
// and in cdi.k8s.io/* annotations (device plugins' way), through in.CDI.
// An unknown device is refused, never dropped.
func cdiDevices(spec *specs.Spec, in SpecInput) error {
	var names []string
	for i, d := range in.Config.GetCDIDevices() {
		if d.GetName() == "" {
			return invalid(fmt.Sprintf("config.CDI_devices[%d].name", i), "is required")
		}
		names = append(names, d.GetName())
	}
	_, annotated, err := cdi.ParseAnnotations(in.Config.GetAnnotations())
	if err != nil {
		return invalid("config.annotations", "%s*: %v", cdi.AnnotationPrefix, err)
	}
	for _, n := range annotated {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if in.CDI == nil {
		return invalid("config.CDI_devices", "CDI devices %s asked for, but this netshim has no CDI registry", strings.Join(names, ", "))
	}
	unresolved, err := in.CDI.InjectDevices(spec, names...)
	if len(unresolved) > 0 {
		return invalid("config.CDI_devices", "unknown CDI device(s) %s: no CDI spec in the spec dirs defines them", strings.Join(unresolved, ", "))
	}
	if err != nil {
		return fmt.Errorf("inject CDI devices %s: %v: %w", strings.Join(names, ", "), err, errdefs.ErrFailedPrecondition)
	}
	return nil
}
