package sandbox

import (
	"errors"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
)

// Ready follows only creating, and nothing but notready follows notready:
// a sandbox whose pause exited, or that was stopped, is never ready again.
func TestSandboxTransitions(t *testing.T) {
	all := []State{StateCreating, StateReady, StateNotReady}
	allowed := map[[2]State]bool{
		{StateCreating, StateReady}:    true,
		{StateCreating, StateNotReady}: true,
		{StateReady, StateNotReady}:    true,
	}
	for _, from := range all {
		for _, to := range all {
			err := checkTransition(from, to)
			if allowed[[2]State{from, to}] {
				if err != nil {
					t.Errorf("%s → %s refused: %v", from, to, err)
				}
				continue
			}
			if !errors.Is(err, ErrRefused) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
				t.Errorf("%s → %s: %v, want refused as a failed precondition", from, to, err)
			}
		}
	}
}

// The pause exit counts in every state and always ends in notready.
func TestPauseExitedInEveryState(t *testing.T) {
	for _, from := range []State{StateCreating, StateReady, StateNotReady} {
		st, err := pauseExited(Status{State: from, PausePID: 7})
		if err != nil || st.State != StateNotReady || !st.PauseExited || st.PausePID != 7 {
			t.Errorf("pause exit in %s: %+v, %v; want notready, marked, PID kept for the runtime's delete", from, st, err)
		}
	}
}
