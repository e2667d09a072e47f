package opencrmtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/contract"
)

var _ contract.Emulator = (*Server)(nil)

const key, passkey = "K1234", "P5678"

func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Key, cfg.Passkey = key, passkey
	s := New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/api/rest"
}

// testAgent names the test's client: the emulator's firewall stops Go's
// default User-Agent.
const testAgent = "opencrmtest-client/1"

func do(t *testing.T, req *http.Request) string {
	t.Helper()
	req.Header.Set("User-Agent", testAgent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func post(t *testing.T, u string, form url.Values) string {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func TestTransports(t *testing.T) {
	s, base := start(t, Config{})
	s.Seed(map[string]string{"firstname": "Ann", "email": "ann@example.com"})
	const want = `[{"id":"1","crmid":"1","firstname":"Ann","email":"ann@example.com"}]`
	mp := func() *http.Request {
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("key", key)
		_ = w.WriteField("passkey", passkey)
		_ = w.Close()
		req, _ := http.NewRequest("POST", base+"/get_contact_list/", &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		return req
	}
	cases := map[string]func() *http.Request{
		"get query": func() *http.Request {
			req, _ := http.NewRequest("GET", base+"/get_contact_list/?key="+key+"&passkey="+passkey, nil)
			return req
		},
		"post form": func() *http.Request {
			req, _ := http.NewRequest("POST", base+"/get_contact_list/", strings.NewReader("key="+key+"&passkey="+passkey))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		},
		"raw body": func() *http.Request {
			req, _ := http.NewRequest("POST", base+"/get_contact_list/", strings.NewReader("key="+key+"&passkey="+passkey))
			return req
		},
		"json body": func() *http.Request {
			req, _ := http.NewRequest("POST", base+"/get_contact_list/", strings.NewReader(`{"key":"`+key+`","passkey":"`+passkey+`"}`))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		"path segments": func() *http.Request {
			req, _ := http.NewRequest("GET", base+"/get_contact_list/key/"+key+"/passkey/"+passkey, nil)
			return req
		},
		"headers": func() *http.Request {
			req, _ := http.NewRequest("POST", base+"/get_contact_list/", nil)
			req.Header.Set("KEY1", key)
			req.Header.Set("KEY2", passkey)
			return req
		},
		"multipart": mp,
	}
	for name, mk := range cases {
		if got := do(t, mk()); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	if n := s.Calls("get_contact_list"); n != len(cases) {
		t.Errorf("calls = %d", n)
	}
}

func TestAuthErrors(t *testing.T) {
	_, base := start(t, Config{})
	cases := []struct {
		form url.Values
		want string
	}{
		{url.Values{}, `{"error":"Unauthorized"}`},
		{url.Values{"key": {key}, "passkey": {"nope"}}, `{"error":"Invalid User Details - AUTHENTICATION FAILED"}`},
		{url.Values{"accesskey": {"stale"}}, `{"error":"Unauthorized"}`},
	}
	for _, tc := range cases {
		if got := post(t, base+"/get_contact_list_count/", tc.form); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.form, got, tc.want)
		}
	}
}

func TestLoginAndSessions(t *testing.T) {
	for _, style := range []string{LoginBraces, LoginString, LoginObject, LoginText} {
		s, base := start(t, Config{LoginReply: style, SessionIdle: 10 * time.Minute})
		s.Seed(map[string]string{"firstname": "Ann"})
		reply := post(t, base+"/login/", url.Values{"key": {key}, "passkey": {passkey}})
		ak := s.AccessKeys()[0]
		want := map[string]string{LoginBraces: `{"` + ak + `"}`, LoginString: `"` + ak + `"`, LoginObject: `{"accesskey":"` + ak + `"}`, LoginText: ak}[style]
		if reply != want {
			t.Errorf("%s: login reply %s, want %s", style, reply, want)
		}
		for _, name := range []string{"accesskey", "accesscode", "code"} {
			if got := post(t, base+"/get_contact_list_count/", url.Values{name: {ak}}); got != "1" {
				t.Errorf("%s=%s: %s", name, ak, got)
			}
		}
		s.Advance(9 * time.Minute)
		if got := post(t, base+"/get_contact_list_count/", url.Values{"accesskey": {ak}}); got != "1" {
			t.Errorf("use within idle period: %s", got)
		}
		s.Advance(11 * time.Minute)
		if got := post(t, base+"/get_contact_list_count/", url.Values{"accesskey": {ak}}); got != `{"error":"Unauthorized"}` {
			t.Errorf("after idle period: %s", got)
		}
	}
}

func TestLimitEndReadings(t *testing.T) {
	s, base := start(t, Config{Cap: 7})
	for range 10 {
		s.Seed(map[string]string{"firstname": "x"})
	}
	ids := func(limits ...string) []string {
		form := url.Values{"key": {key}, "passkey": {passkey}}
		if len(limits) == 2 {
			form.Set("limit_start", limits[0])
			form.Set("limit_end", limits[1])
		}
		var rows []map[string]string
		if err := json.Unmarshal([]byte(post(t, base+"/get_contact_list_full/", form)), &rows); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			if _, has := r["crmid"]; has {
				t.Errorf("_full row has crmid: %v", r)
			}
			out = append(out, r["id"])
		}
		return out
	}
	if got := strings.Join(ids("2", "5"), ","); got != "3,4,5" {
		t.Errorf("absolute: %s", got)
	}
	if got := strings.Join(ids(), ","); got != "1,2,3,4,5,6,7" {
		t.Errorf("cap: %s", got)
	}
	s.SetLimitEndCount(true)
	if got := strings.Join(ids("2", "5"), ","); got != "3,4,5,6,7" {
		t.Errorf("count: %s", got)
	}
}

func TestQueryAndFormats(t *testing.T) {
	s, base := start(t, Config{})
	s.Clock.Set(time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)) // 01:30 BST
	s.Seed(map[string]string{"firstname": "Ann", "email": "ann@example.com", "birthday": "29-03-1984"})
	s.Clock.Set(time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC)) // 01:10 GMT
	s.Seed(map[string]string{"firstname": "Bob", "email": "bob@example.org"})
	count := func(qs string) string {
		return post(t, base+"/get_contact_list_count/", url.Values{"key": {key}, "passkey": {passkey}, "query_string": {qs}})
	}
	cases := map[string]string{
		"crmentity.modifiedtime|>|2026-10-25 01:20:00": "1", // wall-clock text: Bob's 01:10 GMT is "older"
		"crmentity.modifiedtime|>|2026-10-25 00:59:59": "2",
		"modifiedtime|=|2026-10-25 01:10:00":           "1",
		"email|=|ANN@example.com":                      "1",
		"email|LIKE|%@example.%":                       "2",
		"email|BEGINS|bob":                             "1",
		"email|ENDS|.org":                              "1",
		"email|CONTAINS|example":                       "2",
	}
	for qs, want := range cases {
		if got := count(qs); got != want {
			t.Errorf("%s: %s, want %s", qs, got, want)
		}
	}
	if got := count("email|~|x"); got != `{"error":"Unauthorized"}` {
		t.Errorf("bad operator: %s", got)
	}
	get := func(path string) map[string]string {
		var m map[string]string
		if err := json.Unmarshal([]byte(post(t, base+"/get_contact/"+path, url.Values{"key": {key}, "passkey": {passkey}, "crmid": {"1"}})), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := get("")
	if m["modifiedtime"] != "2026-10-25 01:30:00" || m["birthday"] != "29-03-1984" || m["record_id"] != "1" || m["record_module"] != "Contacts" {
		t.Errorf("defaults: %v", m)
	}
	m = get("dateTimeOverride/c/dateOverride/Y-m-d")
	if m["modifiedtime"] != "2026-10-25T01:30:00+01:00" || m["birthday"] != "1984-03-29" {
		t.Errorf("iso: %v", m)
	}
	m = get("dateTimeOverride/d*m*Y_H:i/dateOverride/j_M_Y")
	if m["modifiedtime"] != "25/10/2026 01:30" || m["birthday"] != "29 Mar 1984" {
		t.Errorf("custom: %v", m)
	}
}

func TestEditAndGet(t *testing.T) {
	s, base := start(t, Config{})
	auth := url.Values{"key": {key}, "passkey": {passkey}}
	form := func(extra map[string]string) url.Values {
		f := url.Values{}
		for k, v := range auth {
			f[k] = v
		}
		for k, v := range extra {
			f.Set(k, v)
		}
		return f
	}
	if got := post(t, base+"/edit_contact/", form(map[string]string{"crmid": "0", "firstname": "Zoë"})); got != "1" {
		t.Fatalf("create: %s", got)
	}
	if got := post(t, base+"/edit_contact/", form(map[string]string{"crmid": "1", "lastname": "Lee"})); got != "1" {
		t.Fatalf("update: %s", got)
	}
	if f, _ := s.Fields("1"); f["firstname"] != "Zoë" || f["lastname"] != "Lee" || len(f) != 2 {
		t.Errorf("fields: %v", f)
	}
	if got := post(t, base+"/edit_contact/", form(map[string]string{"crmid": "99", "lastname": "X"})); got != `{"error":"Record not found"}` {
		t.Errorf("update missing: %s", got)
	}
	if got := post(t, base+"/get_contact/", form(map[string]string{"crmid": "99"})); got != `{"error":"Record not found"}` {
		t.Errorf("get missing: %s", got)
	}
	s.Delete("1")
	if got := post(t, base+"/get_contact_list_count/", auth); got != "0" {
		t.Errorf("count after delete: %s", got)
	}
	if n := s.Calls("edit_contact"); n != 3 {
		t.Errorf("edit calls: %d", n)
	}
}

func TestAppendString(t *testing.T) {
	for _, in := range []string{"", "plain", "quote\"back\\slash", "ctl\x01\n\t", "Zoë & <Co>", "bad\xffutf8"} {
		var out string
		if err := json.Unmarshal(appendString(nil, in), &out); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if want := strings.ToValidUTF8(in, "\uFFFD"); out != want {
			t.Errorf("%q -> %q", in, out)
		}
	}
}

// The web firewall stops Go's default User-Agent with HTTP 403 and an
// HTML page before the API sees the request; a named client passes.
func TestFirewallStopsDefaultGoAgent(t *testing.T) {
	s, base := start(t, Config{})
	s.Seed(map[string]string{"firstname": "Ann"})
	form := url.Values{"key": {key}, "passkey": {passkey}}.Encode()
	for _, agent := range []string{"", "Go-http-client/1.1", "Go-http-client/2.0"} {
		req, _ := http.NewRequest("POST", base+"/get_contact_list/", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if agent != "" {
			req.Header.Set("User-Agent", agent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "<html>") {
			t.Errorf("User-Agent %q: HTTP %d %s %q, want 403 with an HTML page", agent, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
	if n, reqs := s.Calls("*"), s.Requests(); n != 0 || len(reqs) != 0 {
		t.Errorf("requests the firewall stopped reached the API: %d calls, access log %v", n, reqs)
	}
	req, _ := http.NewRequest("POST", base+"/get_contact_list/", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := do(t, req); !strings.Contains(got, `"firstname":"Ann"`) {
		t.Errorf("named client: %s", got)
	}
}
