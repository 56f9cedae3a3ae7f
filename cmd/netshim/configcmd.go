package main

import (
	"fmt"
	"io"
)

// runConfig is `netshim config`: the effective configuration, as a config
// file netshim takes back as --config (containerd's `config dump`, CRI-O's
// `crio config`). It returns the exit status.
func runConfig(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet("netshim config", &o)
	setUsage(fs, stderr)
	if code := parseOptions(fs, &o, args); code >= 0 {
		return code
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if err := writeConfig(stdout, fs, &o); err != nil {
		fmt.Fprintf(stderr, "netshim config: %v\n", err)
		return 1
	}
	return 0
}
