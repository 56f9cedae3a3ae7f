package bench

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/pkg/reaper"
	"github.com/netshim/netshim/sandbox"
	"github.com/netshim/netshim/test/registry"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FloorOptions say where the raw steps find their binaries.
type FloorOptions struct {
	N           int
	Runc        string   // runc binary
	PauseBinary string   // static pause program
	CNIBinDir   string   // CNI plugins
	Plugins     []string // plugin names to exec
	// ConfList is the network config list (JSON) a runtime under test runs
	// with; its ADD and DEL are timed through libcni, alone and alongside
	// the pause, as netshim sequences them. Empty skips those steps.
	ConfList []byte
}

// FloorStep is the cost of one raw step, timed alone.
type FloorStep struct {
	Name  string
	Stats Stats
}

// FloorReport holds the raw steps and, when a config was given, the floor
// of a whole RunPodSandbox and StopPodSandbox made of them.
type FloorReport struct {
	Steps []FloorStep
	// Run: netns create and pin, lo up in-process, then the config's ADD
	// alongside `runc run -d` of the pause. Stop: the DEL alongside the
	// pause's SIGKILL, exit and `runc delete`, then the netns unpin. Each
	// sample is one such sequence, timed whole.
	Run, Stop Stats
	// ContainerStart: `runc create` then `runc start` of a busybox bundle
	// running sleep, timed together: the floor of CreateContainer +
	// StartContainer.
	ContainerStart Stats
}

// Floor times the raw steps one sandbox needs, each alone and in-process
// where it can be: the cost no runtime can go below with these parts. It
// makes the calling process a child subreaper, as netshim is, so a pause
// process's exit is seen as netshim sees it.
func Floor(ctx context.Context, o FloorOptions) (*FloorReport, error) {
	work, err := os.MkdirTemp("", "netshim-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rep := &FloorReport{}
	sample := func(f func(i int) error) ([]time.Duration, error) {
		var ds []time.Duration
		for i := range o.N {
			d, err := timed(func() error { return f(i) })
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		return ds, nil
	}
	add := func(name string, f func(i int) error) error {
		ds, err := sample(f)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.Steps = append(rep.Steps, FloorStep{name, summarise(ds)})
		return nil
	}

	pins := filepath.Join(work, "netns")
	if err := os.MkdirAll(pins, 0o755); err != nil {
		return nil, err
	}
	pin := func(set string, i int) string { return filepath.Join(pins, fmt.Sprint(set, i)) }
	// Unpin whatever the netns steps made, also when a later step fails.
	defer func() {
		entries, _ := os.ReadDir(pins)
		for _, e := range entries {
			_ = sandbox.UnpinNetNS(filepath.Join(pins, e.Name()))
		}
	}()
	if err := add("netns create + pin", func(i int) error { return sandbox.CreatePinnedNetNS(pin("a", i)) }); err != nil {
		return nil, err
	}
	if err := add("lo up (netlink, in-process)", func(i int) error { return network.BringUpLoopback(pin("a", i)) }); err != nil {
		return nil, err
	}
	// The veth step gets namespaces of its own: its default route would
	// clash with the config's.
	for i := range o.N {
		if err := sandbox.CreatePinnedNetNS(pin("v", i)); err != nil {
			return nil, err
		}
	}
	if err := add("veth + address + route (netlink)", func(i int) error { return wireVeth(pin("v", i), i) }); err != nil {
		return nil, err
	}

	bundle, err := pauseBundle(work, o.PauseBinary)
	if err != nil {
		return nil, err
	}
	runcRoot := filepath.Join(work, "runc")
	runtime := &oci.Runc{Binary: o.Runc, Root: runcRoot}
	defer func() {
		ids, _ := runtime.List(context.Background())
		for _, id := range ids {
			_ = runtime.Delete(context.Background(), id, true)
		}
	}()
	if err := reaper.BecomeSubreaper(); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	reap := reaper.New()
	defer reap.Stop()
	pids := map[string]int{}
	run := func(id string) error {
		// netshim's own runtime adapter: the detached pause must not
		// inherit a pipe the caller waits on.
		pid, err := runtime.Run(ctx, id, bundle)
		pids[id] = pid
		return err
	}
	// stopPause is netshim's stop of a pause it started: SIGKILL, its exit
	// seen by the reaper, then a plain `runc delete`.
	stopPause := func(id string) error {
		exited := reap.Track(pids[id])
		if err := unix.Kill(pids[id], unix.SIGKILL); err != nil {
			return fmt.Errorf("kill pause %s: %w", id, err)
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("pause %s did not exit", id)
		}
		return runtime.Delete(ctx, id, false)
	}
	if err := add("runc run -d (pause)", func(i int) error { return run(fmt.Sprint("floor-a", i)) }); err != nil {
		return nil, err
	}
	if err := add("pause stop: SIGKILL, exit, runc delete", func(i int) error { return stopPause(fmt.Sprint("floor-a", i)) }); err != nil {
		return nil, err
	}
	if rep.ContainerStart, err = containerFloor(ctx, work, runtime, o.N); err != nil {
		return nil, fmt.Errorf("runc create + start: %w", err)
	}
	rep.Steps = append(rep.Steps, FloorStep{"runc create + runc start (busybox sleep)", rep.ContainerStart})
	for _, p := range o.Plugins {
		path := filepath.Join(o.CNIBinDir, p)
		if err := add("exec CNI plugin "+p+" (VERSION)", func(int) error {
			cmd := exec.CommandContext(ctx, path)
			cmd.Env = []string{"CNI_COMMAND=VERSION"}
			cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
			return cmd.Run()
		}); err != nil {
			return nil, err
		}
	}
	if len(o.ConfList) == 0 {
		return rep, nil
	}

	list, err := libcni.ConfListFromBytes(o.ConfList)
	if err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{o.CNIBinDir}, filepath.Join(work, "cni-cache"), nil)
	rtConf := func(id, netns string) *libcni.RuntimeConf {
		// What kubelet's network plugin (and netshim) pass.
		return &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0", Args: [][2]string{
			{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "floor"}, {"K8S_POD_NAME", id},
			{"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", id}}}
	}
	added := map[string]string{}
	defer func() {
		for id, netns := range added {
			_ = cni.DelNetworkList(context.Background(), list, rtConf(id, netns))
		}
	}()
	addNet := func(id, netns string) error {
		added[id] = netns
		_, err := cni.AddNetworkList(ctx, list, rtConf(id, netns))
		return err
	}
	delNet := func(id string) error {
		if err := cni.DelNetworkList(ctx, list, rtConf(id, added[id])); err != nil {
			return err
		}
		delete(added, id)
		return nil
	}
	name := list.Name
	if err := add("CNI ADD of "+name+" (libcni: its plugin execs)", func(i int) error {
		return addNet(fmt.Sprint("floor-a", i), pin("a", i))
	}); err != nil {
		return nil, err
	}
	if err := add("CNI DEL of "+name, func(i int) error { return delNet(fmt.Sprint("floor-a", i)) }); err != nil {
		return nil, err
	}
	if err := add("netns unpin", func(i int) error { return sandbox.UnpinNetNS(pin("a", i)) }); err != nil {
		return nil, err
	}

	// The whole paths, as netshim sequences the same parts.
	both := func(f, g func() error) error {
		errs := make(chan error, 1)
		go func() { errs <- g() }()
		return errors.Join(f(), <-errs)
	}
	runs, err := sample(func(i int) error {
		id, path := fmt.Sprint("floor-b", i), pin("b", i)
		if err := sandbox.CreatePinnedNetNS(path); err != nil {
			return err
		}
		if err := network.BringUpLoopback(path); err != nil {
			return err
		}
		return both(func() error { return addNet(id, path) }, func() error { return run(id) })
	})
	if err != nil {
		return nil, fmt.Errorf("floor of a RunPodSandbox: %w", err)
	}
	stops, err := sample(func(i int) error {
		id := fmt.Sprint("floor-b", i)
		if err := both(func() error { return delNet(id) }, func() error { return stopPause(id) }); err != nil {
			return err
		}
		return sandbox.UnpinNetNS(pin("b", i))
	})
	if err != nil {
		return nil, fmt.Errorf("floor of a StopPodSandbox: %w", err)
	}
	rep.Run, rep.Stop = summarise(runs), summarise(stops)
	return rep, nil
}

// wireVeth makes a veth pair, moves one end into the netns at nsPath and
// gives it an address (in 198.18.0.0/15) and a default route, as a bridge
// plugin ADD does minus the bridge and IPAM.
func wireVeth(nsPath string, i int) error {
	host := fmt.Sprintf("nsfloor%d", i)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: host + "p"}
	if err := netlink.LinkAdd(veth); err != nil {
		return err
	}
	peer, err := netlink.LinkByName(host + "p")
	if err != nil {
		return err
	}
	target, err := ns.GetNS(nsPath)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netlink.LinkSetNsFd(peer, int(target.Fd())); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		return err
	}
	return target.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(host + "p")
		if err != nil {
			return err
		}
		ip := net.IPv4(198, 19, 252, byte(2+i%250))
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IPv4(198, 19, 252, 1)})
	})
}

// pauseBundle writes a minimal OCI bundle running pause (no network namespace
// of its own: the floor of runc alone; runc gives each container its own cgroup).
func pauseBundle(work, pause string) (string, error) {
	bundle := filepath.Join(work, "bundle")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(pause)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(bundle, "rootfs", "pause"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	dst.Close()
	config := `{"ociVersion":"1.2.0","process":{"user":{"uid":65535,"gid":65535},"args":["/pause"],"cwd":"/","noNewPrivileges":true},
	 "root":{"path":"rootfs","readonly":true},
	 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs"}],
	 "linux":{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"ipc"},{"type":"uts"}]}}`
	return bundle, os.WriteFile(filepath.Join(bundle, "config.json"), []byte(config), 0o600)
}

// containerFloor times n runs of `runc create` then `runc start` of a
// busybox bundle running sleep; each container is killed and deleted,
// untimed, before the next.
func containerFloor(ctx context.Context, work string, runtime *oci.Runc, n int) (Stats, error) {
	bundle := filepath.Join(work, "busybox-bundle")
	files, err := registry.BusyboxFiles()
	if err != nil {
		return Stats{}, err
	}
	if err := writeRootfs(filepath.Join(bundle, "rootfs"), files); err != nil {
		return Stats{}, err
	}
	config := `{"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"args":["/bin/sleep","3600"],"cwd":"/",
	  "env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"noNewPrivileges":true},
	 "root":{"path":"rootfs"},
	 "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
	  {"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},
	  {"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]},
	  {"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},
	  {"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}],
	 "linux":{"namespaces":[{"type":"mount"},{"type":"pid"},{"type":"ipc"},{"type":"uts"}]}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(config), 0o600); err != nil {
		return Stats{}, err
	}
	var ds []time.Duration
	for i := range n + 1 { // one warm-up
		id := fmt.Sprint("floor-ctr", i)
		d, err := timed(func() error {
			// stdio /dev/null: the container's init inherits them, and a
			// pipe would keep the wait open for as long as it lives.
			// runc's own errors go to its log.
			logPath := filepath.Join(work, id+".log")
			cmd := exec.CommandContext(ctx, runtime.Binary, "--root", runtime.Root, "--log", logPath, "create", "--bundle", bundle, id)
			if err := cmd.Run(); err != nil {
				msg, _ := os.ReadFile(logPath)
				return fmt.Errorf("runc create: %w: %s", err, strings.TrimSpace(string(msg)))
			}
			return runtime.Start(ctx, id)
		})
		_ = runtime.Kill(ctx, id, unix.SIGKILL, true)
		if derr := runtime.Delete(ctx, id, true); err == nil && derr != nil {
			err = derr
		}
		if err != nil {
			return Stats{}, err
		}
		if i > 0 {
			ds = append(ds, d)
		}
	}
	return summarise(ds), nil
}

// writeRootfs lays files (regular files, dirs and symlinks) out under dir.
func writeRootfs(dir string, files []registry.File) error {
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		var err error
		switch f.Type {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(f.Linkname, path)
		default:
			mode := os.FileMode(f.Mode)
			if mode == 0 {
				mode = 0o644
			}
			err = os.WriteFile(path, f.Body, mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Print writes the floor steps and paths as a table.
func (r *FloorReport) Print(w io.Writer) {
	fmt.Fprintf(w, "floor step\tN\tmedian ms\tp90 ms\tmax ms\n")
	rows := append([]FloorStep(nil), r.Steps...)
	if r.Run.N > 0 {
		rows = append(rows, FloorStep{"floor of a RunPodSandbox: netns, lo, ADD alongside runc run", r.Run},
			FloorStep{"floor of a StopPodSandbox: DEL alongside pause stop, unpin", r.Stop})
	}
	for _, s := range rows {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Stats.N, ms(s.Stats.Median), ms(s.Stats.P90), ms(s.Stats.Max))
	}
}
