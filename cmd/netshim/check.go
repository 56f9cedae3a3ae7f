package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/netshim/netshim/preflight"
	"golang.org/x/sys/unix"
)

// runCheck is `netshim check`: the preflight with the daemon's flags and
// config file. It returns the exit status: 0 when pods can run, 1 when
// something keeps them from running, 2 for bad flags or config.
func runCheck(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := newFlagSet("netshim check", &o)
	setUsage(fs, stderr)
	// Where proc and sysfs are read; tests point them at fakes.
	procDir := fs.String("proc-dir", "/proc", "where proc is mounted")
	sysDir := fs.String("sys-dir", "/sys", "where sysfs is mounted")
	_ = fs.MarkHidden("proc-dir")
	_ = fs.MarkHidden("sys-dir")
	if code := parseOptions(fs, &o, args); code >= 0 {
		return code
	}
	if o.version {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	o.resolveHelpers()
	results := preflight.Run(context.Background(), preflight.Config{
		ProcDir:       *procDir,
		SysDir:        *sysDir,
		ModulesDir:    modulesDir(),
		NetworkPlugin: o.networkPlugin,
		CNIConfDir:    o.cniConfDir,
		CNIBinDirs:    strings.Split(o.cniBinDir, ","),
		OCIRuntime:    o.ociRuntime,
		CgroupDriver:  o.cgroupDriver,
		Conmon:        o.conmon,
		Iptables:      "iptables",
		PauseBinary:   o.pauseBinary,
		Endpoint:      o.endpoint,
		SocketGroup:   o.socketGroup,
		RootDir:       o.rootDir,
		StateDir:      o.stateDir,
		Euid:          os.Geteuid(),
	})
	fmt.Fprintln(stdout, versionString())
	preflight.Write(stdout, results)
	if preflight.Blocking(results) {
		return 1
	}
	return 0
}

// modulesDir is this kernel's module tree, /lib/modules/RELEASE.
func modulesDir() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:]))
}
