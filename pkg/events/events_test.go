package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Each test runs in a synctest bubble: synctest.Test fails when a goroutine
// of the bubble is still blocked at the end, so every one also checks that
// no stream goroutine outlives its subscriber.

func newCounters() (sent, dropped prometheus.Counter) {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"}), prometheus.NewCounter(prometheus.CounterOpts{Name: "dropped"})
}

// stream subscribes and runs the subscription's Stream in a goroutine, collecting what it sends; the
// returned func waits for the stream's end and gives what it got.
func stream(ctx context.Context, b *Broadcaster[int], send func(int) error) func() ([]int, error) {
	var got []int
	done := make(chan error, 1)
	sub, err := b.Subscribe()
	if err != nil {
		done <- err
		return func() ([]int, error) { return nil, <-done }
	}
	go func() {
		done <- sub.Stream(ctx, func(ev int) error {
			got = append(got, ev)
			if send != nil {
				return send(ev)
			}
			return nil
		})
	}()
	return func() ([]int, error) {
		err := <-done
		return got, err
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent, dropped := newCounters()
		b := New[int](Config{Buffer: 4, Sent: sent, Dropped: dropped})
		ctx, cancel := context.WithCancel(t.Context())
		var waits []func() ([]int, error)
		for range 3 {
			waits = append(waits, stream(ctx, b, nil))
		}
		synctest.Wait() // all three subscribed
		// More events than a buffer holds: each subscriber keeps up.
		for i := range 100 {
			b.Publish(i)
			synctest.Wait()
		}
		cancel()
		for i, wait := range waits {
			got, err := wait()
			if err != nil {
				t.Errorf("subscriber %d: %v, want nil when its context ends", i, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(seq(100)) {
				t.Errorf("subscriber %d got %v", i, got)
			}
		}
		if n := testutil.ToFloat64(sent); n != 300 {
			t.Errorf("sent counter %v, want 300", n)
		}
		if n := testutil.ToFloat64(dropped); n != 0 {
			t.Errorf("dropped counter %v, want 0", n)
		}
		if b.Active() {
			t.Error("subscribers left after their contexts ended")
		}
	})
}

// A subscriber whose send is stuck never blocks Publish or the others; it
// is cut off once it is more than its buffer behind, and its stream ends
// with ResourceExhausted saying by how much, as soon as its send returns.
func TestSlowSubscriberIsCutOffWithoutBlockingOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sent, dropped := newCounters()
		b := New[int](Config{Buffer: 3, Sent: sent, Dropped: dropped})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		release := make(chan struct{})
		slow := stream(ctx, b, func(int) error { <-release; return nil })
		fast := stream(ctx, b, nil)
		synctest.Wait()

		for i := range 10 {
			b.Publish(i) // a blocked Publish would deadlock the bubble
			synctest.Wait()
		}
		if n := testutil.ToFloat64(dropped); n != 1 {
			t.Fatalf("dropped counter %v, want 1", n)
		}
		close(release)
		got, err := slow()
		if !errors.Is(err, ErrFellBehind) || !errors.Is(err, errdefs.ErrResourceExhausted) {
			t.Fatalf("slow subscriber ended with %v, want ErrFellBehind (ResourceExhausted)", err)
		}
		// Event 0 was in its send; 1..3 filled its buffer; 4 did not fit.
		if !strings.Contains(err.Error(), "by 4 events") {
			t.Errorf("error %q does not say it fell behind by 4 events", err)
		}
		// It got a gapless prefix: the event in flight, none after the cut.
		if fmt.Sprint(got) != fmt.Sprint([]int{0}) {
			t.Errorf("slow subscriber got %v, want [0]", got)
		}

		b.Publish(10)
		synctest.Wait()
		cancel()
		if got, err := fast(); err != nil || fmt.Sprint(got) != fmt.Sprint(seq(11)) {
			t.Errorf("other subscriber got %v, %v; want every event", got, err)
		}
	})
}

func TestContextEndUnsubscribes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New[int](Config{Buffer: 1})
		ctx, cancel := context.WithCancel(t.Context())
		wait := stream(ctx, b, nil)
		synctest.Wait()
		if !b.Active() {
			t.Fatal("no subscriber after Subscribe")
		}
		cancel()
		if _, err := wait(); err != nil {
			t.Errorf("Stream: %v, want nil", err)
		}
		if b.Active() {
			t.Error("subscriber kept after its context ended")
		}
		// Events with no subscriber go nowhere and block nothing.
		for i := range 10 {
			b.Publish(i)
		}
	})
}

func TestSendErrorEndsTheStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New[int](Config{Buffer: 2})
		broken := errors.New("transport closed")
		wait := stream(t.Context(), b, func(int) error { return broken })
		synctest.Wait()
		b.Publish(1)
		if _, err := wait(); !errors.Is(err, broken) {
			t.Errorf("Stream: %v, want the send's error", err)
		}
		if b.Active() {
			t.Error("subscriber kept after its send failed")
		}
	})
}

func TestCloseEndsEveryStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New[int](Config{Buffer: 2})
		a, c := stream(t.Context(), b, nil), stream(t.Context(), b, nil)
		synctest.Wait()
		b.Close()
		for _, wait := range []func() ([]int, error){a, c} {
			if _, err := wait(); !errors.Is(err, ErrClosed) || !errors.Is(err, errdefs.ErrUnavailable) {
				t.Errorf("Stream after Close: %v, want ErrClosed (Unavailable)", err)
			}
		}
		if _, err := b.Subscribe(); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe to a closed broadcaster: %v, want ErrClosed", err)
		}
		b.Publish(1)
		b.Close()
	})
}

// What is published once Subscribe returns is the subscriber's, even
// before its Stream runs: GetContainerEvents tells the client it is
// subscribed (the stream's headers) in between. Close leaves.
func TestSubscribeHoldsEventsUntilStreamed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New[int](Config{Buffer: 2})
		sub, err := b.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		b.Publish(7)
		ctx, cancel := context.WithCancel(t.Context())
		var got []int
		done := make(chan error, 1)
		go func() {
			done <- sub.Stream(ctx, func(ev int) error { got = append(got, ev); return nil })
		}()
		synctest.Wait()
		cancel()
		if err := <-done; err != nil || fmt.Sprint(got) != "[7]" {
			t.Errorf("Stream: %v, %v; want [7]", got, err)
		}
		other, err := b.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		other.Close()
		other.Close()
		if b.Active() {
			t.Error("a closed subscription is still served")
		}
	})
}
