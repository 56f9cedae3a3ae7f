package cri

import (
	"context"
	"fmt"
	"path"
	"runtime/debug"
	"time"

	"github.com/netshim/netshim/container"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// Interceptors log, measure and guard every RPC.
type Interceptors struct {
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewInterceptors registers the CRI RPC metrics with reg (may be nil).
func NewInterceptors(reg prometheus.Registerer) *Interceptors {
	i := &Interceptors{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "netshim_cri_operations_duration_seconds",
			Help:    "Latency of CRI RPCs, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netshim_cri_operations_errors_total",
			Help: "CRI RPCs that returned an error, by method and gRPC code.",
		}, []string{"operation", "code"}),
	}
	if reg != nil {
		reg.MustRegister(i.latency, i.errors)
	}
	return i
}

// Unary maps the handler's error to its gRPC code (grpcError: the one place
// that does), logs each call at -v=4 (errors always), records its latency
// and error, turns a panic into an Internal error, and gives the generated
// "method X not implemented" a sentence a user can act on.
func (i *Interceptors) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer i.finish(path.Base(info.FullMethod), time.Now(), &err)
	return handler(ctx, req)
}

// Stream does for streaming RPCs what Unary does.
func (i *Interceptors) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer i.finish(path.Base(info.FullMethod), time.Now(), &err)
	return handler(srv, ss)
}

// finish runs deferred by each RPC: it must be the deferred call itself for
// recover to catch the handler's panic.
func (i *Interceptors) finish(method string, start time.Time, err *error) {
	if r := recover(); r != nil {
		klog.ErrorS(nil, "Panic in CRI call", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = fmt.Errorf("%s failed: internal error (panic: %v)", method, r)
	}
	*err = clarifyUnimplemented(method, grpcError(*err))
	i.observe(method, start, *err)
}

func (i *Interceptors) observe(method string, start time.Time, err error) {
	d := time.Since(start)
	i.latency.WithLabelValues(method).Observe(d.Seconds())
	if err != nil {
		code := status.Code(err)
		i.errors.WithLabelValues(method, code.String()).Inc()
		if code != codes.Unimplemented && code != codes.NotFound {
			klog.ErrorS(err, "CRI call failed", "method", method, "duration", d)
			return
		}
	}
	klog.V(4).InfoS("CRI call", "method", method, "duration", d, "err", err)
}

func clarifyUnimplemented(method string, err error) error {
	if status.Code(err) == codes.Unimplemented && status.Convert(err).Message() == fmt.Sprintf("method %s not implemented", method) {
		return status.Errorf(codes.Unimplemented, "%s is not implemented by netshim (see the README for the RPCs it serves)", method)
	}
	return err
}

// sandboxCollector reports how many sandboxes are in each state at scrape time.
type sandboxCollector struct {
	sandboxes Sandboxes
	desc      *prometheus.Desc
}

// NewSandboxCollector returns the netshim_sandboxes gauge over sandboxes.
func NewSandboxCollector(sandboxes Sandboxes) prometheus.Collector {
	return &sandboxCollector{sandboxes: sandboxes, desc: prometheus.NewDesc(
		"netshim_sandboxes", "Pod sandboxes known to netshim, by CRI state.", []string{"state"}, nil)}
}

func (c *sandboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sandboxCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]int{"SANDBOX_READY": 0, "SANDBOX_NOTREADY": 0}
	for _, sb := range c.sandboxes.List() {
		counts[criState(sb.State).String()]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// containerCollector reports how many containers are in each state at
// scrape time, beside the sandboxes: a count that only grows (exited
// containers nobody removes) is what an operator looks for.
type containerCollector struct {
	containers interface{ List() []*container.Container }
	desc       *prometheus.Desc
}

// NewContainerCollector returns the netshim_containers gauge over containers.
func NewContainerCollector(containers interface{ List() []*container.Container }) prometheus.Collector {
	return &containerCollector{containers: containers, desc: prometheus.NewDesc(
		"netshim_containers", "Containers known to netshim, by CRI state.", []string{"state"}, nil)}
}

func (c *containerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *containerCollector) Collect(ch chan<- prometheus.Metric) {
	// Every state is reported, 0 included, so a query never meets a gap.
	counts := map[string]int{}
	for _, st := range runtimeapi.ContainerState_name {
		counts[st] = 0
	}
	for _, ctr := range c.containers.List() {
		counts[containerState(ctr.State).String()]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
