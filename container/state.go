package container

import (
	"fmt"

	"github.com/netshim/netshim/pkg/errdefs"
)

// transitions is which state may follow which; a status may also change
// without a change of state. Exited and unknown are final.
//
// What each event means in each state (docs/architecture.md prints this):
//
//	event                      creating  created   running   exited/unknown
//	monitor created it         created   -         -         -
//	started (runc start)       refused   running   refused   refused
//	exit code read             -         exited    exited    -
//	monitor gone, no code      -         unknown   unknown   -
//
// A create that fails, or is found creating after a restart, is undone and
// its record removed: creating has no other way out.
var transitions = map[State][]State{
	StateCreating: {StateCreated},
	StateCreated:  {StateRunning, StateExited, StateUnknown},
	StateRunning:  {StateExited, StateUnknown},
	StateExited:   nil,
	StateUnknown:  nil,
}

// ErrRefused: the transition table does not allow the change asked for.
var ErrRefused = fmt.Errorf("container state change refused: %w", errdefs.ErrFailedPrecondition)

// checkTransition is nil when the table lets to follow from. update lets
// a status change without a change of state; an event that names a state
// (start: running) asks the table even when it is the current one.
func checkTransition(from, to State) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s may not become %s", ErrRefused, from, to)
}

// live is true in the states whose process may still run, the ones an
// exit can still end.
func live(s State) bool { return s == StateCreated || s == StateRunning }
