// Package clientapitest is an emulator of the Client API of a WHMCS-based
// hosting client area (m=clientapi), as docs/apis/clientapi.md assumes it:
// one index.php endpoint taking m, apikey, apimodule and apifunction by POST
// or GET, one account per API key, JSON replies with a status field, and a
// lastlogin the server bumps on every login.
package clientapitest

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/connectors/emulator"
)

// MethodGetDetails is the method name for FailNext and Calls.
const MethodGetDetails = "client/getdetails"

// DefaultAPIKey is used when Config.APIKey is empty.
const DefaultAPIKey = "ck_live_7f3e9a20b4c1"

// DateLayout is the form of lastlogin.
const DateLayout = "2006-01-02 15:04:05"

// Config configures a Server.
type Config struct {
	APIKey string
	// Clock is the emulator's clock (a new real-time clock when nil).
	Clock *emulator.Clock
	// ErrorStatus is the HTTP status of a status-error reply for a wrong
	// key (200 when zero; the note allows 401 and 403 too).
	ErrorStatus int
	// ID is the account's client id (default 1).
	ID int64
}

// Server is the emulator: an http.Handler for the client area's
// index.php (any path).
type Server struct {
	emulator.Hooks

	cfg Config

	mu       sync.Mutex
	account  map[string]string // nil after Delete
	disabled bool
}

// New returns an emulator holding one account with sample details.
func New(cfg Config) *Server {
	if cfg.APIKey == "" {
		cfg.APIKey = DefaultAPIKey
	}
	if cfg.Clock == nil {
		cfg.Clock = &emulator.Clock{}
	}
	if cfg.ErrorStatus == 0 {
		cfg.ErrorStatus = http.StatusOK
	}
	if cfg.ID == 0 {
		cfg.ID = 1
	}
	s := &Server{cfg: cfg}
	s.account = s.withServerFields(map[string]string{
		"firstname": "Alex", "lastname": "Example", "companyname": "Example Hosting Ltd",
		"email": "alex@example.com", "address1": "1 High Street", "address2": "",
		"city": "Leeds", "state": "West Yorkshire", "postcode": "LS1 1AA",
		"country": "GB", "phonenumber": "+44.1132000000",
	})
	return s
}

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Clock returns the emulator's clock.
func (s *Server) Clock() *emulator.Clock { return s.cfg.Clock }

// withServerFields adds id and a lastlogin to details.
func (s *Server) withServerFields(details map[string]string) map[string]string {
	out := maps.Clone(details)
	if out == nil {
		out = map[string]string{}
	}
	out["id"] = s.ID()
	if out["lastlogin"] == "" {
		out["lastlogin"] = s.cfg.Clock.Now().UTC().Format(DateLayout)
	}
	return out
}

// ID returns the account's id.
func (s *Server) ID() string { return strconv.FormatInt(s.cfg.ID, 10) }

// Seed sets (replaces) the single account's details and returns its id.
func (s *Server) Seed(fields map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account = s.withServerFields(fields)
	return s.ID()
}

// EditAsUser changes details as the customer would in the client area.
func (s *Server) EditAsUser(id string, fields map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account == nil || id != s.ID() {
		return
	}
	for k, v := range fields {
		if k != "id" {
			s.account[k] = v
		}
	}
}

// Login records a login to the client area: lastlogin becomes now.
func (s *Server) Login() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account != nil {
		s.account["lastlogin"] = s.cfg.Clock.Now().UTC().Format(DateLayout)
	}
}

// Delete closes the account: its key stops working.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account == nil || id != s.ID() {
		return false
	}
	s.account = nil
	return true
}

// SetDisabled switches the Client API off (API Status) or on.
func (s *Server) SetDisabled(off bool) {
	s.mu.Lock()
	s.disabled = off
	s.mu.Unlock()
}

// Fields returns the account's details.
func (s *Server) Fields(id string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.account == nil || id != s.ID() {
		return nil, false
	}
	return maps.Clone(s.account), true
}

// Advance moves the clock forward.
func (s *Server) Advance(d time.Duration) { s.cfg.Clock.Advance(d) }

// Malformed is a login page instead of JSON, for FailNext: what a client
// area answers when the addon is not installed.
var Malformed = emulator.Fault{Status: 200, ContentType: "text/html; charset=utf-8", Body: "<!DOCTYPE html><html><body>Client Area</body></html>"}

// StatusError is a well-formed error reply, for FailNext.
func StatusError(message string) emulator.Fault {
	b, _ := json.Marshal(map[string]string{"status": "error", "message": message})
	return emulator.Fault{Status: 200, ContentType: "application/json", Body: string(b)}
}

// ServeHTTP answers index.php?m=clientapi.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.Form.Get("m") != "clientapi" {
		// Any other page of the client area is HTML.
		emulator.WriteFault(w, emulator.Fault{Status: 200, ContentType: "text/html; charset=utf-8", Body: "<!DOCTYPE html><html><body>Client Area</body></html>"})
		return
	}
	method := r.Form.Get("apimodule") + "/" + r.Form.Get("apifunction")
	if s.Enter(w, method) {
		return
	}
	s.mu.Lock()
	off, account := s.disabled, maps.Clone(s.account)
	s.mu.Unlock()
	switch {
	case r.Form.Get("apikey") != s.cfg.APIKey || account == nil:
		s.reply(w, s.cfg.ErrorStatus, map[string]any{"status": "error", "message": "Invalid API Key"})
		return
	case off:
		s.reply(w, s.cfg.ErrorStatus, map[string]any{"status": "error", "message": "API Access is disabled"})
		return
	}
	switch method {
	case MethodGetDetails:
		s.reply(w, http.StatusOK, map[string]any{"status": "success", "message": "successfully retrieved client details", "data": account})
	case "client/licenses", "cpanellicensing/products":
		s.reply(w, http.StatusOK, map[string]any{"status": "success", "message": "ok", "data": []any{}})
	default:
		s.reply(w, http.StatusOK, map[string]any{"status": "error", "message": "Invalid API function"})
	}
}

func (s *Server) reply(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
