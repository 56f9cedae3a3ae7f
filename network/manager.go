package network

import (
	"context"
	"sync"
	"time"

	"github.com/netshim/netshim/pkg/keylock"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Operation names, as label values of the plugin metrics.
const (
	opSetUp     = "set_up_pod"
	opTearDown  = "tear_down_pod"
	opGetStatus = "get_pod_network_status"
	opGC        = "gc"
)

// PluginManager wraps the active plugin: every operation on a pod holds that
// pod's lock, so set-up and teardown of one pod never overlap while different
// pods proceed in parallel; each operation's latency and errors are recorded.
type PluginManager struct {
	plugin NetworkPlugin
	locks  keylock.Locks
	// gc is held shared by every pod operation and exclusively by GC, so a
	// GC never runs alongside an ADD or DEL.
	gc      sync.RWMutex
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewPluginManager wraps plugin and registers its metrics with reg (may be nil).
func NewPluginManager(plugin NetworkPlugin, reg prometheus.Registerer) *PluginManager {
	pm := &PluginManager{
		plugin: plugin,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "network_plugin_operations_duration_seconds",
			Help:    "Latency of network plugin operations, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "network_plugin_operations_errors_total",
			Help: "Network plugin operations that failed, by operation.",
		}, []string{"operation"}),
	}
	if reg != nil {
		reg.MustRegister(pm.latency, pm.errors)
	}
	return pm
}

// PluginName is the active plugin's name.
func (pm *PluginManager) PluginName() string { return pm.plugin.Name() }

// Status reports whether the plugin can set up pods.
func (pm *PluginManager) Status() error { return pm.plugin.Status() }

// IPFamilies says which address families the plugin's network gives pods;
// known is false when the plugin cannot tell.
func (pm *PluginManager) IPFamilies() (v4, v6, known bool) {
	if f, ok := pm.plugin.(interface{ IPFamilies() (bool, bool, bool) }); ok {
		return f.IPFamilies()
	}
	return false, false, false
}

// SetPodCIDR forwards a PodCIDR change to the plugin.
func (pm *PluginManager) SetPodCIDR(cidrs []string) error { return pm.plugin.SetPodCIDR(cidrs) }

// SetUpPod wires the pod's network under the pod's lock.
func (pm *PluginManager) SetUpPod(ctx context.Context, pod Pod) (*PodNetworkStatus, error) {
	pm.gc.RLock()
	defer pm.gc.RUnlock()
	defer pm.locks.Lock(pod.Key())()
	start := time.Now()
	st, err := pm.plugin.SetUpPod(ctx, pod)
	pm.record(opSetUp, start, err)
	if err != nil {
		klog.ErrorS(err, "Failed to set up pod network", "pod", klog.KRef(pod.Namespace, pod.Name), "sandbox", pod.SandboxID)
		return nil, err
	}
	klog.V(2).InfoS("Set up pod network", "pod", klog.KRef(pod.Namespace, pod.Name), "sandbox", pod.SandboxID,
		"ips", st.IPs, "duration", time.Since(start))
	return st, nil
}

// TearDownPod removes the pod's network under the pod's lock.
func (pm *PluginManager) TearDownPod(ctx context.Context, pod Pod) error {
	pm.gc.RLock()
	defer pm.gc.RUnlock()
	defer pm.locks.Lock(pod.Key())()
	start := time.Now()
	err := pm.plugin.TearDownPod(ctx, pod)
	pm.record(opTearDown, start, err)
	if err != nil {
		klog.ErrorS(err, "Failed to tear down pod network", "pod", klog.KRef(pod.Namespace, pod.Name), "sandbox", pod.SandboxID)
		return err
	}
	klog.V(2).InfoS("Tore down pod network", "pod", klog.KRef(pod.Namespace, pod.Name), "sandbox", pod.SandboxID,
		"duration", time.Since(start))
	return nil
}

// GetPodNetworkStatus asks the plugin for the pod's network status under the pod's lock.
func (pm *PluginManager) GetPodNetworkStatus(ctx context.Context, pod Pod) (*PodNetworkStatus, error) {
	pm.gc.RLock()
	defer pm.gc.RUnlock()
	defer pm.locks.Lock(pod.Key())()
	start := time.Now()
	st, err := pm.plugin.GetPodNetworkStatus(ctx, pod)
	pm.record(opGetStatus, start, err)
	return st, err
}

// GC asks the plugin, if it can, to release what it holds for any sandbox
// not in validSandboxIDs. It waits for, and excludes, every pod operation.
func (pm *PluginManager) GC(ctx context.Context, validSandboxIDs []string) error {
	gc, ok := pm.plugin.(GarbageCollector)
	if !ok {
		return nil
	}
	pm.gc.Lock()
	defer pm.gc.Unlock()
	start := time.Now()
	err := gc.GC(ctx, validSandboxIDs)
	pm.record(opGC, start, err)
	return err
}

// Close stops the plugin's background work.
func (pm *PluginManager) Close() error { return pm.plugin.Close() }

func (pm *PluginManager) record(op string, start time.Time, err error) {
	pm.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		pm.errors.WithLabelValues(op).Inc()
	}
}
