package main

import (
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set by the Makefile from `git describe --always --dirty`:
// -ldflags "-X main.version=...".
var version string

// versionString says which netshim this is, with the Go version it was
// built with.
func versionString() string {
	return fmt.Sprintf("netshim %s (%s, %s/%s)", runtimeVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
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

// semantic is a Semantic Version 2.0 with an optional leading v: what
// kubelet's version parser accepts.
var semantic = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// runtimeVersion is what the CRI Version call reports: versionNumber when
// it is a semantic version (a tagged build's `git describe`), else
// 0.0.0-dev or 0.0.0-git-REV. kubelet shows a runtime version it cannot
// parse as "Unknown" in the Node's containerRuntimeVersion.
func runtimeVersion() string {
	v := versionNumber()
	switch {
	case semantic.MatchString(v):
		return v
	case v == "dev":
		return "0.0.0-dev"
	}
	clean := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' {
			return r
		}
		return '-'
	}, v)
	return "0.0.0-git-" + clean
}
