package main

import (
	goflag "flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/network"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// reloader re-reads, on SIGHUP, what can change without a restart: the
// config file's reloadable keys, the registry config, the log verbosity
// (-v, --verbosity-file) and the CNI conf dir. A change to any other key is
// logged as waiting for a restart.
type reloader struct {
	args    []string          // the command line, parsed again with the files
	applied map[string]string // the effective config in force (effectiveConfig)
	o       options
	images  *image.Store
	plugin  network.NetworkPlugin
}

// reloadable are the config keys a SIGHUP applies.
var reloadable = map[string]bool{"registry_config": true, "verbosity_file": true, "v": true}

func (r *reloader) reload() {
	klog.InfoS("SIGHUP: reloading the config file, the registry config, the log verbosity and the CNI config", "config", r.o.configFile)
	applied, restart, err := r.rereadConfig()
	switch {
	case err != nil:
		klog.ErrorS(err, "Config file not reloaded; the previous config stays in force")
	case len(applied) == 0 && len(restart) == 0:
		klog.InfoS("Config file unchanged")
	}
	for _, c := range applied {
		klog.InfoS("Config changed; applied", "key", c.key, "old", c.old, "new", c.new)
	}
	for _, c := range restart {
		klog.InfoS("Config changed; it takes a restart of netshim", "key", c.key, "inForce", c.old, "new", c.new)
	}
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

type configChange struct{ key, old, new string }

// rereadConfig parses the command line and the config files again. It
// applies the changed keys that are reloadable (the registry config path,
// the verbosity file, -v) and returns them, and the changed keys that take
// a restart, which change nothing. On an error nothing changes.
func (r *reloader) rereadConfig() (applied, restart []configChange, err error) {
	// klog's flags are global: the new flag set parses into them too.
	saved := map[string]string{}
	goflag.CommandLine.VisitAll(func(f *goflag.Flag) { saved[f.Name] = f.Value.String() })
	restore := func(keep string) {
		goflag.CommandLine.VisitAll(func(f *goflag.Flag) {
			if f.Name != keep && f.Value.String() != saved[f.Name] {
				_ = f.Value.Set(saved[f.Name])
			}
		})
	}
	var o options
	fs := newFlagSet("netshim", &o)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(r.args); err != nil {
		restore("")
		return nil, nil, err
	}
	if err := loadConfig(fs, &o); err != nil {
		restore("")
		return nil, nil, err
	}
	now := effectiveConfig(fs, &o)
	keys := make([]string, 0, len(now))
	for k := range now {
		keys = append(keys, k)
	}
	for k := range r.applied {
		if _, ok := now[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		old, cur := r.applied[k], now[k]
		if old == cur {
			continue
		}
		if reloadable[k] {
			applied = append(applied, configChange{k, old, cur})
			r.applied[k] = cur
		} else {
			// Not recorded as applied: the next SIGHUP says it again.
			restart = append(restart, configChange{k, old, cur})
		}
	}
	restore("v")
	r.o.registryConfig, r.o.verbosityFile = o.registryConfig, o.verbosityFile
	return applied, restart, nil
}

// effectiveConfig is the config in force, key by key, as strings: what
// rereadConfig compares.
func effectiveConfig(fs *pflag.FlagSet, o *options) map[string]string {
	m := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if inConfig(f) {
			m[configKey(f.Name)] = f.Value.String()
		}
	})
	for _, h := range o.runtimeHandlers {
		m[handlersKey+"."+h.Name] = fmt.Sprintf("path=%s root=%s args=%q", h.Path, h.Root, h.Args)
	}
	return m
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
