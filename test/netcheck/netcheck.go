// Package netcheck holds the reachability checks the end-to-end suites make
// from inside network namespaces: ICMP echo, and a TCP exchange in which the
// server reports the source address it saw. Only addresses a test created
// are ever the target.
package netcheck

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// Ping sends ICMP echoes to dst from the netns at nsPath ("" for the
// caller's own) until one is answered, up to five tries a second apart.
func Ping(nsPath string, dst net.IP) error {
	return inNetNS(nsPath, func() error { return ping(dst) })
}

func inNetNS(nsPath string, f func() error) error {
	if nsPath == "" {
		return f()
	}
	return ns.WithNetNSPath(nsPath, func(ns.NetNS) error { return f() })
}

func ping(dst net.IP) error {
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("open ICMP socket: %w", err)
	}
	defer conn.Close()
	id := os.Getpid() & 0xffff
	for seq := 1; seq <= 5; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("netshim-test")}}
		wire, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		if _, err := conn.WriteTo(wire, &net.IPAddr{IP: dst}); err != nil {
			return fmt.Errorf("send echo to %s: %w", dst, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				break // timed out: try the next sequence number
			}
			reply, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || reply.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if echo, ok := reply.Body.(*icmp.Echo); ok && echo.Seq == seq && peer.(*net.IPAddr).IP.Equal(dst) {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo reply from %s", dst)
}

// Server is a one-connection-at-a-time TCP server bound in some netns. Each
// client gets back, as one line, the source address the server saw it come
// from: the thing NAT would change.
type Server struct {
	lis net.Listener
}

// Listen starts a Server on ip (port chosen by the kernel) inside the netns at nsPath.
func Listen(nsPath string, ip net.IP) (*Server, error) {
	var lis net.Listener
	// A socket stays in the netns it was made in, so it may be served from any thread.
	err := inNetNS(nsPath, func() error {
		var err error
		lis, err = net.Listen("tcp4", net.JoinHostPort(ip.String(), "0"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in %s: %w", ip, nsPath, err)
	}
	s := &Server{lis: lis}
	go s.serve()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Close stops the server.
func (s *Server) Close() error { return s.lis.Close() }

func (s *Server) serve() {
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s\n", host)
		}()
	}
}

// Exchange is one TCP round trip as both ends saw it.
type Exchange struct {
	ClientIP net.IP // the client's own address on the connection
	SeenAs   net.IP // the source address the server saw
}

// Dial connects to a Server at addr from the netns at nsPath and returns
// the client's own address and the one the server saw.
func Dial(nsPath, addr string) (Exchange, error) {
	var ex Exchange
	err := inNetNS(nsPath, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintln(c, "hello from netcheck"); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		ex.ClientIP = c.LocalAddr().(*net.TCPAddr).IP
		ex.SeenAs = net.ParseIP(strings.TrimSpace(line))
		return nil
	})
	if err != nil {
		return ex, fmt.Errorf("TCP to %s from %s: %w", addr, nsPath, err)
	}
	return ex, nil
}

// DialerIn returns a DialContext that opens its sockets in the network
// namespace pinned at path: a socket belongs to the netns it was made in,
// so a process in the host's netns reaches addresses that only exist in
// another, without a single link or route in the host's.
func DialerIn(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetNS(path, func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}
