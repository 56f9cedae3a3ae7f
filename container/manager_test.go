package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// world is a fake runtime, monitor and rootfs that record what was done and
// can be told to fail at a step. A "container" is a real sleep process, so
// liveness checks see a real PID.
type world struct {
	t       *testing.T
	exitDir string

	mu         sync.Mutex
	procs      map[string]*exec.Cmd
	deleted    map[string]bool
	mounted    map[string]bool
	signals    map[string][]syscall.Signal
	ignoreTerm bool // the container ignores SIGTERM
	// runState is what the runtime says of a container ("" for created).
	runState map[string]string

	failMount, failMonitor, failStart error
	// volumes are the image volumes mounted, by container: the refs; a
	// ref in failVolume fails with its error.
	volumes    map[string][]string
	failVolume map[string]error
	// makeCgroup: the monitor's runc makes the cgroup, then the create is
	// cancelled (as a cancelled CreateContainer leaves it).
	makeCgroup func(cgroupsPath string)
}

func newWorld(t *testing.T, exitDir string) *world {
	w := &world{t: t, exitDir: exitDir, procs: map[string]*exec.Cmd{}, deleted: map[string]bool{},
		mounted: map[string]bool{}, volumes: map[string][]string{}, failVolume: map[string]error{}, signals: map[string][]syscall.Signal{}, runState: map[string]string{}}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, p := range w.procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	})
	return w
}

// exit makes the container exit with code, as its monitor would report it.
func (w *world) exit(id string, code int) {
	w.mu.Lock()
	p := w.procs[id]
	w.mu.Unlock()
	if p != nil {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	if err := os.WriteFile(filepath.Join(w.exitDir, id), []byte(strconv.Itoa(code)), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) Create(_ context.Context, o oci.MonitorOptions) (int, int, error) {
	if w.failMonitor != nil {
		return 0, 0, w.failMonitor
	}
	if _, err := os.Stat(filepath.Join(o.Bundle, "config.json")); err != nil {
		return 0, 0, fmt.Errorf("monitor started without a bundle: %w", err)
	}
	if w.makeCgroup != nil {
		var spec specs.Spec
		data, _ := os.ReadFile(filepath.Join(o.Bundle, "config.json"))
		if err := json.Unmarshal(data, &spec); err != nil {
			return 0, 0, err
		}
		w.makeCgroup(spec.Linux.CgroupsPath)
		return 0, 0, fmt.Errorf("waiting for the container to be created: %w", context.Canceled)
	}
	p := exec.Command("sleep", "60")
	if err := p.Start(); err != nil {
		return 0, 0, err
	}
	w.mu.Lock()
	w.procs[o.ID] = p
	w.mu.Unlock()
	return p.Process.Pid, 0, nil
}

func (w *world) Start(_ context.Context, id string) error {
	if w.failStart != nil {
		return w.failStart
	}
	w.setRunState(id, "running")
	return nil
}

// setRunState is what `runc start` would leave: the runtime says running.
func (w *world) setRunState(id, state string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.runState[id] = state
}

// State answers as `runc state` does: created until started, stopped once
// the process is gone.
func (w *world) State(_ context.Context, id string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.procs[id]
	if p == nil {
		return "", nil
	}
	if p.ProcessState != nil {
		return "stopped", nil
	}
	if st := w.runState[id]; st != "" {
		return st, nil
	}
	return "created", nil
}

func (w *world) Kill(_ context.Context, id string, sig syscall.Signal, all bool) error {
	w.mu.Lock()
	w.signals[id] = append(w.signals[id], sig)
	ignore := w.ignoreTerm
	w.mu.Unlock()
	if sig == syscall.SIGKILL || !ignore {
		w.exit(id, 128+int(sig))
	}
	return nil
}

func (w *world) Delete(_ context.Context, id string, force bool) error {
	w.mu.Lock()
	w.deleted[id] = true
	w.mu.Unlock()
	return nil
}

func (w *world) List(context.Context) ([]string, error) { return nil, nil }

func (w *world) Update(context.Context, string, *specs.LinuxResources) error { return nil }

func (w *world) Mount(containerID, imageID, dir string, readOnly bool) (string, error) {
	if w.failMount != nil {
		return "", w.failMount
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		return "", err
	}
	_ = os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	w.mu.Lock()
	w.mounted[containerID] = true
	w.mu.Unlock()
	return rootfs, nil
}

// MountVolume makes dir/rootfs an image's tree: a file "image" naming
// ref, and etc/passwd.
func (w *world) MountVolume(containerID, ref, dir string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failVolume[ref]; err != nil {
		return "", err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		return "", err
	}
	_ = os.WriteFile(filepath.Join(rootfs, "image"), []byte(ref), 0o644)
	_ = os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644)
	w.volumes[containerID] = append(w.volumes[containerID], ref)
	return rootfs, nil
}

func (w *world) Unmount(containerID, dir string) error {
	w.mu.Lock()
	delete(w.mounted, containerID)
	delete(w.volumes, containerID)
	w.mu.Unlock()
	return os.RemoveAll(dir)
}

func (w *world) Leases() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id := range w.mounted {
		out = append(out, id)
	}
	return out
}

func newTestManager(t *testing.T) (*Manager, *world, Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{RootDir: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "run")}
	w := newWorld(t, filepath.Join(cfg.StateDir, "exits"))
	cfg.Runtime, cfg.Monitor, cfg.Rootfs = w, w, w
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, w, cfg
}

func request(name string) CreateRequest {
	return CreateRequest{
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Command:  []string{"/bin/sleep", "60"},
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		Pod: PodContext{
			SandboxID: "sb1",
			Config: &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "ns", Uid: "uid"},
				Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_NODE},
				}},
			},
			PausePID: os.Getpid(),
		},
		ImageID: "sha256:img",
	}
}

// nothingLeft asserts that no trace of id remains: record, name, checkpoint,
// bundle, writable layer, lease.
func nothingLeft(t *testing.T, m *Manager, w *world, cfg Config, id, name string) {
	t.Helper()
	if _, err := m.Get(id); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("record of %s still there: %v", id, err)
	}
	if _, held := m.records.Holder(name); held {
		t.Errorf("name %s still reserved", name)
	}
	for _, p := range []string{
		filepath.Join(cfg.RootDir, "checkpoints", id+".json"), m.bundleDir(id), m.layerDir(id),
		filepath.Join(cfg.StateDir, "exits", id),
	} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mounted[id] {
		t.Errorf("rootfs of %s still mounted", id)
	}
	if len(w.volumes[id]) > 0 {
		t.Errorf("image volumes of %s still mounted: %v", id, w.volumes[id])
	}
}

func TestCreateStartExit(t *testing.T) {
	m, w, _ := newTestManager(t)
	ctx := context.Background()
	c, err := m.Create(ctx, request("web"))
	if err != nil {
		t.Fatal(err)
	}
	if c.State != StateCreated || c.PID == 0 || c.Name != "web_pod_ns_uid_0" {
		t.Fatalf("after create: %+v", c)
	}
	if _, err := m.Create(ctx, request("web")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second create of the same name: %v, want AlreadyExists", err)
	}
	if err := m.Start(ctx, c.ID[:6]); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(c.ID); got.State != StateRunning || got.StartedAt.IsZero() {
		t.Fatalf("after start: %+v", got)
	}
	if err := m.Start(ctx, c.ID); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("start of a running container: %v, want FailedPrecondition", err)
	}
	w.exit(c.ID, 3)
	got, _ := m.Get(c.ID)
	if got.State != StateExited || got.ExitCode != 3 || got.Reason != "Error" || got.FinishedAt.IsZero() {
		t.Fatalf("after exit: %+v", got)
	}
}

// Each failing step of a create leaves nothing behind.
func TestCreateUndoesEachStep(t *testing.T) {
	boom := errors.New("boom")
	for _, step := range []string{"mount", "spec", "monitor"} {
		t.Run(step, func(t *testing.T) {
			m, w, cfg := newTestManager(t)
			req := request("web")
			switch step {
			case "mount":
				w.failMount = boom
			case "spec":
				req.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "relative", HostPath: "/tmp"}}
			case "monitor":
				w.failMonitor = boom
			}
			_, err := m.Create(context.Background(), req)
			if err == nil {
				t.Fatal("create succeeded")
			}
			if len(m.List()) != 0 {
				t.Fatal("a record is left")
			}
			entries, _ := os.ReadDir(filepath.Join(cfg.RootDir, "checkpoints"))
			if len(entries) != 0 {
				t.Fatalf("checkpoints left: %v", entries)
			}
			w.mu.Lock()
			mounted := len(w.mounted)
			w.mu.Unlock()
			if mounted != 0 {
				t.Fatal("rootfs left mounted")
			}
			// The name is free again.
			w.failMount, w.failMonitor = nil, nil
			if _, err := m.Create(context.Background(), request("web")); err != nil {
				t.Fatalf("create after the undo: %v", err)
			}
		})
	}
}

func TestStopGracePeriod(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		t.Run(fmt.Sprintf("ignoreTERM=%v", ignore), func(t *testing.T) {
			m, w, _ := newTestManager(t)
			ctx := context.Background()
			c, err := m.Create(ctx, request("web"))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			w.ignoreTerm = ignore
			if err := m.Stop(ctx, c.ID, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			w.mu.Lock()
			sigs := append([]syscall.Signal(nil), w.signals[c.ID]...)
			w.mu.Unlock()
			want := []syscall.Signal{syscall.SIGTERM}
			if ignore {
				want = append(want, syscall.SIGKILL)
			}
			if fmt.Sprint(sigs) != fmt.Sprint(want) {
				t.Fatalf("signals %v, want %v", sigs, want)
			}
			got, _ := m.Get(c.ID)
			if got.State != StateExited {
				t.Fatalf("after stop: %s", got.State)
			}
			// Stopping again does nothing.
			if err := m.Stop(ctx, c.ID, time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRemove(t *testing.T) {
	m, w, cfg := newTestManager(t)
	ctx := context.Background()
	c, err := m.Create(ctx, request("web"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	nothingLeft(t, m, w, cfg, c.ID, c.Name)
	if !w.deleted[c.ID] {
		t.Error("runtime container not deleted")
	}
	if err := m.Remove(ctx, c.ID); err != nil {
		t.Fatalf("remove of a removed container: %v", err)
	}
}

func TestPrefixAmbiguous(t *testing.T) {
	m, _, _ := newTestManager(t)
	for _, id := range []string{"aa11", "aa22"} {
		m.records.Add(id, &Container{ID: id})
	}
	if _, err := m.Get("aa"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
}

// After a restart: an interrupted create is undone, a container that exited
// while netshim was down reads exited with its code, and leftovers no record
// knows are swept.
func TestRecover(t *testing.T) {
	m, w, cfg := newTestManager(t)
	ctx := context.Background()
	running, err := m.Create(ctx, request("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	exited, err := m.Create(ctx, request("b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, exited.ID); err != nil {
		t.Fatal(err)
	}
	// An interrupted create: a record in state creating with a mounted rootfs.
	interrupted := &Container{ID: fmt.Sprintf("%064d", 7), Name: "c_pod_ns_uid_0", Status: Status{State: StateCreating}, Bundle: m.bundleDir(fmt.Sprintf("%064d", 7))}
	if err := m.checkpoints.Save(interrupted); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Mount(interrupted.ID, "sha256:img", m.layerDir(interrupted.ID), false); err != nil {
		t.Fatal(err)
	}
	// An orphan: a writable layer and lease with no record at all.
	orphan := fmt.Sprintf("%064d", 9)
	if _, err := w.Mount(orphan, "sha256:img", m.layerDir(orphan), false); err != nil {
		t.Fatal(err)
	}

	// netshim stops; meanwhile one container exits; netshim starts again.
	m.Close()
	w.exit(exited.ID, 0)
	m2, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m2.Close)
	if err := m2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := m2.Get(running.ID); err != nil || got.State != StateRunning {
		t.Fatalf("running container after restart: %+v, %v", got, err)
	}
	if got, err := m2.Get(exited.ID); err != nil || got.State != StateExited || got.Reason != "Completed" {
		t.Fatalf("exited container after restart: %+v, %v", got, err)
	}
	nothingLeft(t, m2, w, cfg, interrupted.ID, interrupted.Name)
	nothingLeft(t, m2, w, cfg, orphan, "")
	if _, err := m2.Create(ctx, request("a")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("names are not restored: %v", err)
	}
}
