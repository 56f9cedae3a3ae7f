package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventWatch is one GetContainerEvents subscriber, subscribed (the server
// sent the stream's headers) when subscribe returns.
type eventWatch struct {
	stream runtimeapi.RuntimeService_GetContainerEventsClient
	cancel context.CancelFunc
}

func (s *shim) subscribe(t *testing.T) *eventWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	stream, err := s.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("GetContainerEvents headers: %v", err)
	}
	return &eventWatch{stream: stream, cancel: cancel}
}

// collect receives in the background; the returned func waits until n
// events came (or the stream ended) and gives them with the stream's error.
func (w *eventWatch) collect(t *testing.T) func(n int) ([]*runtimeapi.ContainerEventResponse, error) {
	t.Helper()
	ch := make(chan *runtimeapi.ContainerEventResponse, 10000)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := w.stream.Recv()
			if err != nil {
				errc <- err
				close(ch)
				return
			}
			ch <- ev
		}
	}()
	var got []*runtimeapi.ContainerEventResponse
	return func(n int) ([]*runtimeapi.ContainerEventResponse, error) {
		timeout := time.After(time.Minute)
		for len(got) < n {
			select {
			case ev, ok := <-ch:
				if !ok {
					return got, <-errc
				}
				got = append(got, ev)
			case <-timeout:
				t.Fatalf("%d events in a minute, want %d: %s", len(got), n, describeEvents(got, nil))
			}
		}
		return got, nil
	}
}

// describeEvent is one event as the tests compare them: type, whose event
// (a name from names), the pod's state, and each container's state.
func describeEvent(ev *runtimeapi.ContainerEventResponse, names map[string]string) string {
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	typ := strings.TrimSuffix(strings.TrimPrefix(ev.ContainerEventType.String(), "CONTAINER_"), "_EVENT")
	pod := "nil"
	if ps := ev.PodSandboxStatus; ps != nil {
		pod = name(ps.Id) + ":" + strings.TrimPrefix(ps.State.String(), "SANDBOX_")
	}
	var ctrs []string
	for _, c := range ev.ContainersStatuses {
		ctrs = append(ctrs, name(c.Id)+":"+strings.TrimPrefix(c.State.String(), "CONTAINER_"))
	}
	return fmt.Sprintf("%s %s pod=%s [%s]", typ, name(ev.ContainerId), pod, strings.Join(ctrs, " "))
}

func describeEvents(evs []*runtimeapi.ContainerEventResponse, names map[string]string) string {
	var lines []string
	for _, ev := range evs {
		lines = append(lines, describeEvent(ev, names))
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// A pod and two containers through their lives: every change comes as
// containerd 2.x sends it — the pod's own events under its sandbox ID,
// each event with the pod's status and all its containers' — in order,
// stamped in order, and an exit on its own is an event without anyone
// asking for the container's status.
func TestContainerEventsFollowAPod(t *testing.T) {
	s := startShim(t)
	image := busyboxImage(t)
	s.pull(image)
	w := s.subscribe(t)
	wait := w.collect(t)

	podCfg := podWithLogs(t, "events")
	pod := s.runPod(podCfg)
	job := s.runContainer(pod, podCfg, ctrConfig("job", image, "exit 3"))
	// Waited for by the events alone: no status call may bring the exit in.
	if _, err := wait(5); err != nil {
		t.Fatalf("stream ended: %v", err)
	}
	server := s.runContainer(pod, podCfg, ctrConfig("server", image, "exec sleep 3600"))
	if _, err := s.rt.StopContainer(s.ctx(), &runtimeapi.StopContainerRequest{ContainerId: server, Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.rt.RemoveContainer(s.ctx(), &runtimeapi.RemoveContainerRequest{ContainerId: job}); err != nil {
		t.Fatal(err)
	}
	s.stopPod(pod)
	s.removePod(pod)
	evs, err := wait(12)
	if err != nil {
		t.Fatalf("stream ended: %v", err)
	}

	names := map[string]string{pod: "pod", job: "job", server: "server"}
	want := []string{
		"CREATED pod pod=pod:READY []",
		"STARTED pod pod=pod:READY []",
		"CREATED job pod=pod:READY [job:CREATED]",
		"STARTED job pod=pod:READY [job:RUNNING]",
		"STOPPED job pod=pod:READY [job:EXITED]",
		"CREATED server pod=pod:READY [job:EXITED server:CREATED]",
		"STARTED server pod=pod:READY [job:EXITED server:RUNNING]",
		"STOPPED server pod=pod:READY [job:EXITED server:EXITED]",
		"DELETED job pod=pod:READY [server:EXITED]",
		"STOPPED pod pod=pod:NOTREADY [server:EXITED]",
		"DELETED server pod=pod:NOTREADY []",
		"DELETED pod pod=pod:NOTREADY []",
	}
	var got []string
	for _, ev := range evs {
		got = append(got, describeEvent(ev, names))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events:%s\nwant:\n\t%s", describeEvents(evs, names), strings.Join(want, "\n\t"))
	}

	// What kubelet reads of them: the pod's metadata and IP, each
	// container's exit, and times that order the events.
	for i, ev := range evs {
		ps := ev.PodSandboxStatus
		if ps.Metadata.GetUid() != podCfg.Metadata.Uid || ps.Metadata.GetName() != "events" || ps.Network.GetIp() == "" {
			t.Errorf("event %d: pod status %v", i, ps)
		}
		if i > 0 && ev.CreatedAt < evs[i-1].CreatedAt {
			t.Errorf("event %d stamped %d, before the one before it (%d)", i, ev.CreatedAt, evs[i-1].CreatedAt)
		}
	}
	jobExit := evs[4].ContainersStatuses[0]
	if jobExit.ExitCode != 3 || jobExit.Reason != "Error" || jobExit.FinishedAt == 0 || jobExit.Metadata.GetName() != "job" {
		t.Errorf("job's status in its stopped event: %v", jobExit)
	}
	if st := evs[7].ContainersStatuses[1]; st.ExitCode != 137 {
		t.Errorf("server's exit in its stopped event: %d, want 137 (killed)", st.ExitCode)
	}

	// A shutdown ends the stream with Unavailable rather than leaving the
	// graceful stop to wait for it.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if evs, err := wait(13); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("stream at shutdown: %v after %d events, want Unavailable, shutting down", err, len(evs))
	}
	_ = s.cmd.Wait()
	s.cmd = nil
}

// A subscriber that stops reading is cut off once it is more than
// --container-events-buffer events behind, with ResourceExhausted saying
// so, after the events it had (a gapless prefix); it holds up neither the
// runtime nor a second subscriber, which gets every event; subscribing
// again works, as kubelet does after a relist.
func TestSlowEventSubscriberIsCutOff(t *testing.T) {
	addr := freeLoopbackAddr(t)
	s := startShim(t, withArgs("--container-events-buffer", "8", "--metrics-address", addr))
	image := busyboxImage(t)
	s.pull(image)
	slow := s.subscribe(t)
	fast := s.subscribe(t)
	waitFast := fast.collect(t)

	// A large annotation makes every event large, so the stream's own
	// buffers (gRPC's flow-control windows) fill after a few of them.
	podCfg := podWithLogs(t, "flood")
	podCfg.Annotations["ballast"] = strings.Repeat("x", 16<<10)
	pod := s.runPod(podCfg)
	const n = 20
	for i := range n {
		s.createContainer(pod, podCfg, ctrConfig(fmt.Sprintf("c%d", i), image, "exit 0"))
	}
	s.stopPod(pod)
	s.removePod(pod)
	// The pod's created, started, stopped and deleted; each container's
	// created, stopped (killed at the pod's removal) and deleted.
	total := 4 + 3*n
	all, err := waitFast(total)
	if err != nil {
		t.Fatalf("the reading subscriber's stream ended: %v", err)
	}
	if last := all[total-1]; last.ContainerId != pod || last.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		t.Fatalf("the reading subscriber's last event: %s", describeEvent(last, nil))
	}

	var got []*runtimeapi.ContainerEventResponse
	var cut error
	for {
		ev, err := slow.stream.Recv()
		if err != nil {
			cut = err
			break
		}
		got = append(got, ev)
	}
	if status.Code(cut) != codes.ResourceExhausted || !strings.Contains(cut.Error(), "fell behind by 9 events") {
		t.Fatalf("slow subscriber ended with %v, want ResourceExhausted, fell behind by 9 events", cut)
	}
	if len(got) == 0 || len(got) >= total {
		t.Fatalf("slow subscriber got %d of %d events before the cut", len(got), total)
	}
	for i, ev := range got {
		if ev.ContainerId != all[i].ContainerId || ev.ContainerEventType != all[i].ContainerEventType || ev.CreatedAt != all[i].CreatedAt {
			t.Fatalf("slow subscriber's event %d is %s, the reading one's %s: not a gapless prefix", i, describeEvent(ev, nil), describeEvent(all[i], nil))
		}
	}
	t.Logf("slow subscriber got %d of %d events, then: %v", len(got), total, cut)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v, ok := metricValue(string(body), "netshim_container_events_subscribers_dropped_total"); !ok || v != 1 {
		t.Errorf("subscribers dropped: %v (present %v), want 1", v, ok)
	}
	if v, ok := metricValue(string(body), "netshim_container_events_sent_total"); !ok || v != float64(total+len(got)) {
		t.Errorf("events sent: %v (present %v), want %d", v, ok, total+len(got))
	}

	again := s.subscribe(t)
	waitAgain := again.collect(t)
	next := s.runPod(podConfig("after"))
	evs, err := waitAgain(2)
	if err != nil || evs[0].ContainerId != next || evs[1].ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT {
		t.Fatalf("after subscribing again: %s, %v", describeEvents(evs, nil), err)
	}
}
