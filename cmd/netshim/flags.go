package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/netshim/netshim/cri"
	"github.com/netshim/netshim/image"
	"github.com/netshim/netshim/network/cni"
	"github.com/netshim/netshim/network/kubenet"
	"github.com/netshim/netshim/pkg/cgroupdriver"
	"github.com/spf13/pflag"
)

type options struct {
	configFile        string
	configFilesRead   []string // the config file and drop-ins loadConfig read
	endpoint          string
	rootDir           string
	stateDir          string
	netnsDir          string
	networkPlugin     string
	cniConfDir        string
	cniBinDir         string
	cniCacheDir       string
	cniLoopbackPlugin bool
	kubenetBridge     string
	hairpinMode       string
	nonMasqueradeCIDR string
	mtu               int
	ociRuntime        string
	cgroupDriver      string
	handlerFlags      []string        // --runtime-handler NAME=PATH
	runtimeHandlers   []handlerConfig // the files' and the flags', sorted by name (loadConfig)
	cdiSpecDirs       []string
	pauseBinary       string
	conmon            string
	registryConfig    string
	registryCertsDir  string
	pullProgress      time.Duration
	streamingAddress  string
	metricsAddress    string
	eventsBuffer      int
	socketGroup       string
	verbosityFile     string
	version           bool
}

// newFlagSet binds netshim's flags to o, in kubelet's style (--flag, through
// pflag) and with klog's flags (-v, --log-file, ...) bridged in, as kubelet
// does. `netshim check` parses the same set, so it checks what the daemon
// started with those flags would use.
func newFlagSet(name string, o *options) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	// kubelet's normalization: --log_file and --log-file are one flag.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	fs.SortFlags = false
	fs.StringVar(&o.configFile, "config", defaultConfigFile, "TOML config file, then its drop-in dir (FILE.d/*.toml, in lexical order); keys are the flags' names with _ for - (cni_conf_dir), and a flag given here overrides them; a missing default file is no error; \"\" reads none")
	fs.StringVar(&o.endpoint, "container-runtime-endpoint", "unix:///run/netshim/netshim.sock", "CRI endpoint to serve (a unix socket), as kubelet's --container-runtime-endpoint names it")
	fs.StringVar(&o.rootDir, "root-dir", "/var/lib/netshim", "directory for persistent state: checkpoints, containers' writable layers, the image store")
	fs.StringVar(&o.stateDir, "state-dir", "/run/netshim", "directory for runtime state: OCI bundles, the OCI runtime's state, the pause rootfs")
	fs.StringVar(&o.netnsDir, "netns-dir", "/run/netns", "directory where sandbox network namespaces are pinned (so \"ip netns\" sees them)")
	fs.StringVar(&o.networkPlugin, "network-plugin", cni.PluginName, "network plugin: cni, kubenet, or none (\"\" also means none)")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "directory of CNI network configs; the first valid file in lexical order is the default network")
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", "/opt/cni/bin", "comma-separated directories holding CNI plugin binaries")
	fs.StringVar(&o.cniCacheDir, "cni-cache-dir", "/var/lib/cni", "directory where libcni caches results and configs for teardown")
	fs.BoolVar(&o.cniLoopbackPlugin, "cni-loopback-plugin", false, "bring up each pod's lo with the loopback CNI plugin, as kubelet did, instead of in-process (same result, one plugin process more per pod start and stop)")
	fs.StringVar(&o.kubenetBridge, "kubenet-bridge", kubenet.DefaultBridge, "the bridge kubenet creates and attaches pods to")
	fs.StringVar(&o.hairpinMode, "hairpin-mode", "", "how pods reach themselves through a service: promiscuous-bridge (kubenet only; under cni it means hairpin-veth), hairpin-veth or none; default: promiscuous-bridge under kubenet, hairpin-veth otherwise")
	fs.StringVar(&o.nonMasqueradeCIDR, "non-masquerade-cidr", "10.0.0.0/8", "traffic to IPs outside this range is masqueraded (kubenet)")
	fs.IntVar(&o.mtu, "network-plugin-mtu", 0, "MTU for pod interfaces (kubenet); 0 picks the default")
	fs.StringVar(&o.ociRuntime, "oci-runtime", "", "path of the OCI runtime binary (runc); default: runc beside netshim, else in ../libexec/netshim, else on PATH")
	fs.StringVar(&o.cgroupDriver, "cgroup-driver", string(cgroupdriver.Cgroupfs), "how pod cgroups are made, as kubelet's --cgroup-driver (which must match): cgroupfs (directories under /sys/fs/cgroup) or systemd (slices and scopes made by systemd, which must be PID 1; runc's --systemd-cgroup)")
	fs.StringArrayVar(&o.handlerFlags, "runtime-handler", nil, "NAME=PATH: another OCI runtime with runc's command line (runsc, crun), for pods whose RuntimeClass handler is NAME; repeatable; the config file's [runtime_handlers.NAME] tables also set root and args")
	fs.StringSliceVar(&o.cdiSpecDirs, "cdi-spec-dirs", []string{"/etc/cdi", "/var/run/cdi"}, "comma-separated directories of CDI device specs, later ones over earlier, as containerd's cdi_spec_dirs")
	fs.StringVar(&o.pauseBinary, "pause-binary", "", "path of the static pause program; default: pause beside netshim, else in ../libexec/netshim, else on PATH")
	fs.StringVar(&o.conmon, "conmon", "conmon", "path of conmon, the per-container monitor (found on PATH by default)")
	fs.StringVar(&o.registryConfig, "registry-config", "", "registries.conf (v2) file: mirrors, plain-HTTP and blocked registries; empty pulls from each image's own registry")
	fs.StringVar(&o.registryCertsDir, "registry-certs-dir", "/etc/containers/certs.d", "directory of per-registry CA files: <host[:port]>/*.crt")
	fs.DurationVar(&o.pullProgress, "image-pull-progress-timeout", image.DefaultPullProgressTimeout, "fail an image pull when its registry sends no bytes for this long, as containerd's image_pull_progress_timeout; 0 never does")
	fs.StringVar(&o.streamingAddress, "streaming-address", "127.0.0.1:0", "host:port the exec, attach and port-forward streams are served on (port 0 picks a free one); keep it on loopback unless the node's network is trusted")
	fs.StringVar(&o.socketGroup, "socket-group", "", "group (name or GID) given access to the CRI socket, which is mode 0660; default: root's")
	fs.StringVar(&o.metricsAddress, "metrics-address", "", "host:port to serve Prometheus metrics on (e.g. 127.0.0.1:9753); empty turns them off")
	fs.IntVar(&o.eventsBuffer, "container-events-buffer", cri.DefaultEventBuffer, "how many container events a GetContainerEvents subscriber may be behind; one more ends its stream with ResourceExhausted (kubelet then relists and subscribes again)")
	fs.StringVar(&o.verbosityFile, "verbosity-file", "", "file holding the log verbosity (a number, as -v takes), read at start and on SIGHUP; it overrides -v, and a missing file leaves -v in force")
	fs.BoolVar(&o.version, "version", false, "print netshim's version and exit")
	fs.AddGoFlagSet(goflag.CommandLine) // klog's, registered by klog.InitFlags
	return fs
}

const usageHead = `netshim is a CRI runtime for kubelet: pod sandboxes and containers run by
runc, networks by kubelet's network plugins (cni, kubenet, none).

Usage:
  netshim [flags]         serve CRI on --container-runtime-endpoint
  netshim check [flags]   check this node for what netshim needs, with the
                          config file and flags netshim runs with. Exit
                          status 1 when something keeps pods from running.
  netshim config [flags]  print the effective configuration (the config file,
                          its drop-ins and the flags) as a config file.

Flags:
`

// setUsage prints usageHead and the flags to w on --help or a bad flag.
func setUsage(fs *pflag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprint(w, usageHead)
		fmt.Fprint(w, fs.FlagUsages())
	}
}

// libexecDir is where `make install` puts netshim's private helpers (pause,
// runc), relative to netshim's own bin dir: PREFIX/bin → PREFIX/libexec/netshim.
const libexecDir = "../libexec/netshim"

// findHelper finds one of netshim's helper programs: beside netshim's own
// binary (a build tree's bin/), then in the installed libexec dir, then on
// PATH. It returns name unchanged when none has it, so the error names it.
func findHelper(name string) string {
	self, err := os.Executable()
	if err != nil {
		return findHelperFrom("", name)
	}
	return findHelperFrom(filepath.Dir(self), name)
}

func findHelperFrom(selfDir, name string) string {
	if selfDir != "" {
		for _, p := range []string{filepath.Join(selfDir, name), filepath.Join(selfDir, libexecDir, name)} {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return filepath.Clean(p)
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// resolveHelpers fills in the defaults of --oci-runtime and --pause-binary.
func (o *options) resolveHelpers() {
	if o.ociRuntime == "" {
		o.ociRuntime = findHelper("runc")
	}
	if o.pauseBinary == "" {
		o.pauseBinary = findHelper("pause")
	}
}

// parseFlags parses args into fs. It returns the exit status to leave with,
// or -1 to go on: 0 after --help, 2 after a bad flag or a stray argument.
func parseFlags(fs *pflag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(fs.Output(), "%s: %v\nRun '%s --help' for the flags.\n", fs.Name(), err, fs.Name())
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q (flags start with --; the subcommands are check and config)\n", fs.Name(), fs.Arg(0))
		return 2
	}
	return -1
}

// parseOptions parses args into fs and then applies the config file (see
// loadConfig). It returns the exit status to leave with, or -1 to go on;
// a config file netshim cannot use is exit status 2, as a bad flag.
// --version needs no config.
func parseOptions(fs *pflag.FlagSet, o *options, args []string) int {
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if o.version {
		return -1
	}
	if err := loadConfig(fs, o); err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		return 2
	}
	return -1
}
