package cri

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultHandler is the name of the handler a RuntimeClass-less pod gets;
// "" names it too, as the CRI says.
const DefaultHandler = "runc"

// SetHandlers sets the runtime handlers the server offers: def is the
// default (its Name is DefaultHandler), others are those configured. The
// server reports them in Status and runs each pod with the one its
// RuntimeClass names.
func (s *Server) SetHandlers(def *oci.Handler, others []*oci.Handler) {
	s.defaultHandler = def
	s.handlers = map[string]*oci.Handler{}
	for _, h := range others {
		s.handlers[h.Name] = h
	}
}

// isDefaultHandler: "" and "runc" both name the default handler.
func isDefaultHandler(name string) bool { return name == "" || name == DefaultHandler }

// checkHandler refuses a pod's runtime handler that is not configured
// (InvalidArgument) or that this host cannot run (FailedPrecondition).
func (s *Server) checkHandler(name string) (*oci.Handler, error) {
	if isDefaultHandler(name) {
		return s.defaultHandler, nil
	}
	h, ok := s.handlers[name]
	if !ok {
		names := append([]string{`"" or "runc" (the default)`}, slices.Sorted(maps.Keys(s.handlers))...)
		return nil, errdefs.InvalidField("runtime_handler", "%q is not configured: this netshim offers %s", name, strings.Join(names, ", "))
	}
	if h.Unavailable != nil {
		return nil, fmt.Errorf("runtime handler %q cannot run pods on this host: %v: %w", name, h.Unavailable, errdefs.ErrFailedPrecondition)
	}
	return h, nil
}

// execerFor is the runtime that runs processes in the containers of a
// handler's pods.
func (s *Server) execerFor(handler string) Execer {
	if h, ok := s.handlers[handler]; ok { // never the default: config refuses its names
		return h.Containers
	}
	return s.execer
}

// runtimeHandlers answers Status.runtime_handlers: the default under ""
// and "runc", then each configured handler, with the features measured on
// this host at start. A handler this host cannot run is listed without
// features: kubelet then admits none of its pods asking for them.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	features := func(h *oci.Handler) *runtimeapi.RuntimeHandlerFeatures {
		if h == nil || h.Unavailable != nil {
			return &runtimeapi.RuntimeHandlerFeatures{}
		}
		return &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: h.Features.RecursiveReadOnlyMounts,
			UserNamespaces:          h.Features.UserNamespaces,
		}
	}
	out := []*runtimeapi.RuntimeHandler{
		{Name: "", Features: features(s.defaultHandler)},
		{Name: DefaultHandler, Features: features(s.defaultHandler)},
	}
	for _, name := range slices.Sorted(maps.Keys(s.handlers)) {
		out = append(out, &runtimeapi.RuntimeHandler{Name: name, Features: features(s.handlers[name])})
	}
	return out
}
