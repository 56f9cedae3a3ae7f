package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/netshim/netshim/oci"
	"github.com/netshim/netshim/sandbox"
	"github.com/vishvananda/netlink"
)

// FloorOptions say where the raw steps find their binaries.
type FloorOptions struct {
	N           int
	Runc        string   // runc binary
	PauseBinary string   // static pause program
	CNIBinDir   string   // CNI plugins
	Plugins     []string // plugin names to exec
}

// FloorStep is the cost of one raw step, timed alone.
type FloorStep struct {
	Name  string
	Stats Stats
}

// Floor times the raw steps one sandbox needs, each alone and in-process
// where it can be: the cost no runtime can go below with these parts.
func Floor(ctx context.Context, o FloorOptions) ([]FloorStep, error) {
	work, err := os.MkdirTemp("", "netshim-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	var steps []FloorStep
	add := func(name string, f func(i int) error) error {
		var ds []time.Duration
		for i := range o.N {
			d, err := timed(func() error { return f(i) })
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			ds = append(ds, d)
		}
		steps = append(steps, FloorStep{name, summarise(ds)})
		return nil
	}

	pins := filepath.Join(work, "netns")
	if err := os.MkdirAll(pins, 0o755); err != nil {
		return nil, err
	}
	if err := add("netns create + pin", func(i int) error {
		return sandbox.CreatePinnedNetNS(filepath.Join(pins, fmt.Sprint(i)))
	}); err != nil {
		return nil, err
	}
	if err := add("veth + address + route (netlink)", func(i int) error {
		return wireVeth(filepath.Join(pins, fmt.Sprint(i)), i)
	}); err != nil {
		return nil, err
	}

	bundle, err := pauseBundle(work, o.PauseBinary)
	if err != nil {
		return nil, err
	}
	runcRoot := filepath.Join(work, "runc")
	defer func() {
		for i := range o.N {
			_ = exec.Command(o.Runc, "--root", runcRoot, "delete", "--force", fmt.Sprint("floor-", i)).Run()
		}
	}()
	// Unpin whatever the netns steps made, also when a later step fails.
	defer func() {
		for i := range o.N {
			_ = sandbox.UnpinNetNS(filepath.Join(pins, fmt.Sprint(i)))
		}
	}()
	// netshim's own runtime adapter: the detached pause must not inherit a
	// pipe the caller waits on.
	runtime := &oci.Runc{Binary: o.Runc, Root: runcRoot}
	if err := add("runc run -d (pause)", func(i int) error {
		_, err := runtime.Run(ctx, fmt.Sprint("floor-", i), bundle)
		return err
	}); err != nil {
		return nil, err
	}
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
	return steps, nil
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

// PrintFloor writes the floor steps as a table.
func PrintFloor(w io.Writer, steps []FloorStep) {
	fmt.Fprintf(w, "floor step\tN\tmedian ms\tp90 ms\tmax ms\n")
	for _, s := range steps {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Stats.N, ms(s.Stats.Median), ms(s.Stats.P90), ms(s.Stats.Max))
	}
}
