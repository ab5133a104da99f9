package server

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tamp/engine"
)

// metrics are the server's Prometheus series, on a registry of its own so
// that several servers in one process (tests) do not collide.
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec // by endpoint and status code
	duration     *prometheus.HistogramVec
	promptTokens prometheus.Counter
	genTokens    prometheus.Counter
	promptSecs   prometheus.Counter
	genSecs      prometheus.Counter
	tokPerSec    prometheus.Gauge
	kvPolicy     *prometheus.CounterVec // by policy and storage
	cancelled    prometheus.Counter
}

func newMetrics(p *pool, slots []*engine.Slot, kvCapacity int64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tamp_requests_total", Help: "HTTP requests answered, by endpoint and status code.",
	}, []string{"endpoint", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tamp_request_duration_seconds", Help: "Time from request to the end of the response, generation endpoints only.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"endpoint"})
	m.promptTokens = prometheus.NewCounter(prometheus.CounterOpts{Name: "tamp_prompt_tokens_total", Help: "Prompt tokens evaluated."})
	m.genTokens = prometheus.NewCounter(prometheus.CounterOpts{Name: "tamp_generated_tokens_total", Help: "Tokens generated."})
	m.promptSecs = prometheus.NewCounter(prometheus.CounterOpts{Name: "tamp_prompt_seconds_total", Help: "Time spent evaluating prompts, summed over slots."})
	m.genSecs = prometheus.NewCounter(prometheus.CounterOpts{Name: "tamp_generate_seconds_total", Help: "Time spent generating, summed over slots."})
	m.tokPerSec = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tamp_generate_tokens_per_second", Help: "Generation speed of the most recently finished choice."})
	m.kvPolicy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tamp_kv_policy_requests_total", Help: "Generation requests by KV-cache policy and element type.",
	}, []string{"policy", "kv_type"})
	m.cancelled = prometheus.NewCounter(prometheus.CounterOpts{Name: "tamp_requests_cancelled_total", Help: "Generations stopped because the client went away or the server shut down."})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.promptTokens, m.genTokens, m.promptSecs, m.genSecs, m.tokPerSec, m.kvPolicy, m.cancelled} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tamp_queue_depth", Help: "Requests waiting for a slot."},
		func() float64 { _, q := p.stats(); return float64(q) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tamp_slots_busy", Help: "Slots generating now."},
		func() float64 { b, _ := p.stats(); return float64(b) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tamp_slots", Help: "Parallel sequences the server runs."},
		func() float64 { return float64(len(slots)) }))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tamp_kv_bytes_in_use", Help: "Bytes the running sequences' KV caches hold."},
		func() float64 {
			var n int64
			for _, s := range slots {
				n += s.KVBytes()
			}
			return float64(n)
		}))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tamp_kv_bytes_capacity", Help: "Bytes the KV caches of all slots would hold with every context full, in the default element type."},
		func() float64 { return float64(kvCapacity) }))
	f(collectors.NewGoCollector())
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(endpoint string, code int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
}

func (m *metrics) observeRun(st engine.Stats) {
	m.promptTokens.Add(float64(st.PromptTokens))
	m.genTokens.Add(float64(st.GeneratedTokens))
	m.promptSecs.Add(st.PromptTime.Seconds())
	m.genSecs.Add(st.GenerateTime.Seconds())
	if st.GeneratedTokens > 0 && st.GenerateTime > 0 {
		m.tokPerSec.Set(st.GenerateTokensPerSecond())
	}
}
