package validate

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
	in, eg, err := Bandwidth(map[string]string{IngressBandwidthAnnotation: "10M"})
	if err != nil || in != 10_000_000 || eg != 0 {
		t.Fatalf("ingress 10M: %d, %d, %v", in, eg, err)
	}
	if in, eg, err := Bandwidth(map[string]string{"other": "x"}); in != 0 || eg != 0 || err != nil {
		t.Fatalf("no shaping annotations: %d, %d, %v; want none", in, eg, err)
	}
	cfg := validConfig()
	cfg.Annotations = map[string]string{EgressBandwidthAnnotation: "fast"}
	err = Sandbox(cfg, testProtected)
	if !isFieldError(err) || !strings.HasPrefix(err.Error(), "config.annotations[\""+EgressBandwidthAnnotation+"\"]") {
		t.Fatalf("bad egress rate: %v, want an error naming the annotation", err)
	}
}
