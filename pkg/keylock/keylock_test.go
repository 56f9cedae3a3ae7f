package keylock

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSameKeyIsExclusive(t *testing.T) {
	var l Locks
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := l.Lock("pod")
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if got := maxInside.Load(); got != 1 {
		t.Fatalf("%d holders of one key at once, want 1", got)
	}
}

func TestDifferentKeysDoNotBlock(t *testing.T) {
	var l Locks
	unlockA := l.Lock("a")
	defer unlockA()
	done := make(chan struct{})
	go func() {
		l.Lock("b")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lock on key b waited for key a")
	}
}

func TestEntriesAreFreed(t *testing.T) {
	var l Locks
	for _, k := range []string{"a", "b", "c"} {
		l.Lock(k)()
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d lock entries left after all were released, want 0", n)
	}
}
