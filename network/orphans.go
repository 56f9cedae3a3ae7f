package network

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/netshim/netshim/pkg/proc"
	"k8s.io/klog/v2"
)

// orphanExitWait bounds how long StopOrphanedPlugins waits for a killed plugin to exit.
const orphanExitWait = 10 * time.Second

// StopOrphanedPlugins kills, by PID, plugin processes that a previous netshim
// started for these sandboxes and that outlived it, and waits until they
// have exited; it returns their PIDs. It runs at start, before recovery's
// DEL: a plugin still in its ADD would otherwise create an interface and
// reserve an IP after that DEL, and one still in a DEL would overlap the
// new one. A plugin learns its sandbox from CNI_CONTAINERID, and sandbox IDs
// are random, so no other runtime's plugin is ever matched.
func (pm *PluginManager) StopOrphanedPlugins(sandboxIDs []string) []int {
	if len(sandboxIDs) == 0 {
		return nil
	}
	// Exclusive, like GC: no operation of this netshim runs meanwhile.
	pm.gc.Lock()
	defer pm.gc.Unlock()
	want := map[string]bool{}
	for _, id := range sandboxIDs {
		want["CNI_CONTAINERID="+id] = true
	}
	pids := processesWithEnv(want)
	for pid, entry := range pids {
		klog.InfoS("Stopping a network plugin left running by a previous netshim", "pid", pid, "sandbox", entry[len("CNI_CONTAINERID="):])
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(orphanExitWait)
	var stopped []int
	for pid := range pids {
		for proc.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if proc.Alive(pid) {
			klog.InfoS("A network plugin left running by a previous netshim did not exit", "pid", pid)
		}
		stopped = append(stopped, pid)
	}
	return stopped
}

// processesWithEnv maps the PIDs of processes, other than this one, whose
// environment holds one of the entries in want, to that entry.
func processesWithEnv(want map[string]bool) map[int]string {
	found := map[int]string{}
	for _, pid := range proc.PIDs() {
		if pid == os.Getpid() {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if err != nil {
			continue // exited meanwhile, or a kernel thread
		}
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if want[string(kv)] {
				found[pid] = string(kv)
				break
			}
		}
	}
	return found
}
