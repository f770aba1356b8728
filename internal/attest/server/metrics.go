package server

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/glint-boot/glint/internal/attest/wire"
)

// metrics are the counters /metrics exposes in the Prometheus text format
// (version 0.0.4), written by hand: a dozen series do not justify the
// client library. Fleet gauges come from the database at scrape time
// (cached for 15 s, so a scrape storm cannot load it).
type metrics struct {
	mu        sync.Mutex
	requests  map[string]uint64 // route + code
	refusals  map[string]uint64
	verdicts  map[string]uint64
	enrolls   map[string]uint64
	unlocks   map[string]uint64
	buckets   []float64 // verification seconds, upper bounds
	counts    []uint64
	sum       float64
	total     uint64
	startedAt time.Time
}

func newMetrics() *metrics {
	return &metrics{requests: map[string]uint64{}, refusals: map[string]uint64{}, verdicts: map[string]uint64{},
		enrolls: map[string]uint64{}, unlocks: map[string]uint64{},
		buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5},
		counts:    make([]uint64, 11),
		startedAt: time.Now()}
}

func (m *metrics) request(route string, code int, d time.Duration) {
	m.mu.Lock()
	m.requests[fmt.Sprintf("route=%q,code=\"%d\"", route, code)]++
	m.mu.Unlock()
}

func (m *metrics) refused(reason string)  { m.inc(m.refusals, reason) }
func (m *metrics) enrolled(status string) { m.inc(m.enrolls, status) }
func (m *metrics) unlock(result string)   { m.inc(m.unlocks, result) }

func (m *metrics) inc(c map[string]uint64, k string) {
	m.mu.Lock()
	c[k]++
	m.mu.Unlock()
}

func (m *metrics) verified(v wire.Verdict, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.verdicts[v.String()]++
	s := d.Seconds()
	m.sum += s
	m.total++
	for i, b := range m.buckets {
		if s <= b {
			m.counts[i]++
		}
	}
}

func writeCounter(w io.Writer, name, help, label string, c map[string]uint64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(k, "=") {
			fmt.Fprintf(w, "%s{%s} %d\n", name, k, c[k])
		} else {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, c[k])
		}
	}
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	st, err := s.fleetStats(r)
	if err != nil {
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	m := s.metrics
	m.mu.Lock()
	writeCounter(w, "glint_attest_requests_total", "Device API requests by route and HTTP status.", "", m.requests)
	writeCounter(w, "glint_attest_refusals_total", "Device requests refused (nothing recorded), by reason.", "reason", m.refusals)
	writeCounter(w, "glint_attest_reports_total", "Reports whose quote verified, by verdict.", "verdict", m.verdicts)
	writeCounter(w, "glint_attest_enrollments_total", "Completed enrolments by resulting status.", "status", m.enrolls)
	writeCounter(w, "glint_attest_unlock_total", "Disk-unlock requests by outcome.", "result", m.unlocks)
	fmt.Fprintf(w, "# HELP glint_attest_verify_seconds Quote verification, log replay and appraisal time per report.\n# TYPE glint_attest_verify_seconds histogram\n")
	for i, b := range m.buckets {
		fmt.Fprintf(w, "glint_attest_verify_seconds_bucket{le=\"%g\"} %d\n", b, m.counts[i])
	}
	fmt.Fprintf(w, "glint_attest_verify_seconds_bucket{le=\"+Inf\"} %d\nglint_attest_verify_seconds_sum %g\nglint_attest_verify_seconds_count %d\n", m.total, m.sum, m.total)
	m.mu.Unlock()
	gauge := func(name, help string, values map[string]int, label string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if label == "" {
				fmt.Fprintf(w, "%s %d\n", name, values[k])
			} else {
				fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, values[k])
			}
		}
	}
	gauge("glint_attest_devices", "Enrolled devices by status.", st.Devices, "status")
	gauge("glint_attest_devices_last_verdict", "Approved devices by the verdict of their last report.", st.Verdicts, "verdict")
	gauge("glint_attest_devices_stale", "Approved devices whose last report is older than the stale limit.", map[string]int{"": st.Stale}, "")
	gauge("glint_attest_devices_never_reported", "Approved devices that never reported.", map[string]int{"": st.Never}, "")
	gauge("glint_attest_golden_sets", "Approved golden measurement sets.", map[string]int{"": st.Goldens}, "")
}
