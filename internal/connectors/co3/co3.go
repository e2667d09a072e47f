// Package co3 is the connector for the CO3 CRM API: a command envelope
// POSTed to <base>/crm in JSON or XML, behind a five-minute session opened
// at <base>/authenticate, with the reply shapes of syncd's CO3 API note
// (the documentation shows requests only).
//
// CO3 has no modified time and no change filter, so every Pull walks all
// pages of getContactList and the engine drops unchanged records by content
// hash; this connector keeps values deterministic so that hashes are
// stable. Deletions are detected with the complete id list of getContacts.
// CO3 documents no delete method: the connector is not a Deleter.
//
// Field names, the flattening of custom fields and the value rules are
// described at customPrefix in fields.go.
package co3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/redact"
)

// Type is the registry entry.
var Type = connectors.Type{
	Name:         "co3",
	Description:  "CO3 CRM (JSON or XML command API; full scan compared by content hash)",
	NeedsBaseURL: true,
	Credentials:  credentialKeys,
	DefaultRate:  defaultRate,
	DefaultBurst: defaultBurst,
	NewOptions:   func() any { o := DefaultOptions(); return &o },
	New: func(s connectors.Settings) (connectors.Connector, error) {
		return New(s)
	},
}

// credentialKeys are the credentials a co3 connector needs.
var credentialKeys = []string{"api_key", "username", "password"}

// CO3 publishes no rate limit; five calls a second is a polite default.
const (
	defaultRate  = 5
	defaultBurst = 5
)

// Options of a co3 connector ([connectors.options]).
type Options struct {
	// Format of requests and replies: "json" (default) or "xml".
	Format string `toml:"format"`
	// Owner is the CO3 username set as contact_owner on contacts syncd
	// creates, unless the record carries its own. Empty leaves it to CO3.
	Owner string `toml:"owner"`
}

// DefaultOptions returns the options with their defaults.
func DefaultOptions() Options { return Options{Format: string(JSON)} }

// Validate checks the options.
func (o *Options) Validate() []error {
	var errs []error
	if o.Format != string(JSON) && o.Format != string(XML) {
		errs = append(errs, fmt.Errorf(`format: must be "json" or "xml" (got %q)`, o.Format))
	}
	if o.Owner != strings.TrimSpace(o.Owner) || strings.ContainsAny(o.Owner, "\n\r\t") {
		errs = append(errs, fmt.Errorf("owner: must be a CO3 username without surrounding or control white space (got %q)", o.Owner))
	}
	return errs
}

const (
	// sessionLifetime is how long CO3 honours a session key.
	sessionLifetime = 5 * time.Minute
	// renewAfter renews a session before it lapses, leaving room for a
	// slow request and for clock skew.
	renewAfter = sessionLifetime - 30*time.Second
	// idBatch is how many ids ListIDs hands over at a time.
	idBatch = 1000
)

// Connector talks to one CO3 account. Safe for concurrent use.
type Connector struct {
	name     string
	crmURL   string
	authURL  string
	format   Format
	owner    string
	apiKey   string
	username string
	// passwordMD5 is all that is kept of the password: CO3 wants only its
	// MD5 hex digest.
	passwordMD5 string

	pacer *connectors.Pacer
	http  *connectors.HTTPClient
	log   *slog.Logger
	now   func() time.Time

	// authSlot admits one authentication at a time, so that callers
	// finding the session stale together open one new session.
	authSlot chan struct{}
	mu       sync.Mutex
	session  string
	issued   time.Time
}

// New builds a connector from its settings. BaseURL is the API root
// (https://co3app.com/api); a URL ending in /crm is accepted too.
func New(s connectors.Settings) (*Connector, error) {
	opts := DefaultOptions()
	switch o := s.Options.(type) {
	case *Options:
		if o != nil {
			opts = *o
		}
	case Options:
		opts = o
	}
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("co3: options: %w", errors.Join(errs...))
	}
	base := strings.TrimRight(strings.TrimSpace(s.BaseURL), "/")
	base = strings.TrimSuffix(base, "/crm")
	if base == "" {
		return nil, errors.New("co3: base_url is required")
	}
	if err := connectors.CheckBaseURL(base); err != nil {
		return nil, fmt.Errorf("co3: base_url: %w", err)
	}
	var missing []string
	for _, k := range credentialKeys {
		if s.Credentials[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("co3: missing credentials: %s", strings.Join(missing, ", "))
	}
	sum := md5.Sum([]byte(s.Credentials["password"]))
	c := &Connector{
		name:        s.Name,
		crmURL:      base + "/crm",
		authURL:     base + "/authenticate",
		format:      Format(opts.Format),
		owner:       opts.Owner,
		apiKey:      s.Credentials["api_key"],
		username:    s.Credentials["username"],
		passwordMD5: hex.EncodeToString(sum[:]),
		pacer:       s.Pacer,
		http:        s.HTTP,
		log:         s.Logger,
		now:         s.Now,
		authSlot:    make(chan struct{}, 1),
	}
	if c.name == "" {
		c.name = "co3"
	}
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: c.name, Rate: defaultRate, Burst: defaultBurst})
	}
	if c.http == nil {
		c.http = connectors.NewHTTPClient(0, redact.New())
	}
	if c.http.Redactor == nil {
		c.http.Redactor = redact.New()
	}
	// The digest is as good as the password to CO3.
	c.http.Redactor.Add(c.apiKey, s.Credentials["password"], c.passwordMD5)
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

var _ interface {
	connectors.Connector
	connectors.Writer
	connectors.IDLister
} = (*Connector)(nil)

// Pull walks every page of getContactList (search_term "", pages from 0).
// CO3 has no change filter, so every pull returns every contact. The cursor
// of a page that is not the last is "page:<next page>", which resumes an
// interrupted scan; the last page's cursor is "complete", from which the
// next pull starts over at page 0. The scan ends on a page without
// contacts or when page+1 reaches the reported page count.
//
// For progress, a scan from page 0 reports as its Total the page count
// times the first page's length (an upper bound: the last page may be
// short), and the exact number on its last page.
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	page := 0
	if !opts.Full {
		page = c.resumePage(opts.Cursor)
	}
	fromStart := page == 0
	perPage, seen := 0, 0
	prevFirst := ""
	for {
		payload, err := c.call(ctx, "getContactList", connectors.Read, []param{str("search_term", ""), num("page", page)})
		if err != nil {
			return err
		}
		list, err := contactPageOf(&payload)
		if err != nil {
			return fmt.Errorf("co3: getContactList: page %d: %w", page, err)
		}
		done := len(list.Contacts) == 0 || (list.Pages >= 0 && page+1 >= list.Pages)
		if len(list.Contacts) > 0 && list.Contacts[0].ID == prevFirst {
			// The server ignored "page": going on would loop (without a
			// page count) or miss every contact after the first page.
			return fmt.Errorf("co3: getContactList: %w: page %d repeats page %d (the page parameter was ignored)", connectors.ErrMalformed, page, page-1)
		}
		if len(list.Contacts) > 0 {
			prevFirst = list.Contacts[0].ID
		}
		if perPage == 0 {
			perPage = len(list.Contacts)
		}
		seen += len(list.Contacts)
		total := -1
		switch {
		case fromStart && done:
			total = seen
		case fromStart && list.Pages >= 0:
			total = max(list.Pages*perPage, seen)
		}
		p := connectors.Page{Records: list.Contacts, Total: total, Done: done, Cursor: "complete"}
		if !done {
			p.Cursor = "page:" + strconv.Itoa(page+1)
		}
		if err := fn(ctx, p); err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		page++
	}
}

// resumePage reads a cursor; anything but "page:<n>" starts over, which
// is always safe for a full scan.
func (c *Connector) resumePage(cursor string) int {
	rest, ok := strings.CutPrefix(cursor, "page:")
	if !ok {
		if cursor != "" && cursor != "complete" {
			c.log.Warn("co3: unknown cursor; scanning from the first page", "connector", c.name, "cursor", cursor)
		}
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		c.log.Warn("co3: unknown cursor; scanning from the first page", "connector", c.name, "cursor", cursor)
		return 0
	}
	return n
}

// idParam sends a numeric id as a number, anything else as given.
func idParam(id string) param {
	if n, err := strconv.Atoi(id); err == nil && n > 0 {
		return num("contact_id", n)
	}
	return str("contact_id", id)
}

// Get fetches one contact with getContact.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	payload, err := c.call(ctx, "getContact", connectors.Read, []param{idParam(id)})
	if err != nil {
		return connectors.Record{}, err
	}
	rec, err := singleContactOf(&payload)
	if err != nil {
		return connectors.Record{}, fmt.Errorf("co3: getContact %s: %w", id, err)
	}
	return rec, nil
}

// Create creates a contact with setContact and an empty contact_id. The
// configured owner is set as contact_owner unless fields has one.
func (c *Connector) Create(ctx context.Context, fields map[string]string) (string, error) {
	if c.owner != "" {
		if _, ok := fields["contact_owner"]; !ok {
			withOwner := make(map[string]string, len(fields)+1)
			for k, v := range fields {
				withOwner[k] = v
			}
			withOwner["contact_owner"] = c.owner
			fields = withOwner
		}
	}
	params := append([]param{str("contact_id", "")}, writeParams(fields, nil)...)
	payload, err := c.call(ctx, "setContact", connectors.Create, params)
	if err != nil {
		return "", err
	}
	id, err := createdIDOf(&payload)
	if err != nil {
		return "", fmt.Errorf("co3: setContact: %w", err)
	}
	return id, nil
}

// Update sends only the given fields with setContact; CO3 keeps the fields
// not sent. Changing a node of a radio or checkbox custom field first reads
// the contact (getContact) so that the whole node object can be sent with
// its other nodes kept, since CO3 replaces a custom field as a whole.
func (c *Connector) Update(ctx context.Context, id string, fields map[string]string) error {
	var current map[string]map[string]string
	if names := touchedNodeFields(fields); len(names) > 0 {
		rec, err := c.Get(ctx, id)
		if err != nil {
			return err
		}
		current = nodesOf(rec.Fields, names)
	}
	params := writeParams(fields, current)
	if len(params) == 0 {
		return nil
	}
	params = append([]param{idParam(id)}, params...)
	_, err := c.call(ctx, "setContact", connectors.Write, params)
	return err
}

// ListIDs lists every contact id with getContacts (one call, no paging).
func (c *Connector) ListIDs(ctx context.Context, fn func(ctx context.Context, ids []string) error) error {
	payload, err := c.call(ctx, "getContacts", connectors.Read, nil)
	if err != nil {
		return err
	}
	ids, err := contactIDsOf(&payload)
	if err != nil {
		return fmt.Errorf("co3: getContacts: %w", err)
	}
	for len(ids) > 0 {
		n := min(len(ids), idBatch)
		if err := fn(ctx, ids[:n:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// call runs a CRM method with the current session and returns the reply's
// payload. A session error renews the session once and repeats the call;
// a second one is returned.
func (c *Connector) call(ctx context.Context, method string, kind connectors.CallKind, params []param) (node, error) {
	key, err := c.sessionKey(ctx)
	if err != nil {
		return node{}, err
	}
	payload, err := c.send(ctx, method, kind, key, params)
	if !errors.Is(err, connectors.ErrSessionExpired) {
		return payload, err
	}
	c.log.Debug("co3: session refused; renewing once", "connector", c.name, "method", method)
	c.dropSession(key)
	if key, err = c.sessionKey(ctx); err != nil {
		return node{}, err
	}
	return c.send(ctx, method, kind, key, params)
}

// send runs one CRM call through the pacer.
func (c *Connector) send(ctx context.Context, method string, kind connectors.CallKind, session string, params []param) (node, error) {
	all := make([]param, 0, len(params)+2)
	all = append(all, str("api_key", c.apiKey), str("session_key", session))
	all = append(all, params...)
	body, err := encodeCommand(c.format, method, all)
	if err != nil {
		return node{}, fmt.Errorf("co3: %s: %w: %w", method, connectors.ErrRejected, err)
	}
	var payload node
	err = c.pacer.Call(ctx, method, kind, func(ctx context.Context) error {
		var err error
		payload, err = c.post(ctx, c.crmURL, method, body)
		return err
	})
	return payload, err
}

// post sends one request and decodes and classifies its reply.
func (c *Connector) post(ctx context.Context, url, method string, body []byte) (node, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return node{}, fmt.Errorf("co3: %s: %w", method, err)
	}
	if c.format == XML {
		req.Header.Set("Content-Type", "application/xml; charset=utf-8")
		req.Header.Set("Accept", "application/xml")
	} else {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return node{}, fmt.Errorf("co3: %s: %w", method, err)
	}
	payload, derr := decodeReply(c.format, resp.Body)
	if derr == nil {
		if re, isErr := errorOf(&payload); isErr {
			return node{}, c.classify(method, re)
		}
	}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		return node{}, fmt.Errorf("co3: %s: %w: HTTP %d", method, connectors.ErrAuth, resp.Status)
	case resp.Status < 200 || resp.Status > 299:
		return node{}, c.statusError(method, resp)
	case derr != nil:
		return node{}, c.http.Redactor.Error(fmt.Errorf("co3: %s: %w", method, derr))
	}
	c.log.Debug("co3: call", "connector", c.name, "method", method, "bytes", len(resp.Body), "duration", time.Since(start))
	return payload, nil
}

// statusError classifies a reply whose HTTP status is not a success and
// whose body holds no CO3 error (a proxy's or web server's page). The HTTP
// client has classified 429, 503 and most 5xx already; the 5xx left and
// 408 are worth a retry, anything else (400, 404, 422…) is a refusal of
// the request that repeating it will not change.
func (c *Connector) statusError(method string, resp *connectors.Response) error {
	class := connectors.ErrRejected
	if resp.Status == http.StatusRequestTimeout || resp.Status >= 500 {
		class = connectors.ErrTemporary
	}
	return fmt.Errorf("co3: %s: %w: HTTP %d%s", method, class, resp.Status, c.snippet(resp.Body))
}

func (c *Connector) snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + c.http.Redactor.String(s)
}

// classify turns a CO3 error reply into an error wrapping its class.
func (c *Connector) classify(method string, re replyError) error {
	msg := c.http.Redactor.String(re.Message)
	if msg == "" {
		msg = "(no message)"
	}
	code := c.http.Redactor.String(re.Code)
	switch re.Code {
	case "invalid_api_key":
		return fmt.Errorf("co3: %s: %w: %s (invalid_api_key; check the api_key, username and password credentials)", method, connectors.ErrAuth, msg)
	case "invalid_session", "session_expired":
		return fmt.Errorf("co3: %s: %w: %s: %s", method, connectors.ErrSessionExpired, code, msg)
	case "not_found":
		return fmt.Errorf("co3: %s: %w: %s", method, connectors.ErrNotFound, msg)
	case "invalid_request":
		return fmt.Errorf("co3: %s: %w: %s", method, connectors.ErrRejected, msg)
	case "":
		return fmt.Errorf("co3: %s: error: %s", method, msg)
	}
	return fmt.Errorf("co3: %s: error %s: %s", method, code, msg)
}

// sessionKey returns a session key no older than renewAfter, opening a new
// session when needed.
func (c *Connector) sessionKey(ctx context.Context) (string, error) {
	if key, ok := c.liveSession(); ok {
		return key, nil
	}
	select {
	case c.authSlot <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.authSlot }()
	if key, ok := c.liveSession(); ok {
		return key, nil // another caller renewed it meanwhile
	}
	issued := c.now()
	key, err := c.authenticate(ctx)
	if err != nil {
		return "", err
	}
	c.http.Redactor.Add(key)
	c.mu.Lock()
	c.session, c.issued = key, issued
	c.mu.Unlock()
	c.log.Debug("co3: session opened", "connector", c.name, "user", c.username)
	return key, nil
}

func (c *Connector) liveSession() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == "" || c.now().Sub(c.issued) >= renewAfter {
		return "", false
	}
	return c.session, true
}

// dropSession forgets key unless a newer session replaced it already.
func (c *Connector) dropSession(key string) {
	c.mu.Lock()
	if c.session == key {
		c.session = ""
	}
	c.mu.Unlock()
}

// authenticate opens a session. The password goes out only as its MD5
// digest, as CO3 requires.
func (c *Connector) authenticate(ctx context.Context) (string, error) {
	body, err := encodeCommand(c.format, "authenticate", []param{
		str("api_key", c.apiKey), str("username", c.username), str("password", c.passwordMD5),
	})
	if err != nil {
		return "", fmt.Errorf("co3: authenticate: %w: %w", connectors.ErrAuth, err)
	}
	var key string
	err = c.pacer.Call(ctx, "authenticate", connectors.Read, func(ctx context.Context) error {
		payload, err := c.post(ctx, c.authURL, "authenticate", body)
		if err != nil {
			return err
		}
		key, err = sessionKeyOf(&payload)
		if err != nil {
			return fmt.Errorf("co3: authenticate: %w", err)
		}
		return nil
	})
	if errors.Is(err, connectors.ErrSessionExpired) {
		// A session error cannot answer authenticate; do not loop on it.
		return "", fmt.Errorf("%w: %w", connectors.ErrAuth, err)
	}
	return key, err
}
