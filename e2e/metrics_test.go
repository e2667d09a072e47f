package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/crmsim"
)

// TestMetricsAndHealthOfTheDaemon scrapes a running daemon: /metrics
// counts the first cycle's API calls, pulls, pushes and its success, and
// /healthz is healthy after it and unhealthy once the last success is
// older than health_max_age.
func TestMetricsAndHealthOfTheDaemon(t *testing.T) {
	t.Parallel()
	listen := func(s string) string {
		return strings.Replace(hourly(s), `schedule = "@every 1h"`, "schedule = \"@every 1h\"\nlisten = \"127.0.0.1:0\"\nhealth_max_age = \"3s\"", 1)
	}
	e := setup(t, crmsim.Options{People: 60}, crmsim.ConfigOptions{}, listen)
	d := e.startDaemon()
	urlRE := regexp.MustCompile(`"msg":"metrics and health","url":"(http://127\.0\.0\.1:\d+)/metrics"`)
	var base string
	d.waitFor("the metrics address in the log", func() bool {
		m := urlRE.FindStringSubmatch(d.stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	firstRunOK := regexp.MustCompile(`(?m)^\s+run 1\s.*\sok\s`)
	d.waitFor("the first run", func() bool { return firstRunOK.MatchString(syncd(t, "status", "-config", e.config).Stdout) })

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The run's last metrics are recorded just after status shows it.
	var metrics string
	d.waitFor("the run in /metrics", func() bool {
		_, metrics = get("/metrics")
		return strings.Contains(metrics, `syncd_runs_total{result="ok"} 1`)
	})
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`syncd_api_calls_total\{connector="opencrm",method="get_contact_list_full"\} [1-9]`),
		regexp.MustCompile(`syncd_api_calls_total\{connector="co3",method="getContactList"\} [1-9]`),
		regexp.MustCompile(`syncd_records_pulled_total\{connector="co3"\} [1-9]`),
		regexp.MustCompile(`syncd_records_pushed_total\{connector="opencrm",op="create"\} [1-9]`),
		regexp.MustCompile(`syncd_last_success_timestamp_seconds [1-9]`),
		regexp.MustCompile(`syncd_run_duration_seconds_count 1`),
	} {
		if !want.MatchString(metrics) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	code, body := get("/healthz")
	var h map[string]any
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK || h["status"] != "ok" {
		t.Errorf("/healthz after a successful run: %d %s", code, body)
	}
	// No run for longer than health_max_age (3 s): unhealthy.
	time.Sleep(3500 * time.Millisecond)
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "unhealthy") {
		t.Errorf("/healthz 3.5 s after the only run, health_max_age 3s: %d %s", code, body)
	}
	if code, _ := d.stop(); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
