package opencrmtest

import (
	"net/http"
	"strings"
)

// blockedAgentPrefix is the start of the User-Agent Go's HTTP client sends
// when none is set. OpenCRM's web firewall is observed to reject some
// default client User-Agents (the API note); the emulator plays it with
// this one, so that a client must name itself as syncd does.
const blockedAgentPrefix = "Go-http-client"

// firewallRejects answers a request the web firewall in front of the API
// stops, the way such a firewall does: HTTP 403 with an HTML page, before
// the API sees the request (it is neither logged nor counted).
func firewallRejects(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.UserAgent(), blockedAgentPrefix) {
		return false
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte("<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head>" +
		"<body><h1>Access denied</h1><p>Your request was blocked by the web application firewall.</p></body></html>\n"))
	return true
}
