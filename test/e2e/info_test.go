package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// `crictl info` (the verbose Status) shows the effective configuration
// under "config": the values netshim was started with, the CNI network it
// loaded and from which file, and the streaming address it serves on
// (issue 26.4).
func TestStatusVerboseShowsEffectiveConfig(t *testing.T) {
	regConf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(regConf, []byte("# no registries\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startShim(t, withArgs("--registry-config", regConf))
	resp, err := s.rt.Status(s.ctx(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	raw := resp.Info["config"]
	var cfg struct {
		Version          string   `json:"version"`
		CgroupDriver     string   `json:"cgroupDriver"`
		NetworkPlugin    string   `json:"networkPlugin"`
		CNINetwork       string   `json:"cniNetwork"`
		CNINetworkFile   string   `json:"cniNetworkFile"`
		CNIConfDir       string   `json:"cniConfDir"`
		CNIBinDirs       []string `json:"cniBinDirs"`
		CNICacheDir      string   `json:"cniCacheDir"`
		RootDir          string   `json:"rootDir"`
		StateDir         string   `json:"stateDir"`
		RegistryConfig   string   `json:"registryConfig"`
		StreamingAddress string   `json:"streamingAddress"`
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("info config %q: %v", raw, err)
	}
	ver, err := s.rt.Version(s.ctx(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		field     string
		got, want any
	}{
		{"version", cfg.Version, ver.RuntimeVersion},
		{"cgroupDriver", cfg.CgroupDriver, "cgroupfs"},
		{"networkPlugin", cfg.NetworkPlugin, "cni"},
		{"cniNetwork", cfg.CNINetwork, "e2e"},
		{"cniNetworkFile", cfg.CNINetworkFile, filepath.Join(s.confDir, "10-e2e.conflist")},
		{"cniConfDir", cfg.CNIConfDir, s.confDir},
		{"cniBinDirs", cfg.CNIBinDirs, []string{s.binDir}},
		{"cniCacheDir", cfg.CNICacheDir, filepath.Join(s.dir, "cni-cache")},
		{"rootDir", cfg.RootDir, filepath.Join(s.dir, "root")},
		{"stateDir", cfg.StateDir, filepath.Join(s.dir, "run")},
		{"registryConfig", cfg.RegistryConfig, regConf},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("crictl info config.%s = %v, want %v (config %s)", c.field, c.got, c.want, raw)
		}
	}
	// The address actually served, not the flag's port 0.
	if !strings.HasPrefix(cfg.StreamingAddress, "127.0.0.1:") || strings.HasSuffix(cfg.StreamingAddress, ":0") {
		t.Errorf("crictl info config.streamingAddress = %q, want the loopback address served on (config %s)", cfg.StreamingAddress, raw)
	}
}
