package main

import (
	goflag "flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/network"
	"k8s.io/klog/v2"
)

// reloader re-reads, on SIGHUP, what can change without a restart: the
// registry config, the log verbosity (from --verbosity-file) and the CNI
// conf dir. Everything else is a flag, and takes a restart.
type reloader struct {
	o      options
	images *image.Store
	plugin network.NetworkPlugin
}

func (r reloader) reload() {
	klog.InfoS("SIGHUP: reloading the registry config, the log verbosity and the CNI config")
	if err := r.images.ReloadRegistryConfig(r.o.registryConfig); err != nil {
		klog.ErrorS(err, "Registry config not reloaded; the previous one stays in force")
	} else if r.o.registryConfig != "" {
		klog.InfoS("Reloaded the registry config", "file", r.o.registryConfig)
	}
	if r.o.verbosityFile != "" {
		if err := applyVerbosityFile(r.o.verbosityFile); err != nil {
			klog.ErrorS(err, "Log verbosity not reloaded")
		}
	}
	// The conf dir is watched anyway; a reload makes it certain.
	if p, ok := r.plugin.(interface{ Reload() }); ok {
		p.Reload()
		klog.InfoS("Reloaded the CNI config", "dir", r.o.cniConfDir)
	}
}

// applyVerbosityFile sets klog's verbosity (-v) from path, a file holding
// one number. A missing file leaves the verbosity as it is: the file is
// optional.
func applyVerbosityFile(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--verbosity-file: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if v, err := strconv.ParseUint(text, 10, 31); err != nil {
		return fmt.Errorf("--verbosity-file %s holds %q: want a log verbosity, a number like -v's", path, text)
	} else if err := goflag.CommandLine.Set("v", strconv.FormatUint(v, 10)); err != nil {
		return fmt.Errorf("--verbosity-file %s: %w", path, err)
	}
	klog.InfoS("Log verbosity set", "v", text, "file", path)
	return nil
}
