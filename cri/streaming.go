package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/container"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/sandbox"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"
)

// Execer runs processes in running containers; *oci.Runc is one.
type Execer interface {
	Exec(ctx context.Context, id string, o oci.ExecOptions) (int, error)
}

// maxExecSyncOutput caps each of ExecSync's stdout and stderr; together
// they fill kubelet's 16 MiB gRPC message limit, and ExecSync takes the
// answer's framing off them.
const maxExecSyncOutput = 8 << 20

// NewStreamingServer serves exec, attach and port-forward for s on lis; the
// URLs the CRI RPCs hand out point at lis's address.
func NewStreamingServer(s *Server, lis net.Listener) (*http.Server, error) {
	cfg := streaming.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: lis.Addr().String()}
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s.streaming = srv
	return &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}, nil
}

// runningContainer returns the container id names when it is running in a
// READY sandbox: a pod being stopped or whose pause died serves no streams.
func (s *Server) runningContainer(id string) (*container.Container, error) {
	if id == "" {
		return nil, fmt.Errorf("container_id is required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := s.containers.Get(id)
	if err != nil {
		return nil, err
	}
	if c.State != container.StateRunning {
		return nil, fmt.Errorf("container %s is %s, not running: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	if _, err := s.readySandbox(c.SandboxID); err != nil {
		return nil, fmt.Errorf("container %s: %w", c.ID, err)
	}
	return c, nil
}

// readySandbox returns the sandbox id names when it is READY.
func (s *Server) readySandbox(id string) (*sandbox.Sandbox, error) {
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.StateReady {
		return nil, fmt.Errorf("pod sandbox %s is not ready (state %s): %w", sb.ID, sb.State, errdefs.ErrFailedPrecondition)
	}
	return sb, nil
}

// portForwardNetNS is the network namespace a port-forward to sandbox id
// dials from: the pod's pinned netns while the sandbox is READY, or the
// node's own (host true) for a host-network pod. Anything else is refused:
// a stopped sandbox's path is "", and dialling then would reach the node's
// own loopback. It is asked for the URL and again when the client connects.
func (s *Server) portForwardNetNS(id string) (path string, host bool, err error) {
	sb, err := s.readySandbox(id)
	if err != nil {
		return "", false, err
	}
	if sb.Spec.HostNetwork {
		return "", true, nil
	}
	if sb.NetNSPath == "" {
		return "", false, fmt.Errorf("pod sandbox %s has no network namespace: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	if _, err := os.Stat(sb.NetNSPath); err != nil {
		return "", false, fmt.Errorf("network namespace %s of pod sandbox %s is gone: %w", sb.NetNSPath, sb.ID, errdefs.ErrNotFound)
	}
	return sb.NetNSPath, false, nil
}

func (s *Server) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidField("cmd", "is required: name the command to run")
	}
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "exec")
	}
	req.ContainerId = c.ID
	return s.streaming.GetExec(req)
}

func (s *Server) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "attach")
	}
	req.ContainerId = c.ID
	return s.streaming.GetAttach(req)
}

func (s *Server) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, wrapf(err, "port forward")
	}
	if _, _, err := s.portForwardNetNS(id); err != nil {
		return nil, wrapf(err, "port forward")
	}
	req.PodSandboxId = id
	return s.streaming.GetPortForward(req)
}

// ExecSync runs a command to completion, as kubelet's exec probes do. A
// timeout kills the process and answers DeadlineExceeded, which kubelet
// counts as a probe timeout; each output is capped at 8 MiB.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.InvalidField("cmd", "is required: name the command to run")
	}
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, wrapf(err, "exec sync")
	}
	if t := req.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	stdout, stderr := &cappedBuffer{max: maxExecSyncOutput}, &cappedBuffer{max: maxExecSyncOutput}
	code, err := s.execerFor(c.RuntimeHandler).Exec(ctx, c.ID, oci.ExecOptions{Cmd: req.GetCmd(), Stdout: stdout, Stderr: stderr, TempDir: s.dirs.Exec})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// kubelet counts DeadlineExceeded as a probe timeout.
			return nil, fmt.Errorf("command %q timed out after %ds: %w", req.GetCmd(), req.GetTimeout(), context.DeadlineExceeded)
		}
		return nil, wrapf(err, "exec sync in container %s", c.ID)
	}
	resp := &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}
	// Two full outputs are the whole limit, and the answer's framing is
	// more: take the excess off stderr, then stdout, so kubelet takes it.
	if over := proto.Size(resp) - MaxMessageSize; over > 0 {
		cut := min(over, len(resp.Stderr))
		resp.Stderr = stderr.upTo(len(resp.Stderr) - cut)
		resp.Stdout = stdout.upTo(len(resp.Stdout) - (over - cut))
	}
	return resp, nil
}

// cappedBuffer keeps the first max bytes and says where it cut.
type cappedBuffer struct {
	max int
	buf bytes.Buffer
	cut bool
}

const truncatedNote = "\n[output truncated: over 8 MiB]\n"

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	if b.buf.Len()+len(p) > b.max {
		b.cut = true
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte { return b.upTo(b.max) }

// upTo is what was written, in at most n bytes: cut short, it ends with
// truncatedNote.
func (b *cappedBuffer) upTo(n int) []byte {
	data := b.buf.Bytes()
	if !b.cut && len(data) <= n {
		return data
	}
	keep := max(0, min(n, len(data))-len(truncatedNote))
	// A copy: the buffer's own bytes stay whole for a later, longer cut.
	return append(data[:keep:keep], truncatedNote...)
}

// streamRuntime is what the streaming server calls once a client connected.
type streamRuntime struct{ s *Server }

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.runningContainer(id)
	if err != nil {
		return err
	}
	o := oci.ExecOptions{Cmd: cmd, Tty: tty, TempDir: r.s.dirs.Exec, Resize: terminalSizes(ctx, resize)}
	if in != nil {
		o.Stdin = in
	}
	if out != nil {
		o.Stdout = out
	}
	if errw != nil {
		o.Stderr = errw
	}
	code, err := r.s.execerFor(c.RuntimeHandler).Exec(ctx, c.ID, o)
	klog.V(4).InfoS("Exec stream ended", "container", c.ID, "cmd", cmd, "tty", tty, "exitCode", code, "err", err)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command %q exited with %d", cmd, code), Code: code}
	}
	return nil
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.runningContainer(id)
	if err != nil {
		return err
	}
	o := oci.AttachOptions{Resize: terminalSizes(ctx, resize)}
	if in != nil && c.Stdin {
		o.Stdin = in
	}
	if out != nil {
		o.Stdout = out
	}
	if errw != nil {
		o.Stderr = errw
	}
	return oci.Attach(ctx, c.AttachSocketPath(), c.CtlPath(), o)
}

// terminalSizes passes the client's resizes on until ctx ends.
func terminalSizes(ctx context.Context, in <-chan remotecommandserver.TerminalSize) <-chan oci.TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan oci.TerminalSize)
	go func() {
		defer close(out)
		for {
			select {
			case size, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- oci.TerminalSize{Width: size.Width, Height: size.Height}:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// PortForward connects stream to localhost:port in the pod's network
// namespace, without entering any container: the socket is made inside the
// netns and works from here once connected.
func (r streamRuntime) PortForward(ctx context.Context, podSandboxID string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	// The sandbox may have stopped since the URL was handed out.
	path, host, err := r.s.portForwardNetNS(podSandboxID)
	if err != nil {
		return fmt.Errorf("port forward to port %d: %w", port, err)
	}
	conn, err := dialInNetNS(ctx, path, host, port)
	if err != nil {
		return fmt.Errorf("port forward to port %d of pod sandbox %s: %w", port, podSandboxID, err)
	}
	defer conn.Close()
	klog.V(4).InfoS("Port forward", "sandbox", podSandboxID, "port", port)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	stream.Close()
	conn.Close()
	wg.Wait()
	return err
}

// dialInNetNS dials localhost:port (IPv4, then IPv6) from inside the netns
// at path, or from the node's own when host is set (a host-network pod). It
// never dials from the node's netns for a pod that has its own.
func dialInNetNS(ctx context.Context, path string, host bool, port int32) (net.Conn, error) {
	dial := func() (net.Conn, error) {
		d := net.Dialer{Timeout: 10 * time.Second}
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, fmt.Sprint(port)))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	if host {
		return dial()
	}
	if path == "" {
		return nil, fmt.Errorf("no network namespace to dial from: %w", errdefs.ErrFailedPrecondition)
	}
	var conn net.Conn
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		conn, err = dial()
		return err
	})
	return conn, err
}
