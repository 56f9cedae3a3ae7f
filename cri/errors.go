package cri

import (
	"context"
	"errors"
	"fmt"

	"github.com/netshim/netshim/pkg/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// kindCodes maps each error kind to the gRPC code kubelet and crictl act
// on; the first kind an error wraps decides. This table and grpcError are
// the only place netshim chooses a code: handlers return wrapped errdefs
// kinds (or context errors) and the interceptor calls grpcError.
var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// grpcError is err as a gRPC status: its code from the kind it wraps
// (Internal when none), its message err's own text. An error that already
// is a status (the generated Unimplemented, one from the streaming library)
// keeps its code.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			return status.Error(kc.code, err.Error())
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// wrapf adds what the handler was doing to err, keeping its kind. A
// request's validation error is returned as it is instead, so that its
// message starts with the field path.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
