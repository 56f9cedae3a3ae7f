package e2e

import (
	"testing"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The bandwidth annotations reach the bandwidth plugin: ingress shaping shows
// as a tbf qdisc with that rate on the pod's host veth. A bad value is
// InvalidArgument.
func TestBandwidthAnnotationsShapeThePod(t *testing.T) {
	s := startShim(t, withExtraPlugin(`{"type":"bandwidth","capabilities":{"bandwidth":true}}`))
	cfg := podConfig("shaped")
	cfg.Annotations["kubernetes.io/ingress-bandwidth"] = "10M"
	s.runPod(cfg)
	ports := s.bridgePorts()
	if len(ports) != 1 {
		t.Fatalf("bridge ports %v, want one", ports)
	}
	veth, err := netlink.LinkByName(ports[0])
	if err != nil {
		t.Fatal(err)
	}
	qdiscs, err := netlink.QdiscList(veth)
	if err != nil {
		t.Fatal(err)
	}
	var rate uint64
	for _, q := range qdiscs {
		if tbf, ok := q.(*netlink.Tbf); ok {
			rate = tbf.Rate
		}
	}
	if rate != 10_000_000/8 { // netlink reports bytes per second
		t.Fatalf("tbf rate on %s = %d bytes/s (qdiscs %v), want %d", ports[0], rate, qdiscs, 10_000_000/8)
	}

	bad := podConfig("badrate")
	bad.Annotations["kubernetes.io/egress-bandwidth"] = "fast"
	_, err = s.rt.RunPodSandbox(s.ctx(), &runtimeapi.RunPodSandboxRequest{Config: bad})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad egress rate: %v, want InvalidArgument", err)
	}
}
