package clientapitest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/connectors/clientapi/clientapitest"
	"github.com/syncd/syncd/internal/connectors/emulator"
)

type reply struct {
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
}

func TestWire(t *testing.T) {
	clock := &emulator.Clock{}
	clock.Set(time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC))
	s := clientapitest.New(clientapitest.Config{Clock: clock})
	hs := httptest.NewServer(s)
	defer hs.Close()
	call := func(form url.Values, get bool) (*http.Response, reply) {
		t.Helper()
		var resp *http.Response
		var err error
		if get {
			resp, err = http.Get(hs.URL + "/index.php?" + form.Encode())
		} else {
			resp, err = http.PostForm(hs.URL+"/index.php", form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r reply
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return resp, r
	}
	form := url.Values{"m": {"clientapi"}, "apikey": {s.Config().APIKey}, "apimodule": {"client"}, "apifunction": {"getdetails"}}
	for _, get := range []bool{false, true} {
		resp, r := call(form, get)
		if r.Status != "success" || r.Data["id"] != s.ID() || r.Data["lastlogin"] != "2026-07-01 12:00:00" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("getdetails (GET=%v) = %+v", get, r)
		}
	}
	clock.Advance(time.Hour)
	s.Login()
	if _, r := call(form, false); r.Data["lastlogin"] != "2026-07-01 13:00:00" {
		t.Errorf("lastlogin after Login = %q", r.Data["lastlogin"])
	}
	id := s.Seed(map[string]string{"firstname": "Zed"})
	if _, r := call(form, false); id != s.ID() || r.Data["firstname"] != "Zed" || r.Data["lastname"] != "" {
		t.Errorf("after Seed: %+v", r.Data)
	}
	bad := url.Values{"m": {"clientapi"}, "apikey": {"nope"}, "apimodule": {"client"}, "apifunction": {"getdetails"}}
	if _, r := call(bad, false); r.Status != "error" || r.Message == "" {
		t.Errorf("wrong key: %+v", r)
	}
	resp, _ := call(url.Values{}, false)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("a client area page without m=clientapi answered %q", resp.Header.Get("Content-Type"))
	}
	if n := s.Calls(clientapitest.MethodGetDetails); n != 5 {
		t.Errorf("calls = %d, want 5", n)
	}
}
