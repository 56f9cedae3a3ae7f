package container

import (
	"strings"

	"github.com/netshim/netshim/pkg/errdefs"
	"github.com/netshim/netshim/pkg/validate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// SpecInput is everything BuildSpec needs.
type SpecInput struct {
	ID     string
	Config *runtimeapi.ContainerConfig
	Pod    PodContext
	Image  ImageConfig
	// Rootfs is the mounted rootfs: user and group names resolve in its
	// /etc/passwd and /etc/group.
	Rootfs string
	// Host is the node the options read; nil is this one.
	Host HostFacts
	// ImageVolumes are the host sources of the config's image volumes,
	// mounted already, by the mount's index in the config.
	ImageVolumes map[int]string
	// CDI injects the config's CDI devices; nil refuses any.
	CDI CDIInjector
}

// A SpecOpt sets one part of a container's OCI spec from its request, the
// pod's context and the node's facts. Each is tested on its own.
type SpecOpt func(spec *specs.Spec, in SpecInput, host HostFacts) error

// specOpts build a container's spec, in this order: devices puts the
// device cgroup where resources finds it, and security's seccomp profile
// depends on the capabilities it sets first.
var specOpts = []SpecOpt{withProcess, withAnnotations, withNamespaces, withMounts, withDevices, withResources, withSecurity}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func invalid(field, format string, args ...any) error {
	return errdefs.InvalidField(field, format, args...)
}

// BuildSpec returns the OCI runtime spec that runc runs the container with.
func BuildSpec(in SpecInput) (*specs.Spec, error) {
	if err := validate.ContainerInPod(in.Config, in.Pod.Config); err != nil {
		return nil, err
	}
	host := in.Host
	if host == nil {
		host = node{}
	}
	spec := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: in.Config.GetLinux().GetSecurityContext().GetReadonlyRootfs()},
		Process: &specs.Process{},
		// The pod's sysctls are already set in the namespaces it joins.
		Linux: &specs.Linux{},
	}
	for _, opt := range specOpts {
		if err := opt(spec, in, host); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// withProcess sets what runs and as whom: the command, environment,
// working directory, user, terminal and no_new_privs.
func withProcess(spec *specs.Spec, in SpecInput, _ HostFacts) error {
	cfg := in.Config
	sc := cfg.GetLinux().GetSecurityContext()
	args, err := processArgs(cfg, in.Image)
	if err != nil {
		return err
	}
	user, err := resolveUser(in.Rootfs, sc, in.Image.User)
	if err != nil {
		return err
	}
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	spec.Process.Terminal = cfg.GetTty()
	spec.Process.Args = args
	spec.Process.Env = mergeEnv(in.Image.Env, cfg.GetEnvs())
	spec.Process.Cwd = cwd
	spec.Process.User = user
	spec.Process.NoNewPrivileges = sc.GetNoNewPrivs()
	return nil
}

// withAnnotations passes the config's annotations and says, as containerd
// does, which sandbox the container belongs to.
func withAnnotations(spec *specs.Spec, in SpecInput, _ HostFacts) error {
	spec.Annotations = map[string]string{}
	for k, v := range in.Config.GetAnnotations() {
		spec.Annotations[k] = v
	}
	spec.Annotations["io.kubernetes.cri.container-type"] = "container"
	spec.Annotations["io.kubernetes.cri.sandbox-id"] = in.Pod.SandboxID
	return nil
}

// processArgs merges the config's command and args with the image's
// entrypoint and cmd, as kubelet and containerd do.
func processArgs(cfg *runtimeapi.ContainerConfig, img ImageConfig) ([]string, error) {
	var args []string
	switch {
	case len(cfg.GetCommand()) > 0:
		args = append(append(args, cfg.GetCommand()...), cfg.GetArgs()...)
	case len(cfg.GetArgs()) > 0:
		args = append(append(args, img.Entrypoint...), cfg.GetArgs()...)
	default:
		args = append(append(args, img.Entrypoint...), img.Cmd...)
	}
	if len(args) == 0 {
		return nil, invalid("config.command", "is empty and the image has no entrypoint or cmd: no command to run")
	}
	return args, nil
}

// mergeEnv is the image's environment overridden by the config's, in order.
func mergeEnv(image []string, kvs []*runtimeapi.KeyValue) []string {
	env := append([]string(nil), image...)
	index := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, kv := range kvs {
		e := kv.GetKey() + "=" + string(kv.GetValue())
		if i, ok := index[kv.GetKey()]; ok {
			env[i] = e
			continue
		}
		index[kv.GetKey()] = len(env)
		env = append(env, e)
	}
	if _, ok := index["PATH"]; !ok {
		env = append([]string{defaultPath}, env...)
	}
	return env
}
