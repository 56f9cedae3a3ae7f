// Package errdefs holds the kinds of error every netshim package wraps, so
// the CRI server maps each to its gRPC code in one place.
package errdefs

import "errors"

var (
	// ErrNotFound: no object has that ID or name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name or ID is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: the request itself is wrong; the message names the field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrFailedPrecondition: the request is right but the object is in the wrong state.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: a dependency (registry, runtime) cannot be reached now.
	ErrUnavailable = errors.New("unavailable")
)
