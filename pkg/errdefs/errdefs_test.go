package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestFieldErrorIsInvalidArgumentAndLeadsWithThePath(t *testing.T) {
	err := fmt.Errorf("create container: %w", InvalidField("config.linux.security_context.run_as_user", "%d is negative", -5))
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("%v is not an ErrInvalidArgument", err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "config.linux.security_context.run_as_user" {
		t.Fatalf("errors.As: %#v, want the field path", fe)
	}
	if got, want := fe.Error(), "config.linux.security_context.run_as_user -5 is negative"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got, want := InvalidField("config.port_mappings[1]", ": host port 80 is taken").Error(), "config.port_mappings[1]: host port 80 is taken"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if errors.Is(err, ErrNotFound) {
		t.Errorf("a FieldError must be no other kind")
	}
}
