// Package clientapi is the pull-only connector for the Client API of a
// WHMCS-based hosting client area (m=clientapi, docs/apis/clientapi.md).
//
// The API exposes one account: the customer's own details, which become one
// contact in the other CRMs and follow its changes. There is no modified
// time, so every pull returns the record and the engine compares content
// hashes; lastlogin, which the server bumps on every login, is declared in
// Type.ExcludedFields so that it does not count as a change. The connector
// still returns it.
//
// The API key travels in the POST body, never in a URL; errors never quote
// the body, and every error leaving the package is passed through a
// redactor that knows the key.
package clientapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/syncd/syncd/internal/connectors"
	"github.com/syncd/syncd/internal/redact"
)

// CredAPIKey is the credential key.
const CredAPIKey = "apikey"

// ExcludedField is changed by the server on every login.
const ExcludedField = "lastlogin"

// defaultRate: one account, one call per pull; no reason to hurry.
const defaultRate = 1

// Type is the registry entry.
var Type = connectors.Type{
	Name:           "clientapi",
	Description:    "WHMCS client area Client API (m=clientapi): the account holder's own details, pull-only",
	PullOnly:       true,
	DefaultRate:    defaultRate,
	DefaultBurst:   1,
	NeedsBaseURL:   true,
	Credentials:    []string{CredAPIKey},
	ExcludedFields: []string{ExcludedField},
	New: func(s connectors.Settings) (connectors.Connector, error) {
		c, err := New(s)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	},
}

// Connector reads the one account of a Client API key. It implements
// connectors.Connector only: pushing is refused by configuration
// validation through Type.PullOnly.
type Connector struct {
	name    string
	baseURL string // the client area's index.php URL
	form    string // encoded request body, key included
	pacer   *connectors.Pacer
	http    *connectors.HTTPClient
	red     *redact.Redactor
}

var _ connectors.Connector = (*Connector)(nil)

// New builds a connector. BaseURL is the client area's index.php URL
// (https://host/clients/index.php); a URL ending in "/" gets "index.php"
// appended.
func New(s connectors.Settings) (*Connector, error) {
	if err := connectors.CheckBaseURL(s.BaseURL); err != nil {
		return nil, fmt.Errorf("clientapi: base_url: %w", err)
	}
	key := s.Credentials[CredAPIKey]
	if key == "" {
		return nil, fmt.Errorf("clientapi: credentials: missing %s", CredAPIKey)
	}
	base := s.BaseURL
	if strings.HasSuffix(base, "/") {
		base += "index.php"
	}
	red := redact.New(key)
	c := &Connector{
		name:    s.Name,
		baseURL: base,
		form: url.Values{
			"m": {"clientapi"}, "apikey": {key}, "apimodule": {"client"}, "apifunction": {"getdetails"},
		}.Encode(),
		pacer: s.Pacer,
		http:  s.HTTP,
		red:   red,
	}
	if c.pacer == nil {
		c.pacer = connectors.NewPacer(connectors.PacerConfig{Name: s.Name, Rate: defaultRate, Burst: 1})
	}
	if c.http == nil {
		c.http = connectors.NewHTTPClient(0, red)
	} else {
		c.http.Redactor.Add(key)
	}
	return c, nil
}

const method = "client/getdetails"

// Pull returns the account as one page. The cursor carries nothing: every
// pull is a full read of the single record.
func (c *Connector) Pull(ctx context.Context, opts connectors.PullOptions, fn connectors.PageFunc) error {
	rec, err := c.details(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, connectors.Page{Records: []connectors.Record{rec}, Cursor: "getdetails", Done: true, Total: 1})
}

// Get returns the account when id is its id, else ErrNotFound.
func (c *Connector) Get(ctx context.Context, id string) (connectors.Record, error) {
	rec, err := c.details(ctx)
	if err != nil {
		return connectors.Record{}, err
	}
	if rec.ID != id {
		return connectors.Record{}, fmt.Errorf("clientapi: %s: client %q: %w (this key's account is %s)", method, id, connectors.ErrNotFound, rec.ID)
	}
	return rec, nil
}

func (c *Connector) details(ctx context.Context) (connectors.Record, error) {
	var rec connectors.Record
	err := c.pacer.Call(ctx, method, connectors.Read, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL, strings.NewReader(c.form))
		if err != nil {
			return errors.New("cannot build the request (check base_url)")
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		resp, err := c.http.Do(ctx, req)
		if err != nil {
			return c.red.Error(err)
		}
		rec, err = decodeDetails(resp.Status, resp.Header.Get("Content-Type"), resp.Body)
		// Redacted here already: the pacer's observer logs every attempt.
		return c.red.Error(err)
	})
	if err != nil {
		return connectors.Record{}, c.red.Error(fmt.Errorf("clientapi: %s: %w", method, err))
	}
	return rec, nil
}

// reply is the documented envelope.
type reply struct {
	Status  string          `json:"status"`
	Message json.RawMessage `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// decodeDetails checks and decodes a getdetails reply. Tolerated: a
// charset on the Content-Type, values that are numbers, booleans or null
// (every value should be a string), nested values (flattened with dots).
// Any status other than "success" is an error; "error" means the key is
// wrong, revoked or the API is switched off (the only failures a
// parameterless read has), so it is ErrAuth: permanent for this run.
func decodeDetails(status int, contentType string, body []byte) (connectors.Record, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	isJSON := mt == "application/json"
	var env reply
	parsed := isJSON && json.Unmarshal(body, &env) == nil
	msg := ""
	if parsed {
		msg = message(env.Message)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return connectors.Record{}, fmt.Errorf("%w: HTTP %d%s", connectors.ErrAuth, status, quoted(msg))
	case status != http.StatusOK:
		return connectors.Record{}, fmt.Errorf("%w: unexpected HTTP %d%s", connectors.ErrMalformed, status, quoted(msg))
	case !isJSON:
		if contentType == "" {
			contentType = "none"
		}
		return connectors.Record{}, fmt.Errorf("%w: Content-Type %q, want application/json (is base_url the client area's index.php, with the Client API enabled?)", connectors.ErrMalformed, contentType)
	case !parsed:
		return connectors.Record{}, fmt.Errorf("%w: reply is not a JSON object", connectors.ErrMalformed)
	}
	switch strings.ToLower(strings.TrimSpace(env.Status)) {
	case "success":
	case "error":
		return connectors.Record{}, fmt.Errorf("%w: the Client API refused the key%s (check apikey and that Client API → API Status is enabled)", connectors.ErrAuth, quoted(msg))
	default:
		return connectors.Record{}, fmt.Errorf("%w: status %.40q%s", connectors.ErrMalformed, env.Status, quoted(msg))
	}
	data := bytes.TrimSpace(env.Data)
	if len(data) == 0 || data[0] != '{' {
		return connectors.Record{}, fmt.Errorf("%w: data is not an object", connectors.ErrMalformed)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return connectors.Record{}, fmt.Errorf("%w: data is not an object", connectors.ErrMalformed)
	}
	fields := make(map[string]string, len(raw))
	for k, v := range raw {
		if err := flatten(fields, k, v, 0); err != nil {
			return connectors.Record{}, fmt.Errorf("%w: field %q: %v", connectors.ErrMalformed, k, err)
		}
	}
	id := fields["id"]
	if id == "" {
		return connectors.Record{}, fmt.Errorf("%w: data has no id", connectors.ErrMalformed)
	}
	return connectors.Record{ID: id, Fields: fields}, nil
}

// message reads the server's message (a string, or anything else as JSON
// text), shortened.
func message(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(bytes.TrimSpace(raw))
		if s == "null" {
			s = ""
		}
	}
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

func quoted(msg string) string {
	if msg == "" {
		return ""
	}
	return fmt.Sprintf(": %q", msg)
}

// maxDepth bounds flattening of nested values.
const maxDepth = 8

// flatten stores a JSON value under key: scalars as text (null as ""),
// objects and lists with dotted keys.
func flatten(dst map[string]string, key string, v json.RawMessage, depth int) error {
	v = bytes.TrimSpace(v)
	if depth > maxDepth {
		return errors.New("nested too deep")
	}
	if len(v) == 0 {
		return errors.New("empty value")
	}
	switch v[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		for k, sub := range m {
			if err := flatten(dst, key+"."+k, sub, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return err
		}
		for i, sub := range list {
			if err := flatten(dst, fmt.Sprintf("%s.%d", key, i), sub, depth+1); err != nil {
				return err
			}
		}
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		dst[key] = s
	case 'n':
		dst[key] = ""
	default:
		var n any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&n); err != nil {
			return err
		}
		dst[key] = fmt.Sprint(n)
	}
	return nil
}
