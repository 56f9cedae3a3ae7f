package network

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/netshim/netshim/pkg/proc"
)

func TestStopOrphanedPluginsKillsOnlyTheGivenSandboxesPlugins(t *testing.T) {
	start := func(containerID string) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID="+containerID)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	ours := start("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	other := start("fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210")

	pm := NewPluginManager(&failingPlugin{}, nil)
	stopped := pm.StopOrphanedPlugins([]string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	if !slices.Equal(stopped, []int{ours.Process.Pid}) {
		t.Errorf("stopped %v, want just %d", stopped, ours.Process.Pid)
	}
	if proc.Alive(ours.Process.Pid) {
		t.Errorf("the plugin of the given sandbox still runs")
	}
	if !proc.Alive(other.Process.Pid) {
		t.Errorf("the plugin of another sandbox was stopped")
	}
	if got := pm.StopOrphanedPlugins(nil); got != nil {
		t.Errorf("no sandboxes: stopped %v", got)
	}
}
