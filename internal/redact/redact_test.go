package redact_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/redact"
)

const (
	appKey = "ak-9f8e7d6c"
	token  = "tk/4+b=c&d"
	secret = "sc-0a1b2c3d"
	apikey = "ck_live_55aa"
)

var all = []string{appKey, token, secret, apikey}

func assertClean(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range all {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(text, form) {
				t.Errorf("%s leaks %q: %s", what, form, text)
			}
		}
	}
}

func TestStringByParameterName(t *testing.T) {
	// The zero Redactor knows no values: parameter names alone must do.
	var r *redact.Redactor
	cases := []struct {
		name, in, want string
	}{
		{"query", "GET https://x/api/v1/clients/list?app_id=1&app_key=ak-9f8e7d6c&token=tok1&secret=sc-0a1b2c3d&limit=5",
			"GET https://x/api/v1/clients/list?app_id=1&app_key=REDACTED&token=REDACTED&secret=REDACTED&limit=5"},
		{"form body", "m=clientapi&apikey=ck_live_55aa&apimodule=client", "m=clientapi&apikey=REDACTED&apimodule=client"},
		{"case", "APIKEY=ck_live_55aa", "APIKEY=REDACTED"},
		{"quoted", `url "https://x/?token=abcdef" failed`, `url "https://x/?token=REDACTED" failed`},
		{"escaped inside another URL", "next=https%3A%2F%2Fx%2F%3Fapp_id%3D1%26app_key%3Dak-9f8e7d6c%26limit%3D5",
			"next=https%3A%2F%2Fx%2F%3Fapp_id%3D1%26app_key%3DREDACTED%26limit%3D5"},
		{"json member", `{"status":"error","token": "tok\"1","x":"y"}`, `{"status":"error","token": "REDACTED","x":"y"}`},
		{"json member unterminated", `{"secret":"abc`, `{"secret":"REDACTED`},
		{"harmless", "client_id=7 keyboard=qwerty tokens: 3", "client_id=7 keyboard=qwerty tokens: 3"},
		{"empty value", "token=&x=1", "token=&x=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestStringByValue(t *testing.T) {
	r := redact.New(all...)
	r.Add("abc") // too short to be a secret: ignored
	in := fmt.Sprintf("reply: invalid key %s (%s / %s / %s) abc", appKey, url.QueryEscape(token), url.PathEscape(token), secret)
	got := r.String(in)
	assertClean(t, "String", got)
	if !strings.HasSuffix(got, " abc") {
		t.Errorf("short value masked: %q", got)
	}
}

func TestURL(t *testing.T) {
	r := redact.New()
	cases := []struct {
		name, raw string
	}{
		{"query", "https://crm.example.com/api/v1/clients/list?app_id=1&app_key=" + url.QueryEscape(appKey) + "&token=" + url.QueryEscape(token) + "&secret=" + secret},
		{"path", "https://crm.example.com/webservice/key/" + appKey + "/passkey/" + secret + "/get"},
		{"unparseable query", "https://crm.example.com/x?token=" + token + ";more&secret=" + secret + "&bad=%zz"},
		{"user info", "https://user:" + secret + "@crm.example.com/"},
		{"fragment", "https://crm.example.com/cb#token=" + secret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got := r.URL(u)
			assertClean(t, "URL", got)
			if !strings.Contains(got, "crm.example.com") || !strings.Contains(got, redact.Mask) {
				t.Errorf("URL = %q", got)
			}
			if u.String() != tc.raw && u.Redacted() == "" {
				t.Errorf("input URL modified")
			}
		})
	}
	if r.URL(nil) != "" {
		t.Error("URL(nil) not empty")
	}
}

func TestErrorKeepsChain(t *testing.T) {
	r := redact.New(secret)
	sentinel := errors.New("sentinel")
	err := fmt.Errorf("call with %s failed: %w", secret, sentinel)
	red := r.Error(err)
	assertClean(t, "Error", red.Error())
	if !errors.Is(red, sentinel) {
		t.Error("redacted error lost its chain")
	}
	// Unwrapping does not bring the secret back.
	for e := errors.Unwrap(red); e != nil; e = errors.Unwrap(e) {
		assertClean(t, "unwrapped error", e.Error())
	}
	if wrapped := fmt.Errorf("sync: %w", red); !errors.Is(wrapped, sentinel) {
		t.Error("a redacted error wrapped again lost its chain")
	} else {
		assertClean(t, "wrapped again", wrapped.Error())
	}
	plain := errors.New("nothing secret")
	if r.Error(plain) != plain {
		t.Error("clean error was wrapped")
	}
	if r.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}

// A *url.Error from a refused connection quotes the whole URL, query
// string included.
func TestURLErrorFromRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	raw := "http://" + addr + "/api/v1/clients/list?app_id=1&app_key=" + appKey + "&token=" + url.QueryEscape(token) + "&secret=" + secret
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, raw, nil)
	_, err = http.DefaultClient.Do(req)
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), secret) {
		t.Fatalf("expected a *url.Error quoting the URL, got %v", err)
	}
	for _, r := range []*redact.Redactor{nil, redact.New(), redact.New(all...)} {
		red := r.Error(err)
		assertClean(t, "redacted *url.Error", red.Error())
		var buf bytes.Buffer
		slog.New(redact.New().Handler(slog.NewTextHandler(&buf, nil))).Error("failed", "err", err)
		assertClean(t, "log of *url.Error", buf.String())
	}
}

type creds struct {
	User, Token string
}

func TestHandler(t *testing.T) {
	for _, json := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", json), func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			if json {
				h = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
			}
			r := redact.New(all...)
			log := slog.New(r.Handler(h)).With("base", "https://x/?token="+url.QueryEscape(token)).WithGroup("call")
			u, _ := url.Parse("https://x/api?app_key=" + appKey)
			log.Info("calling with secret "+secret,
				"url", u,
				"err", fmt.Errorf("wrapped: %w", errors.New("apikey="+apikey)),
				"form", url.Values{"apikey": {"unknown-key-1"}, "m": {"clientapi"}},
				"body", []byte(`{"token":"unknown-token-2"}`),
				"creds", creds{User: "ann", Token: secret},
				"count", 3,
				slog.Group("nested", "secret", appKey, "ok", "fine"),
			)
			out := buf.String()
			assertClean(t, "log", out)
			for _, leak := range []string{"unknown-key-1", "unknown-token-2"} {
				if strings.Contains(out, leak) {
					t.Errorf("log leaks %s: %s", leak, out)
				}
			}
			for _, keep := range []string{"fine", "clientapi", "ann"} {
				if !strings.Contains(out, keep) {
					t.Errorf("log lost %q: %s", keep, out)
				}
			}
		})
	}
}

func TestIsSensitiveParam(t *testing.T) {
	for _, name := range []string{"app_key", "token", "secret", "apikey", "APIKey", "passkey", "session_key"} {
		if !redact.IsSensitiveParam(name) {
			t.Errorf("%s not sensitive", name)
		}
	}
	for _, name := range []string{"app_id", "client_id", "limit", "m", "apimodule"} {
		if redact.IsSensitiveParam(name) {
			t.Errorf("%s sensitive", name)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("https://x/?token=abc&secret=def", "abcd")
	f.Add(`{"apikey":"k\"ey"}`, "k\"ey")
	f.Add("next=%3Ftoken%3Dabc%26x", "zzzz")
	f.Fuzz(func(t *testing.T, s, sec string) {
		r := redact.New(sec)
		out := r.String(s)
		if len(sec) >= 4 && strings.Contains(out, sec) && !strings.Contains(redact.Mask, sec) {
			// A secret may reappear only where masking created it.
			if !strings.Contains(strings.ReplaceAll(out, redact.Mask, ""), sec) {
				return
			}
			t.Fatalf("String(%q) with secret %q = %q", s, sec, out)
		}
	})
}
