package main

import (
	goflag "flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The verbosity file sets -v; a missing one leaves it; one that does not
// hold a number is an error naming the file and changes nothing.
func TestVerbosityFile(t *testing.T) {
	v := goflag.CommandLine.Lookup("v")
	defer func() { _ = v.Value.Set("0") }()
	_ = v.Value.Set("1")
	path := filepath.Join(t.TempDir(), "verbosity")
	if err := applyVerbosityFile(path); err != nil || v.Value.String() != "1" {
		t.Errorf("missing file: %v, -v %s; want no error and -v 1", err, v.Value)
	}
	if err := os.WriteFile(path, []byte("5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyVerbosityFile(path); err != nil || v.Value.String() != "5" {
		t.Errorf("file with 5: %v, -v %s; want -v 5", err, v.Value)
	}
	if err := os.WriteFile(path, []byte("loud"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyVerbosityFile(path); err == nil || !strings.Contains(err.Error(), path) || v.Value.String() != "5" {
		t.Errorf("file with loud: %v, -v %s; want an error naming the file and -v still 5", err, v.Value)
	}
}
