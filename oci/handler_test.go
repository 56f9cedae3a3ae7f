package oci

import "testing"

// The spec version written is the older of netshim's and the runtime's:
// crun 1.8 refuses a newer one; an unreadable answer leaves netshim's.
func TestOlderSpecVersion(t *testing.T) {
	for _, c := range []struct{ theirs, want string }{
		{"1.0.0", "1.0.0"},
		{"1.0.2-dev", "1.0.2-dev"},
		{"1.3.0", "1.3.0"},
		{"1.4.0", "1.3.0"},
		{"", "1.3.0"},
		{"garbage", "1.3.0"},
	} {
		if got := olderSpecVersion("1.3.0", c.theirs); got != c.want {
			t.Errorf("olderSpecVersion(1.3.0, %q) = %q, want %q", c.theirs, got, c.want)
		}
	}
	if got := specLine([]byte("crun version 1.8.1\ncommit: f8a0\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD\n")); got != "1.0.0" {
		t.Errorf("specLine of crun's --version = %q", got)
	}
}

// conmon runs the gVisor wrapper with runsc's global options, the
// subcommand and its own options: the wrapper finds each.
func TestGVisorWrapperReadsConmonsCommandLine(t *testing.T) {
	args := []string{"--root", "/run/x", "--network=host", "--log", "/b/runtime.log", "--log-format", "json",
		"create", "--bundle", "/b", "--pid-file", "/b/pidfile", "ctr1"}
	i := subcommandIndex(args)
	if i < 0 || args[i] != "create" {
		t.Fatalf("subcommand at %d", i)
	}
	if got := flagValue(args[i+1:], "--pid-file"); got != "/b/pidfile" {
		t.Errorf("--pid-file = %q", got)
	}
	if got := flagValue([]string{"--pid-file=/p"}, "--pid-file"); got != "/p" {
		t.Errorf("--pid-file= form = %q", got)
	}
	if got := withoutRoot(args[:i]); len(got) != 5 || got[0] != "--network=host" {
		t.Errorf("withoutRoot = %q", got)
	}
}
