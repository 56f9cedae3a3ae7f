package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/reaper"
	"github.com/netshim/netshim/sandbox"
	"k8s.io/klog/v2"
)

// runtimeHandlers builds the default handler (runc, from --oci-runtime)
// and the configured ones, and probes them all side by side: what each
// runtime can do here (Status tells kubelet) and, for the configured ones,
// whether this host can run it at all. A handler that cannot run is kept,
// said once here, and its pods are refused; a runtime that is not
// installed is an error.
func runtimeHandlers(ctx context.Context, o *options) (*oci.Handler, []*oci.Handler, error) {
	def := &oci.Handler{
		Name:       "runc",
		Sandbox:    &oci.Runc{Binary: o.ociRuntime, Root: filepath.Join(o.stateDir, "runtime")},
		Containers: &oci.Runc{Binary: o.ociRuntime, Root: filepath.Join(o.stateDir, "containers-runc")},
	}
	all := []*oci.Handler{def}
	var others []*oci.Handler
	for _, c := range o.runtimeHandlers {
		root := c.Root
		if root == "" {
			root = filepath.Join(o.stateDir, "runtimes", c.Name)
		}
		// One root for the sandboxes and the containers: gVisor's runsc
		// finds there the sandbox a container joins.
		r := &oci.Runc{Binary: c.Path, Root: root, Args: c.Args}
		h := &oci.Handler{Name: c.Name, Sandbox: r, Containers: r}
		others = append(others, h)
		all = append(all, h)
	}
	probe := oci.ProbeOptions{PauseBinary: o.pauseBinary, IDMapDirs: []string{o.rootDir, o.stateDir}}
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, h := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := probe
			p.Run = h != def
			errs[i] = oci.Probe(ctx, h, p)
		}()
	}
	wg.Wait()
	for i, h := range all {
		if errs[i] != nil {
			return nil, nil, errs[i]
		}
		if h.Unavailable != nil {
			klog.ErrorS(h.Unavailable, "Runtime handler cannot run pods on this host; its pods will be refused", "handler", h.Name, "runtime", h.Sandbox.Binary)
			continue
		}
		klog.InfoS("Runtime handler ready", "handler", h.Name, "runtime", h.Sandbox.Binary, "root", h.Sandbox.Root,
			"specVersion", h.SpecVersion, "gVisor", h.GVisor, "recursiveReadOnlyMounts", h.Features.RecursiveReadOnlyMounts,
			"userNamespaces", h.Features.UserNamespaces)
	}
	return def, others, nil
}

// sandboxHandlers and containerHandlers are the managers' view of the
// configured handlers.
func sandboxHandlers(hs []*oci.Handler, reap *reaper.Reaper) map[string]sandbox.Handler {
	out := map[string]sandbox.Handler{}
	for _, h := range hs {
		if h.GVisor {
			reap.ReapOrphansNamed(oci.GVisorProcessName)
		}
		out[h.Name] = sandbox.Handler{Runtime: h.Sandbox, SpecVersion: h.SpecVersion}
	}
	return out
}

func containerHandlers(hs []*oci.Handler, conmon string) (map[string]container.Handler, error) {
	out := map[string]container.Handler{}
	for _, h := range hs {
		mon := &oci.Conmon{Binary: conmon, Runtime: h.Containers}
		var rt container.Runtime = h.Containers
		if h.GVisor {
			rt = oci.GVisorRunc{Runc: h.Containers}
			self, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("runtime handler %s: find netshim's own binary for conmon: %w", h.Name, err)
			}
			mon.Wrapper = []string{self, oci.GVisorRuntimeCommand}
		}
		out[h.Name] = container.Handler{Runtime: rt, Monitor: mon, SpecVersion: h.SpecVersion}
	}
	return out, nil
}
