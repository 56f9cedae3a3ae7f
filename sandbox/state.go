package sandbox

import (
	"fmt"

	"github.com/netshim/netshim/pkg/errdefs"
)

// transitions is which state may follow which; a status may also change
// without a change of state. Nothing follows notready but
// notready: a sandbox whose pause is gone, or that was stopped, is never
// made ready again, and ready follows only creating.
//
// What each event means in each state (docs/architecture.md prints this):
//
//	event                     creating            ready      notready
//	pause started             creating            -          -
//	set-up done (Ready)       ready               refused    refused (ErrPauseExited if it exited)
//	pause exited              notready (*)        notready   notready
//	stopping (MarkNotReady)   creating            notready   notready
//	stopped (Stop)            notready            notready   notready
//
// (*) in memory only: on disk it stays creating, which recovery undoes.
var transitions = map[State][]State{
	StateCreating: {StateReady, StateNotReady},
	StateReady:    {StateNotReady},
	StateNotReady: nil,
}

// ErrRefused: the transition table does not allow the change asked for.
var ErrRefused = fmt.Errorf("sandbox state change refused: %w", errdefs.ErrFailedPrecondition)

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

// pauseExited is the event of the pause process exiting, whatever the
// state: it is never dropped, so a sandbox whose pause died while it was
// being created can no longer become ready.
func pauseExited(st Status) (Status, error) {
	st.State, st.PauseExited = StateNotReady, true
	return st, nil
}
