package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Handler is one runtime handler: the name a RuntimeClass's handler field
// gives, and what netshim learned of its OCI runtime on this host.
type Handler struct {
	Name string
	// Sandbox runs the pause containers; Containers the pod's containers.
	// For runc they are two state roots; for gVisor they must be one, since
	// runsc finds the sandbox a container joins in its own root.
	Sandbox, Containers *Runc
	// SpecVersion is the OCI spec version written into its bundles: the
	// newest both netshim and the runtime know (crun 1.8 refuses 1.3.0).
	SpecVersion string
	// GVisor: the runtime boots a sandbox kernel that takes the pod's
	// interfaces from its netns when it starts, so the network is set up
	// before the pause starts instead of beside it; and the pod's containers
	// run in that sandbox.
	GVisor bool
	// Features are what kubelet asks of it (Status.runtime_handlers).
	Features Features
	// Unavailable says why this host cannot run the handler's pods (a
	// probe run failed); nil when it can.
	Unavailable error
}

// Features are the optional features of a handler kubelet asks about.
type Features struct {
	RecursiveReadOnlyMounts bool
	UserNamespaces          bool
}

// runtimeFeatures is the part of `runc features` (the OCI runtime
// features document) netshim reads.
type runtimeFeatures struct {
	OCIVersionMax string   `json:"ociVersionMax"`
	MountOptions  []string `json:"mountOptions"`
	Linux         *struct {
		Namespaces      []string `json:"namespaces"`
		MountExtensions *struct {
			IDMap *struct {
				Enabled *bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

// ProbeOptions are what a probe of a handler needs of the host.
type ProbeOptions struct {
	// PauseBinary is the static pause program: the probe container runs
	// it with -v, and it is run in a new user namespace to test idmapped
	// mounts.
	PauseBinary string
	// IDMapDirs are the dirs whose file systems must take idmapped mounts
	// for user namespaces (the state and root dirs).
	IDMapDirs []string
	// Run, when set, runs a probe container to prove the host can run the
	// handler's pods at all (the default runc handler skips it: netshim's
	// own tests cover it, and a start should not wait for it).
	Run bool
}

// Probe asks the runtime what it is and can do, and with o.Run runs a
// probe container under it. Errors of the probe run are kept in
// h.Unavailable; the returned error is for a runtime that cannot be asked
// at all (not installed).
func Probe(ctx context.Context, h *Handler, o ProbeOptions) error {
	bin := h.Sandbox.Binary
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("runtime handler %s: OCI runtime %s: %w", h.Name, bin, err)
	}
	version, _ := exec.CommandContext(ctx, bin, "--version").Output()
	h.GVisor = bytes.HasPrefix(bytes.TrimSpace(version), []byte("runsc"))
	var feats runtimeFeatures
	if out, err := exec.CommandContext(ctx, bin, "features").Output(); err == nil {
		_ = json.Unmarshal(out, &feats)
	}
	theirs := feats.OCIVersionMax
	if theirs == "" {
		theirs = specLine(version)
	}
	h.SpecVersion = olderSpecVersion(specs.Version, theirs)
	h.Features.RecursiveReadOnlyMounts = slices.Contains(feats.MountOptions, "rro") && kernelAtLeast(5, 12)
	if feats.Linux != nil && slices.Contains(feats.Linux.Namespaces, "user") && idmapEnabled(feats) && !h.GVisor {
		h.Features.UserNamespaces = idmapMountsWork(ctx, o.PauseBinary, o.IDMapDirs) == nil
	}
	if o.Run {
		h.Unavailable = probeRun(ctx, h, o.PauseBinary)
	}
	return nil
}

func idmapEnabled(f runtimeFeatures) bool {
	me := f.Linux.MountExtensions
	return me != nil && me.IDMap != nil && me.IDMap.Enabled != nil && *me.IDMap.Enabled
}

// specLine reads "spec: 1.0.0" from a runtime's --version output, as crun
// and runsc print it.
func specLine(version []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(version))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "spec:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// olderSpecVersion returns the older of two OCI spec versions; an
// unreadable theirs leaves ours.
func olderSpecVersion(ours, theirs string) string {
	a, okA := parseVersion(ours)
	b, okB := parseVersion(theirs)
	if !okA || !okB {
		return ours
	}
	if slices.Compare(b, a) < 0 {
		return theirs
	}
	return ours
}

// parseVersion reads major.minor.patch, ignoring a "-dev" or "+x" suffix.
func parseVersion(v string) ([]int, bool) {
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nil, false
	}
	out := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	var maj, min int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &maj, &min); err != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// idmapMountsWork checks that each dir's file system takes an idmapped
// mount, as a user-namespaced pod's rootfs and volumes need: it clones a
// mount of it and sets MOUNT_ATTR_IDMAP with the user namespace of a
// process started for that.
func idmapMountsWork(ctx context.Context, helper string, dirs []string) error {
	cmd := exec.CommandContext(ctx, helper)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 20, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 20, Size: 65536}},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a process in a user namespace: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return err
	}
	defer userns.Close()
	for _, d := range dirs {
		tree, err := unix.OpenTree(-1, d, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("clone a mount of %s: %w", d, err)
		}
		err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())})
		unix.Close(tree)
		if err != nil {
			return fmt.Errorf("idmapped mount of %s: %w", d, err)
		}
	}
	return nil
}

// probeTimeout bounds a probe run: gVisor boots a kernel, in about a second.
const probeTimeout = 30 * time.Second

// probeRun runs `/pause -v` in a container of the handler's runtime, with
// the namespaces and cgroup a pod gets, in a throwaway state root. Its
// error is what the runtime said.
func probeRun(ctx context.Context, h *Handler, pauseBinary string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "netshim-probe-"+h.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	if err := copyPause(pauseBinary, rootfs); err != nil {
		return err
	}
	// A pod's netns is always one netshim made, given by path; the probe's
	// is a helper's (runsc, say, sets its network up from it).
	netns, stop, err := helperNetNS(pauseBinary)
	if err != nil {
		return err
	}
	defer stop()
	id := "netshim-probe-" + strconv.Itoa(os.Getpid())
	spec := &specs.Spec{
		Version:  h.SpecVersion,
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Process:  &specs.Process{Args: []string{"/pause", "-v"}, Cwd: "/", User: specs.User{UID: 65535, GID: 65535}, NoNewPrivileges: true},
		Hostname: "probe",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: netns}},
			CgroupsPath: "/netshim-probe/" + h.Name,
		},
		Annotations: map[string]string{"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": id},
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return err
	}
	r := &Runc{Binary: h.Sandbox.Binary, Root: filepath.Join(dir, "root"), Args: h.Sandbox.Args}
	logPath := filepath.Join(dir, "runtime.log")
	cmd := r.command(ctx, "--log", logPath, "--log-format", "json", "run", "--bundle", bundle, id)
	out, runErr := cmd.CombinedOutput()
	_ = r.Delete(context.WithoutCancel(ctx), id, true)
	_ = RemoveCgroup(context.WithoutCancel(ctx), spec.Linux.CgroupsPath)
	_ = RemoveCgroup(context.WithoutCancel(ctx), "/netshim-probe")
	if runErr != nil {
		msg := lastLogError(logPath)
		if msg == "no error in runtime log" || msg == "no runtime log" {
			msg = strings.TrimSpace(string(out))
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = "no answer in " + probeTimeout.String()
		}
		if h.GVisor && strings.Contains(msg, "root network namespace") {
			// runsc before 2024 takes a netns in which /proc/sys/net/core/rmem_default
			// exists for the host's; kernels since 6.x have it in every netns.
			msg += " (this runsc is older than the kernel: its own network stack cannot start here; give the handler args [\"--network=host\"] for gVisor's host network in the pod's netns, or install a newer runsc)"
		}
		return fmt.Errorf("%s cannot run a container on this host: %s", filepath.Base(h.Sandbox.Binary), msg)
	}
	if !bytes.Contains(out, []byte("pause")) {
		return fmt.Errorf("%s ran the probe container, but /pause -v printed %q", filepath.Base(h.Sandbox.Binary), bytes.TrimSpace(out))
	}
	return nil
}

// copyPause lays out a rootfs holding only the pause program and the
// mount points the probe container needs.
func copyPause(pauseBinary, rootfs string) error {
	for _, d := range []string{"proc", "dev"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return fmt.Errorf("probe rootfs: %w", err)
		}
	}
	bin, err := os.ReadFile(pauseBinary)
	if err != nil {
		return fmt.Errorf("probe rootfs: %w", err)
	}
	return os.WriteFile(filepath.Join(rootfs, "pause"), bin, 0o755)
}

// helperNetNS starts the pause program in a new network namespace and
// returns that namespace's path, and how to stop the program.
func helperNetNS(pauseBinary string) (string, func(), error) {
	cmd := exec.Command(pauseBinary)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start a process in a new netns for the probe: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	return fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid), stop, nil
}
