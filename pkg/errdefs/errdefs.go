// Package errdefs holds the kinds of error every netshim package wraps, so
// the CRI server maps each to its gRPC code in one place (the interceptor in
// package cri). A package says what went wrong by wrapping one of these with
// %w; it never builds a gRPC status itself.
package errdefs

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotFound: no object has that ID or name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name or ID is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request itself is wrong; the message names the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is right but the object (or the
	// node: a network plugin that is not ready) is in the wrong state.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: a dependency (a registry, the runtime) cannot be
	// reached now; the same request may succeed later.
	ErrUnavailable = errors.New("unavailable")
	// ErrResourceExhausted: the caller used up what netshim keeps for it
	// (a container events subscriber that fell too far behind).
	ErrResourceExhausted = errors.New("resource exhausted")
)

// FieldError is an invalid argument that names the request field at fault
// by its path in the CRI message, in the protobuf names kubelet and crictl
// users see: config.linux.security_context.run_as_user,
// config.port_mappings[2].host_port. Every validation of a request returns
// one, so the messages read alike for sandboxes and containers.
type FieldError struct {
	Field  string // the path, from the request message's root
	Reason string // what is wrong with it, without the path
}

func (e *FieldError) Error() string {
	switch {
	case e.Reason == "":
		return e.Field + " is invalid"
	case strings.HasPrefix(e.Reason, ":"):
		return e.Field + e.Reason
	}
	return e.Field + " " + e.Reason
}

// Is makes a FieldError an ErrInvalidArgument for errors.Is.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidArgument }

// InvalidField returns a FieldError for field; the reason is formatted
// from format and args and follows the path after a space, so write it to
// read on from the field's name ("is required", "%q holds a control
// character"); a reason that starts with ':' follows the path directly.
func InvalidField(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
