// Package clientbook is the connector for the Client Book CRM API (`clients`
// family, docs/apis/clientbook.md).
//
// The four credentials (app_id, app_key, token, secret) travel in the query
// string of every call, so no URL is ever put into a log line or an error
// unredacted: errors name the function ("clients/list"), never the URL, and
// every error leaving the package passes through a redactor that knows the
// secret values. There is no password flow: the vendor forbids asking for a
// Client Book username or password.
//
// Pulls page through clients/list newest first (see pull.go). Deletions are
// detected by the engine through ListIDs, a full listing in creation order.
package clientbook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/redact"
)

// Credential keys.
const (
	CredAppID  = "app_id"
	CredAppKey = "app_key"
	CredToken  = "token"
	CredSecret = "secret"
)

// defaultRate is the vendor's conservative limit in requests per second.
const defaultRate = 2

// DefaultPageSize is the number of clients requested per clients/list call
// when the config gives no page size.
const DefaultPageSize = 250

// Type is the registry entry.
var Type = connectors.Type{
	Name:         "clientbook",
	Description:  "Client Book CRM (clients API; app id/key and access token in the query string)",
	NeedsBaseURL: true,
	Credentials:  []string{CredAppID, CredAppKey, CredToken, CredSecret},
	DefaultRate:  defaultRate,
	DefaultBurst: 1,
	NewOptions:   func() any { return NewOptions() },
	New: func(s connectors.Settings) (connectors.Connector, error) {
		c, err := New(s)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	},
}

// Options of a clientbook connector ([connectors.options]).
type Options struct {
	// APIRoot is the path between the base URL and the function:
	// "/api/v1" (default) or "/apiv1"; the documented URL template reads
	// both ways.
	APIRoot string `toml:"api_root"`
	// TimeZone is the IANA zone of the API's date-times, which the API
	// does not document (default "UTC"). The incremental cursor is taken
	// from the API's own update_date values, so a wrong zone shifts
	// Record.Modified but never makes a pull miss a change.
	TimeZone string `toml:"time_zone"`
	// Lookback widens every incremental pull below the cursor, for clock
	// skew inside the CRM and changes landing in the same second (default
	// "5m").
	Lookback string `toml:"lookback"`
	// FullScanEvery turns an incremental Pull into a full one when the
	// last full pull is older than this (default "24h"; "0" never). A full
	// pull re-reads every client, which repairs anything a time-based
	// filter can miss (a clock jump, an edit that did not touch
	// update_date). Deletion detection is not tied to it: the engine
	// schedules that with ListIDs.
	FullScanEvery string `toml:"full_scan_every"`
}

// Option defaults.
const (
	DefaultAPIRoot       = "/api/v1"
	AltAPIRoot           = "/apiv1"
	DefaultTimeZone      = "UTC"
	DefaultLookback      = "5m"
	DefaultFullScanEvery = "24h"
)

// NewOptions returns options with their defaults.
func NewOptions() *Options {
	return &Options{APIRoot: DefaultAPIRoot, TimeZone: DefaultTimeZone, Lookback: DefaultLookback, FullScanEvery: DefaultFullScanEvery}
}

// Validate reports every problem of the options.
func (o *Options) Validate() []error {
	var errs []error
	if _, err := normalizeRoot(o.APIRoot); err != nil {
		errs = append(errs, err)
	}
	if _, err := loadZone(o.TimeZone); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseDuration("lookback", o.Lookback, DefaultLookback); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseDuration("full_scan_every", o.FullScanEvery, DefaultFullScanEvery); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// normalizeRoot accepts the two roots, with or without slashes around.
func normalizeRoot(root string) (string, error) {
	if root == "" {
		return DefaultAPIRoot, nil
	}
	r := "/" + strings.Trim(root, "/")
	if r != DefaultAPIRoot && r != AltAPIRoot {
		return "", fmt.Errorf("api_root: must be %q or %q (got %q)", DefaultAPIRoot, AltAPIRoot, root)
	}
	return r, nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time_zone: not a known IANA time zone like \"Europe/London\" (got %q)", name)
	}
	return loc, nil
}

func parseDuration(key, v, def string) (time.Duration, error) {
	if v == "" {
		v = def
	}
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: must be a duration like %q (got %q)", key, def, v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%s: must not be negative (got %q)", key, v)
	}
	return d, nil
}

// Connector talks to one Client Book account.
type Connector struct {
	name          string
	endpoint      string // base URL + API root, no trailing slash
	auth          string // encoded credential query
	pageSize      int
	loc           *time.Location
	lookback      time.Duration
	fullScanEvery time.Duration
	pacer         *connectors.Pacer
	http          *connectors.HTTPClient
	red           *redact.Redactor
	log           interface {
		Debug(msg string, args ...any)
	}
	now func() time.Time
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.IDLister
} = (*Connector)(nil)

// New builds a connector from the engine's settings. Missing Pacer, HTTP
// client, logger or clock get working defaults (tests, tools).
func New(s connectors.Settings) (*Connector, error) {
	opts, _ := s.Options.(*Options)
	if opts == nil {
		opts = NewOptions()
	}
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("clientbook: options: %w", errors.Join(errs...))
	}
	root, _ := normalizeRoot(opts.APIRoot)
	loc, _ := loadZone(opts.TimeZone)
	lookback, _ := parseDuration("lookback", opts.Lookback, DefaultLookback)
	fullEvery, _ := parseDuration("full_scan_every", opts.FullScanEvery, DefaultFullScanEvery)

	if err := connectors.CheckBaseURL(s.BaseURL); err != nil {
		return nil, fmt.Errorf("clientbook: base_url: %w", err)
	}
	var missing []string
	q := url.Values{}
	var secrets []string
	for _, k := range []string{CredAppID, CredAppKey, CredToken, CredSecret} {
		v := s.Credentials[k]
		if v == "" {
			missing = append(missing, k)
		}
		q.Set(k, v)
		if k != CredAppID {
			secrets = append(secrets, v)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("clientbook: credentials: missing %s", strings.Join(missing, ", "))
	}
	red := redact.New(secrets...)
	c := &Connector{
		name:          s.Name,
		endpoint:      strings.TrimRight(s.BaseURL, "/") + root,
		auth:          "app_id=" + url.QueryEscape(q.Get(CredAppID)) + "&app_key=" + url.QueryEscape(q.Get(CredAppKey)) + "&token=" + url.QueryEscape(q.Get(CredToken)) + "&secret=" + url.QueryEscape(q.Get(CredSecret)),
		pageSize:      s.PageSize,
		loc:           loc,
		lookback:      lookback,
		fullScanEvery: fullEvery,
		pacer:         s.Pacer,
		http:          s.HTTP,
		red:           red,
		now:           s.Now,
	}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: s.Name, Rate: defaultRate, Burst: 1})
	}
	if c.http == nil {
		c.http = connectors.NewHTTPClient(0, red)
	} else {
		c.http.Redactor.Add(secrets...)
	}
	if s.Logger != nil {
		c.log = s.Logger
	} else {
		c.log = discard{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

type discard struct{}

func (discard) Debug(string, ...any) {}

// authErrors are the documented permanent replies, each with what the
// user has to do.
var (
	// ErrInvalidApp is HTTP 507.
	ErrInvalidApp = fmt.Errorf("%w: invalid app_id/app_key (check both on the Integration page)", connectors.ErrAuth)
	// ErrInvalidToken is HTTP 508.
	ErrInvalidToken = fmt.Errorf("%w: invalid access token (check token and secret on the Integration page)", connectors.ErrAuth)
	// ErrAPIDisabled is HTTP 509.
	ErrAPIDisabled = fmt.Errorf("%w: API disabled: enable it on the Integration page", connectors.ErrAuth)
)

// request is one API call.
type request struct {
	function string     // "clients/list", for errors and the pacer
	path     string     // after the API root, e.g. "clients/view/id/7"
	query    url.Values // parameters besides the credentials
	form     url.Values // POST body; nil for GET
	kind     connectors.CallKind
}

// call runs one request through the pacer and returns the body of a 200
// reply. Statuses are classified here; the errors never contain the URL.
func (c *Connector) call(ctx context.Context, r request) ([]byte, error) {
	var body []byte
	err := c.pacer.Call(ctx, r.function, r.kind, func(ctx context.Context) error {
		var err error
		body, err = c.once(ctx, r)
		// Redacted here already: the pacer's observer logs every attempt.
		return c.red.Error(err)
	})
	if err != nil {
		return nil, c.red.Error(fmt.Errorf("clientbook: %s: %w", r.function, err))
	}
	return body, nil
}

func (c *Connector) once(ctx context.Context, r request) ([]byte, error) {
	raw := c.endpoint + "/" + r.path + "?" + c.auth
	if len(r.query) > 0 {
		raw += "&" + r.query.Encode()
	}
	method := http.MethodGet
	var reqBody *strings.Reader
	if r.form != nil {
		method = http.MethodPost
		reqBody = strings.NewReader(r.form.Encode())
	}
	var req *http.Request
	var err error
	if reqBody != nil {
		req, err = http.NewRequestWithContext(ctx, method, raw, reqBody)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, raw, nil)
	}
	if err != nil {
		// url.Parse errors quote the URL: describe without it.
		return nil, fmt.Errorf("cannot build the request for %s (check base_url)", r.function)
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	c.log.Debug("clientbook call", "function", r.function, "url", c.red.URL(req.URL))
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	switch st := resp.Status; {
	case st == http.StatusOK:
	case st == 507:
		return nil, fmt.Errorf("%w (HTTP 507%s)", ErrInvalidApp, c.reason(resp.Body))
	case st == 508:
		return nil, fmt.Errorf("%w (HTTP 508%s)", ErrInvalidToken, c.reason(resp.Body))
	case st == 509:
		return nil, fmt.Errorf("%w (HTTP 509%s)", ErrAPIDisabled, c.reason(resp.Body))
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return nil, fmt.Errorf("%w: HTTP %d%s", connectors.ErrAuth, st, c.reason(resp.Body))
	case st == http.StatusNotFound && (r.function == "clients/view" || r.function == "clients/edit"):
		return nil, fmt.Errorf("%w: HTTP 404%s", connectors.ErrNotFound, c.reason(resp.Body))
	case st == http.StatusNotFound:
		return nil, fmt.Errorf("HTTP 404: no such API function (check base_url and api_root)%s", c.reason(resp.Body))
	case st >= 400 && st < 500 && r.kind != connectors.Read:
		return nil, fmt.Errorf("%w: HTTP %d%s", connectors.ErrRejected, st, c.reason(resp.Body))
	default:
		return nil, fmt.Errorf("%w: unexpected HTTP %d%s", connectors.ErrMalformed, st, c.reason(resp.Body))
	}
	if !looksLikeJSON(resp.Body) {
		return nil, fmt.Errorf("%w: reply is not JSON (Content-Type %q)", connectors.ErrMalformed, resp.Header.Get("Content-Type"))
	}
	return resp.Body, nil
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

// reason is the server's short text, redacted.
func (c *Connector) reason(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + c.red.String(s)
}

// Get fetches one client with clients/view/id/<id>.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	if !validID(id) {
		return connectors.Record{}, fmt.Errorf("clientbook: clients/view: client %q: %w", id, connectors.ErrNotFound)
	}
	body, err := c.call(ctx, request{function: "clients/view", path: "clients/view/id/" + id, kind: connectors.Read})
	if err != nil {
		return connectors.Record{}, err
	}
	cl, err := decodeRecord(body, c.loc)
	if errors.Is(err, errNoClient) {
		return connectors.Record{}, fmt.Errorf("clientbook: clients/view: client %s: %w", id, connectors.ErrNotFound)
	}
	if err != nil {
		return connectors.Record{}, fmt.Errorf("clientbook: clients/view: %w", err)
	}
	return cl.record(), nil
}

// validID keeps ids to what can be a path segment without escaping.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (cl client) record() connectors.Record {
	return connectors.Record{ID: cl.id, Fields: cl.fields, Modified: cl.updated}
}

// readOnlyFields are maintained by Client Book and never sent.
var readOnlyFields = []string{"client_id", "update_date", "date_entered"}

func writeForm(fields map[string]string) url.Values {
	form := url.Values{}
	for k, v := range fields {
		skip := false
		for _, ro := range readOnlyFields {
			skip = skip || k == ro
		}
		if !skip {
			form.Set(k, v)
		}
	}
	return form
}

// Create adds a client with clients/add. It is a Create call: the pacer
// does not repeat it once it may have reached the CRM.
func (c *Connector) Create(ctx context.Context, fields map[string]string) (string, error) {
	body, err := c.call(ctx, request{function: "clients/add", path: "clients/add", form: writeForm(fields), kind: connectors.Create})
	if err != nil {
		return "", err
	}
	id, err := decodeCreated(body)
	if err != nil {
		return "", fmt.Errorf("clientbook: clients/add: %w", err)
	}
	return id, nil
}

// Update sends only the given fields with clients/edit; Client Book keeps
// the others as they are. Server-maintained fields are left out, and an
// update with nothing to change makes no call.
func (c *Connector) Update(ctx context.Context, id string, fields map[string]string) error {
	if !validID(id) {
		return fmt.Errorf("clientbook: clients/edit: client %q: %w", id, connectors.ErrNotFound)
	}
	form := writeForm(fields)
	if len(form) == 0 {
		return nil
	}
	form.Set("client_id", id)
	body, err := c.call(ctx, request{function: "clients/edit", path: "clients/edit", form: form, kind: connectors.Write})
	if err != nil {
		return err
	}
	// The reply echoes the client; only its shape is checked.
	if _, err := decodeRecord(body, c.loc); err != nil && !errors.Is(err, errNoClient) {
		return fmt.Errorf("clientbook: clients/edit: %w", err)
	}
	return nil
}
