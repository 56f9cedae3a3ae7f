package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set by the Makefile from `git describe --always --dirty`:
// -ldflags "-X main.version=...".
var version string

// versionString says which netshim this is, with the Go version it was
// built with.
func versionString() string {
	return fmt.Sprintf("netshim %s (%s, %s/%s)", versionNumber(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// versionNumber is the Makefile's version, else the module version `go
// install` records, else the VCS revision Go stamped, else "dev": what the
// CRI Version call reports.
func versionNumber() string {
	v, rev := version, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	switch {
	case v == "" && rev != "":
		v = rev
	case v == "":
		v = "dev"
	}
	return v
}
