// Package clientbooktest is an emulator of the Client Book CRM API
// (`clients` family) for tests and the demo simulator. It implements the
// wire shapes of docs/apis/clientbook.md exactly, quirks included:
// credentials in the query string, 507/508/509 for a bad app key, a bad
// access token and a disabled API, newest-first listings with offset paging,
// and `update_date` as "yyyy-mm-dd hh:ii:ss" in a configurable zone.
package clientbooktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/syncd/syncd/internal/connectors/emulator"
)

// Method names for FailNext and Calls.
const (
	MethodList = "clients/list"
	MethodView = "clients/view"
	MethodAdd  = "clients/add"
	MethodEdit = "clients/edit"
)

// DateLayout is the wire form of Client Book date-times.
const DateLayout = "2006-01-02 15:04:05"

// Fields are the documented client fields. The emulator returns every one
// of them on each client (empty when unset) and ignores any other field
// sent to clients/add or clients/edit, as the real service would.
var Fields = []string{
	"client_id", "client_first_name", "client_last_name", "client_email",
	"client_cell_phone", "client_home_phone", "client_work_phone",
	"client_street_address", "apartment", "client_city", "client_state", "client_zip",
	"client_street_address_2", "apartment_2", "client_city_2", "client_state_2", "client_zip_2",
	"client_birth_date", "anniversary", "client_gender", "contact_preference", "client_tags",
	"date_entered", "date_contacted", "update_date", "user_id", "store", "heard_about_us",
}

// serverFields are maintained by the server and cannot be written.
var serverFields = []string{"client_id", "date_entered", "update_date"}

// Config configures a Server. Zero values get working defaults.
type Config struct {
	AppID, AppKey, Token, Secret string
	// Clock is the emulator's clock (a new real-time clock when nil).
	Clock *emulator.Clock
	// Location is the zone of update_date and date_entered (UTC when nil).
	Location *time.Location
}

// Default credentials used when Config leaves them empty.
const (
	DefaultAppID  = "app-1001"
	DefaultAppKey = "appkey-3f9a7c21"
	DefaultToken  = "token-8d6e4b90"
	DefaultSecret = "secret-51c2aa7e"
)

// Server is the emulator: an http.Handler serving /api/v1/clients/... and
// /apiv1/clients/....
type Server struct {
	emulator.Hooks

	cfg   Config
	table *emulator.Table

	mu       sync.Mutex
	disabled bool
	version  int64 // bumped on every change, invalidates the sort caches
	byUpdate sortCache
	byCreate sortCache
}

type sortCache struct {
	version int64
	ids     []int64
}

// New returns an emulator for cfg.
func New(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = &emulator.Clock{}
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.AppID == "" {
		cfg.AppID = DefaultAppID
	}
	if cfg.AppKey == "" {
		cfg.AppKey = DefaultAppKey
	}
	if cfg.Token == "" {
		cfg.Token = DefaultToken
	}
	if cfg.Secret == "" {
		cfg.Secret = DefaultSecret
	}
	s := &Server{cfg: cfg, table: emulator.NewTable(cfg.Clock)}
	s.byUpdate.version, s.byCreate.version = -1, -1
	return s
}

// Config returns the server's effective configuration (credentials filled).
func (s *Server) Config() Config { return s.cfg }

// Clock returns the emulator's clock.
func (s *Server) Clock() *emulator.Clock { return s.cfg.Clock }

// SetDisabled switches the API off (every call answers 509) or on again,
// like the Integration page's status.
func (s *Server) SetDisabled(off bool) {
	s.mu.Lock()
	s.disabled = off
	s.mu.Unlock()
}

func (s *Server) changed() {
	s.mu.Lock()
	s.version++
	s.mu.Unlock()
}

// Seed adds a client as a CRM user would and returns its id.
func (s *Server) Seed(fields map[string]string) string {
	id := s.table.Insert(writable(fields))
	s.changed()
	return emulator.FormatID(id)
}

// EditAsUser changes fields as a CRM user would, bumping update_date.
func (s *Server) EditAsUser(id string, fields map[string]string) {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		s.table.Update(n, writable(fields))
		s.changed()
	}
}

// Delete removes a client (a user deleting it in the CRM).
func (s *Server) Delete(id string) bool {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return false
	}
	ok := s.table.Delete(n)
	s.changed()
	return ok
}

// Fields returns the stored values of a live client, as the API shows them.
func (s *Server) Fields(id string) (map[string]string, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, false
	}
	c, ok := s.table.Get(n)
	if !ok {
		return nil, false
	}
	return s.wire(c), true
}

// Len returns the number of live clients.
func (s *Server) Len() int { return s.table.Len() }

// Advance moves the clock forward.
func (s *Server) Advance(d time.Duration) { s.cfg.Clock.Advance(d) }

// AuthFault returns the reply Client Book sends for status 507, 508 or 509,
// for FailNext.
func AuthFault(status int) emulator.Fault {
	return emulator.Fault{Status: status, Body: authReason(status)}
}

// Malformed is a reply that is not JSON, for FailNext.
var Malformed = emulator.Fault{Status: 200, ContentType: "text/html", Body: "<html><body>Maintenance</body></html>"}

func authReason(status int) string {
	switch status {
	case 507:
		return "Invalid app_id or app_key"
	case 508:
		return "Invalid access token"
	case 509:
		return "API access is disabled for this account"
	}
	return http.StatusText(status)
}

// writable keeps the documented client fields a caller may set.
func writable(fields map[string]string) map[string]string {
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		if slices.Contains(Fields, k) && !slices.Contains(serverFields, k) {
			out[k] = v
		}
	}
	return out
}

// wire renders a stored client as the API shows it.
func (s *Server) wire(c emulator.Contact) map[string]string {
	out := make(map[string]string, len(Fields))
	for _, f := range Fields {
		out[f] = c.Fields[f]
	}
	out["client_id"] = emulator.FormatID(c.ID)
	out["date_entered"] = c.Created.In(s.cfg.Location).Format(DateLayout)
	out["update_date"] = c.Modified.In(s.cfg.Location).Format(DateLayout)
	return out
}

// ServeHTTP routes <root>/clients/<function>[/extra] for both API roots.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rest string
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/v1/"):
		rest = strings.TrimPrefix(r.URL.Path, "/api/v1/")
	case strings.HasPrefix(r.URL.Path, "/apiv1/"):
		rest = strings.TrimPrefix(r.URL.Path, "/apiv1/")
	default:
		http.NotFound(w, r)
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 2 || parts[0] != "clients" {
		http.NotFound(w, r)
		return
	}
	method := "clients/" + parts[1]
	var handle func(http.ResponseWriter, *http.Request, []string)
	wantMethod := http.MethodGet
	switch method {
	case MethodList:
		handle = s.list
	case MethodView:
		handle = s.view
	case MethodAdd:
		handle, wantMethod = s.add, http.MethodPost
	case MethodEdit:
		handle, wantMethod = s.edit, http.MethodPost
	default:
		http.NotFound(w, r)
		return
	}
	if s.Enter(w, method) {
		return
	}
	if r.Method != wantMethod {
		w.Header().Set("Allow", wantMethod)
		writeError(w, http.StatusMethodNotAllowed, method+" needs "+wantMethod)
		return
	}
	if status := s.authorize(r.URL.Query()); status != 0 {
		writeError(w, status, authReason(status))
		return
	}
	handle(w, r, parts[2:])
}

// authorize checks the four credentials and the API switch, in the order
// the documented status codes suggest.
func (s *Server) authorize(q url.Values) int {
	if q.Get("app_id") != s.cfg.AppID || q.Get("app_key") != s.cfg.AppKey {
		return 507
	}
	if q.Get("token") != s.cfg.Token || q.Get("secret") != s.cfg.Secret {
		return 508
	}
	s.mu.Lock()
	off := s.disabled
	s.mu.Unlock()
	if off {
		return 509
	}
	return 0
}

func writeError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(reason))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// order returns live ids newest first by update_date or date_entered, ties
// by descending id. The order is cached until the next change.
func (s *Server) order(byCreated bool) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	cache := &s.byUpdate
	if byCreated {
		cache = &s.byCreate
	}
	if cache.version == s.version {
		return cache.ids
	}
	type key struct {
		id int64
		at int64 // unix seconds: the wire resolution
	}
	var keys []key
	s.table.List(func(c *emulator.Contact) bool {
		t := c.Modified
		if byCreated {
			t = c.Created
		}
		keys = append(keys, key{c.ID, t.Unix()})
		return false // collect keys only; no copies of the rows
	})
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(b.at, a.at); c != 0 {
			return c
		}
		return cmp.Compare(b.id, a.id)
	})
	ids := make([]int64, len(keys))
	for i, k := range keys {
		ids[i] = k.id
	}
	cache.version, cache.ids = s.version, ids
	return ids
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, _ []string) {
	q := r.URL.Query()
	byCreated := false
	switch q.Get("order") {
	case "update":
	case "", "created":
		byCreated = true
	default:
		writeError(w, http.StatusBadRequest, "order must be update or created")
		return
	}
	from, limit := 0, -1
	if v := q.Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad from")
			return
		}
		from = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "bad limit")
			return
		}
		limit = n
	}
	ids := s.order(byCreated)
	if search := strings.ToLower(q.Get("q")); search != "" {
		var hits []int64
		for _, id := range ids {
			if c, ok := s.table.Get(id); ok && matches(c.Fields, search) {
				hits = append(hits, id)
			}
		}
		ids = hits
	}
	total := len(ids)
	page := ids[min(from, len(ids)):]
	if limit >= 0 && len(page) > limit {
		page = page[:limit]
	}
	// Encoded by hand in documented field order: listings of many
	// thousands of clients are the emulator's hot path.
	buf := make([]byte, 0, 64+len(page)*900)
	buf = append(buf, `{"data":[`...)
	for i, id := range page {
		c, ok := s.table.Get(id)
		if !ok {
			continue
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = s.appendClient(buf, c)
	}
	buf = append(buf, `],"total":`...)
	buf = strconv.AppendInt(buf, int64(total), 10)
	buf = append(buf, '}')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}

// appendClient appends the JSON object of a client, fields in documented
// order.
func (s *Server) appendClient(buf []byte, c emulator.Contact) []byte {
	wire := s.wire(c)
	buf = append(buf, '{')
	for i, f := range Fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, f)
		buf = append(buf, ':')
		buf = appendJSONString(buf, wire[f])
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			buf = append(buf, c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, `\ufffd`...)
			} else {
				buf = append(buf, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return append(buf, '"')
}

func matches(fields map[string]string, lowered string) bool {
	for _, v := range fields {
		if strings.Contains(strings.ToLower(v), lowered) {
			return true
		}
	}
	return false
}

func (s *Server) lookup(w http.ResponseWriter, raw string) (emulator.Contact, bool) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err == nil {
		if c, ok := s.table.Get(n); ok {
			return c, true
		}
	}
	writeError(w, http.StatusNotFound, "client not found")
	return emulator.Contact{}, false
}

// view serves clients/view/id/<client_id>.
func (s *Server) view(w http.ResponseWriter, r *http.Request, extra []string) {
	if len(extra) != 2 || extra[0] != "id" {
		writeError(w, http.StatusBadRequest, "expected /id/<client_id>")
		return
	}
	c, ok := s.lookup(w, extra[1])
	if !ok {
		return
	}
	writeJSON(w, map[string]any{"data": s.wire(c)})
}

func formFields(r *http.Request) (map[string]string, error) {
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range r.PostForm {
		if len(v) > 0 {
			out[k] = v[0]
		}
	}
	return out, nil
}

func validate(fields map[string]string) string {
	if g, ok := fields["client_gender"]; ok && g != "" && g != "male" && g != "female" && g != "unknown" {
		return "client_gender must be male, female or unknown"
	}
	return ""
}

func (s *Server) add(w http.ResponseWriter, r *http.Request, _ []string) {
	fields, err := formFields(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad form")
		return
	}
	if msg := validate(fields); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	id := s.Seed(fields)
	writeJSON(w, map[string]any{"data": map[string]string{"client_id": id}})
}

func (s *Server) edit(w http.ResponseWriter, r *http.Request, _ []string) {
	fields, err := formFields(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad form")
		return
	}
	c, ok := s.lookup(w, fields["client_id"])
	if !ok {
		return
	}
	if msg := validate(fields); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	s.table.Update(c.ID, writable(fields))
	s.changed()
	c, _ = s.table.Get(c.ID)
	writeJSON(w, map[string]any{"data": s.wire(c)})
}

// String describes the server for logs.
func (s *Server) String() string {
	return fmt.Sprintf("clientbooktest.Server(%d clients)", s.table.Len())
}

// Table returns the emulator's contact table, for simulators and tests
// that inspect or count what the CRM holds.
func (s *Server) Table() *emulator.Table { return s.table }
