package idindex

import (
	"errors"
	"strings"
	"testing"

	"github.com/netshim/netshim/pkg/errdefs"
)

func TestGet(t *testing.T) {
	var x Index
	for _, id := range []string{"abc123", "abd456", "ff0000", "abc123"} {
		x.Add(id)
	}
	cases := []struct {
		prefix, want string
		err          error
	}{
		{"abc", "abc123", nil},
		{"abc123", "abc123", nil},
		{"f", "ff0000", nil},
		{"ab", "", errdefs.ErrInvalidArgument}, // ambiguous
		{"abc1234", "", errdefs.ErrNotFound},
		{"0", "", errdefs.ErrNotFound},
		{"", "", errdefs.ErrInvalidArgument},
	}
	for _, c := range cases {
		got, err := x.Get(c.prefix)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("Get(%q) = %q, %v; want %q, %v", c.prefix, got, err, c.want, c.err)
		}
	}
	if _, err := x.Get("ab"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix error should say so: %v", err)
	}
	x.Delete("abd456")
	if got, err := x.Get("ab"); err != nil || got != "abc123" {
		t.Errorf("after Delete, Get(ab) = %q, %v", got, err)
	}
	x.Delete("nothere")
}

// An ID that is also a prefix of another is still found by its full self.
func TestExactBeatsLonger(t *testing.T) {
	var x Index
	x.Add("ab")
	x.Add("abc")
	if got, err := x.Get("ab"); err != nil || got != "ab" {
		t.Errorf("Get(ab) = %q, %v", got, err)
	}
}

// New makes IDs that Valid accepts and that differ; Valid refuses anything
// that is not 64 hex digits, so an ID is always safe as a file name.
func TestNewAndValid(t *testing.T) {
	a, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New()
	if !Valid(a) || !Valid(b) || a == b {
		t.Fatalf("New gave %q and %q", a, b)
	}
	for _, bad := range []string{"", a[:63], a + "0", "../" + a[3:], strings.ToUpper(a[:1]) + "g" + a[2:]} {
		if Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}
