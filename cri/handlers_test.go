package cri

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// startingSandboxes logs the steps of a sandbox's start, and fails the
// pause's start when told to.
type startingSandboxes struct {
	fakeSandboxes
	failPause error
}

func (f *startingSandboxes) Create(spec sandbox.Spec) (*sandbox.Sandbox, error) {
	sb := &sandbox.Sandbox{ID: "sb1", Spec: spec, Status: sandbox.Status{State: sandbox.StateCreating, NetworkAttached: true}}
	f.byID[sb.ID] = sb
	return sb, nil
}

func (f *startingSandboxes) StartPause(_ context.Context, id string) error {
	f.log.add("start pause %s", id)
	return f.failPause
}

func (f *startingSandboxes) Ready(id string, _ []string) error {
	f.log.add("ready %s", id)
	return nil
}

type addingNetwork struct{ fakeNetwork }

func (f *addingNetwork) Status() error                  { return nil }
func (f *addingNetwork) IPFamilies() (bool, bool, bool) { return true, false, true }
func (f *addingNetwork) SetUpPod(_ context.Context, pod network.Pod) (*network.PodNetworkStatus, error) {
	f.log.add("add %s", pod.SandboxID)
	return &network.PodNetworkStatus{IPs: []net.IP{net.ParseIP("198.18.0.2")}}, nil
}

func handlerServer(log *callLog, failPause error) (*Server, *startingSandboxes) {
	sbs := &startingSandboxes{fakeSandboxes: fakeSandboxes{log: log, byID: map[string]*sandbox.Sandbox{}}, failPause: failPause}
	s := NewServer(Services{Sandboxes: sbs, Network: &addingNetwork{fakeNetwork{log: log}}, Containers: noContainers{}}, Dirs{})
	s.SetHandlers(&oci.Handler{Name: "runc", Features: oci.Features{UserNamespaces: true}}, []*oci.Handler{
		{Name: "runsc", GVisor: true},
		{Name: "crun", Unavailable: errors.New("cgroups in hybrid mode not supported")},
	})
	return s, sbs
}

// gVisor's sandbox takes the pod's interfaces when it boots: the ADD comes
// before the pause starts, and a pause that fails to start is undone with a
// DEL, as any failed start is.
func TestGVisorPodGetsItsNetworkBeforeItsPause(t *testing.T) {
	log := &callLog{}
	s, _ := handlerServer(log, nil)
	if _, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podCfg("g"), RuntimeHandler: "runsc"}); err != nil {
		t.Fatal(err)
	}
	if add, pause := log.index("add sb1"), log.index("start pause sb1"); add < 0 || pause < add {
		t.Errorf("calls %v: want the ADD before the pause's start", log.calls)
	}

	log = &callLog{}
	s, sbs := handlerServer(log, errors.New("runsc: boot failed"))
	_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: podCfg("g"), RuntimeHandler: "runsc"})
	if err == nil || !strings.Contains(err.Error(), "boot failed") {
		t.Fatalf("RunPodSandbox with a failing pause: %v", err)
	}
	if log.index("del sb1") < 0 || log.index("remove sb1") < 0 {
		t.Errorf("calls %v: a failed start must be undone, DEL and remove", log.calls)
	}
	if _, ok := sbs.byID["sb1"]; ok {
		t.Error("the sandbox whose start failed is still recorded")
	}
}

// A RuntimeClass naming no configured handler is InvalidArgument listing
// those there are; one this host cannot run is FailedPrecondition saying
// why; a user namespace on a handler without them is FailedPrecondition.
// None of them makes anything.
func TestHandlersRefusedBeforeAnythingIsMade(t *testing.T) {
	log := &callLog{}
	s, sbs := handlerServer(log, nil)
	ids := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1 << 20, Length: 65536}}
	userns := podCfg("u")
	userns.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: ids, Gids: ids}}}}
	for _, c := range []struct {
		handler string
		cfg     *runtimeapi.PodSandboxConfig
		want    error
		says    string
	}{
		{"kata", podCfg("k"), errdefs.ErrInvalidArgument, "runsc"},
		{"crun", podCfg("c"), errdefs.ErrFailedPrecondition, "hybrid mode"},
		{"runsc", userns, errdefs.ErrFailedPrecondition, "user namespace"},
	} {
		_, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: c.cfg, RuntimeHandler: c.handler})
		if !errors.Is(err, c.want) {
			t.Errorf("handler %s: %v, want %v", c.handler, err, c.want)
		}
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("handler %s: %v, want it to say %q", c.handler, err, c.says)
		}
	}
	if len(sbs.byID) != 0 || len(log.calls) != 0 {
		t.Errorf("refused requests made something: %v %v", sbs.byID, log.calls)
	}
	// The default handler, by either name, with a user namespace, runs.
	for _, h := range []string{"", "runc"} {
		if _, err := s.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: userns, RuntimeHandler: h}); err != nil {
			t.Errorf("handler %q with a user namespace: %v", h, err)
		}
		delete(sbs.byID, "sb1")
	}
}

// Status lists "" and "runc" for the default, then each handler with its
// features; an unusable handler has none.
func TestStatusRuntimeHandlers(t *testing.T) {
	s, _ := handlerServer(&callLog{}, nil)
	got := s.runtimeHandlers()
	var names []string
	for _, h := range got {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != ",runc,crun,runsc" {
		t.Errorf("handlers %q", names)
	}
	if !got[0].Features.UserNamespaces || got[2].Features.UserNamespaces {
		t.Errorf("features: default %v, crun %v", got[0].Features, got[2].Features)
	}
}
