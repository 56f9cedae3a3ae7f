package e2e

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ping sends one ICMP echo to dst from the netns at nsPath ("" for the node)
// and waits for the reply. Only addresses the test created are ever pinged.
func ping(nsPath string, dst net.IP) error {
	if nsPath == "" {
		return pingHere(dst)
	}
	return ns.WithNetNSPath(nsPath, func(ns.NetNS) error { return pingHere(dst) })
}

func pingHere(dst net.IP) error {
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return fmt.Errorf("open ICMP socket: %w", err)
	}
	defer conn.Close()
	id := os.Getpid() & 0xffff
	for seq := 1; seq <= 5; seq++ {
		msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("netshim-e2e")}}
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
