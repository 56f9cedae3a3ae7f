package cri

import (
	"context"
	"strings"
	"testing"

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
