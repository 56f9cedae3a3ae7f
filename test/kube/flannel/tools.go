//go:build tools

// Package tools pins flanneld for the cluster (make kube-up) in a build
// module of its own.
package tools

import _ "github.com/flannel-io/flannel"
