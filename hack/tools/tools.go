//go:build tools

// Package tools pins the linters netshim's Makefile builds. It is a module
// of its own so that their dependencies stay out of netshim's go.mod.
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
