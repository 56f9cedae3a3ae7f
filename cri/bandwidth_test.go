package cri

import (
	"strings"
	"testing"
)

func TestParseBandwidth(t *testing.T) {
	for in, want := range map[string]int64{
		"10M": 10_000_000, "1k": 1000, "1.5M": 1_500_000, "1Mi": 1 << 20, "100000": 100_000, "1P": 1_000_000_000_000_000,
	} {
		if got, ok := parseBandwidth(in); !ok || got != want {
			t.Errorf("parseBandwidth(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "10X", "-1M", "999", "2P", "1e3", "ten", "10 M"} {
		if got, ok := parseBandwidth(bad); ok {
			t.Errorf("parseBandwidth(%q) = %d, want rejected", bad, got)
		}
	}
}

func TestBandwidthAnnotations(t *testing.T) {
	bw, err := bandwidthFromAnnotations(map[string]string{ingressBandwidthAnnotation: "10M"})
	if err != nil || bw == nil || bw.IngressRate != 10_000_000 || bw.IngressBurst == 0 || bw.EgressRate != 0 {
		t.Fatalf("ingress 10M: %+v, %v", bw, err)
	}
	if bw, err := bandwidthFromAnnotations(map[string]string{"other": "x"}); bw != nil || err != nil {
		t.Fatalf("no shaping annotations: %+v, %v; want nil, nil", bw, err)
	}
	cfg := validConfig()
	cfg.Annotations = map[string]string{egressBandwidthAnnotation: "fast"}
	err = validateSandboxConfig(cfg, testProtected)
	if err == nil || !strings.Contains(err.Error(), egressBandwidthAnnotation) {
		t.Fatalf("bad egress rate: %v, want an error naming the annotation", err)
	}
}
