// Package cni is the network plugin that wires pods with CNI plugins: the
// loopback network, then the default network of the conf dir, as kubelet's
// cni plugin did.
package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/netshim/netshim/network"
	"github.com/netshim/netshim/pkg/crashpoint"
	"k8s.io/klog/v2"
)

// PluginName is the --network-plugin value that selects this plugin.
const PluginName = "cni"

const (
	podInterface    = "eth0"
	loopbackNetName = "cni-loopback"
	loopbackConf    = `{"cniVersion":"1.0.0","name":"` + loopbackNetName + `","plugins":[{"type":"loopback"}]}`
)

// Config says where the plugin finds configs, binaries and its cache. With
// no ConfDir the network is not loaded from files but given with SetNetwork
// (kubenet generates its own).
type Config struct {
	ConfDir  string
	BinDirs  []string
	CacheDir string
	// LoopbackPlugin execs the loopback CNI plugin for each pod's lo, as
	// kubelet did. By default lo is set up in-process: the same result
	// without a plugin process on every pod's start and stop.
	LoopbackPlugin bool
}

// Plugin is the cni network plugin.
type Plugin struct {
	cfg         Config
	cni         *libcni.CNIConfig
	loopback    *libcni.NetworkConfigList
	host        network.Host
	hairpinMode network.HairpinMode

	// defaultNet is swapped as one pointer on reload, so a reload never
	// waits for an ADD in flight and an ADD never sees half a config.
	defaultNet atomic.Pointer[Network]
	loadErr    atomic.Pointer[error]

	podCIDRs atomic.Pointer[[]string]

	pending   pendingAdds
	cacheLock *os.File // held while this plugin uses the cache dir

	// The last STATUS answer, and the refresh in flight if any. A caller is
	// never held by a slow STATUS once the network has an answer: it gets
	// the last one while a refresh runs.
	statusMu      sync.Mutex
	statusFor     *Network
	statusAt      time.Time
	statusErr     error
	statusRefresh chan struct{} // closed when the refresh in flight ends; nil if none

	watcher *confWatcher
	closeMu sync.Once
}

// New returns an uninitialised cni plugin.
func New(cfg Config) (*Plugin, error) {
	lo, err := libcni.NetworkConfFromBytes([]byte(loopbackConf))
	if err != nil {
		return nil, fmt.Errorf("parse built-in loopback config: %w", err)
	}
	return &Plugin{
		cfg:      cfg,
		cni:      libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}),
		loopback: lo,
	}, nil
}

func (p *Plugin) Name() string { return PluginName }

// Init loads the default network and starts watching the conf dir.
func (p *Plugin) Init(host network.Host, hairpinMode network.HairpinMode, _ string, _ int) error {
	p.host = host
	p.hairpinMode = hairpinMode
	lock, err := lockCacheDir(p.cfg.CacheDir)
	if err != nil {
		return err
	}
	p.cacheLock = lock
	pending, err := newPendingAdds(p.cfg.CacheDir)
	if err != nil {
		return err
	}
	p.pending = pending
	if p.cfg.ConfDir == "" {
		return nil
	}
	if err := os.MkdirAll(p.cfg.ConfDir, 0o755); err != nil {
		return fmt.Errorf("create CNI conf dir: %w", err)
	}
	p.Reload()
	w, err := watchConfDir(p.cfg.ConfDir, p.cfg.BinDirs, p.Reload)
	if err != nil {
		return err
	}
	p.watcher = w
	return nil
}

// Reload re-reads the conf dir and swaps the default network in.
func (p *Plugin) Reload() {
	n, err := LoadDefaultNetwork(p.cfg.ConfDir, p.cfg.BinDirs)
	old := p.defaultNet.Swap(n)
	p.loadErr.Store(&err)
	switch {
	case n != nil && (old == nil || old.File != n.File || string(old.List.Bytes) != string(n.List.Bytes)):
		klog.InfoS("Loaded default CNI network", "network", n.List.Name, "file", n.File)
	case n == nil && old != nil:
		klog.InfoS("No default CNI network any more", "err", err)
	}
}

// SetNetwork swaps in a network made by the caller instead of one from files.
func (p *Plugin) SetNetwork(n *Network) {
	p.defaultNet.Store(n)
	klog.InfoS("Default CNI network set", "network", n.List.Name, "source", n.File)
}

// Close stops the conf dir watcher.
func (p *Plugin) Close() error {
	p.closeMu.Do(func() {
		if p.watcher != nil {
			p.watcher.close()
		}
		if p.cacheLock != nil {
			_ = p.cacheLock.Close()
		}
	})
	return nil
}

// statusTTL is how long a STATUS answer is reused: Status is polled (kubelet
// every few seconds) and a STATUS execs every plugin of the network.
// DefaultNetwork names the default network loaded now and the file it came
// from (for `crictl info`); ok is false while none is loaded.
func (p *Plugin) DefaultNetwork() (name, file string, ok bool) {
	def := p.defaultNet.Load()
	if def == nil {
		return "", "", false
	}
	return def.List.Name, def.File, true
}

const statusTTL = 2 * time.Second

// Status is nil once a default network is loaded, loopback is installed and,
// for a CNI 1.1 network, its plugins answer STATUS with success. The network
// is read once: a reload meanwhile cannot change it under the call.
func (p *Plugin) Status() error {
	def := p.defaultNet.Load()
	if err := p.configStatus(def); err != nil {
		return err
	}
	return p.pluginStatus(def)
}

// statusTimeout bounds one STATUS of the whole network.
const statusTimeout = 10 * time.Second

// pluginStatus answers from the last STATUS of def. A fresh answer is
// returned as is; a stale one is returned while a refresh runs in the
// background; only a network never asked yet waits for its first answer.
func (p *Plugin) pluginStatus(def *Network) error {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	for {
		if p.statusFor == def && time.Since(p.statusAt) < statusTTL {
			return p.statusErr
		}
		wait := p.statusRefresh
		if wait == nil {
			wait = make(chan struct{})
			p.statusRefresh = wait
			go p.refreshStatus(def, wait)
		}
		if p.statusFor == def {
			return p.statusErr // stale, but the refresh is under way
		}
		// No answer for this network yet. The refresh in flight may be of a
		// network a reload replaced: then go round and start one for def.
		p.statusMu.Unlock()
		<-wait
		p.statusMu.Lock()
	}
}

// refreshStatus runs STATUS on def's plugins without holding statusMu, then
// publishes the answer and ends the refresh.
func (p *Plugin) refreshStatus(def *Network, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	var err error
	if serr := p.cni.GetStatusNetworkList(ctx, def.List); serr != nil {
		err = fmt.Errorf("network %q is not ready (CNI STATUS): %w", def.List.Name, serr)
	}
	p.statusMu.Lock()
	p.statusFor, p.statusAt, p.statusErr = def, time.Now(), err
	p.statusRefresh = nil
	p.statusMu.Unlock()
	close(done)
}

// configStatus is the cheap part of Status: a network is loaded and loopback exists.
func (p *Plugin) configStatus(def *Network) error {
	if def == nil {
		if e := p.loadErr.Load(); e != nil && *e != nil {
			return fmt.Errorf("cni config uninitialized: %w", *e)
		}
		return fmt.Errorf("cni config uninitialized: no network config in %s", p.cfg.ConfDir)
	}
	if !p.cfg.LoopbackPlugin {
		return nil
	}
	if _, err := invoke.FindInPath("loopback", p.cfg.BinDirs); err != nil {
		return fmt.Errorf("cni loopback plugin missing: %w", err)
	}
	return nil
}

// SetPodCIDR keeps the node's pod CIDRs to pass as the ipRanges capability.
func (p *Plugin) SetPodCIDR(cidrs []string) error {
	for _, c := range cidrs {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("invalid pod CIDR %q: %w", c, err)
		}
	}
	cp := append([]string(nil), cidrs...)
	p.podCIDRs.Store(&cp)
	return nil
}

// SetUpPod brings up lo (in-process, or by the loopback plugin), then adds
// the default network.
func (p *Plugin) SetUpPod(ctx context.Context, pod network.Pod) (*network.PodNetworkStatus, error) {
	netNS, err := p.host.GetNetNS(pod.SandboxID)
	if err != nil {
		return nil, fmt.Errorf("find netns of sandbox %s: %w", pod.SandboxID, err)
	}
	if netNS == "" {
		return nil, fmt.Errorf("netns of sandbox %s is gone", pod.SandboxID)
	}
	def := p.defaultNet.Load()
	if def == nil {
		return nil, p.configStatus(nil)
	}
	if p.cfg.LoopbackPlugin {
		if _, err := p.cni.AddNetworkList(ctx, p.loopback, p.runtimeConf(pod, netNS, nil)); err != nil {
			return nil, fmt.Errorf("add loopback network to pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
	} else if err := network.BringUpLoopback(netNS); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	crashpoint.Hit(crashpoint.AfterCNILoopback)
	rt := p.runtimeConf(pod, netNS, p.capabilityArgs(pod))
	if err := p.pending.record(pod.SandboxID, def.List, rt); err != nil {
		return nil, err
	}
	res, err := p.cni.AddNetworkList(ctx, def.List, rt)
	if err != nil {
		return nil, fmt.Errorf("add network %q (%s) to pod %s/%s: %w", def.List.Name, def.File, pod.Namespace, pod.Name, err)
	}
	crashpoint.Hit(crashpoint.AfterCNIDefault)
	// libcni's cache holds the ADD now; the record would only repeat it.
	if err := p.pending.forget(pod.SandboxID); err != nil {
		klog.InfoS("Could not remove the record of a finished ADD; its DEL removes it", "sandbox", pod.SandboxID, "err", err)
	}
	result, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("read result of network %q: %w", def.List.Name, err)
	}
	for _, iface := range result.Interfaces {
		if iface.Sandbox == "" {
			if err := network.ApplyHairpin(p.hairpinMode, iface.Name); err != nil {
				return nil, err
			}
		}
	}
	return &network.PodNetworkStatus{
		IPs:  podIPs(result),
		Info: map[string]string{"network": def.List.Name, "configFile": def.File},
	}, nil
}

// TearDownPod deletes the default network, then loopback. The default
// network's DEL uses the config the pod was set up with: libcni's cache for
// an ADD that succeeded, else the record written before the ADD ran (or,
// when that one's DEL fails, the conf dir's config if it is the same network
// edited since); the current config only for a pod with neither. A gone
// netns is passed as "".
func (p *Plugin) TearDownPod(ctx context.Context, pod network.Pod) error {
	netNS, err := p.host.GetNetNS(pod.SandboxID)
	if err != nil {
		return fmt.Errorf("find netns of sandbox %s: %w", pod.SandboxID, err)
	}
	cached, err := p.cni.GetCachedAttachments(pod.SandboxID)
	if err != nil {
		klog.InfoS("Could not read cached CNI attachments", "sandbox", pod.SandboxID, "err", err)
	}
	var errs []error
	deleted := map[string]bool{}
	loopbackCached := false
	del := func(list *libcni.NetworkConfigList, caps map[string]any) error {
		deleted[list.Name] = true
		if err := p.cni.DelNetworkList(ctx, list, p.runtimeConf(pod, netNS, caps)); err != nil {
			return fmt.Errorf("delete network %q from pod %s/%s: %w", list.Name, pod.Namespace, pod.Name, err)
		}
		return nil
	}
	for _, att := range cached {
		if att.Network == loopbackNetName {
			loopbackCached = true
			continue
		}
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse cached config of network %q: %w", att.Network, err))
			continue
		}
		if err := del(list, att.CapabilityArgs); err != nil {
			errs = append(errs, err)
		}
	}
	rec, recList, err := p.pending.load(pod.SandboxID)
	if err != nil {
		klog.ErrorS(err, "Set aside an unreadable record of a pod's ADD", "sandbox", pod.SandboxID)
		_ = p.pending.setAside(pod.SandboxID)
	}
	switch def := p.defaultNet.Load(); {
	case rec != nil && !deleted[rec.Network]:
		err := del(recList, rec.CapabilityArgs)
		// A config that cannot even DEL, fixed since in the conf dir under
		// the same network name: the fixed one releases the same IP.
		if err != nil && def != nil && def.List.Name == rec.Network && !bytes.Equal(def.List.Bytes, rec.Config) {
			klog.InfoS("The DEL with the recorded config failed; retrying with the conf dir's config of the same network",
				"sandbox", pod.SandboxID, "network", rec.Network, "err", err)
			err = del(def.List, p.capabilityArgs(pod))
		}
		if err != nil {
			errs = append(errs, err)
		}
	case rec == nil && len(deleted) == 0 && def != nil:
		if err := del(def.List, p.capabilityArgs(pod)); err != nil {
			errs = append(errs, err)
		}
	}
	// An in-process lo needs no DEL; a plugin's ADD (this mode, or a pod
	// set up before it changed) gets its DEL, which also clears its cache.
	if p.cfg.LoopbackPlugin || loopbackCached {
		if err := p.cni.DelNetworkList(ctx, p.loopback, p.runtimeConf(pod, netNS, nil)); err != nil {
			errs = append(errs, fmt.Errorf("delete loopback network from pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
	}
	if len(errs) == 0 && rec != nil {
		if err := p.pending.forget(pod.SandboxID); err != nil {
			errs = append(errs, fmt.Errorf("forget the recorded ADD of sandbox %s: %w", pod.SandboxID, err))
		}
	}
	return errors.Join(errs...)
}

// GC deletes cached attachments of sandboxes that are not valid any more and,
// for CNI 1.1 configs, lets each plugin release what it holds for them
// (host-local frees their IPs): what a crash may have leaked is reclaimed.
func (p *Plugin) GC(ctx context.Context, validSandboxIDs []string) error {
	valid := &libcni.GCArgs{}
	for _, id := range validSandboxIDs {
		valid.ValidAttachments = append(valid.ValidAttachments,
			types.GCAttachment{ContainerID: id, IfName: podInterface},
			types.GCAttachment{ContainerID: id, IfName: "lo"})
	}
	var errs []error
	if def := p.defaultNet.Load(); def != nil {
		if err := p.cni.GCNetworkList(ctx, def.List, valid); err != nil {
			errs = append(errs, fmt.Errorf("GC network %q: %w", def.List.Name, err))
		}
	}
	if err := p.cni.GCNetworkList(ctx, p.loopback, valid); err != nil {
		errs = append(errs, fmt.Errorf("GC loopback network: %w", err))
	}
	return errors.Join(append(errs, p.deleteStalePending(ctx, validSandboxIDs)...)...)
}

// deleteStalePending sends the owed DEL for each recorded ADD whose sandbox
// is gone (its ADD never reached libcni's cache, so libcni's GC cannot know
// it), with the recorded config, arguments and no netns.
func (p *Plugin) deleteStalePending(ctx context.Context, validSandboxIDs []string) []error {
	valid := map[string]bool{}
	for _, id := range validSandboxIDs {
		valid[id] = true
	}
	var errs []error
	for _, id := range p.pending.sandboxIDs() {
		if valid[id] {
			continue
		}
		rec, list, err := p.pending.load(id)
		if err != nil {
			klog.ErrorS(err, "Set aside an unreadable record of a pod's ADD", "sandbox", id)
			_ = p.pending.setAside(id)
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: id, IfName: podInterface, Args: rec.Args, CapabilityArgs: rec.CapabilityArgs}
		if err := p.cni.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, fmt.Errorf("delete network %q of gone sandbox %s: %w", rec.Network, id, err))
			continue
		}
		klog.InfoS("Deleted the network of a sandbox that is gone, from its recorded ADD", "sandbox", id, "network", rec.Network)
		if err := p.pending.forget(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// GetPodNetworkStatus answers from the cached ADD result: no netns is entered.
func (p *Plugin) GetPodNetworkStatus(ctx context.Context, pod network.Pod) (*network.PodNetworkStatus, error) {
	cached, err := p.cni.GetCachedAttachments(pod.SandboxID)
	if err != nil {
		return nil, fmt.Errorf("read cached CNI attachments of sandbox %s: %w", pod.SandboxID, err)
	}
	for _, att := range cached {
		if att.Network == loopbackNetName {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			return nil, fmt.Errorf("parse cached config of network %q: %w", att.Network, err)
		}
		netNS, err := p.host.GetNetNS(pod.SandboxID)
		if err != nil {
			return nil, err
		}
		rt := p.runtimeConf(pod, netNS, att.CapabilityArgs)
		res, err := p.cni.GetNetworkListCachedResult(list, rt)
		if err != nil || res == nil {
			return nil, fmt.Errorf("read cached result of network %q: %w", att.Network, err)
		}
		result, err := types100.NewResultFromResult(res)
		if err != nil {
			return nil, err
		}
		resultJSON, _ := json.Marshal(result)
		info := map[string]string{"network": att.Network, "cniVersion": list.CNIVersion, "result": string(resultJSON), "check": p.check(ctx, list, rt)}
		return &network.PodNetworkStatus{IPs: podIPs(result), Info: info}, nil
	}
	return &network.PodNetworkStatus{}, nil
}

// check runs CNI CHECK where the config's version has it (0.4.0 on) and the
// config does not disable it, and says how it went.
func (p *Plugin) check(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) string {
	if ok, _ := version.GreaterThanOrEqualTo(list.CNIVersion, "0.4.0"); !ok || list.DisableCheck {
		return "not supported by this config"
	}
	if rt.NetNS == "" {
		return "skipped: the netns is gone"
	}
	if err := p.cni.CheckNetworkList(ctx, list, rt); err != nil {
		return "failed: " + err.Error()
	}
	return "passed"
}

func (p *Plugin) runtimeConf(pod network.Pod, netNS string, caps map[string]interface{}) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: pod.SandboxID,
		NetNS:       netNS,
		IfName:      podInterface,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.SandboxID},
			{"K8S_POD_UID", pod.UID},
		},
		CapabilityArgs: caps,
	}
}

// capabilityArgs are offered on every call; libcni passes each only to the
// plugins that declare that capability.
func (p *Plugin) capabilityArgs(pod network.Pod) map[string]interface{} {
	caps := map[string]interface{}{}
	if len(pod.PortMappings) > 0 {
		pms := make([]map[string]interface{}, 0, len(pod.PortMappings))
		for _, pm := range pod.PortMappings {
			m := map[string]interface{}{"hostPort": pm.HostPort, "containerPort": pm.ContainerPort, "protocol": pm.Protocol}
			if pm.HostIP != "" {
				m["hostIP"] = pm.HostIP
			}
			pms = append(pms, m)
		}
		caps["portMappings"] = pms
	}
	if bw := pod.Bandwidth; bw != nil {
		shaping := map[string]interface{}{}
		if bw.IngressRate > 0 {
			shaping["ingressRate"], shaping["ingressBurst"] = bw.IngressRate, bw.IngressBurst
		}
		if bw.EgressRate > 0 {
			shaping["egressRate"], shaping["egressBurst"] = bw.EgressRate, bw.EgressBurst
		}
		caps["bandwidth"] = shaping
	}
	if pod.DNS != nil {
		caps["dns"] = map[string]interface{}{"servers": pod.DNS.Servers, "searches": pod.DNS.Searches, "options": pod.DNS.Options}
	}
	if cidrs := p.podCIDRs.Load(); cidrs != nil && len(*cidrs) > 0 {
		ranges := make([][]map[string]interface{}, 0, len(*cidrs))
		for _, c := range *cidrs {
			ranges = append(ranges, []map[string]interface{}{{"subnet": c}})
		}
		caps["ipRanges"] = ranges
	}
	return caps
}

// podIPs are the result's addresses on interfaces inside the pod (or not tied
// to an interface), IPv4 first, as the CRI's ip/additional_ips expect.
func podIPs(r *types100.Result) []net.IP {
	var ips []net.IP
	for _, ipc := range r.IPs {
		if ipc.Interface != nil {
			i := *ipc.Interface
			if i >= 0 && i < len(r.Interfaces) && r.Interfaces[i].Sandbox == "" {
				continue
			}
		}
		ips = append(ips, ipc.Address.IP)
	}
	sort.SliceStable(ips, func(a, b int) bool { return ips[a].To4() != nil && ips[b].To4() == nil })
	return ips
}
