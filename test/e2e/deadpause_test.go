package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// killPausePlugin is the name under which this test binary acts as a CNI
// plugin (TestMain dispatches on it): chained after bridge, its ADD kills
// the pod's pause process and waits until netshim has reaped it, then
// passes bridge's result on, so the ADD itself succeeds.
const killPausePlugin = "e2e-kill-pause"

// A pause that dies while the network ADD runs must not leave a READY
// sandbox whose infra process is gone: RunPodSandbox fails and undoes
// everything (netns pin, IP, veth, runtime container, record).
func TestPauseDyingDuringAddFailsTheSandbox(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := startShim(t, withPlugin(killPausePlugin, self), withExtraPlugin(fmt.Sprintf(`{"type":%q}`, killPausePlugin)))

	resp, err := s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: podConfig("deadpause")})
	if err == nil {
		st, info := s.status(resp.PodSandboxId)
		t.Fatalf("RunPodSandbox succeeded although the pause (pid %d) died during the ADD: state %v", info.PID, st.State)
	}
	t.Logf("RunPodSandbox: %v", err)
	if !strings.Contains(err.Error(), "pause process exited") {
		t.Errorf("RunPodSandbox failed with %v; want it to say the pause process exited", err)
	}
	list, lerr := s.rt.ListPodSandbox(s.ctx(), &runtimeapi.ListPodSandboxRequest{})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(list.Items) != 0 {
		t.Errorf("sandboxes %v are left after the failed RunPodSandbox, want none", list.Items)
	}
	if r := s.ipReservations(); len(r) != 0 {
		t.Errorf("IP reservations %v are left: the undo sent no DEL", r)
	}
	if p := s.bridgePorts(); len(p) != 0 {
		t.Errorf("bridge ports %v are left: the undo sent no DEL", p)
	}
	if pins, _ := os.ReadDir(s.netnsDir); len(pins) != 0 {
		t.Errorf("%d netns pins are left", len(pins))
	}
	// The cleanup reports any runtime container, bundle or cgroup left.
}

// runKillPausePlugin is the plugin's main: it returns the exit code.
func runKillPausePlugin() int {
	fail := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"cniVersion": "1.0.0", "code": 999, "msg": msg})
		return 1
	}
	switch os.Getenv("CNI_COMMAND") {
	case "VERSION":
		fmt.Println(`{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}`)
		return 0
	case "ADD":
	default:
		return 0 // DEL, CHECK, GC, STATUS: nothing to do
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fail("read config: %v", err)
	}
	var conf struct {
		CNIVersion string         `json:"cniVersion"`
		PrevResult map[string]any `json:"prevResult"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return fail("decode config: %v", err)
	}
	var pin syscall.Stat_t
	if err := syscall.Stat(os.Getenv("CNI_NETNS"), &pin); err != nil {
		return fail("stat netns %s: %v", os.Getenv("CNI_NETNS"), err)
	}
	// The pause starts alongside the ADD: wait for it to be in the netns.
	var pid int
	for deadline := time.Now().Add(60 * time.Second); pid == 0; {
		pid = pauseIn(pin)
		if pid == 0 {
			if time.Now().After(deadline) {
				return fail("no pause process appeared in netns %s", os.Getenv("CNI_NETNS"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fail("kill pause %d: %v", pid, err)
	}
	// Gone from /proc only once netshim, its subreaper, has reaped it: the
	// exit has then reached netshim before this ADD returns.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			return fail("killed pause %d was not reaped", pid)
		}
	}
	result := conf.PrevResult
	if result == nil {
		result = map[string]any{}
	}
	result["cniVersion"] = conf.CNIVersion
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		return 1
	}
	return 0
}

// pauseIn returns the PID of a process named pause in the netns pinned at
// pin, or 0.
func pauseIn(pin syscall.Stat_t) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var ns syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &ns) != nil || ns.Dev != pin.Dev || ns.Ino != pin.Ino {
			continue
		}
		if comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); strings.TrimSpace(string(comm)) == "pause" {
			return pid
		}
	}
	return 0
}
