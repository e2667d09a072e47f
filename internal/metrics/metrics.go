// Package metrics exposes syncd's Prometheus metrics and its health check
// on one HTTP listener.
package metrics

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/syncd/syncd/internal/connectors"
)

// Metrics holds syncd's collectors on their own registry.
type Metrics struct {
	Registry *prometheus.Registry

	apiCalls      *prometheus.CounterVec
	apiErrors     *prometheus.CounterVec
	retries       *prometheus.CounterVec
	limiterWait   *prometheus.CounterVec
	callDuration  *prometheus.HistogramVec
	recordsPulled *prometheus.CounterVec
	recordsPushed *prometheus.CounterVec
	runDuration   prometheus.Histogram
	runs          *prometheus.CounterVec
	lastSuccess   prometheus.Gauge

	mu         sync.Mutex
	lastOK     time.Time
	lastRunErr string
	started    time.Time
	maxAge     time.Duration
	now        func() time.Time
}

// New returns metrics. maxAge is how old the last successful run may be
// before /healthz reports unhealthy.
func New(maxAge time.Duration, now func() time.Time) *Metrics {
	if now == nil {
		now = time.Now
	}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_api_calls_total", Help: "Remote API calls, by connector and method (every attempt counts).",
		}, []string{"connector", "method"}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_api_errors_total", Help: "Failed remote API calls by connector and error class.",
		}, []string{"connector", "class"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_api_retries_total", Help: "Repeated remote API calls by connector.",
		}, []string{"connector"}),
		limiterWait: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_rate_limiter_wait_seconds_total", Help: "Time spent waiting for the rate limiter, by connector.",
		}, []string{"connector"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "syncd_api_call_duration_seconds", Help: "Duration of remote API calls.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"connector"}),
		recordsPulled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_records_pulled_total", Help: "Records pulled, by connector.",
		}, []string{"connector"}),
		recordsPushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_records_pushed_total", Help: "Records created, updated or deleted, by connector and operation.",
		}, []string{"connector", "op"}),
		runDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "syncd_run_duration_seconds", Help: "Duration of sync runs.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncd_runs_total", Help: "Sync runs by result (ok, attention, failed, interrupted).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "syncd_last_success_timestamp_seconds", Help: "Unix time of the last successful run.",
		}),
		maxAge:  maxAge,
		now:     now,
		started: now(),
	}
	m.Registry.MustRegister(m.apiCalls, m.apiErrors, m.retries, m.limiterWait, m.callDuration,
		m.recordsPulled, m.recordsPushed, m.runDuration, m.runs, m.lastSuccess,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCall records one API call attempt; give it to the pacers.
func (m *Metrics) ObserveCall(ev connectors.CallEvent) {
	m.apiCalls.WithLabelValues(ev.Connector, ev.Method).Inc()
	m.callDuration.WithLabelValues(ev.Connector).Observe(ev.Duration.Seconds())
	m.limiterWait.WithLabelValues(ev.Connector).Add(ev.Waited.Seconds())
	if ev.Attempt > 1 {
		m.retries.WithLabelValues(ev.Connector).Inc()
	}
	if ev.Err != nil {
		m.apiErrors.WithLabelValues(ev.Connector, ev.Class).Inc()
	}
}

// ConnectorRun is what one run did on one connector.
type ConnectorRun struct {
	Name                              string
	Pulled, Created, Updated, Deleted int
}

// ObserveRun records a finished run. result is ok, attention, failed or
// interrupted; ok and attention count as success for /healthz.
func (m *Metrics) ObserveRun(result string, d time.Duration, conns []ConnectorRun, errMsg string) {
	m.runs.WithLabelValues(result).Inc()
	m.runDuration.Observe(d.Seconds())
	for _, c := range conns {
		m.recordsPulled.WithLabelValues(c.Name).Add(float64(c.Pulled))
		m.recordsPushed.WithLabelValues(c.Name, "create").Add(float64(c.Created))
		m.recordsPushed.WithLabelValues(c.Name, "update").Add(float64(c.Updated))
		m.recordsPushed.WithLabelValues(c.Name, "delete").Add(float64(c.Deleted))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if result == "ok" || result == "attention" {
		m.lastOK = m.now()
		m.lastSuccess.Set(float64(m.lastOK.Unix()))
		m.lastRunErr = ""
	} else {
		m.lastRunErr = errMsg
	}
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", m.healthz)
	return mux
}

// healthz is healthy while the last successful run is younger than maxAge
// (or, before the first success, while the daemon is younger than maxAge).
func (m *Metrics) healthz(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	last, started, lastErr := m.lastOK, m.started, m.lastRunErr
	m.mu.Unlock()
	now := m.now()
	ref := last
	if ref.IsZero() {
		ref = started
	}
	age := now.Sub(ref)
	body := map[string]any{"status": "ok", "max_age": m.maxAge.String()}
	if !last.IsZero() {
		body["last_success"] = last.UTC().Format(time.RFC3339)
		body["age"] = age.Round(time.Second).String()
	}
	if lastErr != "" {
		body["last_error"] = lastErr
	}
	status := http.StatusOK
	if age > m.maxAge {
		status = http.StatusServiceUnavailable
		body["status"] = "unhealthy: no successful run for " + age.Round(time.Second).String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
