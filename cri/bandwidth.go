package cri

import (
	"math"

	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/pkg/validate"
)

// bandwidthFromAnnotations returns the pod's shaping, or nil when it asks for none.
func bandwidthFromAnnotations(annotations map[string]string) (*network.Bandwidth, error) {
	in, eg, err := validate.Bandwidth(annotations)
	if err != nil || in == 0 && eg == 0 {
		return nil, err
	}
	bw := &network.Bandwidth{IngressRate: in, EgressRate: eg}
	// As kubelet and containerd: the burst is effectively unlimited, the rate shapes.
	if in > 0 {
		bw.IngressBurst = math.MaxInt32
	}
	if eg > 0 {
		bw.EgressBurst = math.MaxInt32
	}
	return bw, nil
}
