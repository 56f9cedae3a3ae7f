// Package memstore is the in-memory side of netshim's records (sandboxes,
// containers, images): records by ID, IDs found by their unique prefix, a
// name registrar, and copies handed out so that no caller changes a record
// behind the store's back.
package memstore

import (
	"fmt"
	"sync"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/idindex"
)

// Store holds records of type T. The zero value is not usable: use New.
type Store[T any] struct {
	clone func(*T) *T
	// key is the form of an ID the prefix index holds (images index the
	// hex of "sha256:<hex>"); nil holds the ID itself.
	key func(id string) string

	mu    sync.RWMutex
	byID  map[string]*T
	names map[string]string // reserved name → the ID holding it
	ids   idindex.Index
}

// New returns an empty store whose reads return clone(record).
func New[T any](clone func(*T) *T) *Store[T] {
	return &Store[T]{clone: clone, byID: map[string]*T{}, names: map[string]string{}}
}

// WithIndexKey makes the prefix index hold key(id) instead of id, and
// Resolve take a prefix of that form. Call it before the first Add.
func (s *Store[T]) WithIndexKey(key func(id string) string) *Store[T] {
	s.key = key
	return s
}

func (s *Store[T]) indexKey(id string) string {
	if s.key == nil {
		return id
	}
	return s.key(id)
}

// Resolve returns the index key of the one record that starts with prefix
// (the full ID unless WithIndexKey). No match wraps errdefs.ErrNotFound;
// two or more wraps errdefs.ErrInvalidArgument and says it is ambiguous.
func (s *Store[T]) Resolve(prefix string) (string, error) { return s.ids.Get(prefix) }

// Get returns a copy of the record of id.
func (s *Store[T]) Get(id string) (*T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return s.clone(rec), true
}

// List returns a copy of every record, in no order.
func (s *Store[T]) List() []*T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*T, 0, len(s.byID))
	for _, rec := range s.byID {
		out = append(out, s.clone(rec))
	}
	return out
}

// Find returns a copy of a record for which match is true, if any. match
// sees the stored records, not copies: it must not keep or change them.
func (s *Store[T]) Find(match func(*T) bool) (*T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, rec := range s.byID {
		if match(rec) {
			return s.clone(rec), true
		}
	}
	return nil, false
}

// IDs returns the ID of every record, in no order.
func (s *Store[T]) IDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.byID))
	for id := range s.byID {
		out = append(out, id)
	}
	return out
}

// Add stores rec under id, replacing any record it had; the store keeps
// rec itself, so the caller must not change it afterwards.
func (s *Store[T]) Add(id string, rec *T) {
	s.mu.Lock()
	s.byID[id] = rec
	s.mu.Unlock()
	s.ids.Add(s.indexKey(id))
}

// Replace stores rec under id only if id is still there (a record removed
// meanwhile stays removed); it reports whether it did.
func (s *Store[T]) Replace(id string, rec *T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return false
	}
	s.byID[id] = rec
	return true
}

// Delete forgets the record of id; its name, if any, is released apart.
func (s *Store[T]) Delete(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
	s.ids.Delete(s.indexKey(id))
}

// Reserve gives name to id. A name held by another ID wraps
// errdefs.ErrAlreadyExists and names the holder; reserving it again for
// the same ID is no error.
func (s *Store[T]) Reserve(name, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if holder, ok := s.names[name]; ok && holder != id {
		return fmt.Errorf("name %q is held by %s: %w", name, holder, errdefs.ErrAlreadyExists)
	}
	s.names[name] = id
	return nil
}

// Release frees name if id holds it.
func (s *Store[T]) Release(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[name] == id {
		delete(s.names, name)
	}
}

// Holder returns the ID that holds name, if any.
func (s *Store[T]) Holder(name string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.names[name]
	return id, ok
}
