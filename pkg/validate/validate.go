// Package validate checks CRI requests before netshim acts on them, for
// sandboxes and containers alike, in one place: the CRI server calls it at
// the boundary, and the container spec builder calls it again, since a
// spec is only as safe as its input. Every refusal is an
// errdefs.FieldError whose path is the field's in the request message, in
// protobuf names (config.linux.security_context.run_as_user), so a client
// sees InvalidArgument with a sentence that starts with the field.
//
// What can be checked only against the node (a device's type, a mount's
// propagation, a seccomp profile's file) is checked where it is read, in
// package container, with the same error type and paths.
package validate

import "github.com/netshim/netshim/pkg/errdefs"

func invalid(field, format string, args ...any) error {
	return errdefs.InvalidField(field, format, args...)
}
