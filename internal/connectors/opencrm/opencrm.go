// Package opencrm is the connector for the OpenCRM REST API
// (https://<system>.opencrm.co.uk/api/rest/<method>/), contacts module.
//
// Wire choices (see the OpenCRM API note, apis/opencrm.md): parameters travel as
// POST form fields, never in the URL; list and get calls ask for ISO 8601
// date-times and Y-m-d dates with the dateTimeOverride/c/dateOverride/Y-m-d
// path segments, and the default formats are still read. Pulls are
// incremental on crmentity.modifiedtime with an overlap window (see
// pull.go). Deletions are found by a complete ID scan (ListIDs), which
// the engine runs after an incremental pull only when
// get_contact_list_count (Count) differs from the records it holds; the
// connector never deletes.
//
// Readings where the note is silent, chosen tolerant:
//   - The time zone setting can be wrong. With ISO 8601 output each
//     modifiedtime carries OpenCRM's UTC offset; when the newest one seen
//     differs from the configured zone's offset there, syncd warns and
//     writes its queries at OpenCRM's offset (an hour earlier still), so
//     a wrong setting reads more, never less (see pull.go).
//   - "Unauthorized" with key+passkey or KEY1/KEY2 means the credentials
//     did not arrive or were refused: ErrAuth for reads, ErrRejected for
//     edit_contact (a request the server found malformed must not stop
//     the connector). With an access key it means the key expired: log in
//     again once and repeat; a second Unauthorized is ErrAuth.
//   - An error reply mentioning "not found"/"does not exist"/"no record",
//     or an empty reply to get_contact, is ErrNotFound.
//   - HTTP 401/403 without an error body is treated like Unauthorized;
//     408 is temporary; other 4xx are ErrRejected.
//   - Returned fields: id members (id, crmid, record_id) and record_module
//     are dropped (the id is Record.ID), so a record reads the same from
//     every call; dates become YYYY-MM-DD and date-times RFC 3339 UTC.
package opencrm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the configured zone must load on hosts without zoneinfo

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/redact"
)

// Auth modes.
const (
	AuthParams  = "params"
	AuthHeaders = "headers"
	AuthLogin   = "login"
)

// Rate limits are undocumented; five calls a second is a polite default.
const (
	defaultRate  = 5
	defaultBurst = 5
)

// DefaultPageSize is the number of contacts asked for per list call.
const DefaultPageSize = 1000

// Method names, also the emulator's names for call counting and faults.
const (
	MethodListFull = "get_contact_list_full"
	MethodList     = "get_contact_list"
	MethodCount    = "get_contact_list_count"
	MethodGet      = "get_contact"
	MethodEdit     = "edit_contact"
	MethodLogin    = "login"
)

// formatSegments make list and get replies unambiguous: ISO 8601 date-times
// (with offset) and Y-m-d dates.
const formatSegments = "dateTimeOverride/c/dateOverride/Y-m-d"

// Options of an opencrm connector ([connectors.options]).
type Options struct {
	// Auth is "params" (key and passkey on every call), "headers" (KEY1 and
	// KEY2) or "login" (an access key from login, renewed when it expires).
	Auth string `toml:"auth"`
	// TimeZone is the CRM's local zone, in which modifiedtime is written
	// and compared.
	TimeZone string `toml:"time_zone"`
	// Lookback is the overlap window of incremental pulls: the query starts
	// this long before the cursor, because modified times have one-second
	// resolution and may be written late.
	Lookback string `toml:"lookback"`
	// AssignedUserID is the numeric user id set on created contacts.
	AssignedUserID string `toml:"assigned_user_id"`
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Auth: AuthParams, TimeZone: "Europe/London", Lookback: "5m"}
}

// Validate reports every problem as `key: what is wrong (got "value")`.
func (o *Options) Validate() []error {
	var errs []error
	switch o.Auth {
	case AuthParams, AuthHeaders, AuthLogin, "":
	default:
		errs = append(errs, fmt.Errorf("auth: must be %q, %q or %q (got %q)", AuthParams, AuthHeaders, AuthLogin, o.Auth))
	}
	if o.TimeZone != "" {
		if _, err := time.LoadLocation(o.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("time_zone: unknown time zone (got %q)", o.TimeZone))
		}
	}
	if o.Lookback != "" {
		d, err := time.ParseDuration(o.Lookback)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("lookback: not a duration like \"5m\" (got %q)", o.Lookback))
		case d < time.Second || d > 7*24*time.Hour:
			errs = append(errs, fmt.Errorf("lookback: must be between 1s and 168h (got %q)", o.Lookback))
		}
	}
	if o.AssignedUserID != "" {
		if _, ok := parseID(o.AssignedUserID); !ok {
			errs = append(errs, fmt.Errorf("assigned_user_id: must be a numeric user id (got %q)", o.AssignedUserID))
		}
	}
	return errs
}

// Type is the registry entry.
var Type = connectors.Type{
	Name:         "opencrm",
	Description:  "OpenCRM REST API (contacts), incremental by modified time",
	NeedsBaseURL: true,
	Credentials:  []string{"key", "passkey"},
	DefaultRate:  defaultRate,
	DefaultBurst: defaultBurst,
	NewOptions:   func() any { return NewOptions() },
	// modifiedtime moves on every save, syncd's own included.
	ExcludedFields: []string{"modifiedtime"},
	New: func(s connectors.Settings) (connectors.Connector, error) {
		return New(s)
	},
}

// Client is an OpenCRM connector.
type Client struct {
	name           string
	base           string
	key, passkey   string
	auth           string
	loc            *time.Location
	lookback       time.Duration
	assignedUserID string
	pageSize       int
	now            func() time.Time

	pacer    *connectors.Pacer
	http     *connectors.HTTPClient
	redactor *redact.Redactor
	log      *slog.Logger

	loginMu   sync.Mutex // serialises logins
	mu        sync.Mutex
	accessKey string
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.IDLister
	connectors.Counter
} = (*Client)(nil)

// New builds a client from the engine's settings.
func New(s connectors.Settings) (*Client, error) {
	opts := NewOptions()
	if o, ok := s.Options.(*Options); ok && o != nil {
		cp := *o
		opts = &cp
	}
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("opencrm: options: %w", errors.Join(errs...))
	}
	if opts.Auth == "" {
		opts.Auth = AuthParams
	}
	if opts.TimeZone == "" {
		opts.TimeZone = "Europe/London"
	}
	if opts.Lookback == "" {
		opts.Lookback = "5m"
	}
	loc, _ := time.LoadLocation(opts.TimeZone)
	lookback, _ := time.ParseDuration(opts.Lookback)
	key, passkey := strings.TrimSpace(s.Credentials["key"]), strings.TrimSpace(s.Credentials["passkey"])
	if key == "" || passkey == "" {
		return nil, fmt.Errorf("opencrm: credentials key and passkey are required")
	}
	if err := connectors.CheckBaseURL(s.BaseURL); err != nil {
		return nil, fmt.Errorf("opencrm: base_url: %v", err)
	}
	c := &Client{
		name:           s.Name,
		base:           strings.TrimRight(s.BaseURL, "/"),
		key:            key,
		passkey:        passkey,
		auth:           opts.Auth,
		loc:            loc,
		lookback:       lookback,
		assignedUserID: opts.AssignedUserID,
		pageSize:       s.PageSize,
		pacer:          s.Pacer,
		http:           s.HTTP,
		log:            s.Logger,
		now:            s.Now,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.pageSize <= 0 {
		c.pageSize = DefaultPageSize
	}
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: s.Name, Rate: defaultRate, Burst: defaultBurst})
	}
	if c.http == nil {
		c.http = connectors.NewHTTPClient(0, redact.New())
	}
	if c.http.Redactor == nil {
		c.http.Redactor = redact.New()
	}
	c.redactor = c.http.Redactor
	c.redactor.Add(key, passkey)
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// call runs one API method and returns its reply body, free of error
// replies. In login mode it logs in first when needed, and on an
// Unauthorized reply logs in again once and repeats the call.
func (c *Client) call(ctx context.Context, method string, kind connectors.CallKind, params url.Values, formatted bool) ([]byte, error) {
	body, _, err := c.callHeader(ctx, method, kind, params, formatted)
	return body, err
}

// callHeader is call that also returns the reply's headers.
func (c *Client) callHeader(ctx context.Context, method string, kind connectors.CallKind, params url.Values, formatted bool) ([]byte, http.Header, error) {
	access := ""
	if c.auth == AuthLogin {
		var err error
		if access, _, err = c.session(ctx, ""); err != nil {
			return nil, nil, err
		}
	}
	body, header, err := c.send(ctx, method, kind, params, formatted, access)
	// An expired key is renewed once by this call and the call repeated.
	// A key another call renewed meanwhile may have expired by the time
	// this one uses it (calls run side by side): that does not use up
	// this call's own renewal. maxSessionTries bounds the rounds.
	ownLogin := false
	for try := 1; access != "" && errors.Is(err, connectors.ErrSessionExpired); try++ {
		if ownLogin || try >= maxSessionTries {
			return nil, nil, fmt.Errorf("opencrm: %s: %w: Unauthorized even with a fresh access key", method, connectors.ErrAuth)
		}
		c.log.Info("opencrm: access key expired, logging in again", "connector", c.name, "method", method)
		var loggedIn bool
		if access, loggedIn, err = c.session(ctx, access); err != nil {
			return nil, nil, err
		}
		ownLogin = loggedIn
		body, header, err = c.send(ctx, method, kind, params, formatted, access)
	}
	return body, header, err
}

// maxSessionTries bounds the sends of one call that end in an expired
// access key.
const maxSessionTries = 4

// session returns the access key, logging in when there is none or when
// the current one is stale (the key an Unauthorized call used). loggedIn
// says whether this call made the login.
func (c *Client) session(ctx context.Context, stale string) (key string, loggedIn bool, err error) {
	c.mu.Lock()
	cur := c.accessKey
	c.mu.Unlock()
	if cur != "" && cur != stale {
		return cur, false, nil
	}
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	cur = c.accessKey
	c.mu.Unlock()
	if cur != "" && cur != stale {
		return cur, false, nil // another call logged in meanwhile
	}
	params := url.Values{"key": {c.key}, "passkey": {c.passkey}}
	body, _, err := c.send(ctx, MethodLogin, connectors.Read, params, false, "")
	if err != nil {
		if errors.Is(err, connectors.ErrSessionExpired) {
			err = fmt.Errorf("opencrm: login: %w: Unauthorized", connectors.ErrAuth)
		}
		return "", false, err
	}
	key, err = decodeLogin(body)
	if err != nil {
		return "", false, c.malformed(MethodLogin, err)
	}
	c.redactor.Add(key)
	c.mu.Lock()
	c.accessKey = key
	c.mu.Unlock()
	return key, true, nil
}

// send makes one request through the pacer and classifies the reply.
// access is the access key to send (login mode), "" otherwise; login's own
// params carry the keys.
func (c *Client) send(ctx context.Context, method string, kind connectors.CallKind, params url.Values, formatted bool, access string) ([]byte, http.Header, error) {
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	switch {
	case method == MethodLogin:
	case access != "":
		form.Set("accesskey", access)
	case c.auth == AuthParams:
		form.Set("key", c.key)
		form.Set("passkey", c.passkey)
	}
	encoded := form.Encode()
	target := c.base + "/" + method + "/"
	if formatted {
		target += formatSegments
	}
	var (
		body   []byte
		header http.Header
	)
	err := c.pacer.Call(ctx, method, kind, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(encoded))
		if err != nil {
			return fmt.Errorf("opencrm: %s: %w", method, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if c.auth == AuthHeaders && method != MethodLogin {
			req.Header.Set("KEY1", c.key)
			req.Header.Set("KEY2", c.passkey)
		}
		resp, err := c.http.Do(ctx, req)
		if err != nil {
			return fmt.Errorf("opencrm: %s: %w", method, c.redactor.Error(err))
		}
		if err := c.classify(method, resp, access != ""); err != nil {
			return err
		}
		body, header = resp.Body, resp.Header
		return nil
	})
	return body, header, err
}

// classify turns an error reply into an error wrapping the right sentinel.
func (c *Client) classify(method string, resp *connectors.Response, withAccessKey bool) error {
	msg, isErr := replyError(resp.Body)
	switch {
	case isErr:
	case resp.Status == http.StatusForbidden && bytes.HasPrefix(bytes.TrimSpace(resp.Body), []byte("<")):
		// Not the API's answer: a web firewall in front of it refused the
		// request (the note observes one rejecting some User-Agents).
		return fmt.Errorf("opencrm: %s: %w: HTTP 403 with an HTML page: a web firewall in front of the API refused the request (the keys were not checked); ask OpenCRM support to allow syncd's requests", method, connectors.ErrAuth)
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		msg = fmt.Sprintf("HTTP %d Unauthorized", resp.Status)
	case resp.Status == http.StatusRequestTimeout || resp.Status >= 500:
		// The shared client leaves 507-509 to the connector (Client Book
		// gives them a meaning); for OpenCRM every 5xx is retryable.
		return fmt.Errorf("opencrm: %s: %w: HTTP %d", method, connectors.ErrTemporary, resp.Status)
	case resp.Status >= 400:
		return fmt.Errorf("opencrm: %s: %w: HTTP %d", method, connectors.ErrRejected, resp.Status)
	default:
		return nil
	}
	msg = c.redactor.String(msg)
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, msgAuthFailed):
		return fmt.Errorf("opencrm: %s: %w: the API key or passkey is wrong (OpenCRM said %q); check the credentials of connector %q", method, connectors.ErrAuth, msg, c.name)
	case strings.Contains(low, msgUnauthorized):
		switch {
		case withAccessKey:
			return fmt.Errorf("opencrm: %s: %w: %s", method, connectors.ErrSessionExpired, msg)
		case method == MethodEdit:
			return fmt.Errorf("opencrm: %s: %w: %s (credentials missing or request malformed)", method, connectors.ErrRejected, msg)
		default:
			return fmt.Errorf("opencrm: %s: %w: %s: the credentials were not accepted (missing, or the request was malformed)", method, connectors.ErrAuth, msg)
		}
	case strings.Contains(low, "not found") || strings.Contains(low, "does not exist") || strings.Contains(low, "no record"):
		return fmt.Errorf("opencrm: %s: %w: %s", method, connectors.ErrNotFound, msg)
	}
	return fmt.Errorf("opencrm: %s: %w: %s", method, connectors.ErrRejected, msg)
}

func (c *Client) malformed(method string, err error) error {
	return fmt.Errorf("opencrm: %s: %w: %s", method, connectors.ErrMalformed, c.redactor.String(err.Error()))
}

// record turns a flattened row into a Record. fallbackID is used when the
// row carries no id (get_contact of a known id). It also returns the
// modified time as written: in the configured zone when the reply gave
// no offset, at OpenCRM's offset when it did (zero when there is none).
func (c *Client) record(row map[string]string, fallbackID string) (connectors.Record, time.Time, error) {
	id := rowID(row)
	if id == "" {
		id = fallbackID
	}
	if id == "" {
		return connectors.Record{}, time.Time{}, errors.New("record without a valid id, crmid or record_id")
	}
	rec := connectors.Record{ID: id, Fields: row}
	mt, ok := parseDateTime(strings.TrimSpace(row["modifiedtime"]), c.loc)
	if ok {
		rec.Modified = mt.UTC()
	}
	for _, k := range idKeys {
		delete(row, k)
	}
	delete(row, "record_module")
	for k, v := range row {
		if n := normalise(v, c.loc); n != v {
			row[k] = n
		}
	}
	return rec, mt, nil
}

// Get fetches one contact with get_contact.
func (c *Client) Get(ctx context.Context, id string) (connectors.Record, error) {
	crmid, ok := parseID(id)
	if !ok {
		return connectors.Record{}, fmt.Errorf("opencrm: %s: %w: %q is not an OpenCRM id", MethodGet, connectors.ErrNotFound, id)
	}
	body, err := c.call(ctx, MethodGet, connectors.Read, url.Values{"crmid": {crmid}}, true)
	if err != nil {
		return connectors.Record{}, err
	}
	row, found, err := decodeObject(body)
	if err != nil {
		return connectors.Record{}, c.malformed(MethodGet, err)
	}
	if !found {
		return connectors.Record{}, fmt.Errorf("opencrm: %s: %w: contact %s", MethodGet, connectors.ErrNotFound, crmid)
	}
	if got := rowID(row); got != "" && got != crmid {
		return connectors.Record{}, c.malformed(MethodGet, fmt.Errorf("asked for contact %s, got %s", crmid, got))
	}
	rec, _, err := c.record(row, crmid)
	if err != nil {
		return connectors.Record{}, c.malformed(MethodGet, err)
	}
	return rec, nil
}

// reservedParams cannot be field names: they would change what edit_contact
// does or whose credentials it uses.
var reservedParams = map[string]bool{
	"key": true, "passkey": true, "accesskey": true, "accesscode": true, "code": true,
	"crmid": true, "query_string": true, "keywords": true, "limit_start": true, "limit_end": true,
	"dateTimeOverride": true, "dateOverride": true, "id": true, "record_id": true,
}

func (c *Client) editParams(crmid string, fields map[string]string) (url.Values, error) {
	params := url.Values{"crmid": {crmid}}
	for k, v := range fields {
		if k == "" || reservedParams[k] || strings.ContainsAny(k, "/ ") {
			return nil, fmt.Errorf("opencrm: %s: %w: %q cannot be written as a field", MethodEdit, connectors.ErrRejected, k)
		}
		params.Set(k, v)
	}
	return params, nil
}

// Create adds a contact with edit_contact and crmid 0. assigned_user_id
// comes from the options unless the fields set it.
func (c *Client) Create(ctx context.Context, fields map[string]string) (string, error) {
	params, err := c.editParams("0", fields)
	if err != nil {
		return "", err
	}
	if _, set := fields["assigned_user_id"]; !set && c.assignedUserID != "" {
		params.Set("assigned_user_id", c.assignedUserID)
	}
	body, err := c.call(ctx, MethodEdit, connectors.Create, params, false)
	if err != nil {
		return "", err
	}
	id, err := decodeID(body)
	if err != nil {
		return "", c.malformed(MethodEdit, err)
	}
	return id, nil
}

// Update sends only the given fields with edit_contact (a field sent empty
// is blanked by the CRM). No fields, no call.
func (c *Client) Update(ctx context.Context, id string, fields map[string]string) error {
	crmid, ok := parseID(id)
	if !ok {
		return fmt.Errorf("opencrm: %s: %w: %q is not an OpenCRM id", MethodEdit, connectors.ErrNotFound, id)
	}
	if len(fields) == 0 {
		return nil
	}
	params, err := c.editParams(crmid, fields)
	if err != nil {
		return err
	}
	body, err := c.call(ctx, MethodEdit, connectors.Write, params, false)
	if err != nil {
		return err
	}
	got, err := decodeID(body)
	if err != nil {
		return c.malformed(MethodEdit, err)
	}
	if got != crmid {
		c.log.Warn("opencrm: edit_contact answered another id", "connector", c.name, "id", crmid, "reply_id", got)
	}
	return nil
}

// formatLimit is strconv.Itoa, named for the paging parameters.
func formatLimit(n int) string { return strconv.Itoa(n) }
