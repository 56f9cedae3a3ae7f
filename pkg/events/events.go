// Package events fans the container events of GetContainerEvents out to
// every subscriber: the kinds of change the sandbox and container managers
// report, and a broadcaster that hands each subscriber every event, in the
// order published, without ever letting a slow subscriber hold up the
// publisher or the other subscribers.
package events

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/prometheus/client_golang/prometheus"
)

// Kind is a change of a sandbox or container that a CRI client can watch
// for; the CRI calls them CONTAINER_{CREATED,STARTED,STOPPED,DELETED}_EVENT.
type Kind int

const (
	Created Kind = iota + 1
	Started
	Stopped
	Deleted
)

func (k Kind) String() string {
	switch k {
	case Created:
		return "created"
	case Started:
		return "started"
	case Stopped:
		return "stopped"
	case Deleted:
		return "deleted"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

var (
	// ErrFellBehind ends the stream of a subscriber whose buffer was full
	// when an event came: it has missed that event, so it must relist
	// (kubelet does) and subscribe again. The error Stream returns wraps
	// it and errdefs.ErrResourceExhausted.
	ErrFellBehind = errors.New("container events subscriber fell behind")
	// ErrClosed ends every stream when netshim shuts down.
	ErrClosed = fmt.Errorf("container events are no longer served: netshim is shutting down: %w", errdefs.ErrUnavailable)
)

// Config sizes a Broadcaster and names its counters.
type Config struct {
	// Buffer is how many events a subscriber may be behind; one more and
	// its stream ends with ErrFellBehind. At least 1.
	Buffer int
	// Sent counts events handed to a subscriber's send; Dropped counts
	// subscribers cut off for falling behind. Either may be nil.
	Sent, Dropped prometheus.Counter
}

// Broadcaster hands every event published to every subscriber, in the order
// of the Publish calls. The zero value is not usable; see New.
type Broadcaster[T any] struct {
	cfg Config

	mu     sync.Mutex
	subs   map[*subscriber[T]]struct{}
	closed chan struct{} // closed by Close
}

type subscriber[T any] struct {
	events chan T        // buffered: cfg.Buffer events
	cut    chan struct{} // closed when the subscriber fell behind
	behind int           // how far behind it was when cut; set before cut is closed
}

// New returns a broadcaster with no subscribers.
func New[T any](cfg Config) *Broadcaster[T] {
	cfg.Buffer = max(cfg.Buffer, 1)
	return &Broadcaster[T]{cfg: cfg, subs: map[*subscriber[T]]struct{}{}, closed: make(chan struct{})}
}

// Active is whether anyone subscribes: a publisher may skip building an
// event no one would receive.
func (b *Broadcaster[T]) Active() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// Publish hands ev to every subscriber. It never blocks: a subscriber whose
// buffer is full is cut off (its stream ends with ErrFellBehind) rather
// than waited for. Publish calls are serialised, so every subscriber sees
// the events in one order. After Close it does nothing.
func (b *Broadcaster[T]) Publish(ev T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.events <- ev:
		default:
			s.behind = len(s.events) + 1 // the buffered ones and ev
			close(s.cut)
			delete(b.subs, s)
			if b.cfg.Dropped != nil {
				b.cfg.Dropped.Inc()
			}
		}
	}
}

// Subscription is one subscriber's place in the broadcaster.
type Subscription[T any] struct {
	b *Broadcaster[T]
	s *subscriber[T]
}

// Subscribe adds a subscriber: every event published from now on is
// buffered for it until Stream sends it. Close it (Stream does) to leave.
func (b *Broadcaster[T]) Subscribe() (*Subscription[T], error) {
	s := &subscriber[T]{events: make(chan T, b.cfg.Buffer), cut: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closed:
		return nil, ErrClosed
	default:
	}
	b.subs[s] = struct{}{}
	return &Subscription[T]{b: b, s: s}, nil
}

// Close unsubscribes; a second Close does nothing.
func (sub *Subscription[T]) Close() {
	sub.b.mu.Lock()
	defer sub.b.mu.Unlock()
	delete(sub.b.subs, sub.s)
}

// Stream sends every event of the subscription through send, one at a
// time, until ctx ends (nil: the subscriber left), send fails (its error),
// the subscriber falls behind (ErrFellBehind, saying by how many events)
// or the broadcaster is closed (ErrClosed); then it unsubscribes. send may
// block: only this subscriber waits for it.
func (sub *Subscription[T]) Stream(ctx context.Context, send func(T) error) error {
	defer sub.Close()
	b, s := sub.b, sub.s
	for {
		// An end is seen before another buffered event is sent: the
		// events after a gap would mislead.
		select {
		case <-s.cut:
			return s.fellBehind()
		case <-b.closed:
			return ErrClosed
		case <-ctx.Done():
			return nil
		default:
		}
		select {
		case <-s.cut:
			return s.fellBehind()
		case <-b.closed:
			return ErrClosed
		case <-ctx.Done():
			return nil
		case ev := <-s.events:
			if err := send(ev); err != nil {
				return err
			}
			if b.cfg.Sent != nil {
				b.cfg.Sent.Inc()
			}
		}
	}
}

func (s *subscriber[T]) fellBehind() error {
	return fmt.Errorf("%w by %d events (it may be at most %d behind); relist, then subscribe again: %w", ErrFellBehind, s.behind, cap(s.events), errdefs.ErrResourceExhausted)
}

// Close ends every stream with ErrClosed and refuses new ones; events
// published afterwards go nowhere. A second Close does nothing.
func (b *Broadcaster[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closed:
		return
	default:
	}
	close(b.closed)
	clear(b.subs)
}
