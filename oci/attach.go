package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// conmon prefixes each packet it sends on the attach socket with the
// stream it came from.
const (
	attachStdout = 2
	attachStderr = 3
	// attachPacket is conmon's packet size: a prefix byte and 8 KiB.
	attachPacket = 8192 + 1
)

// AttachOptions are the streams to join a running container's stdio with.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Resize         <-chan TerminalSize
}

// Attach joins the container's stdio through its monitor's attach socket
// (SOCK_SEQPACKET; output packets carry a one-byte stream prefix, input goes
// as it is) and resizes its terminal through the control fifo. It returns
// when the container's output ends or ctx is done.
func Attach(ctx context.Context, socketPath, ctlPath string, o AttachOptions) error {
	conn, err := dialAttach(socketPath)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	var wg sync.WaitGroup
	if o.Resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case size, ok := <-o.Resize:
					if !ok {
						return
					}
					_ = writeCtl(ctlPath, fmt.Sprintf("1 %d %d\n", size.Height, size.Width))
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if o.Stdin != nil {
		// Not waited for: a client's stdin may block until it goes away.
		go func() {
			_, _ = io.Copy(conn, o.Stdin)
			_ = conn.CloseWrite()
		}()
	}
	buf := make([]byte, attachPacket)
	var readErr error
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			var w io.Writer
			switch buf[0] {
			case attachStdout:
				w = o.Stdout
			case attachStderr:
				w = o.Stderr
			}
			if w != nil {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					readErr = werr
					break
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				readErr = err
			}
			break
		}
		if n == 0 {
			break
		}
	}
	cancel()
	wg.Wait()
	return readErr
}

// dialAttach connects to the attach socket through /proc/self/fd of its
// dir, since a bundle path can be longer than a socket address allows.
func dialAttach(socketPath string) (*net.UnixConn, error) {
	dir, err := os.OpenFile(filepath.Dir(socketPath), unix.O_PATH, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(socketPath))
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: addr, Net: "unixpacket"})
}
