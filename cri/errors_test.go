package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/netshim/netshim/pkg/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Each kind a package wraps reaches the client as the code kubelet acts on,
// however deeply it is wrapped, with the error's whole text as the message.
func TestErrorKindsMapToCodes(t *testing.T) {
	cases := []struct {
		err  error
		want codes.Code
	}{
		{errdefs.ErrInvalidArgument, codes.InvalidArgument},
		{errdefs.InvalidField("config.metadata.name", "is required"), codes.InvalidArgument},
		{errdefs.ErrNotFound, codes.NotFound},
		{errdefs.ErrAlreadyExists, codes.AlreadyExists},
		{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
		{errdefs.ErrUnavailable, codes.Unavailable},
		{errdefs.ErrResourceExhausted, codes.ResourceExhausted},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{context.Canceled, codes.Canceled},
		{errors.New("runc exploded"), codes.Internal},
		// A status made elsewhere (grpc, the streaming library) keeps its code.
		{status.Error(codes.ResourceExhausted, "too big"), codes.ResourceExhausted},
	}
	for _, c := range cases {
		wrapped := wrapf(fmt.Errorf("step: %w", c.err), "run pod sandbox %s", "ns/pod")
		got := grpcError(wrapped)
		if status.Code(got) != c.want {
			t.Errorf("%v: code %s, want %s", c.err, status.Code(got), c.want)
		}
		if msg := status.Convert(got).Message(); msg != wrapped.Error() {
			t.Errorf("%v: message %q, want %q", c.err, msg, wrapped.Error())
		}
	}
	if grpcError(nil) != nil {
		t.Error("nil error became a status")
	}
}

// The interceptor is where the mapping happens: a handler's plain error
// leaves the server as a status with the kind's code.
func TestInterceptorMapsHandlerErrors(t *testing.T) {
	i := NewInterceptors(nil)
	_, err := i.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/StartContainer"},
		func(context.Context, any) (any, error) {
			return nil, fmt.Errorf("start container c1: %w", errdefs.ErrNotFound)
		})
	if status.Code(err) != codes.NotFound || status.Convert(err).Message() != "start container c1: not found" {
		t.Errorf("unary: %v, want NotFound with the handler's message", err)
	}
	err = i.Stream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/StreamContainers"},
		func(any, grpc.ServerStream) error { return fmt.Errorf("pull: %w", errdefs.ErrUnavailable) })
	if status.Code(err) != codes.Unavailable {
		t.Errorf("stream: %v, want Unavailable", err)
	}
}

// A bad request is refused as InvalidArgument naming the field before the
// server looks anything up: the server here has no services at all, so
// any lookup would panic (and the interceptor would answer Internal).
func TestBadRequestsAreRefusedBeforeAnyLookup(t *testing.T) {
	s := NewServer(Services{}, Dirs{})
	i := NewInterceptors(nil)
	call := func(name string, h func(context.Context, any) (any, error)) error {
		_, err := i.Unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/" + name}, h)
		return err
	}
	cases := []struct {
		method, field string
		h             func(context.Context, any) (any, error)
	}{
		{"CreateContainer", "config.metadata.name", func(ctx context.Context, _ any) (any, error) {
			return s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "p"})
		}},
		{"CreateContainer", "config.linux.security_context.run_as_user", func(ctx context.Context, _ any) (any, error) {
			return s.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
				Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: &runtimeapi.Int64Value{Value: -1}}}}})
		}},
		{"RunPodSandbox", "config.metadata.uid", func(ctx context.Context, _ any) (any, error) {
			return s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns"}}})
		}},
		{"RunPodSandbox", "runtime_handler", func(ctx context.Context, _ any) (any, error) {
			return s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{RuntimeHandler: "kata", Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}}})
		}},
		{"UpdateContainerResources", "linux.memory_limit_in_bytes", func(ctx context.Context, _ any) (any, error) {
			return s.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "c",
				Linux: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: -5}})
		}},
		{"StopContainer", "container_id", func(ctx context.Context, _ any) (any, error) {
			return s.StopContainer(ctx, &runtimeapi.StopContainerRequest{})
		}},
		{"PullImage", "image.image", func(ctx context.Context, _ any) (any, error) {
			return s.PullImage(ctx, &runtimeapi.PullImageRequest{})
		}},
		{"ExecSync", "cmd", func(ctx context.Context, _ any) (any, error) {
			return s.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "c"})
		}},
	}
	for _, c := range cases {
		err := call(c.method, c.h)
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), c.field) {
			t.Errorf("%s: %v, want InvalidArgument starting with %s", c.method, err, c.field)
		}
	}
}

// What the client reads says each thing once, in words: a registry's error
// detail is no Go map, and runc's error, reported twice by conmon, is said
// once (issue 26.8).
func TestMessagesSayEachThingOnce(t *testing.T) {
	reg := &transport.Error{StatusCode: 404, Errors: []transport.Diagnostic{
		{Code: transport.ManifestUnknownErrorCode, Message: "manifest unknown", Detail: map[string]any{"Tag": "1", "Name": "e2e/busybox"}}}}
	pull := fmt.Errorf("pull r/busybox:1: %w", fmt.Errorf("%w: %w", fmt.Errorf("from r: %w", reg), errdefs.ErrNotFound))
	runc := "runc create failed: exec: \"/x\": stat /x: no such file or directory"
	create := fmt.Errorf("create container %q: runtime failed: %s: %s", "c", runc, runc)
	for err, want := range map[error]string{
		pull:                  "pull r/busybox:1: from r: MANIFEST_UNKNOWN: manifest unknown (Name e2e/busybox, Tag 1): not found",
		create:                `create container "c": runtime failed: ` + runc,
		errors.New("a: b: c"): "a: b: c",
		errors.New("a: a"):    "a",
	} {
		if got := status.Convert(grpcError(err)).Message(); got != want {
			t.Errorf("message\n%q\nwant\n%q", got, want)
		}
	}
}
