// Package redact keeps credentials out of log lines, error messages and
// stored text. A Redactor knows the secret values of the running config and
// the query and path parameter names that carry credentials; every logger
// and every connector error passes through it.
package redact

import (
	"context"
	"errors"
	"fmt"
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
		// The URL-escaped forms of a secret appear in logged URLs.
		for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
			if e != s && !slices.Contains(r.secrets, e) {
				r.secrets = append(r.secrets, e)
			}
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
	return redactJSONMembers(redactEscapedParams(redactParams(s)))
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
	q, err := url.ParseQuery(c.RawQuery)
	if err != nil {
		// ParseQuery drops the pairs it cannot read (";", bad escapes):
		// mask pair by pair on the raw text instead, so nothing is lost.
		c.RawQuery = redactRawQuery(c.RawQuery)
	} else {
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
	}
	if c.Fragment != "" || c.RawFragment != "" {
		c.Fragment, c.RawFragment = redactParams(c.Fragment), ""
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

// redactRawQuery masks the values of sensitive pairs in a raw query
// string without parsing it as a whole. Pairs are split on "&" only, so a
// value holding ";" is masked whole.
func redactRawQuery(raw string) string {
	var b strings.Builder
	for i, pair := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(pair, "=")
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if hasValue && IsSensitiveParam(name) {
			b.WriteString(pair[:strings.IndexByte(pair, '=')+1] + Mask)
			continue
		}
		b.WriteString(pair)
	}
	return b.String()
}

// redactEscapedParams masks name%3Dvalue pairs: a URL with credentials
// carried, escaped, inside another URL's parameter (a redirect target).
func redactEscapedParams(s string) string {
	if !strings.Contains(s, "%3D") && !strings.Contains(s, "%3d") {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		rel := indexFold(s[i:], "%3d")
		if rel < 0 {
			b.WriteString(s[i:])
			break
		}
		eq := i + rel
		start := eq
		for start > i && isNameByte(s[start-1]) {
			start--
		}
		if start > i && s[start-1] == '%' && eq-start > 2 {
			start += 2 // the name follows an escape such as %26 or %3F
		}
		b.WriteString(s[i : eq+3])
		i = eq + 3
		if start < eq && IsSensitiveParam(s[start:eq]) {
			end := i
			for end < len(s) && !strings.ContainsRune("&\" '\n\t;,)", rune(s[end])) && !hasPrefixFold(s[end:], "%26") {
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

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// redactJSONMembers masks the string values of sensitive members in JSON
// text ("token": "…"), as a reply body quoted in an error may hold them.
func redactJSONMembers(s string) string {
	if !strings.Contains(s, "\":") && !strings.Contains(s, "\" :") {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		q := strings.IndexByte(s[i:], '"')
		if q < 0 {
			b.WriteString(s[i:])
			break
		}
		q += i
		end := strings.IndexByte(s[q+1:], '"')
		if end < 0 {
			b.WriteString(s[i:])
			break
		}
		end += q + 1
		name := s[q+1 : end]
		b.WriteString(s[i : end+1])
		i = end + 1
		if !IsSensitiveParam(name) {
			continue
		}
		// Expect optional spaces, ':', optional spaces, then a string.
		j := i
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) || s[j] != ':' {
			continue
		}
		j++
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) || s[j] != '"' {
			continue
		}
		// Find the closing quote, honouring backslash escapes.
		k := j + 1
		for k < len(s) && s[k] != '"' {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		b.WriteString(s[i:j+1] + Mask)
		if k < len(s) {
			b.WriteByte('"')
			k++
		}
		i = min(k, len(s))
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Error wraps err so that its message is redacted while errors.Is and
// errors.As still see the original chain. The wrapper has no Unwrap: a
// caller that unwraps it and prints what it finds (as fmt's %w chains or
// errors.Unwrap would let it) cannot bring the secret back; only asking
// for a particular error type with errors.As reaches the original.
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

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
func (e *redactedError) As(target any) bool   { return errors.As(e.err, target) }

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
		if q, ok := v.Any().(url.Values); ok {
			return slog.String(a.Key, h.r.String(redactRawQuery(q.Encode())))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.r.String(s.String()))
		}
		if b, ok := v.Any().([]byte); ok {
			return slog.String(a.Key, h.r.String(string(b)))
		}
		// Anything else (a map, a struct) is kept as is unless its text
		// holds a secret, in which case the redacted text replaces it.
		if text := fmt.Sprintf("%+v", v.Any()); h.r.String(text) != text {
			return slog.String(a.Key, h.r.String(text))
		}
		return slog.Attr{Key: a.Key, Value: v}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
