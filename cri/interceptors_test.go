package cri

import (
	"context"
	"strings"
	"testing"

	"github.com/netshim/netshim/container"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestInterceptorTurnsPanicIntoInternal(t *testing.T) {
	i := NewInterceptors(nil)
	_, err := i.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/RunPodSandbox"},
		func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "RunPodSandbox") {
		t.Fatalf("panicking handler: %v, want Internal naming the method", err)
	}
}

func TestInterceptorExplainsUnimplemented(t *testing.T) {
	i := NewInterceptors(nil)
	err := i.Stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/Attach"},
		func(any, grpc.ServerStream) error {
			return status.Error(codes.Unimplemented, "method Attach not implemented")
		})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "not implemented by netshim") {
		t.Fatalf("unimplemented stream: %v, want a sentence", err)
	}
}

type listedContainers []*container.Container

func (l listedContainers) List() []*container.Container { return l }

// netshim_containers counts containers by CRI state, with 0 for the states
// none is in, so a dashboard's query always finds every series.
func TestContainerCollectorCountsByState(t *testing.T) {
	ctrs := listedContainers{
		{ID: "a", Status: container.Status{State: container.StateRunning}}, {ID: "b", Status: container.Status{State: container.StateRunning}},
		{ID: "c", Status: container.Status{State: container.StateExited}}, {ID: "d", Status: container.Status{State: container.StateCreated}},
	}
	want := `# HELP netshim_containers Containers known to netshim, by CRI state.
# TYPE netshim_containers gauge
netshim_containers{state="CONTAINER_CREATED"} 1
netshim_containers{state="CONTAINER_EXITED"} 1
netshim_containers{state="CONTAINER_RUNNING"} 2
netshim_containers{state="CONTAINER_UNKNOWN"} 0
`
	if err := testutil.CollectAndCompare(NewContainerCollector(ctrs), strings.NewReader(want), "netshim_containers"); err != nil {
		t.Error(err)
	}
}
