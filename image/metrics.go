package image

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	pulls    *prometheus.CounterVec
	bytes    prometheus.Counter
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netshim_image_pulls_total", Help: "Image pulls by result (ok or error).",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netshim_image_pull_bytes_total", Help: "Compressed layer bytes downloaded by pulls.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netshim_image_pull_duration_seconds", Help: "Duration of successful pulls.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.pulls, m.bytes, m.duration)
	}
	return m
}
