package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// wsStream is a client of the streaming server's websocket protocol
// (v4.channel.k8s.io): each message starts with its channel number.
type wsStream struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialStream(t *testing.T, rawURL, protocol string) *wsStream {
	t.Helper()
	wsURL := strings.Replace(rawURL, "http://", "ws://", 1)
	cfg, err := websocket.NewConfig(wsURL, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Protocol = []string{protocol}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &wsStream{t: t, ws: ws}
}

func (s *wsStream) send(channel byte, data []byte) {
	s.t.Helper()
	if err := websocket.Message.Send(s.ws, append([]byte{channel}, data...)); err != nil {
		s.t.Fatalf("send on channel %d: %v", channel, err)
	}
}

// readAll collects each channel's data until the server closes, or timeout.
func (s *wsStream) readAll(timeout time.Duration) map[byte]*bytes.Buffer {
	out := map[byte]*bytes.Buffer{}
	_ = s.ws.SetReadDeadline(time.Now().Add(timeout))
	for {
		var msg []byte
		if err := websocket.Message.Receive(s.ws, &msg); err != nil {
			return out
		}
		if len(msg) == 0 {
			continue
		}
		if out[msg[0]] == nil {
			out[msg[0]] = &bytes.Buffer{}
		}
		out[msg[0]].Write(msg[1:])
	}
}

// readUntil reads until channel's data holds want.
func (s *wsStream) readUntil(channel byte, want string, timeout time.Duration) string {
	s.t.Helper()
	var got bytes.Buffer
	_ = s.ws.SetReadDeadline(time.Now().Add(timeout))
	for !strings.Contains(got.String(), want) {
		var msg []byte
		if err := websocket.Message.Receive(s.ws, &msg); err != nil {
			s.t.Fatalf("channel %d: %v before %q arrived; got %q", channel, err, want, got.String())
		}
		if len(msg) > 0 && msg[0] == channel {
			got.Write(msg[1:])
		}
	}
	return got.String()
}

func str(b *bytes.Buffer) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// streamPod is a running pod with a busybox container serving /tmp over
// HTTP on 127.0.0.1:8080 and [::1]:8081.
func streamPod(t *testing.T, s *shim) (pod, ctr string) {
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "stream")
	pod = s.runPod(podCfg)
	cfg := ctrConfig("web", image, `echo served > /tmp/index.html; httpd -p 127.0.0.1:8080 -h /tmp; httpd -p [::1]:8081 -h /tmp; echo ready; exec sleep 3600`)
	ctr = s.runContainer(pod, podCfg, cfg)
	waitLog(t, filepath.Join(podCfg.LogDirectory, "web.log"), "F ready")
	return pod, ctr
}

func TestExecSync(t *testing.T) {
	s := startShim(t)
	pod, ctr := streamPod(t, s)
	resp, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr[:12], Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Stdout) != "out\n" || string(resp.Stderr) != "err\n" || resp.ExitCode != 3 {
		t.Errorf("ExecSync: stdout %q stderr %q exit %d", resp.Stdout, resp.Stderr, resp.ExitCode)
	}

	start := time.Now()
	_, err = s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"sleep", "37"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 10*time.Second {
		t.Errorf("ExecSync past its timeout: %v after %v, want DeadlineExceeded at once", err, time.Since(start))
	}
	ps, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"ps", "-o", "args"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(ps.Stdout), "sleep 37") {
		t.Errorf("the timed-out process is still running:\n%s", ps.Stdout)
	}

	big, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", "head -c 17000000 /dev/zero"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(big.Stdout) != 8<<20 || !strings.HasSuffix(string(big.Stdout), "truncated: over 8 MiB]\n") {
		t.Errorf("17 MB of output: got %d bytes ending %q", len(big.Stdout), big.Stdout[max(0, len(big.Stdout)-40):])
	}

	for name, req := range map[string]*runtimeapi.ExecSyncRequest{
		"empty command": {ContainerId: ctr},
		"unknown ID":    {ContainerId: "feedbeef", Cmd: []string{"true"}},
	} {
		if _, err := s.rt.ExecSync(s.ctx(), req); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s.removePod(pod)
}

// Exec through the streaming URL: stdin piped, stdout back, the exit code
// in the error channel; with a TTY, the resize reaches the process.
func TestExecStream(t *testing.T) {
	s := startShim(t)
	pod, ctr := streamPod(t, s)

	resp, err := s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"sh", "-c", "head -c 5; echo; exit 7"}, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	st := dialStream(t, resp.Url, "v4.channel.k8s.io")
	st.send(0, []byte("hello"))
	out := st.readAll(10 * time.Second)
	if str(out[1]) != "hello\n" {
		t.Errorf("stdout %q, want hello", str(out[1]))
	}
	if errMsg := str(out[3]); !strings.Contains(errMsg, "NonZeroExitCode") || !strings.Contains(errMsg, `"message":"7"`) {
		t.Errorf("error channel %q, want exit code 7", errMsg)
	}

	resp, err = s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"stty", "size"}, Stdin: true, Stdout: true, Tty: true})
	if err != nil {
		t.Fatal(err)
	}
	st = dialStream(t, resp.Url, "v4.channel.k8s.io")
	size, _ := json.Marshal(map[string]int{"Width": 77, "Height": 33})
	st.send(4, size)
	if got := st.readUntil(1, "33 77", 15*time.Second); !strings.Contains(got, "33 77") {
		t.Errorf("tty size %q", got)
	}

	if _, err := s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Stdout: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Exec without a command: %v", err)
	}
	s.stopPod(pod)
	if _, err := s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Exec into a stopped container: %v, want FailedPrecondition", err)
	}
	s.removePod(pod)
}

// Attach joins a running container's stdio through conmon's attach socket.
func TestAttach(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "attach")
	pod := s.runPod(podCfg)
	cfg := ctrConfig("echo", image, `while read line; do echo "got $line"; done`)
	cfg.Stdin = true
	ctr := s.runContainer(pod, podCfg, cfg)
	resp, err := s.rt.Attach(s.ctx(), &runtimeapi.AttachRequest{ContainerId: ctr, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	st := dialStream(t, resp.Url, "v4.channel.k8s.io")
	st.send(0, []byte("ping\n"))
	st.readUntil(1, "got ping", 10*time.Second)
	waitLog(t, filepath.Join(podCfg.LogDirectory, "echo.log"), "stdout F got ping")
	s.removePod(pod)
}

// Port-forward reaches ports the pod listens on, on IPv4 and IPv6
// localhost; a port nothing listens on is an error on its error channel.
func TestPortForward(t *testing.T) {
	s := startShim(t)
	pod, _ := streamPod(t, s)
	for _, port := range []int32{8080, 8081} { // IPv4 only, IPv6 only
		data, errMsg := portForwardGET(t, s, pod[:13], port)
		if !strings.Contains(data, "served") || errMsg != "" {
			t.Errorf("port %d: got %q, error %q", port, data, errMsg)
		}
	}
	if data, errMsg := portForwardGET(t, s, pod, 9); data != "" || !strings.Contains(errMsg, "port 9") {
		t.Errorf("port 9, where nothing listens: got %q, error %q", data, errMsg)
	}
	s.removePod(pod)
}

// portForwardGET sends an HTTP/1.0 GET through a port-forward websocket to
// port of pod and returns what came back on the port's data and error
// channels. Each streaming URL serves one connection, as kubelet's do.
func portForwardGET(t *testing.T, s *shim, pod string, port int32) (data, errMsg string) {
	t.Helper()
	resp, err := s.rt.PortForward(s.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{port}})
	if err != nil {
		t.Fatal(err)
	}
	st := dialStream(t, resp.Url, "v4.channel.k8s.io")
	st.send(0, []byte("GET /index.html HTTP/1.0\r\n\r\n"))
	got := map[byte]*bytes.Buffer{}
	_ = st.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		var msg []byte
		if err := websocket.Message.Receive(st.ws, &msg); err != nil {
			break // the server closes once the port's connection ended
		}
		if len(msg) == 0 {
			continue
		}
		if got[msg[0]] == nil {
			got[msg[0]] = &bytes.Buffer{}
			if len(msg) == 3 && int32(binary.LittleEndian.Uint16(msg[1:3])) == port {
				continue // each channel opens with its port number
			}
		}
		got[msg[0]].Write(msg[1:])
	}
	return str(got[0]), str(got[1])
}

// 200 exec calls leave netshim's fds and goroutines where they started.
func TestExecLeavesNothing(t *testing.T) {
	addr := freeLoopbackAddr(t)
	s := startShim(t, withArgs("--metrics-address", addr))
	pod, ctr := streamPod(t, s)
	exec := func() {
		if _, err := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // warm-up: lazily started goroutines and caches
		exec()
	}
	fds0, gr0 := s.openFDs(), goroutines(t, addr)
	for range 200 {
		exec()
	}
	var fds int
	var gr float64
	eventually(t, 10*time.Second, "fds and goroutines to settle", func() bool {
		fds, gr = s.openFDs(), goroutines(t, addr)
		return fds <= fds0+2 && gr <= gr0+3
	})
	t.Logf("after 200 execs: fds %d → %d, goroutines %v → %v", fds0, fds, gr0, gr)
	s.removePod(pod)
}

// A port-forward never dials from the node's network namespace for a pod
// that has its own: a stopped sandbox's netns is gone, and a dial made
// anyway would reach whatever the node serves on its loopback (issue 23.1).
// The URL is refused, and so is a URL handed out before the stop when its
// client connects after it.
func TestPortForwardNeverLeavesThePodsNetns(t *testing.T) {
	s := startShim(t)
	node, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	var reached atomic.Int32
	go func() {
		for {
			c, err := node.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nthe node's loopback\n"))
			c.Close()
		}
	}()
	port := int32(node.Addr().(*net.TCPAddr).Port)

	pod := s.runPod(podConfig("pf-stopped"))
	early, err := s.rt.PortForward(s.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{port}})
	if err != nil {
		t.Fatal(err)
	}
	s.stopPod(pod)

	_, err = s.rt.PortForward(s.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{port}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("PortForward to a stopped pod: %v, want FailedPrecondition saying it is not ready", err)
	}

	st := dialStream(t, early.Url, "v4.channel.k8s.io")
	st.send(0, []byte("GET / HTTP/1.0\r\n\r\n"))
	out := st.readAll(15 * time.Second)
	if data := str(out[0]); strings.Contains(data, "node's loopback") {
		t.Errorf("a URL of the pod before its stop reached the node's loopback: %q", data)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the node's loopback listener was reached %d times through a stopped pod", n)
	}
	if errMsg := str(out[1]); !strings.Contains(errMsg, "not ready") {
		t.Errorf("error channel %q, want it to say the pod is not ready", errMsg)
	}
	s.removePod(pod)
}

// A pod whose pause died is NOTREADY, even though its container still runs:
// exec, attach and port-forward into it are refused, saying the sandbox is
// not ready, as a stopped pod's are (issue 23.1).
func TestStreamsRefusedWhenThePodIsNotReady(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	podCfg := podWithLogs(t, "pause-died")
	pod := s.runPod(podCfg)
	cfg := ctrConfig("survivor", image, "exec sleep 3600")
	// Its own PID namespace, so that it outlives the pause.
	cfg.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	ctr := s.runContainer(pod, podCfg, cfg)
	_, info := s.status(pod)
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, reapWait, "NOTREADY after the pause process died", func() bool {
		st, _ := s.status(pod)
		return st.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
	if st := s.containerStatus(ctr); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s, want it still running for this test", st.State)
	}
	_, execErr := s.rt.Exec(s.ctx(), &runtimeapi.ExecRequest{ContainerId: ctr, Cmd: []string{"true"}, Stdout: true})
	_, syncErr := s.rt.ExecSync(s.ctx(), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"true"}})
	_, attachErr := s.rt.Attach(s.ctx(), &runtimeapi.AttachRequest{ContainerId: ctr, Stdout: true})
	_, pfErr := s.rt.PortForward(s.ctx(), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{8080}})
	for name, err := range map[string]error{"Exec": execErr, "ExecSync": syncErr, "Attach": attachErr, "PortForward": pfErr} {
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "not ready") {
			t.Errorf("%s into a pod whose pause died: %v, want FailedPrecondition saying it is not ready", name, err)
		}
	}
	s.removePod(pod)
}
