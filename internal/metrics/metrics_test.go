package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors"
)

func TestMetricsAndHealth(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m := New(time.Hour, clock)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("fresh daemon healthz = %d, want 200", code)
	}
	m.ObserveCall(connectors.CallEvent{Connector: "opencrm", Method: "get_contact_list_full", Attempt: 1, Waited: 2 * time.Second})
	m.ObserveCall(connectors.CallEvent{Connector: "opencrm", Method: "get_contact_list_full", Attempt: 2, Err: errors.New("x"), Class: "rate_limited"})
	m.ObserveRun("ok", 3*time.Second, []ConnectorRun{{Name: "opencrm", Pulled: 7, Created: 2}}, "")
	_, body := get("/metrics")
	for _, want := range []string{
		`syncd_api_calls_total{connector="opencrm",method="get_contact_list_full"} 2`,
		`syncd_api_errors_total{class="rate_limited",connector="opencrm"} 1`,
		`syncd_api_retries_total{connector="opencrm"} 1`,
		`syncd_rate_limiter_wait_seconds_total{connector="opencrm"} 2`,
		`syncd_records_pulled_total{connector="opencrm"} 7`,
		`syncd_records_pushed_total{connector="opencrm",op="create"} 2`,
		`syncd_last_success_timestamp_seconds 1.7672688e+09`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	now = now.Add(2 * time.Hour)
	m.ObserveRun("failed", time.Second, nil, "opencrm: authentication failed")
	code, body := get("/healthz")
	if code != 503 || !strings.Contains(body, "unhealthy") || !strings.Contains(body, "authentication failed") {
		t.Fatalf("stale healthz = %d %s, want 503 naming the last error", code, body)
	}
}
