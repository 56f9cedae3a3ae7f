package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
)

// A registry nobody answers at is ErrUnavailable (gRPC Unavailable), so a
// pull that fails for the network reads differently from one the registry
// refused. The registry is a loopback port that was just closed.
func TestPullFromAnUnreachableRegistryIsUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	s, err := NewStore(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pull(context.Background(), addr+"/library/busybox:latest", nil)
	if !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("pull from a closed port: %v, want ErrUnavailable", err)
	}
	for _, kind := range []error{errdefs.ErrNotFound, errdefs.ErrFailedPrecondition, errdefs.ErrInvalidArgument} {
		if errors.Is(err, kind) {
			t.Errorf("pull from a closed port is also %v: %v", kind, err)
		}
	}
}

func TestUnreachableKnowsNetworkFailuresOnly(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("get manifest: %w", &net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}), true},
		{fmt.Errorf("get manifest: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}), true},
		{fmt.Errorf("get blob: %w", timeout), true},
		{errors.New("unexpected status code 500"), false},
		{fmt.Errorf("verify layer: %w", errors.New("digest mismatch")), false},
	} {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
