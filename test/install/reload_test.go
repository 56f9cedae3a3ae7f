package install

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// `systemctl reload netshim` (the unit's ExecReload=) sends SIGHUP: the
// netshim systemd started stays up, logs what it reloaded, and answers
// (issue 26.1: SIGHUP ended it silently, which systemd counted as clean).
func TestSIGHUPReloadsUnderTheUnit(t *testing.T) {
	n := newNotifyNode(t)
	n.start()
	n.awaitReady()
	pid := n.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readFile(t, n.log), "SIGHUP: reloading") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged 30s after SIGHUP; log:\n%s", readFile(t, n.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.client().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("after SIGHUP netshim does not answer: %v", err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("netshim (PID %d) ended on SIGHUP", pid)
	}
}

// SIGHUP reads the config file again: a reloadable key (the registry
// config) is applied and logged, a key that takes a restart is logged as
// such, and netshim keeps serving.
func TestSIGHUPReloadsTheConfigFile(t *testing.T) {
	n := newNotifyNode(t)
	n.config = filepath.Join(n.dir, "netshim.toml")
	regA, regB := filepath.Join(n.dir, "a.conf"), filepath.Join(n.dir, "b.conf")
	for _, f := range []string{regA, regB} {
		writeFile(t, f, "[[registry]]\nlocation = \"198.18.0.1:5000\"\ninsecure = true\n", 0o644)
	}
	writeFile(t, n.config, "registry_config = \""+regA+"\"\nmetrics_address = \"\"\n", 0o644)
	n.start()
	n.awaitReady()
	if log := readFile(t, n.log); !strings.Contains(log, "Read the config") || !strings.Contains(log, n.config) {
		t.Fatalf("no log line naming the config file read:\n%s", log)
	}
	writeFile(t, filepath.Join(n.dir, "netshim.toml.d", "50-more.toml"), "registry_config = \""+regB+"\"\nmetrics_address = \"127.0.0.1:0\"\n", 0o644)
	if err := syscall.Kill(n.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readFile(t, n.log), "Reloaded the registry config") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged 30s after SIGHUP; log:\n%s", readFile(t, n.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := readFile(t, n.log)
	for _, want := range []string{
		`"Config changed; applied" key="registry_config" old="` + regA + `" new="` + regB + `"`,
		`"Config changed; it takes a restart of netshim" key="metrics_address" inForce="" new="127.0.0.1:0"`,
		`"Reloaded the registry config" file="` + regB + `"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.client().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("after SIGHUP netshim does not answer: %v", err)
	}
}
