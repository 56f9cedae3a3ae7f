package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	{errdefs.ErrResourceExhausted, codes.ResourceExhausted},
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
			return status.Error(kc.code, message(err))
		}
	}
	return status.Error(codes.Internal, message(err))
}

// message is err's text as a user reads it: a registry's error detail in
// words rather than as a Go map, and a tail said twice said once (conmon
// reports runc's error from both its log and its stderr).
func message(err error) string {
	msg := err.Error()
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			if d.Detail != nil {
				msg = strings.Replace(msg, fmt.Sprintf("; %v", d.Detail), " ("+detailWords(d.Detail)+")", 1)
			}
		}
	}
	return sayOnce(msg)
}

// detailWords is a registry's error detail (decoded JSON) as "key value"
// pairs, or as JSON when it is not an object.
func detailWords(detail any) string {
	m, ok := detail.(map[string]any)
	if !ok {
		b, _ := json.Marshal(detail)
		return string(b)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = fmt.Sprintf("%s %v", k, m[k])
	}
	return strings.Join(pairs, ", ")
}

// sayOnce drops a repeated tail: "a: b: X: X" becomes "a: b: X", for the
// longest such X.
func sayOnce(msg string) string {
	for i := 0; i < len(msg); {
		j := strings.Index(msg[i:], ": ")
		if j < 0 {
			break
		}
		p := i + j
		head, tail := msg[:p], msg[p+2:]
		if tail != "" && (head == tail || strings.HasSuffix(head, ": "+tail)) {
			return head
		}
		i = p + 2
	}
	return msg
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
