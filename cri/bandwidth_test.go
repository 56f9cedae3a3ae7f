package cri

import (
	"testing"

	"github.com/netshim/netshim/pkg/validate"
)

// The plugin is given the rates asked for and an unlimited burst, as
// kubelet gave them; no annotation, no shaping.
func TestBandwidthFromAnnotations(t *testing.T) {
	bw, err := bandwidthFromAnnotations(map[string]string{validate.IngressBandwidthAnnotation: "10M"})
	if err != nil || bw == nil || bw.IngressRate != 10_000_000 || bw.IngressBurst == 0 || bw.EgressRate != 0 || bw.EgressBurst != 0 {
		t.Fatalf("ingress 10M: %+v, %v", bw, err)
	}
	if bw, err := bandwidthFromAnnotations(map[string]string{"other": "x"}); bw != nil || err != nil {
		t.Fatalf("no shaping annotations: %+v, %v; want nil, nil", bw, err)
	}
}
