package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Rootfs mounts an image's layers as a container's root filesystem;
// *image.Store is one.
type Rootfs interface {
	// Mount leases imageID's layers for containerID and mounts an overlay
	// with its writable layer in dir; it returns the rootfs path.
	Mount(containerID, imageID, dir string, readOnly bool) (string, error)
	// Unmount unmounts, removes dir and drops the lease; idempotent.
	Unmount(containerID, dir string) error
	// Leases lists the container IDs holding a lease.
	Leases() []string
	// MountVolume adds the image ref names to containerID's lease and
	// mounts its root file system read-only in dir, under the dir that
	// Unmount is given; it returns the mount's path.
	MountVolume(containerID, ref, dir string) (string, error)
}

// Runtime is what the manager needs of the OCI runtime; *oci.Runc is one.
type Runtime interface {
	Start(ctx context.Context, id string) error
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	Delete(ctx context.Context, id string, force bool) error
	List(ctx context.Context) ([]string, error)
	// State is the runtime's word on the container: "created", "running",
	// "stopped", or "" when it has none.
	State(ctx context.Context, id string) (string, error)
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
}

// Monitor starts a container under its per-container monitor; *oci.Conmon is one.
type Monitor interface {
	Create(ctx context.Context, o oci.MonitorOptions) (pid, monitorPID int, err error)
}

// Config places what the manager keeps on disk and what it drives.
type Config struct {
	RootDir  string // persistent: checkpoints and writable layers
	StateDir string // --state-dir/containers: runtime: bundles and exit files (tmpfs)
	Runtime  Runtime
	Monitor  Monitor
	Rootfs   Rootfs
	Reaper   *reaper.Reaper
	// CDISpecDirs are where CDI specs are read from, at each create that
	// asks for CDI devices; empty is DefaultCDISpecDirs.
	CDISpecDirs []string
}

// Manager owns the container records and the system resources of each.
type Manager struct {
	cfg         Config
	checkpoints checkpoint.Store[Container]
	locks       keylock.Locks // one per container: serialises its lifecycle
	// status is one per container too, held only while its record is read,
	// changed and written: an exit or a refresh never waits for a lifecycle
	// operation (a stop's grace period), only for another record write.
	status keylock.Locks

	records *memstore.Store[Container] // by ID and prefix; reservation names
	exits   *exitWatch
	cdi     *CDIRegistry

	mu       sync.Mutex
	monitors map[string]<-chan struct{} // container ID → closed when its monitor, our child, exits
	unsaved  map[string]bool            // container IDs whose published status is not on disk yet

	events EventSink // guarded by mu; told of changes (events.go)

	usageMu    sync.Mutex
	usage      map[string]*usage // container ID → last measure of its writable layer
	background sync.WaitGroup    // measures under way: Close waits for them
}

// exitWait bounds the wait for a SIGKILLed container to be reported gone.
const exitWait = 10 * time.Second

// NewManager prepares the manager's directories.
func NewManager(cfg Config) (*Manager, error) {
	m := &Manager{
		cfg: cfg,
		checkpoints: checkpoint.Store[Container]{
			Dir: filepath.Join(cfg.RootDir, "checkpoints"), Kind: "container",
			ID: func(c *Container) string { return c.ID }, Valid: idindex.Valid,
		},
		records:  memstore.New((*Container).clone),
		monitors: map[string]<-chan struct{}{},
		unsaved:  map[string]bool{},
		usage:    map[string]*usage{},
	}
	for _, d := range []string{m.checkpoints.Dir, m.layersDir(), m.exitDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create container state dir: %w", err)
		}
	}
	cdiRegistry, err := NewCDIRegistry(cfg.CDISpecDirs)
	if err != nil {
		return nil, err
	}
	m.cdi = cdiRegistry
	exits, err := watchExits(m.exitDir(), m.refresh)
	if err != nil {
		return nil, err
	}
	m.exits = exits
	return m, nil
}

// Close stops watching for exits and waits for background measures;
// containers keep running.
func (m *Manager) Close() {
	m.exits.close()
	m.background.Wait()
}

func (m *Manager) exitDir() string           { return filepath.Join(m.cfg.StateDir, "exits") }
func (m *Manager) layersDir() string         { return filepath.Join(m.cfg.RootDir, "layers") }
func (m *Manager) layerDir(id string) string { return filepath.Join(m.layersDir(), id) }
func (m *Manager) bundleDir(id string) string {
	return filepath.Join(m.cfg.StateDir, "bundles", id)
}

// Resolve returns the full ID of the one container whose ID starts with prefix.
func (m *Manager) Resolve(prefix string) (string, error) {
	id, err := m.records.Resolve(prefix)
	if err != nil {
		return "", fmt.Errorf("container %w", err)
	}
	return id, nil
}

// Get returns a copy of the record of the container with id or its unique
// prefix, with its state brought up to date.
func (m *Manager) Get(idOrPrefix string) (*Container, error) {
	id, err := m.Resolve(idOrPrefix)
	if err != nil {
		return nil, err
	}
	m.refresh(id)
	return m.get(id)
}

func (m *Manager) get(id string) (*Container, error) {
	c, ok := m.records.Get(id)
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

// List returns copies of every record, oldest first, states brought up to date.
func (m *Manager) List() []*Container {
	ids := m.records.IDs()
	out := make([]*Container, 0, len(ids))
	for _, id := range ids {
		m.refresh(id)
		if c, err := m.get(id); err == nil {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// write says how a change of a record reaches the disk.
type write int

const (
	// mustPersist: the change stands only once it is checkpointed (durably);
	// a failed write refuses it. For what netshim decides: created, a
	// config change.
	mustPersist write = iota
	// publishFirst: the change is a fact of the world (runc started the
	// container, it exited): it is published whether or not its checkpoint
	// can be written, and written as space allows, retried at every later
	// look at the container. The old checkpoint stays until then, and what
	// it lacks is found again at start (the exit file, the runtime's
	// state), so a full disk never makes the status lie.
	publishFirst
)

// update is the one way a container's status changes: fn gets a copy of
// the status and returns the next one, or an error to refuse; the
// transition table may refuse too. The change is written as w says and
// published. It holds the record's status lock, not its lifecycle lock.
func (m *Manager) update(id string, w write, fn func(Status) (Status, error)) (*Container, error) {
	return m.updateRecord(id, w, func(c *Container) error {
		next, err := fn(c.Status)
		if err != nil {
			return err
		}
		if next.State != c.State {
			if err := checkTransition(c.State, next.State); err != nil {
				return err
			}
		}
		c.Status = next
		return nil
	})
}

// updateRecord applies fn to a copy of the whole record, writes it as w
// says and publishes it. Only update and the config of UpdateResources use it.
func (m *Manager) updateRecord(id string, w write, fn func(*Container) error) (*Container, error) {
	defer m.status.Lock(id)()
	c, err := m.get(id)
	if err != nil {
		return nil, err
	}
	before := c.State
	if err := fn(c); err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	if w == mustPersist {
		if err := m.checkpoints.Save(c); err != nil {
			return nil, err
		}
		m.records.Replace(id, c)
		m.setUnsaved(id, false)
		m.announce(before, c)
		return c.clone(), nil
	}
	// Written, then published whether or not the write succeeded: the
	// disk is never ahead of memory, and a full disk does not hold back
	// what happened. The unsaved flag is set before the publication, so
	// whoever sees the new status also sees that it is still to be written.
	err = m.checkpoints.Save(c)
	m.setUnsaved(id, err != nil)
	m.records.Replace(id, c)
	m.announce(before, c)
	if err != nil {
		klog.ErrorS(err, "Container checkpoint not written; its status is published and will be written when there is room", "container", id, "state", c.State)
	}
	return c.clone(), nil
}

func (m *Manager) setUnsaved(id string, unsaved bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if unsaved {
		m.unsaved[id] = true
	} else {
		delete(m.unsaved, id)
	}
}

// persistPending writes a published status that a full disk kept off it.
func (m *Manager) persistPending(id string) {
	m.mu.Lock()
	pending := m.unsaved[id]
	m.mu.Unlock()
	if !pending {
		return
	}
	defer m.status.Lock(id)()
	c, err := m.get(id)
	if err != nil {
		return
	}
	if err := m.checkpoints.Save(c); err == nil {
		m.setUnsaved(id, false)
		klog.InfoS("Container checkpoint written after all", "container", id, "state", c.State)
	}
}

// CreateRequest is a container to create in a pod.
type CreateRequest struct {
	Config   *runtimeapi.ContainerConfig
	Pod      PodContext
	ImageID  string
	ImageRef string
	Image    ImageConfig
	// LogPath is the sandbox's log_directory joined with the config's
	// log_path, exactly; "" when either is empty.
	LogPath string
}

// ReservationName is kubelet's container name, unique per pod and attempt.
func ReservationName(cfg *runtimeapi.ContainerConfig, pod *runtimeapi.PodSandboxConfig) string {
	pm := pod.GetMetadata()
	return fmt.Sprintf("%s_%s_%s_%s_%d", cfg.GetMetadata().GetName(), pm.GetName(), pm.GetNamespace(), pm.GetUid(), cfg.GetMetadata().GetAttempt())
}

// Create records the container (state creating) before it touches the
// system, mounts its rootfs, writes its bundle and has its monitor create it
// in the runtime: state created. Any failure undoes every step before it.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Container, error) {
	if err := validate.ContainerInPod(req.Config, req.Pod.Config); err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(req.Config)
	if err != nil {
		return nil, fmt.Errorf("encode container config: %w", err)
	}
	id, err := idindex.New()
	if err != nil {
		return nil, fmt.Errorf("make container id: %w", err)
	}
	c := &Container{
		ID: id, SandboxID: req.Pod.SandboxID, Name: ReservationName(req.Config, req.Pod.Config),
		Image: req.Config.GetImage().GetImage(), ImageID: req.ImageID, ImageRef: req.ImageRef,
		Status: Status{State: StateCreating}, CreatedAt: time.Now(), LogPath: req.LogPath, Config: raw,
		Labels: req.Config.GetLabels(), Annotations: req.Config.GetAnnotations(),
		Tty: req.Config.GetTty(), Stdin: req.Config.GetStdin(),
		StopSignal: req.Image.StopSignal, Bundle: m.bundleDir(id),
	}
	c.Metadata.Name, c.Metadata.Attempt = req.Config.GetMetadata().GetName(), req.Config.GetMetadata().GetAttempt()
	// Recorded before runc can make it: a create cut short (cancelled,
	// killed) after runc made the cgroup is undone with the cgroup too.
	if c.CgroupsPath, err = cgroupsPath(req.Pod, id); err != nil {
		return nil, err
	}

	if err := m.records.Reserve(c.Name, id); err != nil {
		return nil, fmt.Errorf("container %w", err)
	}
	defer m.locks.Lock(id)()

	if err := m.checkpoints.Save(c); err != nil {
		m.release(c)
		return nil, err
	}
	m.records.Add(id, c.clone())
	crashpoint.Hit(crashpoint.DuringContainerCreate)

	if err := m.create(ctx, c, req); err != nil {
		if uerr := m.undoCreate(c); uerr != nil {
			klog.ErrorS(uerr, "Failed to undo a container whose create failed", "container", id)
			err = fmt.Errorf("%w; undoing it failed too: %v", err, uerr)
		}
		return nil, err
	}
	return m.get(id)
}

// create makes the rootfs, the bundle and the runtime's container of c.
func (m *Manager) create(ctx context.Context, c *Container, req CreateRequest) error {
	if err := os.MkdirAll(c.Bundle, 0o700); err != nil {
		return fmt.Errorf("create bundle dir: %w", err)
	}
	rootfs, err := m.cfg.Rootfs.Mount(c.ID, req.ImageID, m.layerDir(c.ID), false)
	if err != nil {
		return fmt.Errorf("mount rootfs of image %s: %w", req.ImageID, err)
	}
	volumes, err := m.mountImageVolumes(c.ID, req.Config)
	if err != nil {
		return err
	}
	spec, err := BuildSpec(SpecInput{ID: c.ID, Config: req.Config, Pod: req.Pod, Image: req.Image, Rootfs: rootfs,
		ImageVolumes: volumes, CDI: m.cdi})
	if err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode OCI spec: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write OCI spec: %w", err)
	}
	if c.LogPath != "" {
		// kubelet makes the pod's log dir, but a container's log_path may name a subdir.
		if err := os.MkdirAll(filepath.Dir(c.LogPath), 0o755); err != nil {
			return fmt.Errorf("create log dir: %w", err)
		}
		// conmon opens the log for writing: a FIFO there would block it,
		// a link would send the log elsewhere. kubelet gives a fresh path.
		if st, err := os.Lstat(c.LogPath); err == nil && !st.Mode().IsRegular() {
			return invalid("config.log_path", ": %s exists and is not a regular file (%s)", c.LogPath, st.Mode().Type())
		}
	}
	pid, monitorPID, err := m.cfg.Monitor.Create(ctx, oci.MonitorOptions{
		ID: c.ID, Name: c.Name, Bundle: c.Bundle, LogPath: c.LogPath, ExitDir: m.exitDir(),
		Tty: c.Tty, Stdin: c.Stdin, StdinOnce: req.Config.GetStdinOnce(),
	})
	var monitorExited <-chan struct{}
	if monitorPID > 0 && m.cfg.Reaper != nil {
		monitorExited = m.cfg.Reaper.Track(monitorPID) // netshim is the monitor's subreaper
		m.mu.Lock()
		m.monitors[c.ID] = monitorExited
		m.mu.Unlock()
	}
	if err != nil {
		return err
	}
	pidStart, _ := proc.StartTime(pid)
	if monitorExited != nil {
		go m.reapOrphanedInit(monitorExited, pid, pidStart)
	}
	monStart, _ := proc.StartTime(monitorPID)
	_, err = m.update(c.ID, mustPersist, func(st Status) (Status, error) {
		st.State = StateCreated
		st.PID, st.PIDStartTime = pid, pidStart
		st.MonitorPID, st.MonitorPIDStartTime = monitorPID, monStart
		return st, nil
	})
	return err
}

// reapOrphanedInit has the reaper reap the container's init once its monitor
// is gone. conmon is the init's parent; killed, it leaves the init to the
// nearest subreaper, netshim, and an init no one waits for stays a zombie
// until netshim exits. Tracking a PID that is not netshim's child (the
// monitor reaped the init and exited after it) does nothing; the start time
// keeps a reused PID from being taken for the init.
func (m *Manager) reapOrphanedInit(monitorExited <-chan struct{}, pid int, start uint64) {
	<-monitorExited
	if pid > 0 && proc.SameAlive(pid, start) {
		m.cfg.Reaper.Track(pid)
	}
}

// undoCreate removes whatever a create made, whatever step it reached.
func (m *Manager) undoCreate(c *Container) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.removeResources(ctx, c)
}

// removeResources deletes the runtime's container, stops the monitor,
// unmounts the rootfs and removes the bundle, exit file, checkpoint and name.
func (m *Manager) removeResources(ctx context.Context, c *Container) error {
	if err := m.cfg.Runtime.Delete(ctx, c.ID, true); err != nil {
		return err
	}
	if err := oci.RemoveCgroup(ctx, c.CgroupsPath); err != nil {
		klog.ErrorS(err, "Container's cgroup left behind", "container", c.ID)
	}
	m.waitMonitorGone(ctx, c)
	if err := m.cfg.Rootfs.Unmount(c.ID, m.layerDir(c.ID)); err != nil {
		return fmt.Errorf("unmount rootfs of container %s: %w", c.ID, err)
	}
	if err := os.RemoveAll(c.Bundle); err != nil {
		return fmt.Errorf("remove bundle of container %s: %w", c.ID, err)
	}
	if err := os.Remove(filepath.Join(m.exitDir(), c.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove exit file of container %s: %w", c.ID, err)
	}
	// Under the status lock: a refresh's write cannot bring the checkpoint
	// back once the record is gone.
	unlock := m.status.Lock(c.ID)
	if err := m.checkpoints.Remove(c.ID); err != nil {
		unlock()
		return err
	}
	m.records.Delete(c.ID)
	m.announceRemoved(c)
	unlock()
	m.mu.Lock()
	delete(m.monitors, c.ID)
	delete(m.unsaved, c.ID)
	m.mu.Unlock()
	m.forgetUsage(c.ID)
	m.release(c)
	return nil
}

// waitMonitorGone gives the monitor a moment to flush the log and exit
// once its container is gone, then kills it.
func (m *Manager) waitMonitorGone(ctx context.Context, c *Container) {
	if c.MonitorPID <= 0 {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for proc.SameAlive(c.MonitorPID, c.MonitorPIDStartTime) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = syscall.Kill(c.MonitorPID, syscall.SIGKILL)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *Manager) release(c *Container) {
	m.records.Release(c.Name, c.ID)
}

// Start starts a created container.
func (m *Manager) Start(ctx context.Context, idOrPrefix string) error {
	id, err := m.Resolve(idOrPrefix)
	if err != nil {
		return err
	}
	defer m.locks.Lock(id)()
	m.refresh(id)
	c, err := m.get(id)
	if err != nil {
		return err
	}
	// Asked of the table before runc is: only a created container starts.
	if err := checkTransition(c.State, StateRunning); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if err := m.cfg.Runtime.Start(ctx, id); err != nil {
		// A start that failed leaves the container to exit; its monitor
		// reports the code, and the state says what happened.
		_, _ = m.update(id, mustPersist, func(st Status) (Status, error) {
			st.Message = err.Error()
			return st, nil
		})
		return fmt.Errorf("start container %s: %w", id, err)
	}
	crashpoint.Hit(crashpoint.DuringContainerStart)
	// runc started it: a fact, published even when the disk is full. A
	// refresh may have seen it running, or exited, first.
	_, err = m.update(id, publishFirst, func(st Status) (Status, error) {
		if st.State == StateCreated {
			st.State, st.StartedAt = StateRunning, time.Now()
		}
		return st, nil
	})
	return err
}

// Stop sends the container its stop signal, waits up to timeout for it to
// exit, then kills every process of it. Stopping a stopped container does nothing.
func (m *Manager) Stop(ctx context.Context, idOrPrefix string, timeout time.Duration) error {
	id, err := m.Resolve(idOrPrefix)
	if err != nil {
		return err
	}
	defer m.locks.Lock(id)()
	return m.stopLocked(ctx, id, timeout)
}

func (m *Manager) stopLocked(ctx context.Context, id string, timeout time.Duration) error {
	m.refresh(id)
	c, err := m.get(id)
	if err != nil {
		return err
	}
	if !live(c.State) {
		return nil
	}
	if timeout > 0 && c.State == StateRunning {
		sig := stopSignal(c.StopSignal)
		if err := m.cfg.Runtime.Kill(ctx, id, sig, false); err != nil {
			return fmt.Errorf("signal container %s: %w", id, err)
		}
		crashpoint.Hit(crashpoint.DuringContainerStop) // signalled, exit not yet seen
		if m.waitExit(ctx, id, timeout) {
			m.refresh(id)
			return nil
		}
		klog.V(2).InfoS("Container did not exit within its grace period; killing it", "container", id, "signal", sig, "timeout", timeout)
	}
	if err := m.cfg.Runtime.Kill(ctx, id, syscall.SIGKILL, true); err != nil {
		return fmt.Errorf("kill container %s: %w", id, err)
	}
	crashpoint.Hit(crashpoint.DuringContainerStop)
	if !m.waitExit(ctx, id, exitWait) {
		return fmt.Errorf("container %s did not exit after SIGKILL within %s", id, exitWait)
	}
	m.refresh(id)
	return nil
}

// Remove stops the container if it runs and removes all of it. Removing an
// unknown ID does nothing.
func (m *Manager) Remove(ctx context.Context, idOrPrefix string) error {
	id, err := m.Resolve(idOrPrefix)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer m.locks.Lock(id)()
	if err := m.stopLocked(ctx, id, 0); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	c, err := m.get(id)
	if err != nil {
		return nil
	}
	crashpoint.Hit(crashpoint.DuringContainerRemove)
	return m.removeResources(ctx, c)
}

// UpdateResources applies new limits to a container and records them in
// its config, so its status reports them.
func (m *Manager) UpdateResources(ctx context.Context, idOrPrefix string, res *runtimeapi.LinuxContainerResources) error {
	id, err := m.Resolve(idOrPrefix)
	if err != nil {
		return err
	}
	defer m.locks.Lock(id)()
	m.refresh(id)
	c, err := m.get(id)
	if err != nil {
		return err
	}
	if !live(c.State) {
		return fmt.Errorf("container %s is %s: only a created or running container can be updated: %w", id, c.State, errdefs.ErrFailedPrecondition)
	}
	linux, err := LinuxResources(res)
	if err != nil {
		return err
	}
	if err := m.cfg.Runtime.Update(ctx, id, linux); err != nil {
		return fmt.Errorf("update resources of container %s: %w", id, err)
	}
	cfg := &runtimeapi.ContainerConfig{}
	if err := proto.Unmarshal(c.Config, cfg); err != nil {
		return fmt.Errorf("decode stored config of container %s: %w", id, err)
	}
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	cfg.Linux.Resources = res
	raw, err := proto.Marshal(cfg)
	if err != nil {
		return err
	}
	_, err = m.updateRecord(id, mustPersist, func(c *Container) error {
		c.Config = raw
		return nil
	})
	return err
}

// ReopenLog has the monitor reopen the container's log file.
func (m *Manager) ReopenLog(idOrPrefix string) error {
	c, err := m.Get(idOrPrefix)
	if err != nil {
		return err
	}
	if c.State != StateRunning {
		return fmt.Errorf("container %s is %s: only a running container's log can be reopened: %w", c.ID, c.State, errdefs.ErrFailedPrecondition)
	}
	if err := oci.ReopenLog(c.CtlPath()); err != nil {
		return fmt.Errorf("reopen log of container %s: %w", c.ID, err)
	}
	if c.LogPath == "" {
		return nil
	}
	// The monitor reopens asynchronously; kubelet (and critest) expect the
	// new file to be there when the call returns, as CRI-O waits for it.
	deadline := time.Now().Add(logReopenWait)
	for {
		if _, err := os.Stat(c.LogPath); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reopen log of container %s: the monitor did not create %s within %s", c.ID, c.LogPath, logReopenWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logReopenWait bounds how long ReopenContainerLog waits for the new file.
const logReopenWait = 10 * time.Second

// InUseImages are the image IDs that containers hold.
func (m *Manager) InUseImages() map[string]bool {
	used := map[string]bool{}
	for _, c := range m.records.List() {
		used[c.ImageID] = true
	}
	return used
}

// stopSignal parses an image's StopSignal ("SIGQUIT", "QUIT", "3"); SIGTERM when unset or unknown.
func stopSignal(name string) syscall.Signal {
	if name == "" {
		return syscall.SIGTERM
	}
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(strings.ToUpper(name)); sig != 0 {
		return sig
	}
	klog.InfoS("Unknown stop signal in image; using SIGTERM", "signal", name)
	return syscall.SIGTERM
}
