// Package opencrmtest is an OpenCRM REST API emulator: an http.Handler over
// an in-memory contact table that speaks the wire shapes of
// the OpenCRM API note (apis/opencrm.md), quirks included. Tests serve it with
// httptest.NewServer and use base URL <server>/api/rest.
//
// What it does, per the note:
//   - a web firewall in front that answers HTTP 403 with an HTML page to
//     a User-Agent starting "Go-http-client" (Go's default);
//   - parameters from the GET query, POST form fields (urlencoded or
//     multipart), a raw urlencoded body, a JSON object body, and path
//     segments (/api/rest/<method>/key/K/passkey/P/...);
//   - authentication by key+passkey parameters, KEY1/KEY2 headers, or an
//     access key from login (parameter accesskey, accesscode or code) that
//     expires after Config.SessionIdle without requests, on the emulator's
//     clock; login replies in the documented {"<key>"} form by default;
//   - errors with HTTP 200: {"error":"Unauthorized"} (missing credentials,
//     expired access key, malformed query) and {"error":"Invalid User
//     Details - AUTHENTICATION FAILED"} (wrong keys);
//   - limit_start/limit_end with limit_end an absolute end index (or a
//     count after SetLimitEndCount(true)), at most Config.Cap rows per
//     reply (default 50,000), ordered by id ascending;
//   - dateTimeOverride/<php format> and dateOverride/<php format> path
//     segments (defaults "Y-m-d H:i:s" and "d-m-Y");
//   - query_string FIELD|OP|VALUE with one condition; operators =, !=, >,
//     <, >=, <=, LIKE, BEGINS, ENDS, CONTAINS; modifiedtime and createdtime
//     compared as local wall-clock text in Config.TimeZone, like a MySQL
//     DATETIME column; text compared case-insensitively;
//   - get_contact_list rows carry id, crmid and basic fields;
//     get_contact_list_full rows carry every field and id but no crmid;
//     get_contact_list_count answers a bare integer; edit_contact answers
//     the id as a bare integer.
//
// Assumed where the note is silent: get_contact and edit_contact of a
// missing id answer {"error":"Record not found"} with HTTP 200.
package opencrmtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
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

// Reply messages.
const (
	MsgUnauthorized = "Unauthorized"
	MsgAuthFailed   = "Invalid User Details - AUTHENTICATION FAILED"
	MsgNotFound     = "Record not found"
)

// Login reply styles.
const (
	LoginBraces = "braces" // {"<key>"}, as documented (not valid JSON)
	LoginString = "string" // "<key>", as observed
	LoginObject = "object" // {"accesskey":"<key>"}
	LoginText   = "text"   // <key>
)

// Config configures a Server.
type Config struct {
	Key, Passkey string
	// TimeZone of modifiedtime (default Europe/London).
	TimeZone string
	// SessionIdle is how long an access key lives without requests
	// (default 20 minutes).
	SessionIdle time.Duration
	// Cap is the most rows one list reply holds (default 50,000).
	Cap int
	// LimitEndCount reads limit_end as a count instead of an end index.
	LimitEndCount bool
	// LoginReply is one of the Login* styles (default LoginBraces).
	LoginReply string
	// DateFields hold dates (default birthday); they are stored as
	// YYYY-MM-DD and written with the dateOverride format.
	DateFields []string
	// Clock is the emulator's clock (default: a new one, frozen at
	// 2026-01-05 09:00 UTC).
	Clock *emulator.Clock
	// Logger, when set, receives an access-log line per request.
	Logger *slog.Logger
}

// Server is the emulator.
type Server struct {
	emulator.Hooks
	Table *emulator.Table
	Clock *emulator.Clock

	cfg        Config
	loc        *time.Location
	dateFields map[string]bool

	mu            sync.Mutex
	sessions      map[string]time.Time // access key -> last use
	issued        []string
	requests      []string
	limitEndCount bool
}

// New returns an emulator.
func New(cfg Config) *Server {
	if cfg.TimeZone == "" {
		cfg.TimeZone = "Europe/London"
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 20 * time.Minute
	}
	if cfg.Cap <= 0 {
		cfg.Cap = 50000
	}
	if cfg.LoginReply == "" {
		cfg.LoginReply = LoginBraces
	}
	if cfg.DateFields == nil {
		cfg.DateFields = []string{"birthday"}
	}
	if cfg.Clock == nil {
		cfg.Clock = &emulator.Clock{}
		cfg.Clock.Set(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC))
	}
	s := &Server{
		Table:         emulator.NewTable(cfg.Clock),
		Clock:         cfg.Clock,
		cfg:           cfg,
		loc:           loc,
		dateFields:    map[string]bool{},
		sessions:      map[string]time.Time{},
		limitEndCount: cfg.LimitEndCount,
	}
	for _, f := range cfg.DateFields {
		s.dateFields[f] = true
	}
	return s
}

// SetLimitEndCount switches the reading of limit_end (true: a count).
func (s *Server) SetLimitEndCount(count bool) {
	s.mu.Lock()
	s.limitEndCount = count
	s.mu.Unlock()
}

// Seed adds a contact as a CRM user would and returns its id.
func (s *Server) Seed(fields map[string]string) string {
	return emulator.FormatID(s.Table.Insert(s.storeForm(fields)))
}

// EditAsUser changes fields as a CRM user would (bumps modifiedtime).
func (s *Server) EditAsUser(id string, fields map[string]string) {
	n, _ := strconv.ParseInt(id, 10, 64)
	s.Table.Update(n, s.storeForm(fields))
}

// Delete deletes a contact as a CRM user would.
func (s *Server) Delete(id string) bool {
	n, _ := strconv.ParseInt(id, 10, 64)
	return s.Table.Delete(n)
}

// Fields returns the stored fields of a live contact.
func (s *Server) Fields(id string) (map[string]string, bool) {
	n, _ := strconv.ParseInt(id, 10, 64)
	c, ok := s.Table.Get(n)
	return c.Fields, ok
}

// Advance moves the clock forward.
func (s *Server) Advance(d time.Duration) { s.Clock.Advance(d) }

// ExpireSessions makes every access key invalid.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	clear(s.sessions)
	s.mu.Unlock()
}

// AccessKeys returns every access key handed out, expired ones included.
func (s *Server) AccessKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// Requests returns the access log: one "METHOD request-URI" line per
// request, as a web server would log it.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// storeForm keeps server-managed fields out and dates as YYYY-MM-DD.
func (s *Server) storeForm(fields map[string]string) map[string]string {
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		switch k {
		case "id", "crmid", "record_id", "record_module", "createdtime", "modifiedtime":
			continue
		}
		if s.dateFields[k] {
			v = storeDate(v)
		}
		out[k] = v
	}
	return out
}

func storeDate(v string) string {
	for _, layout := range []string{"2006-01-02", "02-01-2006", "02/01/2006"} {
		if t, err := time.Parse(layout, strings.TrimSpace(v)); err == nil {
			return t.Format("2006-01-02")
		}
	}
	return v
}

// request is one parsed call.
type request struct {
	method         string
	params         map[string]string
	dateTimeFormat string
	dateFormat     string
}

func (q *request) get(name string) string { return q.params[name] }

// ServeHTTP answers one API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if firewallRejects(w, r) {
		return
	}
	// The Date header follows the emulator's clock, as a real server's
	// follows the clock that stamps modifiedtime.
	w.Header().Set("Date", s.Clock.Now().UTC().Format(http.TimeFormat))
	line := r.Method + " " + r.URL.RequestURI()
	s.mu.Lock()
	s.requests = append(s.requests, line)
	s.mu.Unlock()
	if s.cfg.Logger != nil {
		s.cfg.Logger.Info("request", "line", line)
	}
	q, ok := s.parse(r)
	if !ok {
		writeError(w, MsgUnauthorized)
		return
	}
	if s.Enter(w, q.method) {
		return
	}
	if !s.authorize(w, r, q) {
		return
	}
	switch q.method {
	case "login":
		// handled in authorize
	case "get_contact_list", "get_contact_list_full":
		s.list(w, q)
	case "get_contact_list_count":
		rows, ok := s.match(q, 0, -1)
		if !ok {
			writeError(w, MsgUnauthorized)
			return
		}
		writeBody(w, strconv.Itoa(len(rows)))
	case "get_contact":
		s.getContact(w, q)
	case "edit_contact":
		s.edit(w, q)
	default:
		writeError(w, MsgUnauthorized)
	}
}

// parse gathers the parameters from path segments, the query, and the
// body (form, raw urlencoded or JSON).
func (s *Server) parse(r *http.Request) (*request, bool) {
	path := r.URL.EscapedPath()
	if i := strings.Index(path, "/api/rest/"); i >= 0 {
		path = path[i+len("/api/rest/"):]
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	q := &request{params: map[string]string{}, dateTimeFormat: "Y-m-d H:i:s", dateFormat: "d-m-Y"}
	if len(segs) == 0 || segs[0] == "" {
		return nil, false
	}
	var err error
	if q.method, err = url.PathUnescape(segs[0]); err != nil {
		return nil, false
	}
	for i := 1; i+1 < len(segs); i += 2 {
		name, err1 := url.PathUnescape(segs[i])
		val, err2 := url.PathUnescape(segs[i+1])
		if err1 != nil || err2 != nil {
			return nil, false
		}
		switch name {
		case "dateTimeOverride":
			q.dateTimeFormat = decodeFormat(val)
		case "dateOverride":
			q.dateFormat = decodeFormat(val)
		default:
			q.params[name] = val
		}
	}
	for k, v := range r.URL.Query() {
		q.params[k] = v[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		return nil, false
	}
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := strings.TrimSpace(string(body))
	switch {
	case ct == "multipart/form-data":
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.Header.Set("Content-Type", mime.FormatMediaType(ct, ctParams))
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, false
		}
		for k, v := range r.MultipartForm.Value {
			q.params[k] = v[0]
		}
	case ct == "application/json" || strings.HasPrefix(trimmed, "{"):
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			return nil, false
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				q.params[k] = v
			case float64:
				q.params[k] = strconv.FormatFloat(v, 'f', -1, 64)
			case bool:
				q.params[k] = map[bool]string{true: "1", false: "0"}[v]
			case nil:
				q.params[k] = ""
			default:
				b, _ := json.Marshal(v)
				q.params[k] = string(b)
			}
		}
	case trimmed != "":
		vals, err := url.ParseQuery(trimmed)
		if err != nil {
			return nil, false
		}
		for k, v := range vals {
			q.params[k] = v[0]
		}
	}
	return q, true
}

// authorize checks the credentials of q and answers login itself. It
// returns false when it has written the reply.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, q *request) bool {
	key, passkey := q.get("key"), q.get("passkey")
	if h1, h2 := r.Header.Get("KEY1"), r.Header.Get("KEY2"); h1 != "" || h2 != "" {
		key, passkey = h1, h2
	}
	access := ""
	for _, name := range []string{"accesskey", "accesscode", "code"} {
		if v := q.get(name); v != "" {
			access = v
			break
		}
	}
	now := s.Clock.Now()
	switch {
	case q.method == "login":
		if key == "" || passkey == "" {
			writeError(w, MsgUnauthorized)
			return false
		}
		if key != s.cfg.Key || passkey != s.cfg.Passkey {
			writeError(w, MsgAuthFailed)
			return false
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		ak := hex.EncodeToString(b)
		s.mu.Lock()
		s.sessions[ak] = now
		s.issued = append(s.issued, ak)
		s.mu.Unlock()
		switch s.cfg.LoginReply {
		case LoginString:
			writeBody(w, `"`+ak+`"`)
		case LoginObject:
			writeBody(w, `{"accesskey":"`+ak+`"}`)
		case LoginText:
			writeBody(w, ak)
		default:
			writeBody(w, `{"`+ak+`"}`)
		}
		return false
	case access != "":
		s.mu.Lock()
		last, ok := s.sessions[access]
		if ok && now.Sub(last) > s.cfg.SessionIdle {
			delete(s.sessions, access)
			ok = false
		}
		if ok {
			s.sessions[access] = now
		}
		s.mu.Unlock()
		if !ok {
			writeError(w, MsgUnauthorized)
			return false
		}
		return true
	case key != "" || passkey != "":
		if key != s.cfg.Key || passkey != s.cfg.Passkey {
			writeError(w, MsgAuthFailed)
			return false
		}
		return true
	}
	writeError(w, MsgUnauthorized)
	return false
}

// condition is a parsed query_string.
type condition struct {
	field, op, value string
	isTime           bool
}

func (s *Server) parseCondition(qs string) (*condition, bool) {
	if strings.TrimSpace(qs) == "" {
		return nil, true
	}
	parts := strings.SplitN(qs, "|", 3)
	if len(parts) != 3 {
		return nil, false
	}
	c := &condition{field: strings.TrimSpace(parts[0]), op: strings.ToUpper(strings.TrimSpace(parts[1])), value: parts[2]}
	if i := strings.LastIndexByte(c.field, '.'); i >= 0 {
		c.field = c.field[i+1:]
	}
	switch c.op {
	case "=", "!=", ">", "<", ">=", "<=", "LIKE", "BEGINS", "ENDS", "CONTAINS":
	default:
		return nil, false
	}
	if c.field == "modifiedtime" || c.field == "createdtime" {
		c.isTime = true
		c.value = s.wallClockValue(c.value)
	} else if s.dateFields[c.field] {
		c.value = storeDate(c.value)
	}
	return c, true
}

// wallClockValue reads a time the way MySQL would cast it for comparison
// with a DATETIME column: as local wall-clock text.
func (s *Server) wallClockValue(v string) string {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Format("2006-01-02 15:04:05")
		}
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.In(s.loc).Format("2006-01-02 15:04:05")
	}
	return v
}

func (s *Server) fieldValue(c *emulator.Contact, field string) string {
	switch field {
	case "modifiedtime":
		return c.Modified.In(s.loc).Format("2006-01-02 15:04:05")
	case "createdtime":
		return c.Created.In(s.loc).Format("2006-01-02 15:04:05")
	case "id", "crmid":
		return emulator.FormatID(c.ID)
	}
	return c.Fields[field]
}

func (cond *condition) matches(v string) bool {
	lv, lq := strings.ToLower(v), strings.ToLower(cond.value)
	switch cond.op {
	case "=":
		return lv == lq
	case "!=":
		return lv != lq
	case ">":
		return lv > lq
	case "<":
		return lv < lq
	case ">=":
		return lv >= lq
	case "<=":
		return lv <= lq
	case "BEGINS":
		return strings.HasPrefix(lv, lq)
	case "ENDS":
		return strings.HasSuffix(lv, lq)
	case "CONTAINS":
		return strings.Contains(lv, lq)
	case "LIKE":
		return like(lv, lq)
	}
	return false
}

// like matches SQL LIKE patterns (% any run, _ one character).
func like(s, p string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '%':
		for i := 0; i <= len(s); i++ {
			if like(s[i:], p[1:]) {
				return true
			}
		}
		return false
	case '_':
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		return like(s[n:], p[1:])
	}
	return s != "" && s[0] == p[0] && like(s[1:], p[1:])
}

// match returns the matching contacts from offset start, at most limit
// of them (limit < 0: no limit).
func (s *Server) match(q *request, start, limit int) ([]emulator.Contact, bool) {
	cond, ok := s.parseCondition(q.get("query_string"))
	if !ok {
		return nil, false
	}
	keywords := strings.ToLower(strings.TrimSpace(q.get("keywords")))
	i := 0
	rows := s.Table.List(func(c *emulator.Contact) bool {
		if cond != nil && !cond.matches(s.fieldValue(c, cond.field)) {
			return false
		}
		if keywords != "" && !containsKeyword(c, keywords) {
			return false
		}
		i++
		return i > start && (limit < 0 || i <= start+limit)
	})
	return rows, true
}

func containsKeyword(c *emulator.Contact, kw string) bool {
	for _, v := range c.Fields {
		if strings.Contains(strings.ToLower(v), kw) {
			return true
		}
	}
	return false
}

// basicFields are the fields get_contact_list returns besides the ids.
var basicFields = []string{"salutationtype", "firstname", "lastname", "email", "phone", "mobile", "accountid"}

func (s *Server) list(w http.ResponseWriter, q *request) {
	start, _ := strconv.Atoi(q.get("limit_start"))
	start = max(start, 0)
	limit := s.cfg.Cap
	if v := q.get("limit_end"); v != "" {
		end, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, MsgUnauthorized)
			return
		}
		s.mu.Lock()
		count := s.limitEndCount
		s.mu.Unlock()
		if count {
			limit = end
		} else {
			limit = end - start
		}
	}
	limit = min(max(limit, 0), s.cfg.Cap)
	rows, ok := s.match(q, start, limit)
	if !ok {
		writeError(w, MsgUnauthorized)
		return
	}
	full := q.method == "get_contact_list_full"
	buf := make([]byte, 0, 64+len(rows)*400)
	buf = append(buf, '[')
	for i := range rows {
		if i > 0 {
			buf = append(buf, ',')
		}
		c := &rows[i]
		id := emulator.FormatID(c.ID)
		buf = append(buf, `{"id":`...)
		buf = appendString(buf, id)
		if full {
			buf = s.appendFields(buf, c, q)
		} else {
			buf = append(buf, `,"crmid":`...)
			buf = appendString(buf, id)
			for _, f := range basicFields {
				if v, ok := c.Fields[f]; ok {
					buf = append(buf, ',')
					buf = appendString(buf, f)
					buf = append(buf, ':')
					buf = appendString(buf, v)
				}
			}
		}
		buf = append(buf, '}')
	}
	buf = append(buf, ']')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}

// appendFields writes ,"name":"value" for every field, sorted, plus the
// server-managed times, dates in the requested formats.
func (s *Server) appendFields(buf []byte, c *emulator.Contact, q *request) []byte {
	keys := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := c.Fields[k]
		if s.dateFields[k] {
			if t, err := time.Parse("2006-01-02", v); err == nil {
				v = s.formatTime(t, q.dateFormat)
			}
		}
		buf = append(buf, ',')
		buf = appendString(buf, k)
		buf = append(buf, ':')
		buf = appendString(buf, v)
	}
	buf = append(buf, `,"createdtime":`...)
	buf = appendString(buf, s.formatTime(c.Created.In(s.loc), q.dateTimeFormat))
	buf = append(buf, `,"modifiedtime":`...)
	buf = appendString(buf, s.formatTime(c.Modified.In(s.loc), q.dateTimeFormat))
	return buf
}

func (s *Server) formatTime(t time.Time, f string) string {
	switch f {
	case "c":
		return t.Format("2006-01-02T15:04:05-07:00")
	case "Y-m-d H:i:s":
		return t.Format("2006-01-02 15:04:05")
	case "Y-m-d":
		return t.Format("2006-01-02")
	}
	return formatPHP(t, f)
}

func (s *Server) getContact(w http.ResponseWriter, q *request) {
	id, err := strconv.ParseInt(q.get("crmid"), 10, 64)
	c, ok := s.Table.Get(id)
	if err != nil || !ok {
		writeError(w, MsgNotFound)
		return
	}
	buf := []byte(`{"record_id":`)
	buf = appendString(buf, emulator.FormatID(c.ID))
	buf = append(buf, `,"record_module":"Contacts"`...)
	buf = s.appendFields(buf, &c, q)
	buf = append(buf, '}')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf)
}

// controlParams are parameters of the call, not fields of the contact.
var controlParams = map[string]bool{
	"key": true, "passkey": true, "accesskey": true, "accesscode": true, "code": true,
	"crmid": true, "format": true,
}

func (s *Server) edit(w http.ResponseWriter, q *request) {
	fields := map[string]string{}
	for k, v := range q.params {
		if !controlParams[k] {
			fields[k] = v
		}
	}
	fields = s.storeForm(fields)
	crmid := strings.TrimSpace(q.get("crmid"))
	if crmid == "" || crmid == "0" {
		writeBody(w, emulator.FormatID(s.Table.Insert(fields)))
		return
	}
	id, err := strconv.ParseInt(crmid, 10, 64)
	if err != nil || !s.Table.Update(id, fields) {
		writeError(w, MsgNotFound)
		return
	}
	writeBody(w, emulator.FormatID(id))
}

func writeError(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(appendString([]byte(`{"error":`), msg))
	_, _ = w.Write([]byte("}"))
}

func writeBody(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < 0x80 {
			i++
			continue
		}
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				buf = append(buf, s[start:i]...)
				buf = append(buf, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += n
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
