package main

import "testing"

// One dir given as both --root-dir and --state-dir is a valid setup: netshim
// must not refuse it as held by another netshim (itself).
func TestLockDirsOneDirForBoth(t *testing.T) {
	dir := t.TempDir()
	locks, err := lockDirs(dir, dir+"/")
	if err != nil {
		t.Fatalf("lockDirs(d, d) = %v", err)
	}
	for _, l := range locks {
		l.Close()
	}
}
