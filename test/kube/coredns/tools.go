//go:build tools

// Package tools pins CoreDNS, the cluster's DNS (make kube-up), in a build
// module of its own.
package tools

import _ "github.com/coredns/coredns"
