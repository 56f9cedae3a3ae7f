package main

import "testing"

// --feature-gates is kubelet's own syntax: NAME=true|false, comma-separated.
func TestParseGates(t *testing.T) {
	got, err := parseGates("EventedPLEG=true, Foo=false")
	if err != nil || len(got) != 2 || !got["EventedPLEG"] || got["Foo"] {
		t.Errorf("parseGates = %v, %v; want EventedPLEG on, Foo off", got, err)
	}
	if got, err := parseGates(""); err != nil || len(got) != 0 {
		t.Errorf("parseGates(\"\") = %v, %v; want none", got, err)
	}
	for _, bad := range []string{"EventedPLEG", "=true", "EventedPLEG=yes please"} {
		if _, err := parseGates(bad); err == nil {
			t.Errorf("parseGates(%q) took it; want an error", bad)
		}
	}
}
