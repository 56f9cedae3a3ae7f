package cni

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// A second netshim on the same CNI cache dir is refused, naming the first;
// the dir is free again once the first lets go.
func TestCacheDirIsOneInstancesAtATime(t *testing.T) {
	dir := t.TempDir()
	first, err := lockCacheDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockCacheDir(dir)
	if err == nil || !strings.Contains(err.Error(), "another netshim (pid "+strconv.Itoa(os.Getpid())+")") ||
		!strings.Contains(err.Error(), "--cni-cache-dir") {
		t.Fatalf("second lock = %v, want a refusal naming the holder and the flag", err)
	}
	first.Close()
	again, err := lockCacheDir(dir)
	if err != nil {
		t.Fatalf("lock after the first let go = %v", err)
	}
	again.Close()
}
