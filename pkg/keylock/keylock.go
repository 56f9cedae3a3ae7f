// Package keylock provides one mutex per key, created on first use and freed
// when its last holder or waiter releases it, so a long-running node does not
// accumulate a lock for every pod it has ever seen.
package keylock

import "sync"

// Locks is a set of per-key mutexes. The zero value is ready to use.
type Locks struct {
	mu    sync.Mutex
	locks map[string]*entry
}

type entry struct {
	mu   sync.Mutex
	refs int // holders plus waiters; the entry is deleted at zero
}

// Lock blocks until the lock for key is held and returns its release function.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = make(map[string]*entry)
	}
	e, ok := l.locks[key]
	if !ok {
		e = &entry{}
		l.locks[key] = e
	}
	e.refs++
	l.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.locks, key)
		}
		l.mu.Unlock()
	}
}

// Len reports how many keys currently have a lock entry (held or waited on).
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.locks)
}
