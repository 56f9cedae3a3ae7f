// Package container owns the containers of pod sandboxes: their records and
// checkpoints, the OCI spec built from a CRI ContainerConfig, the monitor
// (conmon) that runs each one, logs, stats from cgroups, and recovery at
// start. It does not import sandbox or image: cri hands it the pod's context
// and a way to mount the image's layers.
package container

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// User is the identity a container's process runs with.
type User struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"` // GID first, then the supplementary groups
}

// State is a container's lifecycle state as netshim records it.
type State string

const (
	// StateCreating: recorded, rootfs and bundle being made. Found after a
	// restart, the create was interrupted and is undone.
	StateCreating State = "creating"
	StateCreated  State = "created"
	StateRunning  State = "running"
	StateExited   State = "exited"
	// StateUnknown: its monitor is gone and no exit code was written.
	StateUnknown State = "unknown"
)

// ImageConfig is what a container takes from its image's config.
type ImageConfig struct {
	User       string   `json:"user,omitempty"`
	Env        []string `json:"env,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	StopSignal string   `json:"stopSignal,omitempty"`
}

// PodContext is what a container takes from its pod sandbox; cri fills it
// from the sandbox record, so this package never imports sandbox.
type PodContext struct {
	SandboxID string
	// RuntimeHandler is the pod's runtime handler; "" is the default.
	RuntimeHandler string
	// UIDMappings and GIDMappings are those of the pod's user namespace;
	// none when it has the host's.
	UIDMappings, GIDMappings []specs.LinuxIDMapping
	Config                   *runtimeapi.PodSandboxConfig
	// NetNSPath is the pinned netns; "" with host network.
	NetNSPath string
	// PausePID is the pause process: containers join its IPC and UTS
	// namespaces, and its PID namespace with NamespaceMode POD.
	PausePID int
	// CgroupParent is the pod's cgroup (kubelet's /kubepods/... with the
	// cgroupfs driver); "" puts containers under /netshim.
	CgroupParent string
	// Files of the sandbox that every container of the pod mounts; "" for none.
	ResolvConfPath string
	HostnamePath   string
	HostsPath      string
	ShmPath        string
}

// Container is the record of one container, as checkpointed.
type Container struct {
	ID        string `json:"id"`
	SandboxID string `json:"sandboxID"`
	// Name is kubelet's reservation name: name_podname_namespace_uid_attempt.
	Name     string `json:"name"`
	Metadata struct {
		Name    string `json:"name"`
		Attempt uint32 `json:"attempt"`
	} `json:"metadata"`
	// Image is the reference as asked; ImageID the store's ID ("sha256:…");
	// ImageRef the repo digest it resolved to, as kubelet wants it.
	// RuntimeHandler is its pod's runtime handler; "" is the default.
	RuntimeHandler string `json:"runtimeHandler,omitempty"`

	Image    string `json:"image"`
	ImageID  string `json:"imageID"`
	ImageRef string `json:"imageRef"`

	CreatedAt time.Time `json:"createdAt"`
	// Status changes only through the manager's transitions; its fields
	// are inlined in the checkpoint, as before it was a struct of its own.
	Status

	// LogPath is exactly the path kubelet asked for (sandbox log_directory +
	// container log_path); kubelet deletes LogPath* on RemoveContainer.
	LogPath string `json:"logPath,omitempty"`
	// Config is the ContainerConfig, protobuf-encoded.
	Config []byte `json:"config,omitempty"`
	// Labels and Annotations are copied out of Config for listing.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Tty and Stdin as asked, for attach.
	Tty   bool `json:"tty,omitempty"`
	Stdin bool `json:"stdin,omitempty"`

	// StopSignal is the image's, "" for SIGTERM.
	StopSignal string `json:"stopSignal,omitempty"`

	// Bundle is the OCI bundle dir under the state dir; it also holds the
	// monitor's files (AttachSocketPath, CtlPath, exit file, pid files).
	Bundle string `json:"bundle"`
}

// Status is the part of a container's record that changes.
type Status struct {
	State      State     `json:"state"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int32     `json:"exitCode,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	// PID of the container's init while it runs, with its start time (PID reuse).
	PID          int    `json:"pid,omitempty"`
	PIDStartTime uint64 `json:"pidStartTime,omitempty"`
	// User is who the container's first process runs as; nil before the
	// create (or in a record from before netshim kept it).
	User *User `json:"user,omitempty"`
	// MonitorPID is the container's conmon, with its start time.
	MonitorPID          int    `json:"monitorPID,omitempty"`
	MonitorPIDStartTime uint64 `json:"monitorPIDStartTime,omitempty"`
	// CgroupsPath is the container's cgroup, relative to each hierarchy's root.
	CgroupsPath string `json:"cgroupsPath,omitempty"`
}

// AttachSocketPath is conmon's attach socket of the container.
func (c *Container) AttachSocketPath() string { return c.Bundle + "/attach" }

// CtlPath is conmon's control fifo: "1 H W\n" resizes the terminal, "2 0 0\n" reopens the log.
func (c *Container) CtlPath() string { return c.Bundle + "/ctl" }

func (c *Container) clone() *Container {
	cp := *c
	return &cp
}
