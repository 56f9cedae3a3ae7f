package image

import (
	"errors"
	"net"
	"syscall"
)

// unreachable reports an error of the network between netshim and a
// registry rather than of the registry's answer: a name that does not
// resolve, a connection refused or cut, a timeout. The pull may work later,
// so it is ErrUnavailable, not Internal (kubelet backs off and retries either
// way, but an operator reading the code knows where to look).
func unreachable(err error) bool {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	return false
}
