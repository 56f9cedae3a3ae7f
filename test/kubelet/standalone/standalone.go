// Package standalone runs a real kubelet (bin/kubelet, built by
// `make bin/kubelet`) in standalone mode against a CRI runtime it is given:
// static pods from a manifest dir, no API server, its read-only API on
// loopback, everything else in a temp dir.
//
// kubelet owns its runtime: it stops every pod it did not create, so give
// it a runtime nobody else uses. It also changes node sysctls and makes a
// few host dirs; Stop puts the sysctls back and removes the dirs it made.
package standalone

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/netshim/netshim/test/bench"
)

// Sysctls kubelet sets on the node, which Stop puts back.
var Sysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// HostDirs kubelet makes whatever its root dir; Stop removes those that did
// not exist before Start.
var HostDirs = []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods"}

// Options say which kubelet runs against which runtime.
type Options struct {
	Binary   string // the kubelet binary
	Endpoint string // CRI endpoint, unix://...
	Dir      string // an empty dir of the caller's; kubelet's root, logs and manifests go below it
	NodeName string
	// Ready bounds the wait for kubelet's read-only API; 0 means a minute.
	Ready time.Duration
	// FeatureGates are set in kubelet's configuration (e.g. EventedPLEG).
	FeatureGates map[string]bool
}

// Kubelet is one running kubelet.
type Kubelet struct {
	o            Options
	cmd          *exec.Cmd
	log          *os.File
	readOnlyPort int
	sysctls      map[string]string
	existed      map[string]bool
}

// Manifests is the static pod dir kubelet watches.
func (k *Kubelet) Manifests() string { return filepath.Join(k.o.Dir, "manifests") }

// PodLogs is where kubelet puts the pods' logs.
func (k *Kubelet) PodLogs() string { return filepath.Join(k.o.Dir, "pod-logs") }

// Log is kubelet's own log file.
func (k *Kubelet) Log() string { return filepath.Join(k.o.Dir, "kubelet.log") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs kubelet and waits for its read-only API. On error, what it
// made is undone.
func Start(o Options) (k *Kubelet, err error) {
	if o.Ready == 0 {
		o.Ready = time.Minute
	}
	k = &Kubelet{o: o, sysctls: map[string]string{}, existed: map[string]bool{}}
	for _, s := range Sysctls {
		if data, err := os.ReadFile("/proc/sys/" + s); err == nil {
			k.sysctls[s] = string(data)
		}
	}
	for _, d := range HostDirs {
		_, err := os.Stat(d)
		k.existed[d] = err == nil
	}
	defer func() {
		if err != nil {
			k.Stop()
		}
	}()
	work := filepath.Join(o.Dir, "work")
	for _, d := range []string{k.Manifests(), work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return k, err
		}
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return k, err
		}
	}
	k.readOnlyPort = ports[1]
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: %s
fileCheckFrequency: 1s
syncFrequency: 3s
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: %s
address: 127.0.0.1
port: %d
readOnlyPort: %d
healthzBindAddress: 127.0.0.1
healthzPort: %d
failSwapOn: false
podLogsDir: %s
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
localStorageCapacityIsolation: false
resolvConf: ""
`, k.Manifests(), o.Endpoint, ports[0], ports[1], ports[2], k.PodLogs())
	if len(o.FeatureGates) > 0 {
		cfg += "featureGates:\n"
		for name, on := range o.FeatureGates {
			cfg += fmt.Sprintf("  %s: %t\n", name, on)
		}
	}
	cfgPath := filepath.Join(o.Dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return k, err
	}
	if k.log, err = os.Create(k.Log()); err != nil {
		return k, err
	}
	k.cmd = exec.Command(o.Binary, "--config", cfgPath, "--root-dir", filepath.Join(o.Dir, "kubelet"),
		"--cert-dir", filepath.Join(o.Dir, "pki"), "--hostname-override", o.NodeName, "-v", "2")
	k.cmd.Stdout, k.cmd.Stderr = k.log, k.log
	// kubelet deletes <log_path>* of removed containers: give it a dir of its own.
	k.cmd.Dir = work
	if err := k.cmd.Start(); err != nil {
		k.cmd = nil
		return k, fmt.Errorf("start kubelet: %w", err)
	}
	deadline := time.Now().Add(o.Ready)
	for {
		if _, err := k.Pods(); err == nil {
			return k, nil
		}
		if time.Now().After(deadline) {
			return k, fmt.Errorf("kubelet's read-only API did not answer within %s; see %s", o.Ready, k.Log())
		}
		if k.cmd.ProcessState != nil {
			return k, fmt.Errorf("kubelet exited; see %s", k.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops kubelet by its PID, unmounts what it mounted below its dir,
// and puts back the node's sysctls and host dirs. The pods it ran stay on
// the runtime: the caller removes them there.
func (k *Kubelet) Stop() {
	if k.cmd != nil {
		bench.StopProcess(k.cmd, 15*time.Second)
		k.cmd = nil
	}
	if k.log != nil {
		k.log.Close()
	}
	bench.UnmountAllUnder(k.o.Dir) // kubelet bind-mounts its own root dir
	for s, v := range k.sysctls {
		_ = os.WriteFile("/proc/sys/"+s, []byte(v), 0o644)
	}
	for _, d := range HostDirs {
		if !k.existed[d] {
			_ = os.RemoveAll(d)
		}
	}
}

// Pod is what kubelet's read-only /pods says of one pod.
type Pod struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type, Status string
		} `json:"conditions"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			Ready        bool   `json:"ready"`
			RestartCount int    `json:"restartCount"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

// RunningAndReady is true when the pod's phase is Running and its Ready
// condition is True.
func (p *Pod) RunningAndReady() bool {
	if p.Status.Phase != "Running" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// Pods lists the pods kubelet knows, from its read-only API.
func (k *Kubelet) Pods() ([]Pod, error) {
	if k.readOnlyPort == 0 {
		return nil, errors.New("kubelet is not running")
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/pods", k.readOnlyPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("kubelet's /pods answered %s", resp.Status)
	}
	var list struct{ Items []Pod }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("read kubelet's /pods: %w", err)
	}
	return list.Items, nil
}

// Pod finds a pod by its name's prefix (static pods get the node's name
// appended), or nil.
func (k *Kubelet) Pod(prefix string) (*Pod, error) {
	pods, err := k.Pods()
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if strings.HasPrefix(pods[i].Metadata.Name, prefix) {
			return &pods[i], nil
		}
	}
	return nil, nil
}
