package connectors

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/redact"
)

// Version is sent in the User-Agent header.
var Version = "dev"

// MaxBodyBytes bounds a reply body; a larger reply is malformed.
const MaxBodyBytes = 256 << 20

// HTTPClient is the HTTP client every connector uses: TLS 1.2 or newer with
// certificate verification, a syncd User-Agent, a timeout per request, and
// errors whose URLs and messages are redacted.
type HTTPClient struct {
	Client   *http.Client
	Redactor *redact.Redactor
	// UserAgent defaults to "syncd/<Version>".
	UserAgent string
}

// NewHTTPClient returns a client with the given per-request timeout.
func NewHTTPClient(timeout time.Duration, r *redact.Redactor) *HTTPClient {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 4
	return &HTTPClient{Client: &http.Client{Timeout: timeout, Transport: tr}, Redactor: r}
}

// Response is a read reply.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req and reads the whole body. Transport failures are classified
// (ErrNotSent when the connection was never made, ErrTemporary for timeouts
// and resets) and redacted; HTTP statuses are left to the caller except
// 429/503 (ErrRateLimited with Retry-After) and other 5xx (ErrTemporary),
// which every supported API means the same way. The body of such replies
// is included in the error, shortened and redacted.
func (c *HTTPClient) Do(ctx context.Context, req *http.Request) (*Response, error) {
	req = req.WithContext(ctx)
	ua := c.UserAgent
	if ua == "" {
		ua = "syncd/" + Version
	}
	req.Header.Set("User-Agent", ua)
	resp, err := c.Client.Do(req)
	if err != nil {
		return nil, c.transportError(req, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, c.transportError(req, err)
	}
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("%w: reply larger than %d bytes", ErrMalformed, MaxBodyBytes)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		err := fmt.Errorf("%w: HTTP %d%s", ErrRateLimited, resp.StatusCode, c.snippet(body))
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return r, &RetryAfterError{After: d, Err: err}
		}
		return r, err
	case resp.StatusCode >= 500 && resp.StatusCode <= 506, resp.StatusCode >= 510 && resp.StatusCode < 600:
		// 507-509 are Client Book's permanent auth errors; its connector
		// classifies them.
		return r, fmt.Errorf("%w: HTTP %d%s", ErrTemporary, resp.StatusCode, c.snippet(body))
	}
	return r, nil
}

func (c *HTTPClient) snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + c.Redactor.String(s)
}

// transportError classifies and redacts a transport failure. The *url.Error
// the client returns quotes the full URL, query string included: it is
// replaced by a message with the redacted URL.
func (c *HTTPClient) transportError(req *http.Request, err error) error {
	class := ErrTemporary
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
		class = ErrNotSent
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		class = ErrNotSent
	}
	if ctxErr := req.Context().Err(); ctxErr != nil {
		return ctxErr
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	msg := c.Redactor.String(inner.Error())
	return fmt.Errorf("%w: %s %s: %s", class, req.Method, c.Redactor.URL(req.URL), msg)
}

// ParseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// CheckBaseURL enforces the transport rules: https, or http only for a
// loopback host.
func CheckBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !IsLoopback(u.Hostname()) {
			return fmt.Errorf("plain http is allowed only for loopback hosts; use https")
		}
	default:
		return fmt.Errorf("scheme must be https (or http for loopback)")
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not allowed; use the credentials table")
	}
	return nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
