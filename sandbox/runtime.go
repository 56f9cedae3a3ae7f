package sandbox

import "context"

// Runtime runs the pause container of a sandbox. It is small so that another
// OCI runtime with runc's command line (crun) fits behind it.
type Runtime interface {
	// Run creates and starts the container of bundle detached; it returns the PID of its init.
	Run(ctx context.Context, id, bundle string) (pid int, err error)
	// Delete removes a stopped container, or with force a running one too;
	// a container that does not exist is no error.
	Delete(ctx context.Context, id string, force bool) error
	// List returns the IDs of the containers the runtime holds.
	List(ctx context.Context) ([]string, error)
	// Available is nil when the runtime can be run at all.
	Available() error
	// State reports the runtime's status of the container ("running", "stopped", …), or "" if unknown to it.
	State(ctx context.Context, id string) (string, error)
}
