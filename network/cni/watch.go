package cni

import (
	"fmt"
	"os"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/klog/v2"
)

// Resync intervals: the slow safety net while the dir is watched, and the
// faster poll while it is missing (removed and not yet recreated).
const (
	resyncWatched = 30 * time.Second
	resyncMissing = time.Second
)

// confWatcher calls reload on every change in the conf dir or a bin dir (a
// config naming a missing plugin comes alive when the binary is installed),
// survives the conf dir being removed and recreated, and reloads
// periodically in case an event was lost.
type confWatcher struct {
	dir    string
	reload func()
	w      *fsnotify.Watcher
	done   chan struct{}
	exited chan struct{}
}

func watchConfDir(dir string, binDirs []string, reload func()) (*confWatcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch CNI conf dir %s: %w", dir, err)
	}
	cw := &confWatcher{dir: dir, reload: reload, w: w, done: make(chan struct{}), exited: make(chan struct{})}
	for _, b := range binDirs {
		if err := w.Add(b); err != nil {
			klog.InfoS("Not watching CNI bin dir; new plugins are noticed at the periodic resync", "dir", b, "err", err)
		}
	}
	watching := w.Add(dir) == nil
	go cw.loop(watching)
	return cw, nil
}

func (cw *confWatcher) loop(watching bool) {
	defer close(cw.exited)
	timer := time.NewTimer(interval(watching))
	defer timer.Stop()
	for {
		select {
		case <-cw.done:
			return
		case ev, ok := <-cw.w.Events:
			if !ok {
				return
			}
			if ev.Name == cw.dir && ev.Has(fsnotify.Remove|fsnotify.Rename) && watching {
				// Poll for the dir's return from now on, not after the
				// slow resync already pending.
				watching = false
				timer.Reset(resyncMissing)
			}
			cw.reload()
		case err, ok := <-cw.w.Errors:
			if !ok {
				return
			}
			klog.InfoS("CNI conf dir watch error", "dir", cw.dir, "err", err)
		case <-timer.C:
			if !watching {
				if _, err := os.Stat(cw.dir); err == nil && cw.w.Add(cw.dir) == nil {
					watching = true
					klog.InfoS("Watching CNI conf dir again", "dir", cw.dir)
				}
			}
			cw.reload()
			timer.Reset(interval(watching))
		}
	}
}

func interval(watching bool) time.Duration {
	if watching {
		return resyncWatched
	}
	return resyncMissing
}

func (cw *confWatcher) close() {
	close(cw.done)
	_ = cw.w.Close()
	<-cw.exited
}
