// Package crashpoint lets the fault-injection tests kill netshim at a named
// step of the pod path, the way a `kill -9` or a power cut would. It is inert
// unless NETSHIM_CRASH_AT names a point.
package crashpoint

import (
	"os"
	"syscall"
)

// EnvVar names the point at which the process kills itself with SIGKILL.
const EnvVar = "NETSHIM_CRASH_AT"

// The points, in the order a pod meets them.
const (
	BeforeNetNSPin   = "before-netns-pin"
	AfterNetNSPin    = "after-netns-pin"
	AfterPauseStart  = "after-pause-start"
	AfterCNILoopback = "after-cni-loopback"
	AfterCNIDefault  = "after-cni-default"
	DuringStop       = "during-stop"

	DuringContainerCreate = "during-container-create"
	DuringContainerStart  = "during-container-start"
	DuringContainerStop   = "during-container-stop"
	DuringContainerRemove = "during-container-remove"

	// DuringImagePull is a layer unpacked, not yet committed.
	DuringImagePull = "during-image-pull"
)

var armed = os.Getenv(EnvVar)

// Hit kills the process at once, with no clean-up, if point is armed.
func Hit(point string) {
	if armed != "" && armed == point {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is delivered before this returns
	}
}
