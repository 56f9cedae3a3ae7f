package container

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
)

// DefaultAppArmorProfile is the profile a container gets for RuntimeDefault
// where AppArmor is enabled (containerd loads one of its own likewise).
const DefaultAppArmorProfile = "netshim-default"

//go:embed apparmor/netshim-default
var defaultAppArmorProfile []byte

// LoadDefaultAppArmorProfile loads netshim's default profile into the
// kernel with apparmor_parser, unless it is loaded already. Call it only
// where AppArmor is enabled; without it, RuntimeDefault is refused.
func LoadDefaultAppArmorProfile() error {
	if appArmorLoaded(DefaultAppArmorProfile) {
		return nil
	}
	return parseAppArmorProfile("-r", "-W")
}

// parseAppArmorProfile runs apparmor_parser with args on the profile.
func parseAppArmorProfile(args ...string) error {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return fmt.Errorf("load AppArmor profile %s: apparmor_parser not found (Debian's apparmor package): %w", DefaultAppArmorProfile, err)
	}
	f, err := os.CreateTemp("", "netshim-apparmor-")
	if err != nil {
		return fmt.Errorf("load AppArmor profile %s: %w", DefaultAppArmorProfile, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(defaultAppArmorProfile); err != nil {
		f.Close()
		return fmt.Errorf("load AppArmor profile %s: %w", DefaultAppArmorProfile, err)
	}
	f.Close()
	if out, err := exec.Command(parser, append(args, f.Name())...).CombinedOutput(); err != nil {
		return fmt.Errorf("load AppArmor profile %s: apparmor_parser: %w: %s", DefaultAppArmorProfile, err, out)
	}
	return nil
}

// HostAppArmorEnabled says whether this node's kernel enforces AppArmor.
func HostAppArmorEnabled() bool { return node{}.AppArmorEnabled() }
