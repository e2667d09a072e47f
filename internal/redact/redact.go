// Package redact keeps credentials out of log lines, error messages and
// stored text. A Redactor knows the secret values of the running config and
// the query and path parameter names that carry credentials; every logger
// and every connector error passes through it.
package redact

import (
	"context"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "REDACTED"

// SensitiveParams are query and path parameter names whose values are
// credentials in one of the supported APIs.
var SensitiveParams = []string{
	"key", "passkey", "accesskey", "accesscode", "code", "app_key", "token",
	"secret", "apikey", "api_key", "session_key", "password", "access_token",
}

// IsSensitiveParam reports whether a parameter of this name carries a
// credential.
func IsSensitiveParam(name string) bool {
	return slices.Contains(SensitiveParams, strings.ToLower(name))
}

// Redactor replaces known secret values and credential parameters.
// The zero value redacts parameters only. Safe for concurrent use.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// New returns a Redactor that also replaces the given secret values.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add registers more secret values (a session key learnt at run time).
// Values shorter than 4 characters are ignored: masking them would mangle
// ordinary text and they are not secrets worth the name.
func (r *Redactor) Add(secrets ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < 4 || slices.Contains(r.secrets, s) {
			continue
		}
		r.secrets = append(r.secrets, s)
		// The URL-escaped form of a secret appears in logged URLs.
		if e := url.QueryEscape(s); e != s {
			r.secrets = append(r.secrets, e)
		}
	}
	// Longest first, so a secret containing another is masked whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// String masks every known secret value in s, and credential parameters in
// any URL found in s.
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.RLock()
		for _, sec := range r.secrets {
			if strings.Contains(s, sec) {
				s = strings.ReplaceAll(s, sec, Mask)
			}
		}
		r.mu.RUnlock()
	}
	return redactParams(s)
}

// URL returns u with credential query and path parameters masked.
func (r *Redactor) URL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return r.String(RedactURL(u).String())
}

// RedactURL returns a copy of u with credential query parameters, path
// segments following a credential name (/key/K/passkey/P) and user info
// masked.
func RedactURL(u *url.URL) *url.URL {
	c := *u
	if c.User != nil {
		c.User = url.User(Mask)
	}
	q := c.Query()
	changed := false
	for k := range q {
		if IsSensitiveParam(k) {
			q[k] = []string{Mask}
			changed = true
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	segs := strings.Split(c.Path, "/")
	for i := 0; i+1 < len(segs); i++ {
		if IsSensitiveParam(segs[i]) && segs[i+1] != "" {
			segs[i+1] = Mask
			i++
		}
	}
	c.Path = strings.Join(segs, "/")
	c.RawPath = ""
	return &c
}

// redactParams masks name=value pairs of sensitive names in free text (an
// error message quoting a URL or a form body).
func redactParams(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			b.WriteString(s[i:])
			break
		}
		eq += i
		// The name runs back from '=' over [A-Za-z0-9_].
		start := eq
		for start > i && isNameByte(s[start-1]) {
			start--
		}
		b.WriteString(s[i : eq+1])
		i = eq + 1
		if start < eq && IsSensitiveParam(s[start:eq]) {
			end := i
			for end < len(s) && !strings.ContainsRune("&\" '\n\t;,)", rune(s[end])) {
				end++
			}
			if end > i {
				b.WriteString(Mask)
			}
			i = end
		}
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Error wraps err so that its message is redacted while errors.Is and
// errors.As still see the original chain.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := r.String(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Handler wraps an slog.Handler so that every message and attribute value
// (including errors and nested groups) is redacted before it is written.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &handler{next: h, r: r}
}

type handler struct {
	next slog.Handler
	r    *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{next: h.next.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), r: h.r}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = h.attr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.String(err.Error()))
		}
		if u, ok := v.Any().(*url.URL); ok {
			return slog.String(a.Key, h.r.URL(u))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.r.String(s.String()))
		}
		return slog.Attr{Key: a.Key, Value: v}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
