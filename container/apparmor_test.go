package container

import (
	"os/exec"
	"testing"
)

// The default profile netshim loads where AppArmor is on compiles
// (apparmor_parser without loading it: this node has no AppArmor).
func TestDefaultAppArmorProfileCompiles(t *testing.T) {
	if _, err := exec.LookPath("apparmor_parser"); err != nil {
		t.Skipf("SKIP: apparmor_parser is not installed (hack/install-deps.sh test installs it): %v", err)
	}
	if err := parseAppArmorProfile("--skip-kernel-load", "--skip-cache", "--stdout"); err != nil {
		t.Fatal(err)
	}
}
