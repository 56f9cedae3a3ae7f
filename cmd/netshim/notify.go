package main

import (
	"os"

	"github.com/coreos/go-systemd/v22/daemon"
	"k8s.io/klog/v2"
)

// notifySocketEnv is where systemd (Type=notify) tells a service its socket.
const notifySocketEnv = "NOTIFY_SOCKET"

// takeNotifySocket removes NOTIFY_SOCKET from netshim's environment before
// any child starts and returns it. The children must not see it: runc, given
// a NOTIFY_SOCKET, binds a notify socket in its state dir for the container
// and waits for the container's own READY=1, which a pause process never
// sends (or fails outright where that socket's path is too long).
func takeNotifySocket() string {
	addr := os.Getenv(notifySocketEnv)
	os.Unsetenv(notifySocketEnv)
	return addr
}

// notifyReady tells systemd (when it started netshim with Type=notify) that
// netshim is up: its CRI socket accepts connections.
//
// go-systemd's SdNotify reads the address from the environment, so it is put
// back for the call, which unsets it again. Call it before the gRPC server
// starts serving: then no RPC can be starting a child in between.
func notifyReady(addr string) {
	if addr == "" {
		return
	}
	if err := os.Setenv(notifySocketEnv, addr); err != nil {
		klog.ErrorS(err, "Cannot tell systemd netshim is ready")
		return
	}
	if _, err := daemon.SdNotify(true, daemon.SdNotifyReady); err != nil {
		klog.ErrorS(err, "Cannot tell systemd netshim is ready", "notifySocket", addr)
		return
	}
	klog.V(2).InfoS("Told systemd netshim is ready", "notifySocket", addr)
}
