package container

import (
	"context"
	"errors"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
)

// The table is what keeps a finished container finished and lets only a
// created one start.
func TestContainerTransitions(t *testing.T) {
	all := []State{StateCreating, StateCreated, StateRunning, StateExited, StateUnknown}
	allowed := map[[2]State]bool{
		{StateCreating, StateCreated}: true,
		{StateCreated, StateRunning}:  true,
		{StateCreated, StateExited}:   true,
		{StateCreated, StateUnknown}:  true,
		{StateRunning, StateExited}:   true,
		{StateRunning, StateUnknown}:  true,
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

// A refused change leaves the record as it was, in memory and on disk.
func TestRefusedUpdateChangesNothing(t *testing.T) {
	m, w, _ := newTestManager(t)
	c, err := m.Create(context.Background(), request("web"))
	if err != nil {
		t.Fatal(err)
	}
	w.exit(c.ID, 0)
	if got, _ := m.Get(c.ID); got.State != StateExited {
		t.Fatalf("state %s, want exited", got.State)
	}
	defer m.locks.Lock(c.ID)()
	_, err = m.update(c.ID, mustPersist, func(st Status) (Status, error) {
		st.State, st.Reason = StateRunning, "revived"
		return st, nil
	})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("exited → running: %v, want refused", err)
	}
	got, _ := m.get(c.ID)
	loaded, _ := m.checkpoints.LoadAll()
	if got.State != StateExited || got.Reason == "revived" || len(loaded) != 1 || loaded[0].State != StateExited {
		t.Fatalf("after a refused change: memory %s/%s, disk %v", got.State, got.Reason, loaded)
	}
}
