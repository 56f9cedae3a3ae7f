package container

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// exitWatch watches the dir where conmon writes each container's exit file
// (inotify, through fsnotify), so that an exit is seen when it is written:
// a stop returns then, and the container's state is brought up to date
// without anyone asking, instead of being polled for.
type exitWatch struct {
	dir    string
	w      *fsnotify.Watcher
	onExit func(id string) // called, in a goroutine of its own, for every exit file written

	mu      sync.Mutex
	waiters map[string]chan struct{} // closed at the next event for the ID's exit file

	exited chan struct{}
}

func watchExits(dir string, onExit func(id string)) (*exitWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch exit dir %s: %w", dir, err)
	}
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch exit dir %s: %w", dir, err)
	}
	x := &exitWatch{dir: dir, w: w, onExit: onExit, waiters: map[string]chan struct{}{}, exited: make(chan struct{})}
	go x.loop()
	return x, nil
}

// next returns a channel closed at the next write of id's exit file. Call
// it before reading the file, so that a write in between is not missed.
func (x *exitWatch) next(id string) <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	ch, ok := x.waiters[id]
	if !ok {
		ch = make(chan struct{})
		x.waiters[id] = ch
	}
	return ch
}

func (x *exitWatch) wake(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ch, ok := x.waiters[id]; ok {
		close(ch)
		delete(x.waiters, id)
	}
}

// wakeAll wakes every waiter, to read its file again: after a lost event.
func (x *exitWatch) wakeAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, ch := range x.waiters {
		close(ch)
		delete(x.waiters, id)
	}
}

func (x *exitWatch) loop() {
	defer close(x.exited)
	for {
		select {
		case ev, ok := <-x.w.Events:
			if !ok {
				return
			}
			// conmon creates the file and writes the code: either event
			// may be the one after which the code is there. A removal (the
			// container's own) is nothing to wake for.
			if !ev.Has(fsnotify.Create|fsnotify.Write) || filepath.Dir(ev.Name) != x.dir {
				continue
			}
			id := filepath.Base(ev.Name)
			x.wake(id)
			if x.onExit != nil {
				go x.onExit(id)
			}
		case err, ok := <-x.w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: every waiter reads its file again.
			klog.InfoS("Exit dir watch error; rereading every awaited exit file", "dir", x.dir, "err", err)
			x.wakeAll()
		}
	}
}

func (x *exitWatch) close() {
	_ = x.w.Close()
	<-x.exited
	x.wakeAll()
}
