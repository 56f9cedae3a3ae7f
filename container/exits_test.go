package container

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// hangGuard only ends a test that would otherwise hang; nothing is timed.
const hangGuard = 30 * time.Second

// A waiter is woken by the write of its container's exit file, and only by
// that: another container's file does not wake it.
func TestExitWatchWakesOnTheWrite(t *testing.T) {
	dir := t.TempDir()
	seen := make(chan string, 4)
	x, err := watchExits(dir, func(id string) { seen <- id })
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()
	mine, other := x.next("mine"), x.next("other")
	if err := os.WriteFile(filepath.Join(dir, "other"), []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-other:
	case <-time.After(hangGuard):
		t.Fatal("the write of an exit file woke nobody")
	}
	select {
	case <-mine:
		t.Fatal("another container's exit woke this waiter")
	default:
	}
	if err := os.WriteFile(filepath.Join(dir, "mine"), []byte("137"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-mine:
	case <-time.After(hangGuard):
		t.Fatal("the write of its exit file did not wake the waiter")
	}
	if id := <-seen; id != "other" {
		t.Fatalf("first exit reported for %q", id)
	}
}

// A container's exit is recorded when conmon writes it, without anyone
// asking for the container's state.
func TestExitIsRecordedWhenWritten(t *testing.T) {
	m, w, _ := newTestManager(t)
	ctx := context.Background()
	c, err := m.Create(ctx, request("web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	w.exit(c.ID, 2)
	// m.get reads the record as it is; m.Get would read the exit file itself.
	for deadline := time.Now().Add(hangGuard); ; time.Sleep(time.Millisecond) {
		got, err := m.get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == StateExited {
			if got.ExitCode != 2 || got.Reason != "Error" {
				t.Fatalf("recorded exit: %+v", got.Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exit was never recorded on its own")
		}
	}
	if loaded, _ := m.checkpoints.LoadAll(); len(loaded) != 1 || loaded[0].State != StateExited {
		t.Fatalf("checkpoint: %+v", loaded)
	}
}
