package network

import (
	"context"
	"fmt"
)

// NoopPluginName is the name of the plugin that gives pods loopback only;
// kubelet selected it with an empty --network-plugin.
const NoopPluginName = "none"

// NoopPlugin brings up lo in each pod's netns and nothing else.
type NoopPlugin struct{ host Host }

func (p *NoopPlugin) Init(host Host, _ HairpinMode, _ string, _ int) error {
	p.host = host
	return nil
}

func (p *NoopPlugin) Name() string                           { return NoopPluginName }
func (p *NoopPlugin) SetPodCIDR([]string) error              { return nil }
func (p *NoopPlugin) Status() error                          { return nil }
func (p *NoopPlugin) Close() error                           { return nil }
func (p *NoopPlugin) TearDownPod(context.Context, Pod) error { return nil }

func (p *NoopPlugin) SetUpPod(_ context.Context, pod Pod) (*PodNetworkStatus, error) {
	path, err := p.host.GetNetNS(pod.SandboxID)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return nil, fmt.Errorf("netns of sandbox %s is gone", pod.SandboxID)
	}
	if err := BringUpLoopback(path); err != nil {
		return nil, err
	}
	return &PodNetworkStatus{}, nil
}

func (p *NoopPlugin) GetPodNetworkStatus(context.Context, Pod) (*PodNetworkStatus, error) {
	return &PodNetworkStatus{}, nil
}
