// Package idindex makes record IDs and resolves an ID from its unique
// prefix, as containerd's and CRI-O's truncindex do, so the 13-character
// IDs crictl prints work as IDs.
package idindex

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/netshim/netshim/pkg/errdefs"
)

// Index is a set of IDs kept sorted, so a prefix is one binary search.
type Index struct {
	mu  sync.RWMutex
	ids []string
}

// Add puts id in the index; adding it twice is harmless.
func (x *Index) Add(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.SearchStrings(x.ids, id)
	if i < len(x.ids) && x.ids[i] == id {
		return
	}
	x.ids = append(x.ids, "")
	copy(x.ids[i+1:], x.ids[i:])
	x.ids[i] = id
}

// Delete takes id out of the index.
func (x *Index) Delete(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.SearchStrings(x.ids, id)
	if i < len(x.ids) && x.ids[i] == id {
		x.ids = append(x.ids[:i], x.ids[i+1:]...)
	}
}

// Get returns the one ID that starts with prefix. No match wraps
// errdefs.ErrNotFound; two or more is an error that says the prefix is ambiguous.
func (x *Index) Get(prefix string) (string, error) {
	if prefix == "" {
		return "", fmt.Errorf("empty ID: %w", errdefs.ErrInvalidArgument)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	i := sort.SearchStrings(x.ids, prefix)
	if i == len(x.ids) || !strings.HasPrefix(x.ids[i], prefix) {
		return "", fmt.Errorf("ID %q: %w", prefix, errdefs.ErrNotFound)
	}
	if x.ids[i] != prefix && i+1 < len(x.ids) && strings.HasPrefix(x.ids[i+1], prefix) {
		return "", fmt.Errorf("ID prefix %q is ambiguous: it matches %s and %s at least: %w",
			prefix, x.ids[i], x.ids[i+1], errdefs.ErrInvalidArgument)
	}
	return x.ids[i], nil
}

// New returns a fresh random ID: 64 hex digits, as containerd and CRI-O make them.
func New() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make an ID: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Valid reports whether id has the form New makes, so that it is safe as
// a file name.
func Valid(id string) bool {
	if len(id) != 64 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
