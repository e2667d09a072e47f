package clientbooktest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/clientbook/clientbooktest"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

func get(t *testing.T, raw string) (int, string) {
	t.Helper()
	resp, err := http.Get(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWire(t *testing.T) {
	clock := &emulator.Clock{}
	clock.Set(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	ny, _ := time.LoadLocation("America/New_York")
	s := clientbooktest.New(clientbooktest.Config{Clock: clock, Location: ny})
	hs := httptest.NewServer(s)
	defer hs.Close()
	cfg := s.Config()
	auth := url.Values{"app_id": {cfg.AppID}, "app_key": {cfg.AppKey}, "token": {cfg.Token}, "secret": {cfg.Secret}}
	a := s.Seed(map[string]string{"client_first_name": "A", "bogus": "ignored"})
	clock.Advance(time.Second)
	b := s.Seed(map[string]string{"client_first_name": "B"})
	clock.Advance(time.Second)
	s.EditAsUser(a, map[string]string{"client_city": "Leeds"})

	cases := []struct {
		name, path string
		q          url.Values
		status     int
		contains   []string
	}{
		{"list by update", "/api/v1/clients/list", url.Values{"order": {"update"}, "limit": {"1"}}, 200,
			[]string{`"client_id":"` + a + `"`, `"total":2`, `"update_date":"2026-07-01 08:00:02"`}},
		{"list by created, alt root", "/apiv1/clients/list", url.Values{"order": {"created"}, "from": {"0"}, "limit": {"1"}}, 200,
			[]string{`"client_id":"` + b + `"`}},
		{"view", "/api/v1/clients/view/id/" + a, nil, 200, []string{`"client_city":"Leeds"`, `"client_zip":""`}},
		{"view missing", "/api/v1/clients/view/id/999", nil, 404, nil},
		{"bad app key", "/api/v1/clients/list", url.Values{"app_key": {"x"}}, 507, []string{"app_key"}},
		{"bad token", "/api/v1/clients/list", url.Values{"token": {"x"}}, 508, []string{"token"}},
		{"add needs POST", "/api/v1/clients/add", nil, 405, nil},
		{"unknown root", "/api/v2/clients/list", nil, 404, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{}
			for k, v := range auth {
				q[k] = v
			}
			for k, v := range tc.q {
				q[k] = v
			}
			status, body := get(t, hs.URL+tc.path+"?"+q.Encode())
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(body, c) {
					t.Errorf("body lacks %s: %s", c, body)
				}
			}
			if status == 200 && !json.Valid([]byte(body)) {
				t.Errorf("invalid JSON: %s", body)
			}
		})
	}
	s.SetDisabled(true)
	if status, _ := get(t, hs.URL+"/api/v1/clients/list?"+auth.Encode()); status != 509 {
		t.Errorf("disabled: status %d, want 509", status)
	}
	if f, _ := s.Fields(a); f["bogus"] != "" {
		t.Error("undocumented field stored")
	}
	if n := s.Calls(clientbooktest.MethodList); n != 5 {
		t.Errorf("list calls = %d, want 5", n)
	}
}
