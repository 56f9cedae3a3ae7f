package cni

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"k8s.io/klog/v2"
)

// confExtensions are the file types kubelet and containerd read, in that dir.
var confExtensions = []string{".conf", ".conflist", ".json"}

// Network is one loaded network configuration and the file it came from.
type Network struct {
	File string
	List *libcni.NetworkConfigList

	families familiesOnce // read from List's IPAM config on first use
}

// LoadDefaultNetwork returns the first valid network of confDir in lexical
// file order. A file that does not parse, or names a plugin binary that none
// of binDirs holds, is skipped with a log line saying why. It returns nil and
// an error naming confDir when no file is usable.
func LoadDefaultNetwork(confDir string, binDirs []string) (*Network, error) {
	files, err := libcni.ConfFiles(confDir, confExtensions) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("read CNI conf dir %s: %w", confDir, err)
	}
	var skipped []string
	for _, file := range files {
		list, err := LoadFile(file)
		if err == nil {
			err = checkBinaries(list, binDirs)
		}
		if err != nil {
			klog.InfoS("Skipping CNI config file", "file", file, "reason", err)
			skipped = append(skipped, fmt.Sprintf("%s: %v", filepath.Base(file), err))
			continue
		}
		return &Network{File: file, List: list}, nil
	}
	if len(skipped) > 0 {
		// The reasons make NetworkReady's message actionable.
		return nil, fmt.Errorf("no valid CNI network config found in %s (skipped %s)", confDir, strings.Join(skipped, "; "))
	}
	return nil, fmt.Errorf("no valid CNI network config found in %s", confDir)
}

// maxConfSize bounds what is read of one config file: a real one is a few KiB.
const maxConfSize = 1 << 20

// LoadFile parses a .conflist, or a single-plugin .conf wrapped as a list.
// A .json file may be either; the "plugins" key tells them apart.
func LoadFile(file string) (*libcni.NetworkConfigList, error) {
	raw, err := readSmall(file)
	if err != nil {
		return nil, err
	}
	isList := filepath.Ext(file) == ".conflist"
	if filepath.Ext(file) == ".json" {
		var probe struct {
			Plugins json.RawMessage `json:"plugins"`
		}
		isList = json.Unmarshal(raw, &probe) == nil && probe.Plugins != nil
	}
	if isList {
		list, err := libcni.NetworkConfFromBytes(raw)
		if err != nil {
			return nil, err
		}
		if len(list.Plugins) == 0 {
			return nil, fmt.Errorf("network %q lists no plugins", list.Name)
		}
		return list, nil
	}
	conf, err := libcni.NetworkPluginConfFromBytes(raw)
	if err != nil {
		return nil, err
	}
	if conf.Network.Type == "" {
		return nil, fmt.Errorf("plugin config has no type")
	}
	// Wrapped as a one-plugin list here: libcni's own upconversion
	// (ConfListFromConf) is deprecated, but kubelet's CNI plugin loaded
	// single-plugin .conf files, and nodes still carry them.
	var plugin map[string]any
	if err := json.Unmarshal(conf.Bytes, &plugin); err != nil {
		return nil, err
	}
	wrapped, err := json.Marshal(map[string]any{"name": conf.Network.Name, "cniVersion": conf.Network.CNIVersion, "plugins": []any{plugin}})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(wrapped)
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfSize {
		return nil, fmt.Errorf("larger than %d bytes", maxConfSize)
	}
	return data, nil
}

func checkBinaries(list *libcni.NetworkConfigList, binDirs []string) error {
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, binDirs); err != nil {
			return fmt.Errorf("plugin %q of network %q: %w", p.Network.Type, list.Name, err)
		}
	}
	return nil
}
