// Package sandbox owns the pod sandboxes: their records and checkpoints, the
// pinned network namespace of each, the OCI bundle and the pause process run
// through an OCI runtime. It knows nothing of CNI; cri sequences the two.
package sandbox

import (
	"fmt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"time"

	"github.com/netshim/netshim/pkg/errdefs"
)

// State is a sandbox's lifecycle state.
type State string

const (
	// StateCreating: recorded, system resources being made. A sandbox found
	// in this state after a restart was interrupted and is undone.
	StateCreating State = "creating"
	StateReady    State = "ready"
	StateNotReady State = "notready"
)

// DNS is the resolver configuration written to the sandbox's resolv.conf.
type DNS struct {
	Servers  []string `json:"servers,omitempty"`
	Searches []string `json:"searches,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// Spec is what the caller asks for; the fields the sandbox itself uses are
// typed, and Config carries the caller's full request for its own later use.
type Spec struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	UID         string            `json:"uid"`
	Attempt     uint32            `json:"attempt"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	Hostname     string            `json:"hostname,omitempty"`
	DNS          *DNS              `json:"dns,omitempty"`
	Sysctls      map[string]string `json:"sysctls,omitempty"`
	CgroupParent string            `json:"cgroupParent,omitempty"`
	HostNetwork  bool              `json:"hostNetwork,omitempty"`
	HostPID      bool              `json:"hostPID,omitempty"`
	HostIPC      bool              `json:"hostIPC,omitempty"`
	// UserNS is the pod's own user namespace (kubelet's hostUsers: false);
	// nil is the host's.
	UserNS *IDMappings `json:"userNS,omitempty"`
	// RuntimeHandler names the handler (RuntimeClass) that runs the pod;
	// "" is the default, runc.
	RuntimeHandler string `json:"runtimeHandler,omitempty"`

	// Config is opaque to this package (cri keeps the PodSandboxConfig here).
	Config []byte `json:"config,omitempty"`
}

// IDMappings map a user namespace's IDs to the host's: one range each,
// with container ID 0 in it, as kubelet sends them.
type IDMappings struct {
	UIDs []specs.LinuxIDMapping `json:"uids"`
	GIDs []specs.LinuxIDMapping `json:"gids"`
}

// ReservationName is kubelet's sandbox name, unique per pod attempt.
func (s Spec) ReservationName() string {
	return fmt.Sprintf("%s_%s_%s_%d", s.Name, s.Namespace, s.UID, s.Attempt)
}

// Sandbox is the record of one sandbox, as checkpointed: what was asked
// for, which never changes, and its Status, which changes only through the
// manager's transitions.
type Sandbox struct {
	ID        string    `json:"id"`
	Spec      Spec      `json:"spec"`
	CreatedAt time.Time `json:"createdAt"`
	Status
}

// Status is the part of a sandbox's record that changes. Its fields are
// inlined in the checkpoint, as they were before it was a struct of its own.
type Status struct {
	State State `json:"state"`

	// NetNSPath is the pin of the sandbox's netns; "" with host network or once unpinned.
	NetNSPath string `json:"netnsPath,omitempty"`
	// PausePID and PauseStartTime identify the pause process (the start time
	// guards against PID reuse); zero once it is stopped.
	PausePID       int    `json:"pausePID,omitempty"`
	PauseStartTime uint64 `json:"pauseStartTime,omitempty"`
	// PauseExited is set when the pause process exited on its own.
	PauseExited bool `json:"pauseExited,omitempty"`
	// NetworkAttached is set before the network ADD starts and cleared only
	// after a DEL succeeded, so every ADD, even a failed one, gets its DEL.
	NetworkAttached bool     `json:"networkAttached,omitempty"`
	IPs             []string `json:"ips,omitempty"`
}

// CgroupsPath is the pause process's cgroup: under the pod's cgroup parent,
// or under netshim's default parent when the pod names none.
func (s *Sandbox) CgroupsPath() string { return cgroupPath(s) }

func (s *Sandbox) clone() *Sandbox {
	c := *s
	c.IPs = append([]string(nil), s.IPs...)
	return &c
}

var (
	// ErrNotFound: no sandbox has that ID.
	ErrNotFound = fmt.Errorf("sandbox %w", errdefs.ErrNotFound)
	// ErrNameReserved: another sandbox holds the name.
	ErrNameReserved = fmt.Errorf("sandbox name is reserved: %w", errdefs.ErrAlreadyExists)
)
