// Package co3test is an in-memory CO3 CRM: an http.Handler speaking the
// command envelope of syncd's CO3 API note in JSON and XML (each reply
// in the format of its request; XML strings as CDATA), with five-minute
// sessions on an injectable clock and test hooks. Serve it under any
// prefix: POST <prefix>/authenticate and <prefix>/crm.
//
// Contacts are kept flattened the way the connector reports them:
// "contact_firstname", "custom_fields.colour",
// "custom_fields.hobbies.node0". getContactList pages 50 contacts by
// default, by ascending contact_id; search_term matches, case-insensitively,
// a part of the first name, last name, firm, email or either phone.
package co3test

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
)

// Config configures a Server.
type Config struct {
	// APIKey, Username and Password are the credentials the server
	// accepts; the password is checked against its MD5 hex digest.
	APIKey, Username, Password string
	// PageSize of getContactList (default 50).
	PageSize int
	// SessionTTL is how long a session key is valid (default 5 minutes).
	SessionTTL time.Duration
	// Clock drives sessions and modified times (default: real time).
	Clock *emulator.Clock
}

// Quirks change the shape of replies within what the API note says a
// client must tolerate, except IgnorePage, which plays a broken server.
type Quirks struct {
	// NumbersAsStrings sends ids, page counts and integer fields as JSON
	// strings.
	NumbersAsStrings bool
	// StringsAsNumbers sends string values that look like integers
	// (phone numbers, postcodes) as JSON numbers.
	StringsAsNumbers bool
	// NoWrapper leaves out the "response" wrapper (JSON); XML replies
	// then use a <result> root instead of <response>.
	NoWrapper bool
	// NoPageCount leaves "pages" out of getContactList replies, so that
	// only a page without contacts ends the list.
	NoPageCount bool
	// IgnorePage answers every getContactList with its first page, as a
	// server that does not read the page parameter would.
	IgnorePage bool
}

// Method names, as counted by Calls and matched by FailNext.
const (
	MethodAuthenticate   = "authenticate"
	MethodGetContactList = "getContactList"
	MethodGetContacts    = "getContacts"
	MethodGetContact     = "getContact"
	MethodSetContact     = "setContact"
)

// Fields lists the documented contact fields (besides contact_id and
// custom_fields) in the order replies carry them.
var Fields = []string{
	"contact_type", "contact_prefix", "contact_firstname", "contact_lastname",
	"contact_firm", "contact_address", "contact_phone", "contact_phone2",
	"contact_email", "contact_owner", "contact_job", "contact_fax",
	"contact_postal_address", "contact_importance", "contact_status",
	"contact_note", "contact_categories", "contact_account", "contact_tax",
	"contact_groupmember_tax", "contact_url", "contact_birthday",
	"contact_personal_id", "contact_newsletter",
}

var (
	integerFields = map[string]bool{"contact_type": true, "contact_importance": true, "contact_newsletter": true}
	knownFields   = func() map[string]bool {
		m := map[string]bool{}
		for _, f := range Fields {
			m[f] = true
		}
		return m
	}()
)

const customPrefix = "custom_fields."

// Server is the emulator. Hooks (FailNext, Calls, SetRandomFaults) are
// keyed by the Method names above.
type Server struct {
	emulator.Hooks

	cfg         Config
	clock       *emulator.Clock
	table       *emulator.Table
	passwordMD5 string

	mu       sync.Mutex
	sessions map[string]*session
	quirks   Quirks
	truncate map[string]int
	// version counts table changes; ids caches the live ids of version
	// idsVersion, so that paging 100,000 contacts does not list them all
	// for every page.
	version, idsVersion uint64
	ids                 []int64
}

type session struct {
	issued  time.Time
	expired bool
}

// New returns a server with an empty table.
func New(cfg Config) *Server {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = &emulator.Clock{}
	}
	sum := md5.Sum([]byte(cfg.Password))
	return &Server{
		cfg:         cfg,
		clock:       cfg.Clock,
		table:       emulator.NewTable(cfg.Clock),
		passwordMD5: hex.EncodeToString(sum[:]),
		sessions:    map[string]*session{},
		truncate:    map[string]int{},
	}
}

// Clock returns the server's clock.
func (s *Server) Clock() *emulator.Clock { return s.clock }

// Advance moves the clock forward.
func (s *Server) Advance(d time.Duration) { s.clock.Advance(d) }

// Seed adds a contact as a CRM user would and returns its id. Fields use
// the flattened names (see the package comment).
func (s *Server) Seed(fields map[string]string) string {
	id := s.table.Insert(fields)
	s.changed()
	return emulator.FormatID(id)
}

// EditAsUser changes fields of a contact as a CRM user would.
func (s *Server) EditAsUser(id string, fields map[string]string) {
	n, _ := strconv.ParseInt(id, 10, 64)
	s.table.Update(n, fields)
	s.changed()
}

// Delete deletes a contact as a CRM user would; false when there is none.
func (s *Server) Delete(id string) bool {
	n, _ := strconv.ParseInt(id, 10, 64)
	ok := s.table.Delete(n)
	s.changed()
	return ok
}

// Fields returns the stored fields of a live contact (node fields cleared
// by a write are left out).
func (s *Server) Fields(id string) (map[string]string, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, false
	}
	c, ok := s.table.Get(n)
	if !ok {
		return nil, false
	}
	for k, v := range c.Fields {
		if _, _, isNode := nodeKey(k); isNode && v == "" {
			delete(c.Fields, k)
		}
	}
	return c.Fields, true
}

// Len returns the number of live contacts.
func (s *Server) Len() int { return s.table.Len() }

// ExpireSessions makes every session issued so far expired: the next call
// with one is answered with session_expired.
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.expired = true
	}
	s.mu.Unlock()
}

// SetQuirks changes the shape of the following replies.
func (s *Server) SetQuirks(q Quirks) {
	s.mu.Lock()
	s.quirks = q
	s.mu.Unlock()
}

// TruncateNext cuts the next n replies of method in half.
func (s *Server) TruncateNext(method string, n int) {
	s.mu.Lock()
	s.truncate[method] += n
	s.mu.Unlock()
}

func (s *Server) changed() {
	s.mu.Lock()
	s.version++
	s.mu.Unlock()
}

func (s *Server) liveIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil || s.idsVersion != s.version {
		s.ids = s.table.IDs()
		s.idsVersion = s.version
	}
	return s.ids
}

// apiError is a CO3 error reply.
type apiError struct{ code, message string }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{code: code, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one command.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "cannot read the request", http.StatusBadRequest)
		return
	}
	isXML := strings.Contains(r.Header.Get("Content-Type"), "xml") ||
		strings.HasPrefix(strings.TrimLeft(string(body[:min(len(body), 64)]), " \t\r\n"), "<")
	method, params, perr := parseCommand(isXML, body)
	if perr != nil {
		s.Enter(w, "invalid")
		s.reply(w, isXML, "invalid", nil, errorf("invalid_request", "cannot read the command: %v", perr))
		return
	}
	if s.Enter(w, method) {
		return
	}
	onAuth := strings.HasSuffix(r.URL.Path, "/authenticate")
	if onAuth != (method == MethodAuthenticate) || !(onAuth || strings.HasSuffix(r.URL.Path, "/crm")) {
		s.reply(w, isXML, method, nil, errorf("invalid_request", "method %s is not served at %s", method, r.URL.Path))
		return
	}
	if method == MethodAuthenticate {
		key, aerr := s.authenticate(params)
		s.reply(w, isXML, method, func(o *out) { o.str("session_key", key) }, aerr)
		return
	}
	if aerr := s.checkSession(params); aerr != nil {
		s.reply(w, isXML, method, nil, aerr)
		return
	}
	var payload func(*out)
	var aerr *apiError
	switch method {
	case MethodGetContactList:
		payload, aerr = s.getContactList(params)
	case MethodGetContacts:
		payload, aerr = s.getContacts()
	case MethodGetContact:
		payload, aerr = s.getContact(params)
	case MethodSetContact:
		payload, aerr = s.setContact(params)
	default:
		aerr = errorf("invalid_request", "unknown method %s", method)
	}
	s.reply(w, isXML, method, payload, aerr)
}

// reply writes a payload or an error in the request's format.
func (s *Server) reply(w http.ResponseWriter, isXML bool, method string, payload func(*out), aerr *apiError) {
	s.mu.Lock()
	q := s.quirks
	cut := s.truncate[method] > 0
	if cut {
		s.truncate[method]--
	}
	s.mu.Unlock()
	size := 1024
	if method == MethodGetContactList || method == MethodGetContacts {
		size = 64 << 10 // a page of 50 full contacts is 30-80 KB
	}
	o := &out{xml: isXML, q: q, buf: make([]byte, 0, size)}
	o.begin()
	if aerr != nil {
		o.openObj("error")
		o.str("code", aerr.code)
		o.str("message", aerr.message)
		o.closeObj("error")
	} else if payload != nil {
		payload(o)
	}
	o.end()
	b := o.buf
	if cut {
		b = b[:len(b)/2]
	}
	if isXML {
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Server) authenticate(p params) (string, *apiError) {
	if p.text("api_key") != s.cfg.APIKey {
		return "", errorf("invalid_api_key", "invalid API key")
	}
	if p.text("username") != s.cfg.Username || !strings.EqualFold(p.text("password"), s.passwordMD5) {
		return "", errorf("invalid_api_key", "invalid username or password")
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := hex.EncodeToString(raw[:])
	now := s.clock.Now()
	s.mu.Lock()
	for k, ss := range s.sessions {
		if ss.expired || now.Sub(ss.issued) >= 4*s.cfg.SessionTTL {
			delete(s.sessions, k)
		}
	}
	s.sessions[key] = &session{issued: now}
	s.mu.Unlock()
	return key, nil
}

func (s *Server) checkSession(p params) *apiError {
	if p.text("api_key") != s.cfg.APIKey {
		return errorf("invalid_api_key", "invalid API key")
	}
	key := p.text("session_key")
	// ExpireSessions writes expired under mu: copy the session while
	// holding it.
	s.mu.Lock()
	ss, ok := s.sessions[key]
	var cur session
	if ok {
		cur = *ss
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return errorf("invalid_session", "unknown session key")
	case cur.expired || s.clock.Now().Sub(cur.issued) >= s.cfg.SessionTTL:
		return errorf("session_expired", "session expired; authenticate again")
	}
	return nil
}

func (s *Server) getContactList(p params) (func(*out), *apiError) {
	page := 0
	if v, ok := p["page"]; ok && !v.null && strings.TrimSpace(v.text) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v.text))
		if err != nil || n < 0 || v.obj != nil {
			return nil, errorf("invalid_request", "page must be a whole number from 0 (got %q)", v.text)
		}
		page = n
	}
	s.mu.Lock()
	if s.quirks.IgnorePage {
		page = 0
	}
	s.mu.Unlock()
	size := s.cfg.PageSize
	var contacts []emulator.Contact
	total := 0
	if term := strings.ToLower(strings.TrimSpace(p.text("search_term"))); term != "" {
		all := s.table.List(func(c *emulator.Contact) bool { return matches(c, term) })
		total = len(all)
		if lo := page * size; lo < total {
			contacts = all[lo:min(lo+size, total)]
		}
	} else {
		ids := s.liveIDs()
		total = len(ids)
		if lo := page * size; lo < total {
			for _, id := range ids[lo:min(lo+size, total)] {
				if c, ok := s.table.Get(id); ok {
					contacts = append(contacts, c)
				}
			}
		}
	}
	pages := (total + size - 1) / size
	return func(o *out) {
		o.num("page", strconv.Itoa(page))
		if !o.q.NoPageCount {
			o.num("pages", strconv.Itoa(pages))
		}
		o.openList("contacts")
		for _, c := range contacts {
			writeContact(o, c)
		}
		o.closeList("contacts")
	}, nil
}

func matches(c *emulator.Contact, term string) bool {
	for _, f := range []string{"contact_firstname", "contact_lastname", "contact_firm", "contact_email", "contact_phone", "contact_phone2"} {
		if strings.Contains(strings.ToLower(c.Fields[f]), term) {
			return true
		}
	}
	return false
}

func (s *Server) getContacts() (func(*out), *apiError) {
	contacts := s.table.List(nil)
	return func(o *out) {
		o.openList("contacts")
		for _, c := range contacts {
			o.openObj("contact")
			o.num("contact_id", emulator.FormatID(c.ID))
			o.str("contact_name", contactName(c.Fields))
			o.closeObj("contact")
		}
		o.closeList("contacts")
	}, nil
}

func contactName(f map[string]string) string {
	name := strings.TrimSpace(f["contact_firstname"] + " " + f["contact_lastname"])
	if name == "" {
		return f["contact_firm"]
	}
	return name
}

func (s *Server) getContact(p params) (func(*out), *apiError) {
	raw, ok := p["contact_id"]
	if !ok || raw.null || strings.TrimSpace(raw.text) == "" {
		return nil, errorf("invalid_request", "contact_id is required")
	}
	id, err := strconv.ParseInt(strings.TrimSpace(raw.text), 10, 64)
	c, found := s.table.Get(id)
	if err != nil || !found {
		return nil, errorf("not_found", "no contact with id %s", raw.text)
	}
	return func(o *out) { writeContact(o, c) }, nil
}

// setContact creates (empty or null contact_id) or updates a contact.
// Fields not sent keep their values; a custom field sent is replaced whole.
func (s *Server) setContact(p params) (func(*out), *apiError) {
	fields := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(p)) {
		v := p[name]
		switch {
		case name == "api_key" || name == "session_key" || name == "contact_id":
			continue
		case name == "custom_fields":
			if aerr := customFields(fields, v); aerr != nil {
				return nil, aerr
			}
			continue
		case !knownFields[name]:
			return nil, errorf("invalid_request", "unknown field %s", name)
		case v.obj != nil:
			return nil, errorf("invalid_request", "%s must be a single value", name)
		}
		if aerr := checkValue(name, v.text); aerr != nil {
			return nil, aerr
		}
		fields[name] = v.text
	}
	raw := p["contact_id"]
	if raw.null || strings.TrimSpace(raw.text) == "" {
		if contactName(fields) == "" {
			return nil, errorf("invalid_request", "a contact needs a first name, a last name or a firm")
		}
		id := s.table.Insert(fields)
		s.changed()
		return func(o *out) { o.num("contact_id", emulator.FormatID(id)) }, nil
	}
	id, err := strconv.ParseInt(strings.TrimSpace(raw.text), 10, 64)
	if err != nil || !s.table.Update(id, s.clearedFor(id, fields)) {
		return nil, errorf("not_found", "no contact with id %s", raw.text)
	}
	s.changed()
	return func(o *out) { o.num("contact_id", emulator.FormatID(id)) }, nil
}

// clearedFor adds "" for the stored parts of each custom field being
// replaced, since a table update only sets keys.
func (s *Server) clearedFor(id int64, fields map[string]string) map[string]string {
	c, ok := s.table.Get(id)
	if !ok {
		return fields
	}
	replaced := map[string]bool{}
	for k := range fields {
		if name, ok := customName(k); ok {
			replaced[name] = true
		}
	}
	out := map[string]string{}
	for k := range c.Fields {
		if name, ok := customName(k); ok && replaced[name] {
			out[k] = ""
		}
	}
	for k, v := range fields {
		out[k] = v
	}
	return out
}

// customName returns the custom field a stored key belongs to.
func customName(key string) (string, bool) {
	if name, _, ok := nodeKey(key); ok {
		return name, true
	}
	return strings.CutPrefix(key, customPrefix)
}

func customFields(fields map[string]string, v value) *apiError {
	if v.obj == nil {
		if v.null || strings.TrimSpace(v.text) == "" {
			return nil
		}
		return errorf("invalid_request", "custom_fields must be an object")
	}
	for _, name := range v.keys {
		cv := v.obj[name]
		if cv.obj == nil {
			fields[customPrefix+name] = cv.text
			continue
		}
		if len(cv.keys) == 0 {
			fields[customPrefix+name] = "" // nothing ticked
		}
		for _, n := range cv.keys {
			nv := cv.obj[n]
			if _, _, ok := nodeKey(customPrefix + name + "." + n); !ok || nv.obj != nil {
				return errorf("invalid_request", "custom field %s: %s is not a node value", name, n)
			}
			fields[customPrefix+name+"."+n] = nv.text
		}
	}
	return nil
}

func checkValue(name, v string) *apiError {
	v = strings.TrimSpace(v)
	switch {
	case integerFields[name]:
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return errorf("invalid_request", "%s must be a whole number (got %q)", name, v)
		}
		if (name == "contact_type" || name == "contact_newsletter") && n != 0 && n != 1 {
			return errorf("invalid_request", "%s must be 0 or 1 (got %q)", name, v)
		}
	case name == "contact_birthday" && v != "":
		if _, err := time.Parse("2006-01-02", v); err != nil {
			return errorf("invalid_request", "contact_birthday must be YYYY-MM-DD (got %q)", v)
		}
	}
	return nil
}

// nodeKey splits "custom_fields.<name>.node<N>".
func nodeKey(key string) (name, nodeName string, ok bool) {
	rest, found := strings.CutPrefix(key, customPrefix)
	if !found {
		return "", "", false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return "", "", false
	}
	digits, isNode := strings.CutPrefix(rest[dot+1:], "node")
	if !isNode || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", "", false
	}
	return rest[:dot], rest[dot+1:], true
}

// writeContact writes a full contact: contact_id, every documented field
// (integer fields as numbers, 0 when unset), any other stored field, and
// custom_fields (radio and checkbox fields as node objects).
func writeContact(o *out, c emulator.Contact) {
	o.openObj("contact")
	o.num("contact_id", emulator.FormatID(c.ID))
	for _, f := range Fields {
		v := c.Fields[f]
		if integerFields[f] {
			if v == "" {
				v = "0"
			}
			if _, err := strconv.Atoi(v); err == nil {
				o.num(f, v)
				continue
			}
		}
		o.str(f, v)
	}
	var custom, extra []string
	for k := range c.Fields {
		switch {
		case strings.HasPrefix(k, customPrefix):
			custom = append(custom, k)
		case !knownFields[k] && k != "contact_id" && k != "custom_fields":
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		o.str(k, c.Fields[k])
	}
	o.openObj("custom_fields")
	writeCustom(o, c.Fields, custom)
	o.closeObj("custom_fields")
	o.closeObj("contact")
}

func writeCustom(o *out, fields map[string]string, keys []string) {
	type custom struct {
		scalar    string
		hasScalar bool
		nodes     []string // keys of non-empty nodes
		anyNode   bool
	}
	byName := map[string]*custom{}
	var names []string
	get := func(name string) *custom {
		c := byName[name]
		if c == nil {
			c = &custom{}
			byName[name] = c
			names = append(names, name)
		}
		return c
	}
	for _, k := range keys {
		if name, nodeName, ok := nodeKey(k); ok {
			c := get(name)
			c.anyNode = true
			if fields[k] != "" {
				c.nodes = append(c.nodes, nodeName)
			}
			continue
		}
		c := get(k[len(customPrefix):])
		c.scalar, c.hasScalar = fields[k], true
	}
	slices.Sort(names)
	for _, name := range names {
		c := byName[name]
		switch {
		case len(c.nodes) > 0 || (c.anyNode && c.scalar == ""):
			slices.SortFunc(c.nodes, func(a, b string) int {
				na, _ := strconv.Atoi(a[4:])
				nb, _ := strconv.Atoi(b[4:])
				return na - nb
			})
			o.openObj(name)
			for _, n := range c.nodes {
				o.str(n, fields[customPrefix+name+"."+n])
			}
			o.closeObj(name)
		default:
			o.str(name, c.scalar)
		}
	}
}

// Table returns the emulator's contact table, for simulators and tests
// that inspect or count what the CRM holds.
func (s *Server) Table() *emulator.Table { return s.table }
