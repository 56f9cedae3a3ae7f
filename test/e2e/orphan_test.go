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

// wrappedBridgeBinDir is a CNI bin dir whose bridge plugin is the shell
// script body (which may exec $REAL_BRIDGE); the other plugins are the real ones.
func wrappedBridgeBinDir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"host-local", "loopback", "portmap", "bandwidth"} {
		if err := os.Symlink(filepath.Join(binDir, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf("#!/bin/sh\nREAL_BRIDGE=%q\n%s", filepath.Join(binDir, "bridge"), body)
	if err := os.WriteFile(filepath.Join(dir, "bridge"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runUntilPluginWaits starts a RunPodSandbox and returns once the wrapped
// bridge plugin has touched marker; the returned channel gets the call's result.
func runUntilPluginWaits(t *testing.T, s *shim, marker string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := s.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("orphan")})
		done <- err
	}()
	eventually(t, 10*time.Second, "the bridge plugin's ADD to reach its wait", func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	return done
}

// netshim is killed while a plugin's ADD is still running. The plugin was
// netshim's child; it must not go on to add an interface and an IP after
// the restarted netshim has undone the set-up: nothing may be left.
func TestPluginOutlivingAKilledNetshimLeavesNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "add-started")
	const delay = 3 * time.Second
	// The wrapper opens the pod's netns, as a plugin does early on, then
	// waits before doing the ADD through that open netns.
	s := startShim(t, withArgs("--cni-bin-dir", wrappedBridgeBinDir(t, fmt.Sprintf(`
if [ "$CNI_COMMAND" = ADD ]; then
	exec 3<"$CNI_NETNS"
	export CNI_NETNS=/proc/self/fd/3
	touch %q
	sleep %d
fi
exec "$REAL_BRIDGE"
`, marker, int(delay.Seconds())))))
	done := runUntilPluginWaits(t, s, marker)
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

// netshim is killed after a plugin's ADD took an IP but before the result
// came back, so libcni never cached it; then the conf dir moves to another
// network. The restarted netshim must DEL the network the ADD ran with
// (recorded before it ran), not the new one, or the IP leaks.
func TestDelAfterACrashUsesTheNetworkTheAddRanWith(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "add-done")
	s := startShim(t, withArgs("--cni-bin-dir", wrappedBridgeBinDir(t, fmt.Sprintf(`
if [ "$CNI_COMMAND" = ADD ]; then
	out=$("$REAL_BRIDGE") || { echo "$out"; exit 1; }
	touch %q
	sleep 60
	echo "$out"
	exit 0
fi
exec "$REAL_BRIDGE"
`, marker))))
	done := runUntilPluginWaits(t, s, marker)
	if ips := s.ipReservations(); len(ips) != 1 {
		t.Fatalf("the ADD reserved %v, want one IP", ips)
	}
	s.stop(syscall.SIGKILL)
	<-done

	// The node's network config changes while netshim is down.
	if err := os.Remove(filepath.Join(s.confDir, "10-e2e.conflist")); err != nil {
		t.Fatal(err)
	}
	moved := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"e2e-moved","plugins":[{"type":"bridge","bridge":%q,
	  "ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]]}}]}`, s.net.Bridge+"b", s.ipamDir, s.net.Subnet)
	if err := os.WriteFile(filepath.Join(s.confDir, "20-moved.conflist"), []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	eventually(t, 10*time.Second, "the interrupted set-up to be undone", func() bool {
		list, err := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
		return err == nil && len(list.Items) == 0
	})
	if ips := s.ipReservations(); len(ips) > 0 {
		t.Errorf("the IP the interrupted ADD took in network e2e is still reserved: %v", ips)
	}
	if ports := s.bridgePorts(); len(ports) > 0 {
		t.Errorf("the interrupted ADD's interface is still on the bridge: %v", ports)
	}
}
