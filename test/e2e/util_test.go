package e2e

import (
	"net"
	"testing"
	"time"
)

const (
	// reapWait bounds how long a killed pause process may take to be reaped.
	reapWait = 5 * time.Second
	// reloadWait bounds how long a conf dir change may take to be noticed.
	reloadWait = 10 * time.Second
	// orphanReapWait: a pause process adopted across a restart is reaped by
	// PID 1, which on some machines does so only periodically.
	orphanReapWait = 30 * time.Second
)

// freeLoopbackAddr is a 127.0.0.1 port free at the time of the call, for
// netshim's --metrics-address.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}
