// Package network holds the kubelet-style network plugin interface, the
// PluginManager that serialises operations per pod, and the node set-up that
// every plugin shares. It knows sandboxes only through Host.
package network

import (
	"context"
	"net"
)

// Host is what a plugin needs from the runtime: the pinned network namespace
// of a sandbox. The sandbox store implements it.
type Host interface {
	// GetNetNS returns the path of the sandbox's pinned netns, or "" when it
	// is already gone (teardown then proceeds with an empty netns, as CNI allows).
	GetNetNS(sandboxID string) (string, error)
}

// HairpinMode is kubelet's --hairpin-mode.
type HairpinMode string

const (
	HairpinPromiscuousBridge HairpinMode = "promiscuous-bridge"
	HairpinVeth              HairpinMode = "hairpin-veth"
	HairpinNone              HairpinMode = "none"
)

// ParseHairpinMode validates a --hairpin-mode value.
func ParseHairpinMode(s string) (HairpinMode, error) {
	switch m := HairpinMode(s); m {
	case HairpinPromiscuousBridge, HairpinVeth, HairpinNone:
		return m, nil
	}
	return "", &InvalidFlagError{Flag: "--hairpin-mode", Value: s, Want: "promiscuous-bridge, hairpin-veth or none"}
}

// DefaultHairpinMode is the hairpin mode when --hairpin-mode is not given:
// promiscuous-bridge under kubenet, which owns its bridge; hairpin-veth
// under another plugin, whose bridge belongs to its CNI config (what
// kubelet's default comes to through EffectiveHairpinMode).
func DefaultHairpinMode(pluginName string) HairpinMode {
	if pluginName == "kubenet" {
		return HairpinPromiscuousBridge
	}
	return HairpinVeth
}

// EffectiveHairpinMode is kubelet's rule: promiscuous-bridge is only for
// kubenet, which owns its bridge. Under another plugin the bridge belongs to
// the CNI config, and flipping its promiscuous mode would make the bridge
// plugin's CHECK report drift, so hairpin-veth is used instead.
func EffectiveHairpinMode(mode HairpinMode, pluginName string) HairpinMode {
	if mode == HairpinPromiscuousBridge && pluginName != "kubenet" {
		return HairpinVeth
	}
	return mode
}

// InvalidFlagError names a flag whose value is not one of the accepted ones.
type InvalidFlagError struct{ Flag, Value, Want string }

func (e *InvalidFlagError) Error() string {
	return "invalid " + e.Flag + " " + `"` + e.Value + `"` + ": want " + e.Want
}

// PortMapping is one hostPort→containerPort mapping of a pod.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	Protocol      string // "tcp", "udp" or "sctp", as the portmap plugin spells them
	HostIP        string
}

// DNSConfig is the pod's resolver configuration.
type DNSConfig struct {
	Servers  []string
	Searches []string
	Options  []string
}

// Bandwidth is a pod's traffic shaping: rates in bits per second, bursts in
// bytes; a zero rate means no limit in that direction.
type Bandwidth struct {
	IngressRate, IngressBurst int64
	EgressRate, EgressBurst   int64
}

// Pod is what a plugin is told about the pod it wires.
type Pod struct {
	Namespace    string
	Name         string
	UID          string
	SandboxID    string
	PortMappings []PortMapping
	DNS          *DNSConfig
	Bandwidth    *Bandwidth
	Annotations  map[string]string
}

// Key is the PluginManager's lock key: kubelet's pod full name, so that two
// sandboxes of one pod (a retry while a teardown runs) never overlap either.
func (p Pod) Key() string { return p.Name + "_" + p.Namespace }

// PodNetworkStatus is the outcome of a set-up: the pod's IPs, IPv4 first.
type PodNetworkStatus struct {
	IPs []net.IP
	// Info is plugin-specific detail for verbose status (network name, result).
	Info map[string]string
}

// NetworkPlugin is one way of wiring pods, as kubelet's --network-plugin chose.
type NetworkPlugin interface {
	Init(host Host, hairpinMode HairpinMode, nonMasqueradeCIDR string, mtu int) error
	Name() string
	// SetPodCIDR hands the node's pod CIDRs (from UpdateRuntimeConfig) to the plugin.
	SetPodCIDR(cidrs []string) error
	SetUpPod(ctx context.Context, pod Pod) (*PodNetworkStatus, error)
	TearDownPod(ctx context.Context, pod Pod) error
	GetPodNetworkStatus(ctx context.Context, pod Pod) (*PodNetworkStatus, error)
	// Status is nil when the plugin can set up pods, else why it cannot.
	Status() error
	// Close stops background work (config watchers).
	Close() error
}

// GarbageCollector is a plugin that can release what it holds for sandboxes
// other than the valid ones (CNI GC). It is optional.
type GarbageCollector interface {
	GC(ctx context.Context, validSandboxIDs []string) error
}
