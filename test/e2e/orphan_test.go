package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// slowBridgeBinDir is a CNI bin dir whose bridge plugin, on ADD, opens the
// pod's netns (as a plugin does early on), touches marker and waits `delay`
// before it does its work through that open netns; the other plugins are
// the real ones.
func slowBridgeBinDir(t *testing.T, marker string, delay time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"host-local", "loopback", "portmap", "bandwidth"} {
		if err := os.Symlink(filepath.Join(binDir, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
if [ "$CNI_COMMAND" = ADD ]; then
	exec 3<"$CNI_NETNS"
	export CNI_NETNS=/proc/self/fd/3
	touch %q
	sleep %d
fi
exec %q
`, marker, int(delay.Seconds()), filepath.Join(binDir, "bridge"))
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// netshim is killed while a plugin's ADD is still running. The plugin was
// netshim's child; it must not go on to add an interface and an IP after
// the restarted netshim has undone the set-up: nothing may be left.
func TestPluginOutlivingAKilledNetshimLeavesNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "add-started")
	const delay = 3 * time.Second
	s := startShim(t, withArgs("--cni-bin-dir", slowBridgeBinDir(t, marker, delay)))

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := s.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("orphan")})
		done <- err
	}()
	eventually(t, 10*time.Second, "the bridge plugin's ADD to start", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	s.stop(syscall.SIGKILL)
	if err := <-done; err == nil {
		t.Fatal("RunPodSandbox succeeded although netshim was killed during its ADD")
	}
	s.start()
	if !strings.Contains(s.log(), "Stopping a network plugin left running by a previous netshim") {
		t.Errorf("the restarted netshim did not say it stopped the plugin left running")
	}
	eventually(t, 10*time.Second, "the interrupted set-up to be undone", func() bool {
		list, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
		return err == nil && len(list.Items) == 0
	})
	time.Sleep(delay + time.Second) // past the moment the plugin would have finished
	if ports := s.bridgePorts(); len(ports) > 0 {
		t.Errorf("the plugin added %v to the bridge after the restart", ports)
	}
	if ips := s.ipReservations(); len(ips) > 0 {
		t.Errorf("the plugin reserved %v after the restart", ips)
	}
}
