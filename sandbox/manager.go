package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/checkpoint"
	"github.com/netshim/netshim/pkg/crashpoint"
	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/idindex"
	"github.com/netshim/netshim/pkg/keylock"
	"github.com/netshim/netshim/pkg/memstore"
	"github.com/netshim/netshim/pkg/proc"
	"github.com/netshim/netshim/pkg/reaper"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Config places everything the manager keeps on disk; every path is a flag.
type Config struct {
	RootDir     string // --root-dir: checkpoints (persistent)
	StateDir    string // --state-dir: bundles, runtime state, the pause rootfs (tmpfs)
	NetNSDir    string // netns pins
	PauseBinary string
	Runtime     Runtime
	// Reaper reaps the pause processes, netshim being their subreaper.
	Reaper *reaper.Reaper
	// NetNS makes and removes the netns pins; nil is the kernel's.
	NetNS NetNS
}

// Manager owns the sandbox records and the system resources of each.
type Manager struct {
	cfg         Config
	checkpoints checkpoint.Store[Sandbox]
	rootfs      string
	reaper      *reaper.Reaper
	locks       keylock.Locks // one per sandbox ID: serialises changes to a record

	records *memstore.Store[Sandbox] // by ID and prefix; reservation names

	mu       sync.RWMutex
	children map[string]<-chan struct{} // sandbox ID → closed when its pause exits

	events announcer // tells the EventSink of changes (events.go)
}

// pauseStopTimeout bounds the wait for a killed pause process to be gone.
const pauseStopTimeout = 10 * time.Second

// NewManager prepares the directories and the shared pause rootfs.
func NewManager(cfg Config) (*Manager, error) {
	cpDir := checkpointsDir(cfg.RootDir)
	for _, d := range []string{cpDir, filepath.Join(cfg.StateDir, "sandboxes"), filepath.Join(cfg.StateDir, pinMarkerDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create state dir: %w", err)
		}
	}
	// Pod configs and runtime state are root's alone, also in dirs that existed before.
	for _, d := range []string{cfg.RootDir, cfg.StateDir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("restrict state dir: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.NetNSDir, 0o755); err != nil {
		return nil, fmt.Errorf("create netns dir: %w", err)
	}
	if cfg.NetNS == nil {
		cfg.NetNS = kernelNetNS{}
	}
	rootfs := filepath.Join(cfg.StateDir, "pause-rootfs")
	if err := prepareRootfs(rootfs, cfg.PauseBinary); err != nil {
		return nil, err
	}
	return &Manager{
		cfg:         cfg,
		checkpoints: newCheckpoints(cpDir),
		rootfs:      rootfs,
		reaper:      cfg.Reaper,
		records:     memstore.New((*Sandbox).clone),
		children:    map[string]<-chan struct{}{},
	}, nil
}

// RuntimeStatus is nil when sandboxes can be started: the OCI runtime is there.
func (m *Manager) RuntimeStatus() error { return m.cfg.Runtime.Available() }

// Close stops background work; pause processes keep running.
func (m *Manager) Close() {}

func (m *Manager) bundleDir(id string) string {
	return filepath.Join(m.cfg.StateDir, "sandboxes", id)
}

// Files are the paths of the sandbox's shared files that containers mount.
func (m *Manager) Files(id string) Files {
	b := m.bundleDir(id)
	f := Files{ResolvConf: filepath.Join(b, resolvConfFile), Hostname: filepath.Join(b, hostnameFile), Hosts: filepath.Join(b, hostsFile)}
	if sb, ok := m.records.Get(id); ok && !sb.Spec.HostIPC {
		f.Shm = filepath.Join(b, shmDir)
	}
	return f
}

// Resolve returns the full ID of the one sandbox whose ID starts with
// prefix; none wraps errdefs.ErrNotFound, several is an error saying it is ambiguous.
func (m *Manager) Resolve(prefix string) (string, error) {
	id, err := m.records.Resolve(prefix)
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", fmt.Errorf("pod sandbox %q %w", prefix, errdefs.ErrNotFound)
	}
	return id, err
}

// Get returns a copy of the record of id.
func (m *Manager) Get(id string) (*Sandbox, error) {
	sb, ok := m.records.Get(id)
	if !ok {
		return nil, ErrNotFound
	}
	return sb, nil
}

// List returns copies of every record, oldest first.
func (m *Manager) List() []*Sandbox {
	out := m.records.List()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// GetNetNS is the network Host: the path of the sandbox's pin while it is
// mounted, "" once it is gone.
func (m *Manager) GetNetNS(id string) (string, error) {
	sb, err := m.Get(id)
	if err != nil {
		return "", err
	}
	if sb.NetNSPath == "" || !isNetNSPin(sb.NetNSPath) {
		return "", nil
	}
	return sb.NetNSPath, nil
}

// write is how far a change of a record goes before it is published.
type write int

const (
	// durable: fsynced, for what recovery could not find again.
	durable write = iota
	// teardown: for the steps that stop and remove a sandbox. Unsynced:
	// each step can be redone, and recovery handles every older state a
	// power cut could leave (a READY record whose pause is dead becomes
	// NOTREADY; an owed DEL is sent again). It must also succeed on a full
	// disk, or a pod could never be removed to free space: when the
	// checkpoint cannot be written even after its old copy was removed to
	// make room, the record lives on in memory only; if netshim restarts
	// before the sandbox is removed, it is forgotten, and what is left of it
	// is reclaimed like any orphan (GC's DEL, then the sweep).
	teardown
	// memory: published only; the next checkpoint write carries it to disk.
	memory
)

// update is the one way a sandbox's status changes: fn gets a copy of the
// status and returns the next one, or an error to refuse; the transition
// table may refuse too. The change is then written as w says and
// published. The caller holds the sandbox's lock.
func (m *Manager) update(id string, w write, fn func(Status) (Status, error)) (*Sandbox, error) {
	sb, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	before := sb.State
	next, err := fn(sb.clone().Status)
	if err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, err)
	}
	if next.State != sb.State {
		if err := checkTransition(sb.State, next.State); err != nil {
			return nil, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}
	sb.Status = next
	switch w {
	case durable:
		if err := m.checkpoints.Save(sb); err != nil {
			return nil, err
		}
	case teardown:
		if err := m.checkpoints.SaveMakingRoom(sb); err != nil {
			klog.ErrorS(err, "Sandbox checkpoint dropped; the sandbox is kept in memory until it is removed", "sandbox", sb.ID)
		}
	}
	m.records.Replace(id, sb)
	m.events.changed(before, sb)
	return sb.clone(), nil
}

// Create reserves the sandbox's name, checkpoints it (state creating), then
// creates and pins its netns. On failure it undoes all of that.
func (m *Manager) Create(spec Spec) (*Sandbox, error) {
	id, err := idindex.New()
	if err != nil {
		return nil, fmt.Errorf("make sandbox id: %w", err)
	}
	name := spec.ReservationName()
	sb := &Sandbox{ID: id, Spec: spec, CreatedAt: time.Now(), Status: Status{State: StateCreating}}
	if !spec.HostNetwork {
		// Both recorded before they exist, so recovery after a crash finds
		// the pin and sends the DEL that every (possibly partial) ADD needs.
		sb.NetNSPath = m.netnsPinPath(sb)
		sb.NetworkAttached = true
	}
	if err := m.records.Reserve(name, id); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNameReserved, err)
	}
	defer m.locks.Lock(id)()

	// Unsynced: a process crash keeps it, which is what recovery needs to
	// find the pin and send the DEL. A power cut may lose it, but takes the
	// pin (tmpfs) and the pause with it, and the network GC at start
	// reclaims the attachment. Ready's write is the durable one.
	if err := m.checkpoints.SaveUnsynced(sb); err != nil {
		m.release(sb)
		return nil, err
	}
	m.records.Add(id, sb.clone())
	m.events.created(id)
	if sb.NetNSPath != "" {
		crashpoint.Hit(crashpoint.BeforeNetNSPin)
		if err := m.pin(sb.NetNSPath); err != nil {
			m.forget(sb)
			return nil, fmt.Errorf("create netns of sandbox %s: %w", id, err)
		}
		crashpoint.Hit(crashpoint.AfterNetNSPin)
	}
	return sb.clone(), nil
}

// StartPause writes the bundle and starts the pause process. On failure the
// runtime's container is deleted again; the caller removes the sandbox.
func (m *Manager) StartPause(ctx context.Context, id string) error {
	defer m.locks.Lock(id)()
	sb, err := m.Get(id)
	if err != nil {
		return err
	}
	bundle := m.bundleDir(id)
	if err := writeBundle(bundle, m.rootfs, sb); err != nil {
		return fmt.Errorf("write bundle of sandbox %s: %w", id, err)
	}
	pid, err := m.cfg.Runtime.Run(ctx, id, bundle)
	crashpoint.Hit(crashpoint.AfterPauseStart)
	if err != nil {
		if derr := m.cfg.Runtime.Delete(context.WithoutCancel(ctx), id, true); derr != nil {
			klog.ErrorS(derr, "Failed to delete runtime container after a failed start", "sandbox", id)
		}
		return fmt.Errorf("start pause of sandbox %s: %w", id, err)
	}
	exited := m.reaper.Track(pid)
	m.mu.Lock()
	m.children[id] = exited
	m.mu.Unlock()
	start, _ := proc.StartTime(pid)
	// Published, not checkpointed: Ready's write records it. A crash
	// before that leaves a creating sandbox without a PID, which recovery
	// undoes with a forced delete of its runtime container.
	if _, err := m.update(id, memory, func(st Status) (Status, error) {
		st.PausePID, st.PauseStartTime = pid, start
		return st, nil
	}); err != nil {
		return err
	}
	go m.watchExit(id, pid, exited)
	return nil
}

// NetworkDetached records that the network DEL succeeded. It is only
// published: a DEL run again is harmless, and Stop's write records it.
func (m *Manager) NetworkDetached(id string) error {
	defer m.locks.Lock(id)()
	_, err := m.update(id, memory, func(st Status) (Status, error) {
		st.NetworkAttached = false
		return st, nil
	})
	return err
}

// MarkNotReady records that a READY sandbox is being stopped, before its
// network is torn down, so a crash mid-stop never leaves a READY sandbox
// without a network. A sandbox still being created stays creating, so
// that recovery undoes it.
func (m *Manager) MarkNotReady(id string) error {
	defer m.locks.Lock(id)()
	_, err := m.update(id, teardown, func(st Status) (Status, error) {
		if st.State == StateReady {
			st.State = StateNotReady
		}
		return st, nil
	})
	return err
}

// ErrPauseExited: the pause process exited before the sandbox was ready.
var ErrPauseExited = errors.New("its pause process exited during set-up")

// Ready records the pod IPs and asks for the sandbox to become READY. The
// transition table refuses it unless the sandbox is still being created:
// in particular when its pause process exited meanwhile, in which case the
// error wraps ErrPauseExited.
func (m *Manager) Ready(id string, ips []string) error {
	defer m.locks.Lock(id)()
	m.recordPendingExit(id)
	_, err := m.update(id, durable, func(st Status) (Status, error) {
		// Asked of the table even from ready: set-up is done once.
		if err := checkTransition(st.State, StateReady); err != nil {
			if st.PauseExited {
				return st, fmt.Errorf("%w: %w", err, ErrPauseExited)
			}
			return st, err
		}
		st.State, st.IPs = StateReady, ips
		return st, nil
	})
	return err
}

// Stop kills the pause process, deletes its runtime container and unpins the
// netns: state NOTREADY. Stopping a stopped sandbox does nothing. The pin is
// kept while a network DEL is still owed: a DEL without the netns cannot
// find the pod's addresses, and the bridge plugin then leaves its
// masquerade rule behind. The stop that finally runs the DEL unpins it.
func (m *Manager) Stop(ctx context.Context, id string) error {
	defer m.locks.Lock(id)()
	if err := m.stopPause(ctx, id); err != nil {
		return err
	}
	sb, err := m.Get(id)
	if err != nil {
		return err
	}
	pinned := sb.NetNSPath
	if !sb.NetworkAttached {
		if err := m.unpin(sb.NetNSPath); err != nil {
			return err
		}
		pinned = ""
	}
	_, err = m.update(id, teardown, func(st Status) (Status, error) {
		st.PausePID, st.PauseStartTime, st.NetNSPath = 0, 0, pinned
		st.State = StateNotReady // also from creating: a stopped sandbox is no longer interrupted
		return st, nil
	})
	return err
}

// StopPause kills the pause process and deletes its runtime container, the
// part of Stop that needs neither the network nor the netns, so that it can
// run alongside the network DEL. Stop finishes the job.
func (m *Manager) StopPause(ctx context.Context, id string) error {
	defer m.locks.Lock(id)()
	return m.stopPause(ctx, id)
}

func (m *Manager) stopPause(ctx context.Context, id string) error {
	sb, err := m.Get(id)
	if err != nil {
		return err
	}
	if sb.PausePID != 0 || sb.State == StateCreating {
		if err := m.killPause(ctx, sb); err != nil {
			return err
		}
		// Without a recorded PID (a crash between the start and its
		// checkpoint) the container may still run: only a forced delete ends it.
		if err := m.cfg.Runtime.Delete(ctx, id, sb.PausePID == 0); err != nil {
			return fmt.Errorf("delete pause container of sandbox %s: %w", id, err)
		}
		if err := oci.RemoveCgroup(ctx, cgroupPath(sb)); err != nil {
			klog.ErrorS(err, "Pause container's cgroup left behind", "sandbox", id)
		}
	}
	if err := unmountShm(m.bundleDir(id)); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	m.mu.Lock()
	delete(m.children, id)
	m.mu.Unlock()
	if sb.PausePID != 0 {
		// Stop's write records it; until then a restart sees a dead PID.
		_, err = m.update(id, memory, func(st Status) (Status, error) {
			st.PausePID, st.PauseStartTime = 0, 0
			return st, nil
		})
	}
	return err
}

func (m *Manager) killPause(ctx context.Context, sb *Sandbox) error {
	if !proc.SameAlive(sb.PausePID, sb.PauseStartTime) {
		return nil
	}
	if err := unix.Kill(sb.PausePID, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill pause pid %d of sandbox %s: %w", sb.PausePID, sb.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, pauseStopTimeout)
	defer cancel()
	m.mu.RLock()
	exited, child := m.children[sb.ID]
	m.mu.RUnlock()
	if child {
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("pause pid %d of sandbox %s did not exit: %w", sb.PausePID, sb.ID, ctx.Err())
		}
	}
	// Adopted after a restart: not our child, so poll until it is gone.
	for proc.SameAlive(sb.PausePID, sb.PauseStartTime) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pause pid %d of sandbox %s did not exit: %w", sb.PausePID, sb.ID, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// Remove stops the sandbox if needed and deletes everything left of it:
// bundle, checkpoint, record and name. Removing an unknown ID does nothing.
func (m *Manager) Remove(ctx context.Context, id string) error {
	sb, err := m.Get(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err := m.Stop(ctx, id); err != nil {
		return err
	}
	defer m.locks.Lock(id)()
	if now, err := m.Get(id); err == nil && now.NetworkAttached {
		// Forgetting it now would leave the DEL unsent, and its pin for good.
		return fmt.Errorf("remove sandbox %s: its network DEL has not succeeded yet", id)
	}
	if err := os.RemoveAll(m.bundleDir(id)); err != nil {
		return fmt.Errorf("remove bundle of sandbox %s: %w", id, err)
	}
	if err := m.checkpoints.Remove(id); err != nil {
		return err
	}
	m.forgetRecord(sb)
	return nil
}

// forget undoes a Create whose netns could not be made.
func (m *Manager) forget(sb *Sandbox) {
	if err := m.checkpoints.Remove(sb.ID); err != nil {
		klog.ErrorS(err, "Failed to remove checkpoint while undoing a sandbox", "sandbox", sb.ID)
	}
	m.forgetRecord(sb)
}

func (m *Manager) forgetRecord(sb *Sandbox) {
	last, _ := m.records.Get(sb.ID)
	m.records.Delete(sb.ID)
	m.events.removed(sb.ID, last)
	m.mu.Lock()
	delete(m.children, sb.ID)
	m.mu.Unlock()
	m.release(sb)
}

func (m *Manager) release(sb *Sandbox) {
	m.records.Release(sb.Spec.ReservationName(), sb.ID)
}
